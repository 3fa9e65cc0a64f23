"""``camwatch probe --brand BRAND HOST``: find a camera's streams from its brand, judge them, write its config.

The installer gives the brand, the address and the user; the password is
asked for (or read from standard input when that is not a terminal) and never
shown. Each of the brand's documented main-stream paths is tried until one
answers, then its substream; both are measured like ``camwatch probe URL``.
The findings end in advice (which stream for health, which for detection,
what to change on the camera) and a ``[[cameras]]`` block to paste into the
ward's config, its password as ``${VAR}``.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.cli.probe import probe, render_findings
from agent.stream.brands import BRANDS, Brand, PathScheme, StreamRole, split_host, stream_url
from common.i18n import _
from common.redact import register_url_secrets

Prober = Callable[[str], dict[str, Any]]  # a URL's findings, as probe() gives them

# A keyframe at least this often lets image checks decode keyframes only (1.5x image_check_interval_s).
LONGEST_GOOD_GOP_S = 3.0
SUBSTREAM_MAX_HEIGHT = 720
SUBSTREAM_ENOUGH_FPS = 15.0
# Reasons that no other path on the same camera can cure.
DECISIVE = frozenset({"unreachable", "auth_failed"})


@dataclass
class Survey:
    brand: str
    host: str
    port: int
    channel: int
    user: str
    streams: list[dict[str, Any]] = field(default_factory=list)  # probe findings plus role, scheme and path

    def found(self, role: StreamRole) -> dict[str, Any] | None:
        return next((s for s in self.streams if s["role"] == role and s["ok"]), None)


def survey(
    brand: Brand,
    host: str,
    port: int,
    *,
    user: str,
    password: str,
    channel: int = 1,
    prober: Prober,
) -> Survey:
    """Try the brand's schemes in turn: the first whose main stream answers is measured with its substream."""
    result = Survey(brand.key, host, port, channel, user)

    def attempt(scheme: PathScheme, role: StreamRole) -> dict[str, Any]:
        path = scheme.path(role, channel)
        url = stream_url(host, port, path, user, password)
        register_url_secrets(url)
        found = prober(url) | {"role": role, "scheme": scheme.name, "path": path}
        result.streams.append(found)
        return found

    for scheme in brand.schemes:
        main = attempt(scheme, "main")
        if main["ok"]:
            attempt(scheme, "sub")
            break
        if main["reason"] in DECISIVE:
            break
    return result


def advice(found: Survey) -> list[str]:
    """What to read each stream for and what to change on the camera, in the order an installer acts."""
    main, sub = found.found("main"), found.found("sub")
    if main is None:
        last = found.streams[-1]
        note = BRANDS[found.brand].note
        found_none = _("no stream found: {reason}: {hint}").format(reason=last["reason"], hint=_(last["hint"]))
        return [found_none, *([_(note)] if note else [])]
    lines = [_("health: the main stream ({width}x{height}), what the camera records").format(**main)]
    if sub is not None:
        lines.append(_("detection: the substream ({width}x{height}), cheap to decode every frame").format(**sub))
        if (sub["height"] or 0) > SUBSTREAM_MAX_HEIGHT:
            lines.append(
                _(
                    "change: the substream is {height} px high; set it to 640x360 or D1 (704x576) "
                    "in the camera's web page (detection decodes all of it)"
                ).format(height=sub["height"])
            )
        if (sub["fps"] or 0) > SUBSTREAM_ENOUGH_FPS:
            lines.append(
                _("change: the substream sends {fps:g} fps; 10-15 fps is enough and costs less").format(fps=sub["fps"])
            )
    else:
        lines.append(
            _(
                "detection: no substream answered, so detection will look at the main stream's keyframes only "
                "(one picture per GOP); switch the camera's substream on (Sub Stream / Extra Stream) to see every frame"
            )
        )
    if main["codec"] not in ("h264", "hevc"):
        lines.append(_("change: the main stream is {codec}; set H.264 (or H.265) in the camera").format(**main))
    gop = main["gop_s"]
    if gop is None or gop > LONGEST_GOOD_GOP_S:
        shown = (
            _("only one keyframe every {seconds:g} s").format(seconds=gop)
            if gop is not None
            else _("no keyframe in {seconds:g} s").format(seconds=main["measured_s"])
        )
        lines.append(
            _(
                "change: {keyframes}; set the I-frame interval to twice the fps (one keyframe every 2 s), "
                "or the image checks must decode every frame"
            ).format(keyframes=shown)
        )
    nominal, fps = main.get("nominal_fps"), main["fps"]
    if nominal and fps is not None and fps < 0.5 * nominal:
        lines.append(
            _(
                "check: the camera sends {fps:g} of its {nominal:g} fps; its network link or the camera is overloaded"
            ).format(fps=fps, nominal=nominal)
        )
    return lines


