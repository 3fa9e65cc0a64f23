"""The validated configuration tree of one ward agent.

Every field has a default, limits and a description; unknown keys are
rejected. Secrets are :class:`pydantic.SecretStr` so that no repr, log or
error ever shows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from agent.stream.substream import derive_substream
from common.config import Listen, split_listen
from common.config import Strict as _Strict
from common.i18n import _
from common.mqtt import MqttConfig

ID_PATTERN = r"^[a-z0-9_-]+$"
Id = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=64)]

URL_SCHEMES = ("rtsp", "rtsps", "file")


class OutboxConfig(_Strict):
    """The durable outbox in state_dir: every event, state change and snapshot until the broker acknowledges it."""

    max_bytes: int = Field(200 * 1024 * 1024, ge=1024 * 1024, description="outbox size cap (bytes)")
    max_age_s: float = Field(7 * 86400.0, ge=60, description="snapshots and detection events older than this expire")
    drain_per_s: float = Field(50.0, gt=0, le=10000, description="messages per second at most, when catching up")
    drain_kbps: float = Field(2000.0, gt=0, description="kbit/s at most, when catching up (a thin uplink)")


class HealthConfig(_Strict):
    offline_after_s: float = Field(5.0, gt=0, le=3600, description="no packet for this long -> offline")
    online_after_s: float = Field(2.0, ge=0, le=3600, description="packets flowing this long -> back online")
    heartbeat_s: float = Field(30.0, ge=1, le=86400, description="retained health re-published at least this often")
    stats_s: float = Field(60.0, ge=1, le=86400, description="agent/stats period")
    low_fps_ratio: float = Field(0.5, gt=0, lt=1, description="low_fps when delivered fps < ratio x nominal fps")
    low_fps_after_s: float = Field(10.0, ge=0, le=3600, description="low_fps must persist this long")
    fps_window_s: float = Field(5.0, ge=1, le=60, description="sliding window for delivered fps and bitrate")
    clear_after_s: float = Field(5.0, ge=0, le=3600, description="a problem must be gone this long to clear")
    uptime_window_s: float = Field(86400.0, ge=60, le=31 * 86400, description="window of the health uptime ratio")
    image_checks: bool = Field(True, description="judge the picture: black, frozen, blurred, covered, moved")
    image_check_interval_s: float = Field(2.0, ge=0.2, le=600, description="at most one decoded sample this often")
    black_after_s: float = Field(10.0, ge=0, le=86400, description="black must persist this long")
    frozen_after_s: float = Field(10.0, ge=0, le=86400, description="frozen must persist this long")
    blurred_after_s: float = Field(30.0, ge=0, le=86400, description="blurred must persist this long")
    covered_after_s: float = Field(5.0, ge=0, le=86400, description="covered must persist this long")
    moved_after_s: float = Field(10.0, ge=0, le=86400, description="moved must persist this long")
    moved_accept_after_s: float = Field(3600.0, ge=1, le=31 * 86400, description="a moved view becomes the reference")


class CameraHealthConfig(_Strict):
    """Per-camera overrides of the image-check settings in [health]."""

    image_checks: bool | None = None
    black_after_s: float | None = Field(None, ge=0, le=86400)
    frozen_after_s: float | None = Field(None, ge=0, le=86400)
    blurred_after_s: float | None = Field(None, ge=0, le=86400)
    covered_after_s: float | None = Field(None, ge=0, le=86400)
    moved_after_s: float | None = Field(None, ge=0, le=86400)
    moved_accept_after_s: float | None = Field(None, ge=1, le=31 * 86400)

    def merged(self, base: HealthConfig) -> HealthConfig:
        """``base`` with the overrides that are set."""
        return base.model_copy(update={k: v for k, v in self.model_dump().items() if v is not None})


Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]
PolygonConfig = Annotated[list[Point], Field(min_length=3)]

WATCHED_LABELS = ("person", "bicycle", "car", "motorbike", "bus", "truck")


class PlausibleConfig(_Strict):
    """What a box of one label must look like to count as a sighting (boxes of a small model that are not)."""

    min_height: float = Field(0.0, ge=0, le=1, description="its height as a share of the picture's, at least")
    min_aspect: float = Field(0.0, ge=0, le=100, description="its height over its width (in the picture), at least")
    max_aspect: float = Field(100.0, gt=0, le=100, description="its height over its width, at most")

    @model_validator(mode="after")
    def _order(self) -> PlausibleConfig:
        if self.max_aspect < self.min_aspect:
            raise ValueError(_("max_aspect must be >= min_aspect"))
        return self


class DetectionConfig(_Strict):
    enabled: bool | None = Field(
        None, description="run detection; unset = on when the model's weights are found, off (logged) when not"
    )
    required: bool = Field(False, description="refuse to start when the detector cannot run (else health goes on)")
    model: Id = Field(
        "yolox_nano",
        description="model manifest name (models/<name>.toml): yolox_nano, or fastestdet (lighter, less precise)",
    )
    model_dir: Path | None = Field(
        None, description="directory with the weights (and optionally manifests); default: models/, ../shared/models"
    )
    threads: int = Field(1, ge=1, le=16, description="ONNX Runtime intra-op threads of the one shared session")
    detect_fps: float = Field(2.0, gt=0, le=15, description="frames per second per camera looked at")
    labels: list[str] = Field(
        default_factory=lambda: list(WATCHED_LABELS), min_length=1, description="classes that make events"
    )
    min_score: float = Field(0.5, gt=0, lt=1, description="detections below this score are ignored")
    min_hits: int = Field(2, ge=1, le=100, description="sightings before a track becomes detection_started")
    lost_after_s: float = Field(3.0, gt=0, le=3600, description="a track not seen this long ends (detection_ended)")
    motion_min_area: float = Field(
        0.002, ge=0, le=1, description="share of the unmasked picture that must change to run the detector"
    )
    motion_crops: int = Field(
        2,
        ge=0,
        le=8,
        description="per frame, windows of the model's input size over small moving things looked at closer (0: off)",
    )
    queue_max: int = Field(
        32,
        ge=1,
        le=1000,
        description="cameras whose newest frame may wait for the detector (one each); beyond, the longest-waiting "
        "is dropped",
    )
    max_cores: float = Field(
        0.5,
        ge=0,
        le=64,
        description="CPU the detector may use, in cores (averaged over seconds; 0: no limit). Beyond it frames "
        "wait and late ones are dropped (counted, status overloaded): the ward PC keeps room for its other work",
    )
    substream: Literal["auto", "off"] = Field(
        "auto",
        description="without detect_url, read the substream of cameras whose URL scheme is known (Hikvision, "
        "Dahua, Uniview); off: the main stream",
    )
    keyframes_above: int = Field(
        720,
        ge=0,
        le=10000,
        description="detection on a picture taller than this (a main stream) decodes keyframes only; 0: never",
    )
    max_events_per_min: int = Field(
        20, ge=1, le=6000, description="per camera: detection_started events beyond this are suppressed (counted)"
    )
    plausible: dict[str, PlausibleConfig] = Field(
        default_factory=dict,
        description="per label, what its boxes must look like (replaces that label's default rule: a person is "
        "at least 3 % of the picture high and 0.8-6 times taller than wide)",
    )

    @model_validator(mode="after")
    def _plausible_labels(self) -> DetectionConfig:
        unknown = [label for label in self.plausible if label not in self.labels]
        if unknown:
            raise ValueError(
                _("plausible: {names} not in labels {labels}").format(
                    names=", ".join(map(repr, unknown)), labels=self.labels
                )
            )
        return self


class StreamConfig(_Strict):
    transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport")
    open_timeout_s: float = Field(5.0, gt=0, le=120, description="connect + RTSP handshake timeout")
    read_timeout_s: float = Field(2.0, gt=0, le=120, description="a read waiting longer gives up (FFmpeg takes ~2x)")
    backoff_initial_s: float = Field(1.0, gt=0, le=600, description="first reconnect delay")
    backoff_max_s: float = Field(30.0, gt=0, le=3600, description="reconnect delay cap")
    processes: int | None = Field(
        None,
        ge=1,
        le=64,
        description="reader processes (default: one per 60 streams, at most two per core)",
    )

    @model_validator(mode="after")
    def _backoff(self) -> StreamConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(_("backoff_max_s must be >= backoff_initial_s"))
        return self


def check_url(value: str) -> str:
    if any(c.isspace() for c in value):
        raise ValueError(_("must not contain spaces"))
    parts = urlsplit(value)
    if parts.scheme not in URL_SCHEMES:
        got = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise ValueError(_("must start with rtsp:// (or rtsps://, file://), got {got}").format(got=got))
    if parts.scheme == "file":
        if not parts.path:
            raise ValueError(_("file:// URL has no path"))
        return value
    if not parts.hostname:
        raise ValueError(_("has no host (expected rtsp://[user:password@]host[:port]/path)"))
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(_("has an invalid port")) from None
    return value


class CameraConfig(_Strict):
    id: Id = Field(description="camera id, [a-z0-9_-]+, unique in the ward")
    name: str = Field("", max_length=200, description="free text shown to operators")
    url: str = Field(description="main stream URL (rtsp://...)")
    detect_url: str | None = Field(None, description="substream URL used by detection")
    enabled: bool = Field(True, description="watch this camera")
    username: SecretStr | None = Field(None, description="overrides the user in url")
    password: SecretStr | None = Field(None, description="overrides the password in url; ${ENV} or password_file")
    offline_after_s: float | None = Field(None, gt=0, le=3600, description="per-camera override")
    transport: Literal["tcp", "udp"] | None = Field(None, description="per-camera RTSP transport override")
    health: CameraHealthConfig | None = Field(None, description="per-camera image-check overrides")
    masks: list[PolygonConfig] = Field(
        default_factory=list,
        description="polygons [[x, y], ...] in 0..1 left out of image checks, motion and detection (clock, sky)",
    )
    detection: bool = Field(True, description="run detection on this camera (when [detection] is on)")
    zones: dict[Id, PolygonConfig] = Field(
        default_factory=dict, description="named polygons; events name the zones an object stands in"
    )

    @field_validator("url", "detect_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @model_validator(mode="after")
    def _creds(self) -> CameraConfig:
        if self.password is not None and self.username is None and not urlsplit(self.url).username:
            raise ValueError(_("password is set but there is no username (in url or username)"))
        return self

    def _with_credentials(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme == "file" or (self.username is None and self.password is None):
            return url
        user = quote(self.username.get_secret_value(), safe="") if self.username else (parts.username or "")
        pw = quote(self.password.get_secret_value(), safe="") if self.password else (parts.password or "")
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
        netloc = f"{user}:{pw}@{host}" if pw else f"{user}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    @property
    def stream_url(self) -> str:
        """The main stream URL with credentials applied (a secret: redact before showing)."""
        return self._with_credentials(self.url)

    @property
    def detection_url(self) -> str:
        return self._with_credentials(self.detect_url or self.url)

    def detection_source(self, substream: str = "auto") -> tuple[str, str]:
        """``(URL, what it is)`` detection reads: detect_url, a derived substream, or the main stream."""
        if self.detect_url:
            return self._with_credentials(self.detect_url), "detect_url"
        derived = derive_substream(self.url) if substream == "auto" else None
        if derived is not None:
            return self._with_credentials(derived[0]), f"substream ({derived[1]})"
        return self.stream_url, "main stream"


class MetricsConfig(_Strict):
    listen: Listen | None = Field(
        None,
        description="HOST:PORT for /metrics (Prometheus), /healthz and /readyz; off when unset. Keep it on "
        "127.0.0.1 unless a firewall guards the port: the figures name the ward's cameras",
    )

    @property
    def address(self) -> tuple[str, int] | None:
        return None if self.listen is None else split_listen(self.listen)


class AgentConfig(_Strict):
    ward: Id = Field(description="ward id, [a-z0-9_-]+")
    state_dir: Path = Field(Path("/var/lib/camwatch"), description="the agent's own files (baselines, outbox)")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="log verbosity")
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    cameras: list[CameraConfig] = Field(default_factory=list, max_length=2000, description="the ward's cameras")

    @field_validator("cameras")
    @classmethod
    def _unique(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        seen: dict[str, int] = {}
        dups = []
        for i, cam in enumerate(cameras):
            if cam.id in seen:
                again = _("duplicate camera id {id!r} (also cameras[{other}])").format(id=cam.id, other=seen[cam.id])
                dups.append(f"cameras[{i}].id: {again}")
            seen.setdefault(cam.id, i)
        if dups:
            raise ValueError("; ".join(dups))
        return cameras

    @property
    def enabled_cameras(self) -> list[CameraConfig]:
        return [c for c in self.cameras if c.enabled]
