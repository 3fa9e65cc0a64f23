"""``camwatch demo``: the whole path on one machine, with no outside services.

An embedded MQTT broker, simulated cameras on a real local RTSP server
(GStreamer, when installed; otherwise looping files read by the same reader
code), the real agent, and a live status table. Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import logging
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from agent.cli.status import BrokerURL, RetainedView, render_table
from agent.config import parse_config
from agent.runtime import Agent
from agent.sim import scenes
from agent.sim.broker import EmbeddedBroker
from agent.sim.clips import synthetic_frame, write_au_clip, write_test_clip
from agent.sim.rtsp import RtspServer, free_port, gst_available

log = logging.getLogger(__name__)
WARD = "demo-ward"


class Flapper:
    """Kills the RTSP server of one camera now and then, and brings it back."""

    def __init__(self, server: RtspServer, up_s: float = 30.0, down_s: float = 15.0) -> None:
        self.server = server
        self.up_s = up_s
        self.down_s = down_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-flapper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.up_s):
            self.server.kill()
            if self._stop.wait(self.down_s):
                return
            try:
                self.server.start()
            except RuntimeError:
                log.warning("demo: could not restart the flapping camera's server")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


def _scripted_clips(workdir: Path) -> dict[str, Path]:
    """Scripted cameras: 20 s of a moving scene, then 40 s frozen (or black); a person walking by every 18 s."""
    fps = 10
    moving = [synthetic_frame(i, 320, 180, fps) for i in range(20 * fps)]
    rng = np.random.default_rng(0)
    dark = [rng.normal(4, 1.5, (180, 320, 3)).clip(0, 255).astype(np.uint8) for _ in range(8)]
    clips = {
        "frozen": write_au_clip(workdir / "frozen.au", moving + [moving[-1]] * (40 * fps), fps=fps, gop=fps),
        "black": write_au_clip(workdir / "black.au", moving + [dark[i % 8] for i in range(40 * fps)], fps=fps, gop=fps),
    }
    try:
        walk = scenes.WalkThrough(fps=fps, enter_at=4.0, cross_s=7.0, length_s=18.0)
    except FileNotFoundError as exc:  # the sample images live in ../shared/testdata
        log.warning("no walking-person camera in the demo: %s", exc)
    else:
        clips["walk"] = write_au_clip(workdir / "walk.au", walk.frames(), fps=fps, gop=2 * fps)
    return clips


def _cameras_with_gst(
    servers: list[RtspServer], flappers: list[Flapper], workdir: Path
) -> tuple[list[dict[str, Any]], str]:
    password = "demo-" + secrets.token_hex(4)
    clips = _scripted_clips(workdir)
    main = RtspServer(
        {
            "gate": "video:640x360@15,gop=30,pattern=smpte",
            "market": "video:640x360@15,gop=30,pattern=ball",
            "speaker": "audio",
            "yard": f"clip:{clips['frozen']},fps=10",
            "alley": f"clip:{clips['black']},fps=10",
            **({"pavement": f"clip:{clips['walk']},fps=10"} if "walk" in clips else {}),
        },
        user="operator",
        password=password,
    ).start()
    servers.append(main)
    bridge = RtspServer({"bridge": "video:640x360@15,gop=30,pattern=snow"}, user="operator", password=password).start()
    servers.append(bridge)
    flapper = Flapper(bridge)
    flappers.append(flapper)
    closed = free_port()
    cams = [
        {"id": "cam-01", "name": "Cổng UBND phường (healthy)", "url": main.url("gate")},
        {"id": "cam-02", "name": "Chợ phường (healthy)", "url": main.url("market")},
        {"id": "cam-03", "name": "Cầu Bến Thủy (dies every 30 s, back after 15 s)", "url": bridge.url("bridge")},
        {"id": "cam-04", "name": "Ngã tư Lê Duẩn (wrong password)", "url": main.url("gate", password="wrong-password")},
        {
            "id": "cam-05",
            "name": "Trường THCS (unreachable)",
            "url": f"rtsp://operator:{password}@127.0.0.1:{closed}/live",
        },
        {"id": "cam-06", "name": "Bãi xe (wrong path)", "url": main.url("channel-9")},
        {"id": "cam-07", "name": "Loa phường (audio only)", "url": main.url("speaker")},
        {"id": "cam-08", "name": "Sân sau (picture freezes after 20 s)", "url": main.url("yard")},
        {"id": "cam-09", "name": "Hẻm 12 (lens covered: black after 20 s)", "url": main.url("alley")},
    ]
    if "walk" in clips:
        cams.append({"id": "cam-10", "name": "Vỉa hè (a person walks by every 18 s)", "url": main.url("pavement")})
    return cams, "local GStreamer RTSP server (Digest auth)"


def _cameras_from_files(workdir: Path) -> tuple[list[dict[str, Any]], str]:
    clip = workdir / "street.mp4"
    write_test_clip(clip, seconds=6, width=640, height=360, fps=15, gop=30)
    closed = free_port()
    cams = [
        {"id": "cam-01", "name": "Cổng UBND phường (healthy, file)", "url": clip.as_uri()},
        {"id": "cam-02", "name": "Chợ phường (healthy, file)", "url": clip.as_uri()},
        {
            "id": "cam-05",
            "name": "Trường THCS (unreachable)",
            "url": f"rtsp://operator:demo-pass@127.0.0.1:{closed}/live",
        },
        {"id": "cam-06", "name": "Bãi xe (missing file)", "url": (workdir / "missing.mp4").as_uri()},
    ]
    return cams, "looping files (install GStreamer's RTSP server for the full demo: see README)"


def cmd_demo(duration: float = 0, port: int = 0) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    servers: list[RtspServer] = []
    flappers: list[Flapper] = []
    broker = EmbeddedBroker(port or free_port())
    agent: Agent | None = None
    agent_thread: threading.Thread | None = None
    view: RetainedView | None = None
    with tempfile.TemporaryDirectory(prefix="camwatch-demo-") as tmp:
        workdir = Path(tmp)
        try:
            broker.start()
            print(f"camwatch demo: embedded MQTT broker on 127.0.0.1:{broker.port}", flush=True)
            if gst_available():
                cams, source = _cameras_with_gst(servers, flappers, workdir)
            else:
                cams, source = _cameras_from_files(workdir)
            print(f"camwatch demo: {len(cams)} simulated cameras from {source}", flush=True)
            config = parse_config(
                {
                    "ward": WARD,
                    "state_dir": str(workdir / "state"),
                    "log_level": "warning",
                    "mqtt": {"host": "127.0.0.1", "port": broker.port},
                    "health": {"offline_after_s": 5, "online_after_s": 2, "heartbeat_s": 10, "stats_s": 10},
                    "cameras": cams,
                }
            )
            agent = Agent(config)
            if agent.detection is not None:
                print("camwatch demo: detection on (model fastestdet, 2 fps per camera)", flush=True)
            else:
                print("camwatch demo: detection off (model not found beside the checkout)", flush=True)
            agent_thread = threading.Thread(target=agent.run, name="agent", daemon=True)
            agent_thread.start()
            for flapper in flappers:
                flapper.start()
            view = RetainedView(BrokerURL(f"mqtt://127.0.0.1:{broker.port}"), ward=WARD)
            events: deque[str] = deque(maxlen=8)
            view.client.message_callback_add(f"camwatch/{WARD}/+/events", _event_logger(events))
            view.start()
            view.client.subscribe(f"camwatch/{WARD}/+/events", qos=1)
            started = time.monotonic()
            tty = sys.stdout.isatty()
            while not stop.is_set():
                if duration and time.monotonic() - started >= duration:
                    break
                health, agents = view.rows()
                screen = render_table(health, agents)
                recent = "\n".join(events) or "(none yet)"
                text = f"{screen}\n\nlatest events:\n{recent}\n\n(Ctrl-C stops the demo)"
                if tty:
                    print("\033[2J\033[H" + text, flush=True)
                else:
                    print(f"--- {time.monotonic() - started:.0f}s\n{text}", flush=True)
                stop.wait(2.0)
            return 0
        except RuntimeError as exc:
            print(f"camwatch demo: {exc}", file=sys.stderr)
            return 1
        finally:
            for flapper in flappers:
                flapper.stop()
            if agent is not None:
                agent.stop()
            if agent_thread is not None:
                agent_thread.join(10.0)
            if view is not None:
                health, agents = view.rows()
                print("\nfinal status:\n" + render_table(health, agents), flush=True)
                view.stop()
            for server in servers:
                server.kill()
            broker.stop()
            print("camwatch demo: stopped", flush=True)


def _event_logger(events: deque[str]) -> Any:
    def on_event(client: Any, userdata: Any, msg: Any) -> None:
        try:
            e = json.loads(msg.payload)
        except ValueError:
            return
        when = str(e.get("ts", ""))[11:19]
        if e.get("type") == "state_changed":
            text = f"{e.get('from')} -> {e.get('to')} {','.join(e.get('problems') or [])}"
        elif str(e.get("type", "")).startswith("detection_"):
            snapshot = "with snapshot" if e.get("snapshot") else "no snapshot"
            text = f"{e.get('type')} {e.get('label')} {e.get('score')} track {e.get('track_id')} ({snapshot})"
        else:
            text = f"{e.get('type')} {e.get('problem', '')}"
        events.append(f"  {when}Z  {e.get('camera')}: {text}")

    return on_event
