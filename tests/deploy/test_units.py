"""The shipped systemd units: hardened (systemd-analyze's own score), and the processes speak systemd's
notification protocol (ready, watchdog from their main loops, stopping). The agent also runs, with detection,
under the kernel's refusal of writable-executable memory, as MemoryDenyWriteExecute=yes imposes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import ROOT, SHARED_MODELS, Collector, write_config

from agent.sim import scenes
from agent.sim.clips import write_au_clip
from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer, free_port

pytestmark = pytest.mark.integration
UNITS = ("camwatch-agent.service", "camwatch-center.service")
MAX_EXPOSURE = 2.5


@pytest.mark.parametrize("unit", UNITS)
def test_the_unit_scores_at_most_2_5_in_systemd_analyze_security(unit: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine")
    done = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(ROOT / "deploy" / unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout
    text = (ROOT / "deploy" / unit).read_text()
    for line in ("Type=notify", "WatchdogSec=", "MemoryMax=", "CPUQuota=", "LoadCredential=", "User=camwatch"):
        assert line in text, line


@pytest.fixture
def notify_socket(workdir: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(workdir / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    yield path, s
    s.close()


def received(sock: socket.socket, until: Callable[[list[str]], bool], timeout: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(got):
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    return got


def _run(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "agent.cli.main", *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        )


@pytest.mark.parametrize("who", ["agent", "center"])
def test_ready_then_watchdog_pings_from_the_main_loop_then_stopping(
    who: str, workdir: Path, mosquitto: Mosquitto, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    if who == "agent":
        cam = [{"id": "c1", "url": f"rtsp://127.0.0.1:{free_port()}/x"}]
        config = write_config(workdir / "ward.toml", "w1", mosquitto.port, "camwatch", cam)
        args = ["run", "--config", str(config)]
    else:
        config = workdir / "center.toml"
        config.write_text(
            f'[mqtt]\nport = {mosquitto.port}\n[store]\nurl = "sqlite:///{workdir}/c.db"\n'
            f'[web]\nlisten = "127.0.0.1:{free_port()}"\n'
        )
        args = ["center", "--config", str(config)]
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1500000"}
    proc = _run(args, env, workdir / f"{who}.log")
    try:
        got = received(sock, lambda g: sum(m == "WATCHDOG=1" for m in g) >= 3, 30)
        assert got and got[0].startswith("READY=1"), (got, (workdir / f"{who}.log").read_text()[-2000:])
        assert sum(m == "WATCHDOG=1" for m in got) >= 3, got
        proc.send_signal(signal.SIGTERM)
        rest = received(sock, lambda g: "STOPPING=1" in g, 15)
        assert "STOPPING=1" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _mdwe_supported() -> bool:
    """Whether this kernel has PR_SET_MDWE (6.3+), tried in a child process (it cannot be undone)."""
    code = "import ctypes,sys; sys.exit(0 if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0 else 1)"
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_agent_with_detection_runs_where_writable_code_is_refused(
    workdir: Path,
    mosquitto: Mosquitto,
    rtsp_factory: Callable[..., RtspServer],
    collector_factory: Callable[..., Collector],
) -> None:
    """MemoryDenyWriteExecute=yes would kill an agent whose libraries (ONNX Runtime, FFmpeg, OpenCV, libffi)
    made writable code. PR_SET_MDWE is the kernel's same rule for one process and what it runs."""
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    walk = scenes.WalkThrough(fps=10, enter_at=1.0, cross_s=6.0, length_s=10.0)
    clip = write_au_clip(workdir / "walk.au", walk.frames(), fps=10, gop=20)
    server = rtsp_factory({"cam": f"clip:{clip},fps=10"})
    config = write_config(
        workdir / "ward.toml",
        "w1",
        mosquitto.port,
        "camwatch",
        [{"id": "cam", "url": server.url("cam")}],
        detection={"enabled": True, "required": True, "model_dir": str(SHARED_MODELS), "motion_min_area": 0.0},
    )
    col = collector_factory(mosquitto.port, "camwatch")
    wrapper = (
        "import ctypes, os, sys\n"
        "assert ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'agent.cli.main', 'run', '--config', sys.argv[1]])\n"
    )
    with open(workdir / "agent.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", wrapper, str(config)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        stats = col.wait_for(
            "w1/agent/stats",
            lambda s: (
                s["cameras"]["cam"]["state"] == "online"
                and (s["cameras"]["cam"].get("detection") or {}).get("inferences", 0) > 0
            ),
            40,
        )
        log = (workdir / "agent.log").read_text()
        assert stats, log[-3000:]
        assert stats["detector"]["problem"] is None
        assert proc.poll() is None, log[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert "Traceback" not in (workdir / "agent.log").read_text()
