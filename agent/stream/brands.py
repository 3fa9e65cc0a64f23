"""Where each camera brand a city buys publishes its main stream and its substream.

An installer at a camera knows its brand and IP address, rarely its RTSP
path. These are the paths the makers document (and their relabels share):

- Hikvision: ``/Streaming/Channels/<channel>01`` main, ``<channel>02`` sub.
- Dahua, and KBVision and Imou, which are Dahua hardware sold under other names:
  ``/cam/realmonitor?channel=<channel>&subtype=0`` main, ``subtype=1`` sub.
  Imou's password is the device's safety code, printed on its label.
- Ezviz, Hikvision's consumer line: ``/h264/ch<channel>/main/av_stream`` and
  ``.../sub/av_stream``. The password is the verification code on the label,
  and on some models RTSP must first be switched on in the Ezviz app.

``generic`` tries each scheme in turn, for relabels whose maker is not known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from common.i18n import N_, _

StreamRole = Literal["main", "sub"]


@dataclass(frozen=True)
class PathScheme:
    """One maker's pair of paths; ``{channel}`` is the camera's (or NVR's) channel number."""

    name: str
    main: str
    sub: str

    def path(self, role: StreamRole, channel: int) -> str:
        return (self.main if role == "main" else self.sub).format(channel=channel)


HIKVISION = PathScheme("Hikvision", "/Streaming/Channels/{channel}01", "/Streaming/Channels/{channel}02")
DAHUA = PathScheme(
    "Dahua", "/cam/realmonitor?channel={channel}&subtype=0", "/cam/realmonitor?channel={channel}&subtype=1"
)
EZVIZ = PathScheme("Ezviz", "/h264/ch{channel}/main/av_stream", "/h264/ch{channel}/sub/av_stream")
UNIVIEW = PathScheme("Uniview", "/unicast/c{channel}/s0/live", "/unicast/c{channel}/s1/live")


@dataclass(frozen=True)
class Brand:
    key: str
    schemes: tuple[PathScheme, ...]
    note: str = ""  # what the installer should know about its user and password (English; shown translated)


BRANDS: dict[str, Brand] = {
    "hikvision": Brand("hikvision", (HIKVISION,)),
    "dahua": Brand("dahua", (DAHUA,)),
    "kbvision": Brand("kbvision", (DAHUA,)),
    "imou": Brand(
        "imou", (DAHUA,), note=N_("Imou: the user is admin and the password is the safety code on the label")
    ),
    "ezviz": Brand(
        "ezviz",
        (EZVIZ, HIKVISION),
        note=N_(
            "Ezviz: the user is admin, the password the verification code on the label; "
            "some models need RTSP switched on in the Ezviz app first"
        ),
    ),
    "generic": Brand("generic", (HIKVISION, DAHUA, EZVIZ, UNIVIEW)),
}


def split_host(value: str, default_port: int = 554) -> tuple[str, int]:
    """``HOST`` or ``HOST:PORT`` (``[v6]:PORT`` for IPv6) as ``(host, port)``; ValueError names what is wrong."""
    value = value.strip()
    if value.startswith("rtsp://") or "/" in value:
        raise ValueError(_("give the camera's address only (like 192.168.1.64), not a URL"))
    host, port = value, default_port
    if value.startswith("["):
        host, _sep, rest = value[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"))
    elif value.count(":") == 1:
        host, _sep, text = value.partition(":")
        port = _port(text)
    if not host:
        raise ValueError(_("has no host"))
    return host, port


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(_("has an invalid port {port!r}").format(port=text))
    return int(text)


def stream_url(host: str, port: int, path: str, user: str = "", password: str = "") -> str:
    """``rtsp://[user[:password]@]host:port/path``, with the credentials escaped (a secret: redact to show)."""
    netloc = f"[{host}]" if ":" in host else host
    netloc = f"{netloc}:{port}"
    if user:
        cred = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        netloc = f"{cred}@{netloc}"
    return f"rtsp://{netloc}{path}"
