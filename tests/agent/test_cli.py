"""The camwatch command line, run as a user would run it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import CAM_PASSWORD, ROOT, camwatch

from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer, free_port

pytestmark = pytest.mark.integration


def test_check_config_ok() -> None:
    r = camwatch("check-config", str(ROOT / "config" / "ward.example.toml"))
    # The example uses ${ENV} secrets that are not set here: named, not crashed.
    assert r.returncode == 1
    assert "cameras[0].url: environment variable CAM01_PASS is not set" in r.stderr
    assert "Traceback" not in r.stderr


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    p = tmp_path / "ward.toml"
    p.write_text(
        'ward = "Phuong 1"\n[mqtt]\nhots = "x"\n[[cameras]]\nid = "a"\nurl = "http://h/x"\n'
        '[[cameras]]\nid = "a"\nurl = "rtsp://admin:Canary-7f3a9c@h/x"\n',
        encoding="utf-8",
    )
    r = camwatch("check-config", str(p))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert "4 problems" in lines[0]
    assert any(line.strip().startswith("ward:") for line in lines)
    assert any("mqtt.hots: unknown key" in line for line in lines)
    assert any("cameras[0].url: must start with rtsp://" in line for line in lines)
    assert any("cameras[1].id: duplicate camera id 'a'" in line for line in lines)
    assert CAM_PASSWORD not in r.stdout + r.stderr


def test_check_config_summary_line(tmp_path: Path) -> None:
    p = tmp_path / "ward.toml"
    p.write_text('ward = "p1"\n[[cameras]]\nid = "a"\nurl = "rtsp://10.0.0.1/x"\n', encoding="utf-8")
    r = camwatch("check-config", str(p))
    assert r.returncode == 0, r.stderr
    summary = f"{p}: OK: ward p1, 1 camera (1 enabled), broker 127.0.0.1:1883; detection on: model yolox_nano"
    assert r.stdout.startswith(summary), r.stdout  # the model is found in ../shared/models beside the checkout


def test_check_config_says_what_detection_reads_and_costs_per_camera(tmp_path: Path) -> None:
    p = tmp_path / "ward.toml"
    p.write_text(
        'ward = "p1"\n[detection]\nenabled = true\n'
        '[[cameras]]\nid = "gate"\nurl = "rtsp://admin:Pw-Canary-5@10.0.0.7/Streaming/Channels/101"\n'
        '[[cameras]]\nid = "odd"\nurl = "rtsp://10.0.0.9/live"\n',
        encoding="utf-8",
    )
    r = camwatch("check-config", str(p))
    assert r.returncode == 0, r.stderr
    assert "camera gate: detection reads the substream (Hikvision" in r.stdout
    assert "rtsp://admin:***@10.0.0.7/Streaming/Channels/102" in r.stdout
    assert "camera odd: detection reads the main stream" in r.stdout and "keyframes only" in r.stdout
    assert "Pw-Canary-5" not in r.stdout + r.stderr
    # What the one detector can take on this machine within its CPU budget, timed here.
    m = re.search(r"detector: at most 0.5 cores \(detection.max_cores\); one inference takes about (\d+) ms", r.stdout)
    assert m is not None, r.stdout
    assert 1 <= int(m.group(1)) <= 500


def test_run_refuses_invalid_config(tmp_path: Path) -> None:
    p = tmp_path / "ward.toml"
    p.write_text('ward = "p1"\nbogus = 1\n', encoding="utf-8")
    r = camwatch("run", "--config", str(p))
    assert r.returncode == 1
    assert "bogus: unknown key" in r.stderr


def test_probe_healthy_camera(shared_rtsp: RtspServer, tmp_path: Path) -> None:
    snap = tmp_path / "snap.jpg"
    r = camwatch("probe", shared_rtsp.url("cam1"), "--json", "--seconds", "3", "--snapshot", str(snap))
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout)
    assert result["ok"] is True
    assert (result["codec"], result["width"], result["height"]) == ("h264", 320, 240)
    assert 20 <= result["fps"] <= 30
    assert result["nominal_fps"] == 25
    assert result["gop_s"] == pytest.approx(1.0, abs=0.05) and result["gop_frames"] == 25
    assert result["bitrate_kbps"] > 0
    assert 0 < result["time_to_first_frame_s"] < 10
    img = cv2.imread(str(snap))
    assert img is not None and img.shape == (240, 320, 3)
    assert result["url"] == f"rtsp://admin:***@127.0.0.1:{shared_rtsp.port}/cam1"
    assert CAM_PASSWORD not in r.stdout + r.stderr


@pytest.mark.parametrize(
    ("which", "reason", "hint"),
    [
        ("badpw", "auth_failed", "wrong user name or password"),
        ("badpath", "not_found", "wrong path"),
        ("closed", "unreachable", "host unreachable"),
        ("audio", "no_video", "no decodable video track"),
    ],
)
def test_probe_failures_say_why(shared_rtsp: RtspServer, which: str, reason: str, hint: str) -> None:
    url = {
        "badpw": shared_rtsp.url("cam1", password=CAM_PASSWORD + "x"),
        "badpath": shared_rtsp.url("nope"),
        "closed": f"rtsp://admin:{CAM_PASSWORD}@127.0.0.1:{free_port()}/x",
        "audio": shared_rtsp.url("audio"),
    }[which]
    r = camwatch("probe", url)
    assert r.returncode == 2
    assert f"FAILED     {reason}: " in r.stdout and hint in r.stdout
    assert CAM_PASSWORD not in r.stdout + r.stderr
    rj = camwatch("probe", url, "--json")
    assert json.loads(rj.stdout)["reason"] == reason


def test_probe_bad_url() -> None:
    r = camwatch("probe", "http://admin:Canary-7f3a9c@10.0.0.1/x")
    assert r.returncode == 2
    assert "must start with rtsp://" in r.stderr
    assert CAM_PASSWORD not in r.stdout + r.stderr


def test_status_table(mosquitto: Mosquitto, prefix: str) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    for cam, state, problems, fps in [("cam-01", "online", [], 25.0), ("cam-02", "offline", ["auth_failed"], None)]:
        payload = {
            "schema": "camwatch.health/1",
            "ward": "p1",
            "camera": cam,
            "ts": "2026-11-25T06:00:00.000Z",
            "state": state,
            "problems": problems,
            "since": "2026-11-25T05:00:00.000Z",
            "stream": {"codec": "h264", "width": 1, "height": 1, "fps": fps, "bitrate_kbps": 1, "last_packet_ts": None},
            "uptime": {"window_s": 1, "online_ratio": 1},
            "reconnects": 0,
        }
        client.publish(f"{prefix}/p1/{cam}/health", json.dumps(payload), qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    r = camwatch("status", "--broker", f"mqtt://127.0.0.1:{mosquitto.port}", "--prefix", prefix)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["WARD", "CAMERA", "STATE", "PROBLEMS", "SINCE", "FPS"]
    assert lines[1].split()[:3] == ["p1", "cam-02", "offline"]  # worst first
    assert "wrong user or password" in lines[1]  # the problem in words
    assert lines[2].split()[:3] == ["p1", "cam-01", "online"] and lines[2].split()[-1] == "25.0"
    assert "2 cameras: 1 offline, 1 online" in r.stdout


def test_status_broker_unreachable() -> None:
    r = camwatch("status", "--broker", f"mqtt://127.0.0.1:{free_port()}")
    assert r.returncode == 2
    assert "cannot connect to broker 127.0.0.1:" in r.stderr


def test_demo_runs_the_whole_path(rtsp_required: None) -> None:
    r = camwatch("demo", "--duration", "14", timeout=90)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = r.stdout
    final = out.split("final status:")[-1]
    status = out.split("final status:")[0].split("--- ")[-1]
    rows = {line.split()[1]: line for line in status.splitlines() if line.startswith("demo-ward")}
    assert "online" in rows["cam-01"] and "online" in rows["cam-02"] and "online" in rows["cam-03"]
    assert "wrong user or password" in rows["cam-04"]
    assert "unreachable" in rows["cam-05"]
    assert "wrong stream path" in rows["cam-06"]
    assert "no video" in rows["cam-07"]
    assert "camwatch demo: detection on" in out
    assert "cam-10: detection_started person" in out  # the walker, seen by the real model
    assert "agent of ward demo-ward: offline (stopped)" in final
    assert re.search(r"camwatch demo: center on http://127\.0\.0\.1:\d+/ \(user demo, password \S+\)", out)
    center = re.search(r"center: (\d+) cameras known \(([^)]*)\); (\d+) messages ingested", out)
    assert center and int(center.group(1)) == len(rows) and int(center.group(3)) > 20, final
    assert "offline" in center.group(2)  # what the center saw agrees: some cameras are down
    assert "camwatch demo: stopped" in out
    assert "Traceback" not in r.stderr


def test_entry_point_is_installed() -> None:
    r = subprocess.run(
        [Path(sys.executable).with_name("camwatch"), "--version"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0 and r.stdout.startswith("camwatch ")


def test_demo_without_gstreamer_falls_back_to_files() -> None:
    import os

    env = {**os.environ, "CAMWATCH_GST_PYTHON": "/bin/false"}
    r = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "demo", "--duration", "10"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        check=False,
        env=env,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "looping files" in r.stdout
    status = r.stdout.split("final status:")[0].split("--- ")[-1]
    rows = {line.split()[1]: line for line in status.splitlines() if line.startswith("demo-ward")}
    assert "online" in rows["cam-01"] and "online" in rows["cam-02"]
    assert "unreachable" in rows["cam-05"]
    assert "wrong stream path" in rows["cam-06"]
