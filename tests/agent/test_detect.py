"""Detector: decoders on synthetic tensors for each layout; the real FastestDet model on the shared test images."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import SHARED

from agent.detect.decoders import decode_fastestdet, decode_yolov8, decode_yolox, nms
from agent.detect.detector import MANIFEST_DIR, OnnxDetector, load_manifest
from agent.errors import DetectorError

MODELS = SHARED / "models"


def test_fastestdet_decoder_places_a_box() -> None:
    out = np.zeros((1, 85, 22, 22), np.float32)
    out[0, 5:, :, :] = 1 / 80
    # One confident person whose centre is in cell (x=5, y=10), offset 0, size 0.2 x 0.4.
    out[0, 0, 10, 5] = 0.95
    out[0, 5:, 10, 5] = 0.0
    out[0, 5, 10, 5] = 0.9
    out[0, 3, 10, 5] = np.log(0.2 / 0.8)  # sigmoid -> 0.2
    out[0, 4, 10, 5] = np.log(0.4 / 0.6)  # sigmoid -> 0.4
    det = decode_fastestdet(out, min_score=0.5)
    assert len(det) == 1 and det.classes[0] == 0
    cx, cy = 5 / 22, 10 / 22
    np.testing.assert_allclose(det.boxes[0], [cx - 0.1, cy - 0.2, cx + 0.1, cy + 0.2], atol=1e-5)
    assert det.scores[0] == pytest.approx(0.95**0.6 * 0.9**0.4, rel=1e-5)
    assert len(decode_fastestdet(np.zeros((1, 85, 22, 22), np.float32), 0.5)) == 0
    with pytest.raises(ValueError):
        decode_fastestdet(np.zeros((1, 85, 22), np.float32))


def test_yolov8_decoder() -> None:
    out = np.zeros((1, 4 + 80, 3), np.float32)
    out[0, :4, 0] = [100, 100, 40, 80]  # cx, cy, w, h in input pixels (640 x 640)
    out[0, 4 + 2, 0] = 0.8  # a car
    out[0, :4, 1] = [102, 101, 40, 80]  # the same car again, lower score: suppressed
    out[0, 4 + 2, 1] = 0.7
    out[0, :4, 2] = [500, 300, 20, 20]
    out[0, 4 + 0, 2] = 0.3  # below min_score
    det = decode_yolov8(out, (640, 640), min_score=0.5)
    assert len(det) == 1 and det.classes[0] == 2
    np.testing.assert_allclose(det.boxes[0], [80 / 640, 60 / 640, 120 / 640, 140 / 640], atol=1e-6)


def test_yolox_decoder() -> None:
    size = (64, 64)
    n = sum((64 // s) ** 2 for s in (8, 16, 32))
    out = np.zeros((1, n, 5 + 80), np.float32)
    out[0, :, 2:4] = -10  # tiny boxes everywhere
    # Anchor 9 of stride 8 is grid (x=1, y=1): centre (1+0.5)*8 = 12, size exp(log 16) * 8 = ... choose 2 -> 16 px
    out[0, 9, :4] = [0.5, 0.5, np.log(2.0), np.log(2.0)]
    out[0, 9, 4] = 0.9
    out[0, 9, 5] = 0.9
    det = decode_yolox(out, size, min_score=0.5)
    assert len(det) == 1 and det.classes[0] == 0
    np.testing.assert_allclose(det.boxes[0], [4 / 64, 4 / 64, 20 / 64, 20 / 64], atol=1e-6)
    with pytest.raises(ValueError, match="anchors"):
        decode_yolox(out[:, :10], size)


def test_nms_keeps_the_best_per_class() -> None:
    boxes = np.array([[0, 0, 0.5, 0.5], [0.01, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]], np.float32)
    det = nms(boxes, np.array([0.6, 0.9, 0.8], np.float32), np.array([0, 0, 1], np.int64))
    assert list(det.scores) == pytest.approx([0.9, 0.8])


@pytest.fixture(scope="module")
def detector() -> OnnxDetector:
    return OnnxDetector(load_manifest(MANIFEST_DIR / "fastestdet.toml"), MODELS, min_score=0.5)


def image(name: str) -> np.ndarray:
    img = cv2.imread(str(SHARED / "testdata" / name))
    assert img is not None
    return img


def test_astronaut_is_a_person(detector: OnnxDetector) -> None:
    det = detector.detect(image("astronaut.png"))
    people = [i for i in range(len(det)) if detector.classes[det.classes[i]] == "person"]
    assert people and det.scores[people[0]] >= 0.7
    x1, y1, x2, y2 = det.boxes[people[0]]
    assert x1 < 0.5 < x2 and y1 < 0.5 < y2  # the astronaut fills the middle of the portrait


@pytest.mark.parametrize("name", ["chelsea.png", "coffee.png"])
def test_no_person_where_there_is_none(detector: OnnxDetector, name: str) -> None:
    det = detector.detect(image(name))
    assert all(detector.classes[c] != "person" for c in det.classes)


def test_startup_errors_name_the_file(tmp_path: Path) -> None:
    manifest = load_manifest(MANIFEST_DIR / "fastestdet.toml")
    with pytest.raises(DetectorError, match=r"fastestdet.onnx not found"):
        OnnxDetector(manifest, tmp_path)
    bad = tmp_path / "fastestdet.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match=r"sha256 .* does not match"):
        OnnxDetector(manifest, tmp_path)
    shutil.copy(MODELS / "fastestdet.onnx", bad)
    shutil.copy(MODELS / "coco.names", tmp_path / "coco.names")
    from dataclasses import replace

    with pytest.raises(DetectorError, match="the manifest expects"):
        OnnxDetector(replace(manifest, width=320, height=320), tmp_path)
    with pytest.raises(DetectorError, match="unknown layout"):
        (tmp_path / "m.toml").write_text(
            (MANIFEST_DIR / "fastestdet.toml").read_text().replace('"fastestdet"\ninput', '"ssd"\ninput')
        )
        load_manifest(tmp_path / "m.toml")


def test_yolox_nano_by_its_manifest_letterboxed_on_real_photos() -> None:
    """YOLOX-nano's own preprocessing (aspect kept, top-left on a 114 canvas, raw 0-255): boxes map back."""
    yolox = OnnxDetector(load_manifest(MANIFEST_DIR / "yolox_nano.toml"), MODELS, min_score=0.5)
    assert yolox.manifest.resize == "letterbox" and (yolox.manifest.width, yolox.manifest.height) == (416, 320)
    det = yolox.detect(image("astronaut.png"))
    people = [i for i in range(len(det)) if yolox.classes[det.classes[i]] == "person"]
    assert len(people) == 1 and det.scores[people[0]] >= 0.9  # the shared README: person 0.93
    x1, y1, x2, y2 = det.boxes[people[0]]
    assert x1 < 0.1 and y1 < 0.1 and 0.6 < x2 < 0.85 and y2 > 0.9  # in the portrait's own coordinates
    cup = yolox.detect(image("coffee.png"))
    assert "cup" in [yolox.classes[c] for c in cup.classes] and "person" not in [yolox.classes[c] for c in cup.classes]
    # A wide frame: the same photo beside a grey half keeps its box on the photo's side.
    wide = np.concatenate([image("astronaut.png"), np.full((512, 512, 3), 128, np.uint8)], axis=1)
    det = yolox.detect(wide)
    (p,) = [i for i in range(len(det)) if yolox.classes[det.classes[i]] == "person"]
    assert det.boxes[p][2] < 0.45
