"""A light RTSP server for scale benchmarks: hundreds of camera-like streams for a small share of a core.

A city's cameras each have their own processor; on the one machine a scale
bench runs on, the streams' server shares the cores with the agent it
measures. GStreamer's RTSP server runs a pipeline per mount and spent 1.05-1.4
of this machine's 2 cores on 454 streams, so the box was saturated by the
cameras' side and the agent's figures meant little. This server does the
least a camera does: RTP over the RTSP connection (interleaved TCP, what the
agent asks for), H.264 packetised once per clip (RFC 6184: single NAL units
and FU-A fragments), and per client only the sequence number, timestamp and
SSRC written into copies of those packets, paced by one clock per process.

Each client starts at a keyframe chosen at random, so that keyframes are
spread as those of independent cameras are; a client that does not read is
skipped until its buffer drains and then resumes at a keyframe, as a camera
drops frames for a slow viewer. No authentication; 127.0.0.1 only.

    .venv/bin/python bench/rtsp_light.py --port 8554 --route 02=sub.au@15 --route 01=main.au@25

A path is served the clip of the first route whose suffix it ends with (``--route =PATH``: any path).
Prints ``READY <port>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.sim.clips import read_au_clip  # noqa: E402

MTU = 1400  # RTP payload per packet, as a camera on Ethernet sends
HIGH_WATER = 1 << 20  # bytes queued for a client before its frames are skipped
PT = 96


def nal_units(au: bytes) -> list[bytes]:
    """The NAL units of an Annex-B access unit (start codes removed)."""
    units, i, n = [], 0, len(au)
    starts = []
    while True:
        j = au.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, s in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else n
        unit = au[s:end]
        while unit.endswith(b"\x00"):  # the zero of the next 4-byte start code
            unit = unit[:-1]
        if unit:
            units.append(unit)
    return units


def rtp_payloads(unit: bytes) -> list[bytes]:
    """One NAL unit as RTP payloads: whole if it fits, else FU-A fragments."""
    if len(unit) <= MTU:
        return [unit]
    header, body = unit[0], unit[1:]
    indicator = (header & 0xE0) | 28
    out = []
    for pos in range(0, len(body), MTU - 2):
        chunk = body[pos : pos + MTU - 2]
        start = 0x80 if pos == 0 else 0
        end = 0x40 if pos + MTU - 2 >= len(body) else 0
        out.append(bytes([indicator, start | end | (header & 0x1F)]) + chunk)
    return out


@dataclass
class Frame:
    """One access unit as interleaved RTP packets, with where each packet's header is in the bytes."""

    data: bytes
    headers: list[int]  # offsets of the RTP headers
    keyframe: bool


@dataclass
class Clip:
    frames: list[Frame]
    keyframes: list[int]
    sps: bytes
    pps: bytes
    fps: int

    @classmethod
    def load(cls, path: Path, fps: int) -> Clip:
        frames: list[Frame] = []
        keyframes: list[int] = []
        sps = pps = b""
        for key, au in read_au_clip(path):
            payloads = []
            for unit in nal_units(au):
                kind = unit[0] & 0x1F
                if kind == 7:
                    sps = sps or unit
                elif kind == 8:
                    pps = pps or unit
                payloads += rtp_payloads(unit)
            data, headers = bytearray(), []
            for k, payload in enumerate(payloads):
                marker = 0x80 if k == len(payloads) - 1 else 0
                headers.append(len(data) + 4)
                data += b"$\x00" + struct.pack(">H", 12 + len(payload))
                data += bytes([0x80, marker | PT]) + bytes(10) + payload
            if key:
                keyframes.append(len(frames))
            frames.append(Frame(bytes(data), headers, key))
        if not keyframes or not sps or not pps:
            raise ValueError(f"{path}: needs keyframes with SPS and PPS")
        return cls(frames, keyframes, sps, pps, fps)

    def sdp(self) -> str:
        sets = ",".join(base64.b64encode(u).decode() for u in (self.sps, self.pps))
        return (
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=camwatch bench camera\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=video 0 RTP/AVP {PT}\r\na=rtpmap:{PT} H264/90000\r\n"
            f"a=fmtp:{PT} packetization-mode=1;profile-level-id={self.sps[1:4].hex()};sprop-parameter-sets={sets}\r\n"
            "a=control:track0\r\n"
        )


