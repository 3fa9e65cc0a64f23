"""``camwatch probe URL``: what an installer needs to know about one camera, at once."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from agent.config.model import check_url
from agent.errors import CameraAuthFailed, CameraError, CameraNotFound, CameraUnreachable, NoVideo, StreamStalled
from agent.stream.frames import Frame, FrameSampler, Tap
from agent.stream.reader import CameraReader
from common.i18n import _
from common.redact import redact, register_url_secrets

HINTS: dict[str, str] = {
    cls.reason: cls.hint for cls in (CameraUnreachable, CameraAuthFailed, CameraNotFound, StreamStalled, NoVideo)
}


def probe(url: str, *, seconds: float = 5.0, timeout: float = 10.0, snapshot: str | None = None) -> dict[str, Any]:
    """Connect to ``url``, measure for ``seconds`` and return the findings (never raises for camera faults)."""
    first_frame: list[Frame] = []
    got_frame = threading.Event()

    def sink(frame: Frame) -> None:
        if not first_frame:
            first_frame.append(frame)
            got_frame.set()

    started = time.monotonic()
    reader = CameraReader(
        "probe",
        url,
        open_timeout_s=min(timeout, 10.0),
        read_timeout_s=2.0,
        backoff_initial_s=60.0,
        backoff_max_s=60.0,
        fps_window_s=max(1.0, seconds),
        taps=[Tap(FrameSampler(interval_s=0.5), sink)],
    )
    result: dict[str, Any] = {"url": redact(url), "ok": False}
    reader.start()
    try:
        first_packet_at: float | None = None
        deadline = started + timeout
        while time.monotonic() < deadline:
            snap = reader.snapshot()
            if snap.packets and first_packet_at is None:
                first_packet_at = snap.last_packet
            if snap.failure and not snap.packets:
                result.update(reason=snap.failure, hint=HINTS.get(snap.failure, ""), detail=redact(snap.failure_detail))
                return result
            if first_packet_at is not None:
                deadline = max(deadline, first_packet_at + seconds + 0.5)
                measured = time.monotonic() - first_packet_at
                if measured >= seconds and (got_frame.is_set() or measured >= seconds * 2):
                    break
            time.sleep(0.05)
        snap = reader.snapshot()
        if not snap.packets:
            reason = snap.failure or "stalled"
            result.update(
                reason=reason,
                hint=HINTS[reason],
                detail=redact(snap.failure_detail or f"no video within {timeout:g} s"),
            )
            return result
        assert first_packet_at is not None
        result.update(
            ok=True,
            codec=snap.codec,
            width=snap.width,
            height=snap.height,
            fps=None if snap.fps is None else round(snap.fps, 2),
            nominal_fps=snap.nominal_fps,
            bitrate_kbps=None if snap.bitrate_kbps is None else round(snap.bitrate_kbps, 1),
            gop_s=None if snap.gop_s is None else round(snap.gop_s, 2),
            gop_frames=snap.gop_frames,
            time_to_first_packet_s=round(first_packet_at - started, 3),
            time_to_first_frame_s=round(first_frame[0].mono - started, 3) if first_frame else None,
            measured_s=round(time.monotonic() - first_packet_at, 2),
        )
        if snapshot:
            if first_frame:
                import cv2

                ok = cv2.imwrite(snapshot, first_frame[0].bgr(), [cv2.IMWRITE_JPEG_QUALITY, 85])
                result["snapshot"] = snapshot if ok else None
                if not ok:
                    result["snapshot_error"] = f"cannot write {snapshot}"
            else:
                result["snapshot"] = None
                result["snapshot_error"] = "no frame could be decoded in time"
        return result
    finally:
        reader.stop()
        reader.join(timeout=5.0)


def render_findings(r: dict[str, Any]) -> list[str]:
    """One stream's findings as lines an installer reads (no URL: the caller says which stream)."""
    if not r["ok"]:
        rows = [(_("FAILED"), f"{r['reason']}: {_(r['hint'])}"), (_("detail"), r["detail"])]
        return _aligned(rows)
    ttf = r.get("time_to_first_frame_s")
    first = _("first packet after {seconds:.2f} s").format(seconds=r["time_to_first_packet_s"])
    first += ", " + (
        _("first frame after {seconds:.2f} s").format(seconds=ttf) if ttf is not None else _("no frame decoded yet")
    )
    fps = _("{fps} delivered").format(fps=r["fps"])
    if r.get("nominal_fps"):
        fps += " " + _("(nominal {fps:g})").format(fps=r["nominal_fps"])
    if r.get("gop_s") is not None:
        gop = _("{seconds:.2f} s ({frames} frames)").format(seconds=r["gop_s"], frames=r["gop_frames"])
    else:
        gop = _("longer than the {seconds:g} s measured (or unknown)").format(seconds=r["measured_s"])
    rows = [
        (_("OK"), first),
        (_("video"), f"{r['codec']} {r['width']}x{r['height']}"),
        (_("fps"), fps),
        (_("bitrate"), _("{kbps} kbit/s").format(kbps=r["bitrate_kbps"])),
        (_("GOP"), gop),
    ]
    if "snapshot" in r:
        saved = _("saved to {path}").format(path=r["snapshot"])
        rows.append(
            (_("snapshot"), saved if r["snapshot"] else _("not saved: {why}").format(why=r.get("snapshot_error")))
        )
    return _aligned(rows)


def _aligned(rows: list[tuple[str, str]]) -> list[str]:
    """``label  value`` lines, the values in one column whatever the language's labels."""
    width = max(11, *(len(label) + 1 for label, _value in rows))
    return [f"{label:<{width}}{value}" for label, value in rows]


def _human(r: dict[str, Any]) -> str:
    return "\n".join([f"camwatch probe {r['url']}", *("  " + line for line in render_findings(r))])


def cmd_probe(url: str, *, snapshot: str | None, as_json: bool, seconds: float, timeout: float) -> int:
    try:
        check_url(url)
    except ValueError as exc:
        print(_("camwatch probe: the URL {url} {problem}").format(url=redact(url), problem=exc), file=sys.stderr)
        return 2
    register_url_secrets(url)
    try:
        result = probe(url, seconds=seconds, timeout=timeout, snapshot=snapshot)
    except CameraError as exc:  # not expected: probe() reports camera faults in its result
        result = {"url": redact(url), "ok": False, "reason": exc.reason, "hint": exc.hint, "detail": redact(exc.detail)}
    print(json.dumps(result, ensure_ascii=False) if as_json else _human(result))
    return 0 if result["ok"] else 2
