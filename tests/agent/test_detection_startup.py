"""A model that is missing, corrupt or wrong: a clear error naming the file; health goes on unless required."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from support import SHARED_MODELS, AgentProcess, Collector, camwatch, write_config

from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer

pytestmark = pytest.mark.integration


@pytest.fixture
def corrupt_models(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(SHARED_MODELS / "coco.names", d)
    data = bytearray((SHARED_MODELS / "yolox_nano_dynamic.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the sha256 must catch it
    (d / "yolox_nano_dynamic.onnx").write_bytes(bytes(data))
    return d


def test_required_detection_with_a_corrupt_model_refuses_to_start(tmp_path: Path, corrupt_models: Path) -> None:
    cfg = write_config(
        tmp_path / "ward.toml",
        "bad",
        1883,
        "cw",
        [{"id": "a", "url": "rtsp://127.0.0.1:9/x"}],
        detection={"required": True, "model_dir": str(corrupt_models)},
    )
    r = camwatch("run", "--config", str(cfg), timeout=30)
    assert r.returncode == 1
    assert f"{corrupt_models / 'yolox_nano_dynamic.onnx'}: sha256" in r.stderr and "does not match" in r.stderr
    assert "Traceback" not in r.stderr
    check = camwatch("check-config", str(cfg))
    assert check.returncode == 1 and "yolox_nano_dynamic.onnx: sha256" in check.stderr


def test_check_config_names_a_missing_model_and_unknown_labels(tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    cam = [{"id": "a", "url": "rtsp://127.0.0.1:9/x"}]
    cfg = write_config(tmp_path / "w1.toml", "w", 1883, "cw", cam, detection={"enabled": True, "model_dir": str(empty)})
    r = camwatch("check-config", str(cfg))
    assert r.returncode == 1 and f"yolox_nano_dynamic.onnx not found in {empty}" in r.stderr
    assert "without detection" in r.stderr  # required = false: health would still run
    cfg = write_config(
        tmp_path / "w2.toml",
        "w",
        1883,
        "cw",
        cam,
        detection={"labels": ["person", "persn"], "model_dir": str(SHARED_MODELS)},
    )
    r = camwatch("check-config", str(cfg))
    assert r.returncode == 1 and "'persn' not among the classes of model yolox_nano" in r.stderr
    cfg = write_config(tmp_path / "w3.toml", "w", 1883, "cw", cam, detection={"model_dir": str(SHARED_MODELS)})
    r = camwatch("check-config", str(cfg))
    assert r.returncode == 0 and "detection on: model yolox_nano, 1 camera, 2 fps" in r.stdout


def test_health_goes_on_without_a_usable_model(
    workdir: Path,
    mosquitto: Mosquitto,
    corrupt_models: Path,
    rtsp_factory: Callable[..., RtspServer],
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    server = rtsp_factory()
    col = collector_factory(mosquitto.port, prefix)
    cfg = write_config(
        workdir / "ward.toml",
        "nod",
        mosquitto.port,
        prefix,
        [{"id": "a", "url": server.url("live")}],
        detection={"enabled": True, "model_dir": str(corrupt_models)},
    )
    agent = agent_factory(cfg)
    try:
        status = col.wait_for("/agent/status", lambda p: p["state"] == "online", 15)
        health = col.wait_for("/a/health", lambda p: p["state"] == "online", 15)
        stats = col.wait_for("/agent/stats", lambda p: True, 10)
    finally:
        agent.stop()
    assert status is not None and "detector_unavailable" in status["problems"]
    assert health is not None, agent.log_text()[-2000:]
    assert stats is not None and "sha256" in stats["detector"]["problem"]
    assert "detection off:" in agent.log_text() and "yolox_nano_dynamic.onnx: sha256" in agent.log_text()
    assert not col.schema_errors, col.schema_errors