@dataclass
class Client:
    clip: Clip
    writer: asyncio.WriteTransport
    index: int  # the next frame of the clip
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = field(default_factory=lambda: random.getrandbits(16))
    sent: int = 0  # frames sent: the timestamp's clock
    waiting_key: bool = False

    def send(self, ticks_per_frame: int) -> None:
        if self.writer.is_closing():
            return
        clip = self.clip
        if self.writer.get_write_buffer_size() > HIGH_WATER:
            self.waiting_key = True
        else:
            frame = clip.frames[self.index]
            if self.waiting_key and not frame.keyframe:
                pass
            else:
                self.waiting_key = False
                data = bytearray(frame.data)
                ts = (self.sent * ticks_per_frame) & 0xFFFFFFFF
                for off in frame.headers:
                    struct.pack_into(">HII", data, off + 2, self.seq, ts, self.ssrc)
                    self.seq = (self.seq + 1) & 0xFFFF
                self.writer.write(data)
        self.sent += 1
        self.index = (self.index + 1) % len(clip.frames)


class Server:
    def __init__(self, routes: list[tuple[str, Clip]]) -> None:
        self.routes = routes
        self.playing: dict[int, list[Client]] = {clip.fps: [] for _, clip in routes}  # by frame rate

    def clip_for(self, url: str) -> Clip | None:
        path = url.split("://", 1)[-1].partition("/")[2].split("?", 1)[0].rstrip("/")
        if path.endswith("/track0"):
            path = path[: -len("/track0")]
        for suffix, clip in self.routes:
            if path.endswith(suffix):
                return clip
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client: Client | None = None
        session = f"{random.getrandbits(48):012x}"
        transport = writer.transport
        assert isinstance(transport, asyncio.WriteTransport)
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":  # interleaved data from the client (RTCP receiver reports)
                    head = await reader.readexactly(3)
                    await reader.readexactly(struct.unpack(">H", head[1:])[0])
                    continue
                head = first + await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, url, _ = [*lines[0].split(" "), "", ""][:3]
                fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                if int(fields.get("content-length", "0")):
                    await reader.readexactly(int(fields["content-length"]))
                cseq = fields.get("cseq", "0")
                clip = self.clip_for(url)
                status, extra, body = "200 OK", [], ""
                if clip is None:
                    status = "404 Not Found"
                elif method == "OPTIONS":
                    extra.append("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
                elif method == "DESCRIBE":
                    body = clip.sdp()
                    extra += [f"Content-Base: {url.rstrip('/')}/", "Content-Type: application/sdp"]
                elif method == "SETUP":
                    asked = fields.get("transport", "")
                    if "TCP" not in asked.upper():
                        status = "461 Unsupported Transport"
                    else:
                        extra += ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1", f"Session: {session};timeout=60"]
                elif method == "PLAY":
                    extra += [f"Session: {session}", "Range: npt=0.000-"]
                elif method == "GET_PARAMETER":
                    extra.append(f"Session: {session}")
                elif method == "TEARDOWN":
                    writer.write(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n".encode())
                    return
                else:
                    status = "405 Method Not Allowed"
                reply = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", *extra]
                if body:
                    reply.append(f"Content-Length: {len(body)}")
                writer.write(("\r\n".join(reply) + "\r\n\r\n" + body).encode())
                if method == "PLAY" and clip is not None and client is None:
                    client = Client(clip, transport, random.choice(clip.keyframes))
                    self.playing[clip.fps].append(client)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            if client is not None:
                self.playing[client.clip.fps].remove(client)
            writer.close()

    async def pace(self, fps: int) -> None:
        """One clock for every client of a frame rate: a frame each 1/fps, late ticks caught up."""
        loop = asyncio.get_running_loop()
        period, ticks = 1.0 / fps, 90000 // fps
        due = loop.time()
        while True:
            due += period
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                due = loop.time()  # far behind (the box was stopped): do not send a burst
            for client in list(self.playing[fps]):
                client.send(ticks)


async def serve(port: int, routes: list[tuple[str, Clip]]) -> None:
    server = Server(routes)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=1024)
    print(f"READY {port}", flush=True)
    async with listener:
        await asyncio.gather(*(server.pace(fps) for fps in server.playing))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument(
        "--route", action="append", required=True, help="SUFFIX=CLIP[@FPS]: paths ending so get the clip (15 fps)"
    )
    args = ap.parse_args()
    clips: dict[str, Clip] = {}
    routes = []
    for spec in args.route:
        suffix, _, where = spec.partition("=")
        path, _, fps = where.partition("@")
        if where not in clips:
            clips[where] = Clip.load(Path(path), int(fps or 15))
        routes.append((suffix, clips[where]))
    try:
        asyncio.run(serve(args.port, routes))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