def camera_id(host: str, channel: int) -> str:
    base = "cam-" + re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")
    return base if channel == 1 else f"{base}-ch{channel}"


def password_variable(camera: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", camera.upper()).strip("_") + "_PASS"


def config_block(found: Survey, camera: str) -> str | None:
    """The ``[[cameras]]`` block for the streams found, its password as ``${VAR}``; None if no stream answered."""
    main, sub = found.found("main"), found.found("sub")
    if main is None:
        return None
    lines = [
        "[[cameras]]",
        f"id = {json.dumps(camera)}",
        'name = ""                      # ' + _("the place, as operators call it"),
        f"url = {json.dumps(stream_url(found.host, found.port, main['path']))}",
    ]
    if sub is not None:
        lines.append(f"detect_url = {json.dumps(stream_url(found.host, found.port, sub['path']))}")
    if found.user:
        lines.append(f"username = {json.dumps(found.user)}")
        lines.append(f'password = "${{{password_variable(camera)}}}"')
    return "\n".join(lines)


def read_password(user: str, host: str) -> str:
    """From a prompt on a terminal (not echoed), else the first line of standard input."""
    if sys.stdin.isatty():
        return getpass.getpass(_("Password for {user} at {host} (Enter if none): ").format(user=user, host=host))
    return sys.stdin.readline().rstrip("\r\n")


def render(found: Survey, camera: str) -> str:
    out = [
        f"camwatch probe --brand {found.brand} {found.host}:{found.port} "
        + _("(channel {channel})").format(channel=found.channel)
    ]
    for stream in found.streams:
        out.append("")
        which = _("main stream") if stream["role"] == "main" else _("substream")
        out.append(_("{which}, {scheme} path {path}").format(which=which, scheme=stream["scheme"], path=stream["path"]))
        out.extend("  " + line for line in render_findings(stream))
    out.append("")
    out.append(_("advice"))
    out.extend(f"  - {line}" for line in advice(found))
    block = config_block(found, camera)
    if block is not None:
        out.append("")
        out.append(_("paste into the ward's config (check it with camwatch check-config):"))
        out.append("")
        out.append(block)
        if found.user:
            out.append("")
            out.append(
                _("and in /etc/camwatch/agent.env: {variable}=<the camera's password>").format(
                    variable=password_variable(camera)
                )
            )
    return "\n".join(out)


def cmd_survey(
    brand_key: str,
    target: str,
    *,
    user: str,
    channel: int,
    camera: str | None,
    as_json: bool,
    seconds: float,
    timeout: float,
) -> int:
    try:
        host, port = split_host(target)
    except ValueError as exc:
        print(
            _("camwatch probe: the camera address {address!r}: {problem}").format(address=target, problem=exc),
            file=sys.stderr,
        )
        return 2
    password = read_password(user, host) if user else ""
    camera = camera or camera_id(host, channel)

    def prober(url: str) -> dict[str, Any]:
        return probe(url, seconds=seconds, timeout=timeout)

    found = survey(BRANDS[brand_key], host, port, user=user, password=password, channel=channel, prober=prober)
    if as_json:
        document = {
            "brand": found.brand,
            "host": host,
            "port": port,
            "channel": channel,
            "streams": found.streams,
            "advice": advice(found),
            "config": config_block(found, camera),
            "password_variable": password_variable(camera) if user else None,
        }
        print(json.dumps(document, ensure_ascii=False))
    else:
        print(render(found, camera))
    return 0 if found.found("main") is not None else 2
