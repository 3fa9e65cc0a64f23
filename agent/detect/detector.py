"""The ONNX Runtime detector: a model manifest, checked weights, one session, one decoder per layout.

Never downloads anything: the weights must be on disk, with the sha256 the
manifest names. Every startup problem is a :class:`DetectorError` naming
the file.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from agent.detect.decoders import Detections, decode_fastestdet, decode_yolov8, decode_yolox
from agent.errors import DetectorError, ModelNotFound

Layout = Literal["fastestdet", "yolov8", "yolox"]
MANIFEST_DIR = Path(__file__).resolve().parents[2] / "models"
# Where weights are looked for when [detection] model_dir is not set: this
# checkout's models/ and the shared models/ beside it (never downloaded).
DEFAULT_MODEL_DIRS = (MANIFEST_DIR, MANIFEST_DIR.parent.parent / "shared" / "models")


@dataclass(frozen=True)
class Manifest:
    name: str
    file: str
    sha256: str
    layout: Layout
    input_name: str
    width: int
    height: int
    channels: Literal["bgr", "rgb"]
    scale: float
    classes_file: str
    licence: str = ""
    # "stretch": the frame resized to the input; "letterbox": scaled keeping its aspect ratio and pasted
    # at the top-left of an input-sized canvas filled with ``pad`` (YOLOX's own preprocessing)
    resize: Literal["stretch", "letterbox"] = "stretch"
    pad: int = 114


def load_manifest(path: Path) -> Manifest:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DetectorError(f"model manifest {path}: {exc}") from None
    try:
        inp = raw["input"]
        layout = raw["layout"]
        if layout not in ("fastestdet", "yolov8", "yolox"):
            raise DetectorError(f"model manifest {path}: unknown layout {layout!r} (fastestdet, yolov8, yolox)")
        return Manifest(
            name=str(raw["name"]),
            file=str(raw["file"]),
            sha256=str(raw["sha256"]).lower(),
            layout=layout,
            input_name=str(inp["name"]),
            width=int(inp["width"]),
            height=int(inp["height"]),
            channels="rgb" if inp.get("channels") == "rgb" else "bgr",
            scale=float(inp.get("scale", 255.0)),
            classes_file=str(raw["classes_file"]),
            licence=str(raw.get("licence", "")),
            resize=_resize_mode(path, inp.get("resize", "stretch")),
            pad=int(inp.get("pad", 114)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DetectorError(f"model manifest {path}: missing or bad key {exc}") from None


def _resize_mode(path: Path, value: object) -> Literal["stretch", "letterbox"]:
    if value == "stretch":
        return "stretch"
    if value == "letterbox":
        return "letterbox"
    raise DetectorError(f"model manifest {path}: input.resize must be stretch or letterbox, not {value!r}")


def find_model(name: str, model_dir: Path | None = None) -> tuple[Manifest, Path]:
    """The manifest ``<name>.toml`` and the directory holding its weights.

    With ``model_dir`` set, weights must be there (a manifest there wins over
    the built-in one); otherwise the default places are searched in order.
    """
    dirs = [model_dir] if model_dir is not None else list(DEFAULT_MODEL_DIRS)
    manifest_path = next(
        (d / f"{name}.toml" for d in (*dirs, MANIFEST_DIR) if (d / f"{name}.toml").is_file()),
        None,
    )
    if manifest_path is None:
        known = sorted(p.stem for p in MANIFEST_DIR.glob("*.toml"))
        raise ModelNotFound(
            f"model manifest {name}.toml not found in {', '.join(str(d) for d in dirs)}"
            + (f" (built-in: {', '.join(known)})" if known else "")
        )
    manifest = load_manifest(manifest_path)
    for d in dirs:
        if (d / manifest.file).is_file():
            return manifest, d
    raise ModelNotFound(
        f"model file {manifest.file} not found in {', '.join(str(d) for d in dirs)} "
        "(weights are never downloaded: copy them there, or set [detection] model_dir)"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxDetector:
    """One ONNX Runtime session (shared by all cameras; call :meth:`detect` from one thread)."""

    def __init__(self, manifest: Manifest, model_dir: Path, *, threads: int = 1, min_score: float = 0.5) -> None:
        import onnxruntime as ort

        self.manifest = manifest
        self.min_score = min_score
        weights = model_dir / manifest.file
        if not weights.is_file():
            raise ModelNotFound(
                f"model file {weights} not found (model {manifest.name!r}; weights are never downloaded)"
            )
        actual = sha256_of(weights)
        if actual != manifest.sha256:
            raise DetectorError(
                f"model file {weights}: sha256 {actual} does not match the manifest's {manifest.sha256}"
            )
        classes_path = model_dir / manifest.classes_file
        try:
            self.classes = [c.strip() for c in classes_path.read_text(encoding="utf-8").splitlines() if c.strip()]
        except OSError as exc:
            raise DetectorError(f"class names {classes_path}: {exc.strerror or exc}") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise DetectorError(f"model file {weights} cannot be loaded: {exc}") from None
        inputs = self.session.get_inputs()
        expected = [1, 3, manifest.height, manifest.width]
        # A symbolic dimension (a model that runs at any size, e.g. YOLOX's dynamic export) takes the manifest's.
        shape = [want if isinstance(got, str) else got for got, want in zip(inputs[0].shape, expected, strict=False)]
        if len(inputs) != 1 or inputs[0].name != manifest.input_name or shape != expected:
            found = [(i.name, i.shape) for i in inputs]
            raise DetectorError(
                f"model file {weights}: input {found}, the manifest expects {manifest.input_name} {expected}"
            )
        self._output_name = self.session.get_outputs()[0].name
        # Warm-up: the first run allocates; it also proves the output fits the decoder.
        try:
            self.detect(np.zeros((manifest.height, manifest.width, 3), np.uint8))
        except ValueError as exc:
            raise DetectorError(
                f"model file {weights}: unexpected output for layout {manifest.layout}: {exc}"
            ) from None

    @property
    def input_size(self) -> tuple[int, int]:
        return self.manifest.width, self.manifest.height

    def _fit(self, bgr: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], float, float]:
        """The frame at the input's size; and the share of the input's width and height it fills."""
        m = self.manifest
        if m.resize == "stretch":
            stretched = np.asarray(cv2.resize(bgr, (m.width, m.height), interpolation=cv2.INTER_LINEAR), np.uint8)
            return stretched, 1.0, 1.0
        h, w = bgr.shape[:2]
        r = min(m.height / h, m.width / w)
        nw, nh = max(1, round(w * r)), max(1, round(h * r))
        canvas = np.full((m.height, m.width, 3), m.pad, dtype=np.uint8)
        canvas[:nh, :nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
        return canvas, nw / m.width, nh / m.height

    def preprocess(self, bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return self._blob(self._fit(bgr)[0])

    def _blob(self, img: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        m = self.manifest
        pixels = cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if m.channels == "rgb" else img
        blob = np.asarray(pixels, dtype=np.float32).transpose(2, 0, 1)[np.newaxis] / np.float32(m.scale)
        return np.ascontiguousarray(blob, dtype=np.float32)

    def detect(self, bgr: npt.NDArray[np.uint8]) -> Detections:
        """Boxes normalised to ``bgr`` (whatever the manifest's resize: stretched or letterboxed)."""
        img, fx, fy = self._fit(bgr)
        out: Any = self.session.run([self._output_name], {self.manifest.input_name: self._blob(img)})[0]
        output = np.asarray(out, dtype=np.float32)
        m = self.manifest
        if m.layout == "fastestdet":
            found = decode_fastestdet(output, self.min_score)
        elif m.layout == "yolov8":
            found = decode_yolov8(output, (m.width, m.height), self.min_score)
        else:
            found = decode_yolox(output, (m.width, m.height), min_score=self.min_score)
        if (fx, fy) != (1.0, 1.0) and len(found):
            scale = np.array([fx, fy, fx, fy], np.float32)
            found = Detections(np.clip(found.boxes / scale, 0.0, 1.0), found.scores, found.classes)
        return found
