"""The substream of a camera whose main-stream URL follows a known brand's scheme.

Detection needs a small picture a few times a second. Decoding a 1080p main
stream for it costs a ward PC about 8x what the camera's own 360p/D1
substream costs (see README: scale). Most cameras a city integrates
(Hikvision, Dahua and their many relabels, Uniview) publish the substream
at a URL one digit away from the main stream's, so when no ``detect_url``
is given, detection reads the derived one. If the camera has no such
stream, detection falls back to the main stream's keyframes (see
:mod:`agent.shard`).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Hikvision (and relabels): /Streaming/Channels/<channel><01 main|02 sub>, also under /ISAPI.
_HIK = re.compile(r"(?i)^(.*/streaming/channels/)(\d*?)(01)/?$")
# Older Hikvision / Hikvision-like: /h264/ch1/main/av_stream, /h265/ch1/main/...
_HIK_OLD = re.compile(r"(?i)^(.*/h26[45]/ch\d+/)main(/av_stream)?/?$")
# Uniview: /unicast/c<channel>/s0/live (s0 main, s1 sub).
_UNV = re.compile(r"(?i)^(.*/unicast/c\d+/s)0(/live)/?$")


def derive_substream(url: str) -> tuple[str, str] | None:
    """``(substream URL, brand scheme)`` for a main-stream URL of a known scheme, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("rtsp", "rtsps"):
        return None
    path = parts.path
    match = _HIK.match(path)
    if match:
        return urlunsplit(parts._replace(path=f"{match[1]}{match[2]}02")), "Hikvision …/Channels/N01 → N02"
    match = _HIK_OLD.match(path)
    if match:
        return urlunsplit(parts._replace(path=f"{match[1]}sub{match[2] or ''}")), "Hikvision …/main → …/sub"
    match = _UNV.match(path)
    if match:
        return urlunsplit(parts._replace(path=f"{match[1]}1{match[2]}")), "Uniview …/s0/live → s1"
    if path.lower().rstrip("/").endswith("/cam/realmonitor"):
        query = parse_qsl(parts.query, keep_blank_values=True)
        keys = [k.lower() for k, _ in query]
        if "subtype" in keys:
            if any(k.lower() == "subtype" and v != "0" for k, v in query):
                return None  # already a substream (or a third stream): leave it
            query = [(k, "1" if k.lower() == "subtype" else v) for k, v in query]
        else:
            query.append(("subtype", "1"))  # Dahua's default is the main stream
        return urlunsplit(parts._replace(query=urlencode(query, safe=","))), "Dahua subtype=0 → subtype=1"
    return None
