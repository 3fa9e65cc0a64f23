"""Liveness that does not depend on Python being free to run: a starved reader is not a silent camera.

Real readers on the real RTSP server; the agent (subprocess) against a real Mosquitto with its reader
process frozen (SIGSTOP: the CPU taken away entirely) and killed.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import AgentProcess, Collector, child_pids, wait_until, write_config

from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer
from agent.stream.liveness import waiting_for_network
from agent.stream.reader import CameraReader

pytestmark = pytest.mark.integration


@pytest.mark.skipif(waiting_for_network(os.getpid()) is None, reason="needs /proc/<pid>/task/<tid>/syscall")
def test_the_kernel_tells_a_reader_waiting_for_its_camera_from_one_waiting_to_run(
    rtsp_factory: Callable[..., RtspServer],
) -> None:
    server = rtsp_factory({"live": "video:320x240@25,gop=25"})
    reader = CameraReader("t", server.url("live"), read_timeout_s=30.0)  # the read stays blocked while paused
    reader.start()
    try:
        assert wait_until(lambda: reader.snapshot().packets > 20, 15)
        # The camera goes silent: the reader sleeps in the kernel, waiting for data.
        server.pause()
        time.sleep(1.5)
        looks = []
        for _ in range(5):  # FFmpeg polls in 100 ms slices: a look may fall between two
            looks.append(reader.snapshot())
            time.sleep(0.05)
        assert all(s.connected for s in looks), looks[-1]
        assert sum(not s.behind for s in looks) >= 4, looks
        server.resume()
        assert wait_until(
            lambda: (
                (s := reader.snapshot()).last_packet is not None
                and s.as_of is not None
                and s.as_of - s.last_packet < 0.5
            ),
            10,
        )
        # Packets arrive but the reader cannot run Python (held up on a lock, as on a busy interpreter).
        with reader.stats._lock:
            time.sleep(1.2)
            starved = waiting_for_network(reader._native_id)
        assert starved is False
    finally:
        server.resume()
        reader.stop()
        reader.join(5)


def reader_processes(agent_pid: int) -> list[int]:
    found = []
    for pid in child_pids(agent_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"spawn_main" in f.read():
                    found.append(pid)
        except OSError:
            continue
    return found


def test_a_frozen_reader_process_is_no_false_stall_and_is_said(
    workdir: Path,
    mosquitto: Mosquitto,
    rtsp_factory: Callable[..., RtspServer],
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    # A mount per camera: GStreamer's RTSP server can abort (gst_rtsp_media_get_rates) when all the clients
    # of one shared media drop at once and new ones arrive, as when a reader process is killed.
    server = rtsp_factory({f"m{i}": "video:320x240@25,gop=25" for i in range(3)})
    cams = [{"id": f"c{i}", "url": server.url(f"m{i}")} for i in range(3)]
    col = collector_factory(mosquitto.port, prefix)
    cfg = write_config(workdir / "ward.toml", "w1", mosquitto.port, prefix, cams, offline_after_s=2)
    agent = agent_factory(cfg)
    for cam in cams:
        assert col.wait_for(f"w1/{cam['id']}/health", lambda p: p["state"] == "online", 20), (
            cam,
            col.of(f"w1/{cam['id']}/health"),
            agent.log_text()[-3000:],
        )
    assert agent.proc is not None
    workers = reader_processes(agent.proc.pid)
    assert len(workers) == 1, workers

    # Frozen for 3x offline_after_s while the camera keeps sending: packets wait in the socket.
    os.kill(workers[0], signal.SIGSTOP)
    time.sleep(6.0)
    os.kill(workers[0], signal.SIGCONT)
    said = col.wait_for("w1/agent/status", lambda p: "overloaded" in p["problems"], 10)
    assert said, col.last("w1/agent/status")
    assert set(said["overload"]) == {"image_samples_shed", "detection_frames_shed", "detection_frames_dropped"}
    time.sleep(2.0)
    for cam in cams:
        states = [p["state"] for p in col.of(f"w1/{cam['id']}/health")]
        assert "offline" not in states, (cam, states, col.of(f"w1/{cam['id']}/health"), agent.log_text()[-3000:])
    assert not [e for e in col.of("w1/c0/events") if e.get("to") == "offline"]

    # Killed: it is started again and its cameras are read again (a reader process is not a camera).
    os.kill(workers[0], signal.SIGKILL)
    assert agent.proc is not None
    pid = agent.proc.pid
    assert wait_until(lambda: (w := reader_processes(pid)) and w != workers, 15)
    mark = time.time()
    assert wait_until(
        lambda: all((p := col.last(f"w1/{c['id']}/health")) is not None and p["state"] == "online" for c in cams),
        20,
    )
    time.sleep(1.0)
    assert "ended unexpectedly" in agent.log_text()
    for cam in cams:
        assert col.last(f"w1/{cam['id']}/health")["state"] == "online", (cam, mark)
