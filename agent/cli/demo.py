"""``camwatch demo``: the whole path on one machine, with no outside services.

A broker (Mosquitto when installed, else an embedded Python one), simulated
cameras on a real local RTSP server (GStreamer, when installed; otherwise
looping files read by the same reader code), the real agent, a live status
table, and the center (ingest, pages and API on a local port, with a demo
account) when the broker is Mosquitto. Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from agent.cli.status import BrokerURL, RetainedView, render_table
from agent.config import parse_config
from agent.runtime import Agent
from agent.sim import scenes
from agent.sim.broker import EmbeddedBroker
from agent.sim.clips import synthetic_frame, write_au_clip, write_test_clip
from agent.sim.mosquitto import MOSQUITTO, Mosquitto
from agent.sim.rtsp import RtspServer, free_port, gst_available
from agent.sysinfo import settle_process
from common.i18n import SPEAKER, _
from common.notify import stop_on_signals
from common.words import word

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


class DemoCenter:
    """The center service and its pages, in-process, on the demo's broker; a throwaway SQLite store."""

    def __init__(self, broker_port: int, workdir: Path, web_port: int) -> None:
        from center.auth import hash_password
        from center.config import parse_center_config
        from center.service import CenterIngest
        from center.store import Store
        from center.web import WebServer, build_app

        self.password = secrets.token_urlsafe(9)
        config = parse_center_config(
            {
                "language": "vi",
                "mqtt": {"port": broker_port},
                "store": {"url": f"sqlite:///{workdir}/center.db"},
                "web": {"listen": f"127.0.0.1:{web_port}"},
                "uptime": {"unknown_after_s": 30},
            }
        )
        self.store = Store(config.store.url)
        self.store.put_user("demo", "admin", hash_password(self.password), time.time())
        self.ingest = CenterIngest(config, self.store)
        self.ingest.start()
        self.web = WebServer(build_app(config, self.store, self.ingest), "127.0.0.1", web_port).start()
        self.url = f"http://127.0.0.1:{web_port}/"

    def summary(self) -> str:
        states = self.ingest.fleet.states(time.time())
        counts: dict[str, int] = {}
        for iv in states.values():
            counts[iv.state] = counts.get(iv.state, 0) + 1
        text = ", ".join(f"{n} {word(state, SPEAKER.lang)}" for state, n in sorted(counts.items()))
        return _("center: {n} cameras known ({states}); {messages} messages ingested").format(
            n=len(states), states=text, messages=self.ingest.ingest.messages
        )

    def stop(self) -> None:
        self.web.stop()
        self.ingest.stop()
        self.store.close()


def _web_port() -> int:
    """8080 when it is free, else any free port."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 8080))
        except OSError:
            return free_port()
    return 8080


# Long: The demo's start-up and tear-down in the order they happen (broker, cameras, center, agent, view).
def cmd_demo(duration: float = 0, port: int = 0) -> int:  # noqa: C901, PLR0915
    settle_process()  # the demo runs an agent in this process
    stop = threading.Event()

    stop_on_signals(stop.set)
    servers: list[RtspServer] = []
    flappers: list[Flapper] = []
    broker: EmbeddedBroker | Mosquitto | None = None
    center: DemoCenter | None = None
    agent: Agent | None = None
    agent_thread: threading.Thread | None = None
    view: RetainedView | None = None
    with tempfile.TemporaryDirectory(prefix="camwatch-demo-") as tmp:
        workdir = Path(tmp)
        try:
            if Path(MOSQUITTO).exists():
                broker = Mosquitto(workdir, port=port or None).start()
                print(_("camwatch demo: Mosquitto on 127.0.0.1:{port}").format(port=broker.port), flush=True)
            else:
                broker = EmbeddedBroker(port or free_port())
                broker.start()
                print(_("camwatch demo: embedded MQTT broker on 127.0.0.1:{port}").format(port=broker.port), flush=True)
            if gst_available():
                cams, source = _cameras_with_gst(servers, flappers, workdir)
            else:
                cams, source = _cameras_from_files(workdir)
            print(
                _("camwatch demo: {n} simulated cameras from {source}").format(n=len(cams), source=source), flush=True
            )
            config = parse_config(
                {
                    "ward": WARD,
                    "state_dir": str(workdir / "state"),
                    "log_level": "warning",
                    # the embedded broker (no Mosquitto here) speaks MQTT 3.1.1 only
                    "mqtt": {
                        "host": "127.0.0.1",
                        "port": broker.port,
                        "protocol": "5" if isinstance(broker, Mosquitto) else "3.1.1",
                    },
                    "health": {"offline_after_s": 5, "online_after_s": 2, "heartbeat_s": 10, "stats_s": 10},
                    "cameras": cams,
                }
            )
            if isinstance(broker, Mosquitto):
                try:
                    center = DemoCenter(broker.port, workdir, _web_port())
                    print(
                        _("camwatch demo: center on {url} (user demo, password {password})").format(
                            url=center.url, password=center.password
                        ),
                        flush=True,
                    )
                except (ImportError, RuntimeError) as exc:
                    print(_("camwatch demo: center not started ({why})").format(why=exc), flush=True)
            else:
                print(_("camwatch demo: center not started (it needs Mosquitto: MQTT v5 sessions)"), flush=True)
            agent = Agent(config)
            if agent.detection is not None:
                print(
                    _("camwatch demo: detection on (model {model}, 2 fps per camera)").format(
                        model=config.detection.model
                    ),
                    flush=True,
                )
            else:
                print(_("camwatch demo: detection off (model not found beside the checkout)"), flush=True)
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
                where = f"\ncenter pages: {center.url} (user demo, password {center.password})" if center else ""
                text = f"{screen}\n\nlatest events:\n{recent}\n{where}\n(Ctrl-C stops the demo)"
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
            if center is not None:
                print(center.summary(), flush=True)  # before the agent's goodbye makes its cameras unknown
            for flapper in flappers:
                flapper.stop()
            if agent is not None:
                agent.stop()
            if agent_thread is not None:
                agent_thread.join(10.0)
            if view is not None:
                health, agents = view.rows()
                print("\n" + _("final status:") + "\n" + render_table(health, agents), flush=True)
                view.stop()
            if center is not None:
                center.stop()
            for server in servers:
                server.kill()
            if broker is not None:
                broker.stop()
            print(_("camwatch demo: stopped"), flush=True)


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
