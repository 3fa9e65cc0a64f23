"""The payloads of the MQTT contract, version 1, as typed, frozen models.

The agent builds its messages with them, the center validates every message
it receives with them, and the JSON Schemas in ``contract/schemas`` and the
AsyncAPI document are generated from them (``python -m contract.generate``;
a test fails when the committed files differ).

Fields come in four kinds, each spelled one way here:

- required: ``x: T``;
- required, may be null: ``x: T | None``;
- may be left out, may be null (older agents did not send it): ``x: T | None = None``;
- may be left out, never null: ``x: T | None = omitted()`` (the schema refuses a null; the model, a
  tolerant reader, takes one as left out).

:func:`to_wire` writes a model as the agent sends it: only what was set,
by the contract's names (``schema``, ``from``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic.config import JsonDict

from contract.vocab import (
    AGENT_SCHEMA,
    EVENT_SCHEMA,
    HEALTH_SCHEMA,
    STATS_SCHEMA,
    AgentState,
    CameraProblem,
    State,
)

TS_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
NAME_PATTERN: Final = r"^[a-z0-9_-]+$"

Ts = Annotated[str, Field(pattern=TS_PATTERN, description="RFC 3339, UTC, milliseconds")]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]  # a ward's or a camera's id, as in topics
Count = Annotated[int, Field(ge=0)]
Amount = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]


def _is_none(value: object) -> bool:
    return value is None


def _never_null(schema: dict[str, Any]) -> None:
    """The schema of a field that is left out rather than sent as null: the type without null or default."""
    kinds = [k for k in schema.pop("anyOf", []) if k != {"type": "null"}]
    schema.pop("default", None)
    if len(kinds) == 1:
        schema.update({k: v for k, v in kinds[0].items() if k not in schema})  # the field's own description wins
    elif kinds:
        schema["anyOf"] = kinds


def omitted(description: str | None = None) -> Any:
    """A field that may be left out of a payload but is never null."""
    return Field(None, exclude_if=_is_none, json_schema_extra=_never_null, description=description)


class Payload(BaseModel):
    """A contract payload: frozen, strictly typed (no "5" for 5), unknown fields ignored (a newer agent's)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", validate_by_name=True)


def to_wire(payload: Payload) -> dict[str, Any]:
    """The payload as the agent sends it: the fields it was given, under the contract's names."""
    return payload.model_dump(mode="json", by_alias=True, exclude_unset=True)


# -- camera health: {prefix}/{ward}/{camera}/health, retained --------------------------------------------------


class StreamFigures(Payload):
    codec: str | None
    width: Count | None
    height: Count | None
    fps: Amount | None = Field(description="delivered fps over the sliding window")
    nominal_fps: Amount | None = None
    bitrate_kbps: Amount | None
    gop_s: Amount | None = Field(None, description="keyframe interval in seconds")
    last_packet_ts: Ts | None


class UptimeFigures(Payload):
    window_s: Amount
    online_ratio: Share | None


class Health(Payload):
    """A camera's health: retained, published on every change and every ``heartbeat_s``."""

    model_config = ConfigDict(title="camwatch camera health (retained, on every change and every heartbeat_s)")

    schema_: Literal["camwatch.health/1"] = Field(alias="schema")
    ward: Name
    camera: Name
    name: str | None = omitted("the camera's display name from config")
    ts: Ts
    state: State
    problems: Annotated[list[CameraProblem], Field(json_schema_extra={"uniqueItems": True})]
    since: Ts = Field(description="when the camera entered this state")
    detail: str | None = omitted("plain-language detail of an offline reason")
    stream: StreamFigures
    uptime: UptimeFigures
    reconnects: Count


# -- camera events: {prefix}/{ward}/{camera}/events, QoS 1, not retained --------------------------------------


class EventBase(Payload):
    schema_: Literal["camwatch.event/1"] = Field(alias="schema")
    id: Annotated[str, Field(min_length=8)] = Field(description="unique: the center drops repeats by it")
    ward: Name
    camera: Name
    ts: Ts
    replayed: bool | None = omitted("sent again from the outbox after a restart")


class StateChanged(EventBase):
    """The camera went from one state to another; with ``since`` and ``from_since`` a chain of them is a
    complete account of the camera's states."""

    type: Literal["state_changed"]
    from_: State = Field(alias="from")
    to: State
    problems: list[str]
    since: Ts | None = omitted("when the new state (to) began")
    from_since: Ts | None = omitted("when the old state (from) began")
    from_problems: list[str] | None = omitted("the problems of the old state")
    problem: str | None = omitted()
    detail: str | None = omitted()


class ProblemChanged(EventBase):
    """A problem of a camera whose video flows began or ended."""

    type: Literal["problem_started", "problem_ended"]
    problem: str
    problems: list[str] = Field(description="every problem the camera has now")
    detail: str | None = omitted()
    reason: str | None = omitted("why a problem ended, e.g. accepted (a moved view became the reference)")


class Detection(EventBase):
    """A person or vehicle came into view (``detection_started``) or left it (``detection_ended``)."""

    type: Literal["detection_started", "detection_ended"]
    label: str
    score: Share
    box: Annotated[list[Share], Field(min_length=4, max_length=4)] = Field(
        description="normalised x1, y1, x2, y2 of the best sighting (the one on the snapshot)"
    )
    zones: list[str]
    track_id: int | str
    snapshot: str | None = Field(description="id of the event whose snapshot/{id} topic carries the JPEG, or null")
    first_seen: Ts | None = omitted("when the track was first seen")
    last_seen: Ts | None = omitted("when the track was last seen")
    hits: Annotated[int, Field(ge=1)] | None = omitted("sightings above min_score")
    started_id: str | None = omitted("detection_ended: id of its detection_started event")


Event: TypeAlias = Annotated[StateChanged | ProblemChanged | Detection, Field(discriminator="type")]
EVENT: Final[TypeAdapter[StateChanged | ProblemChanged | Detection]] = TypeAdapter(Event)


# -- the agent: {prefix}/{ward}/agent/status (retained; also the last will) and .../agent/stats (QoS 0) --------


class Refusal(Payload):
    topic: str
    reason: str = Field(description="the PUBACK's reason")


class Overload(Payload):
    image_samples_shed: Count = Field(
        description="image-check samples not decoded because the agent was short of CPU (since it started)"
    )
    detection_frames_shed: Count = Field(description="detection frames not decoded for the same reason")
    detection_frames_dropped: Count = Field(
        description="detection frames decoded but dropped because the detector could not keep up"
    )


_OFFLINE_NEEDS_REASON: Final[JsonDict] = {
    "if": {"properties": {"state": {"const": "offline"}}},
    "then": {"required": ["reason"]},
}


class AgentStatus(Payload):
    """A ward agent's status: its birth (online), its clean stop or its last will (offline)."""

    model_config = ConfigDict(
        title="camwatch agent status (retained; also the MQTT last will)", json_schema_extra=_OFFLINE_NEEDS_REASON
    )

    schema_: Literal["camwatch.agent/1"] = Field(alias="schema")
    ward: Name
    ts: Ts
    state: AgentState
    reason: Literal["lost", "shutdown"] | None = omitted("why the agent is offline: its last will, or a clean stop")
    version: str
    cameras: list[Name]
    started_at: Ts
    problems: list[str] = Field(
        description="agent-level problems: detector_unavailable, state_dir_unwritable, outbox_overflow, "
        "outbox_unwritable, publish_refused, overloaded"
    )
    hostname: str | None = omitted()
    seq: Count | None = omitted(
        "this agent process's connection number (as Sparkplug's bdSeq): a birth and the last will of one "
        "connection carry the same seq; with started_at it orders every status of a ward, so a will of an old "
        "connection never overrides a newer birth"
    )
    refused: Refusal | None = omitted(
        "with publish_refused: the last message the broker refused (its topic and the PUBACK's reason); it stays queued"
    )
    overload: Overload | None = omitted(
        "with overloaded: what the agent left undone to keep every camera's liveness (packets are never shed)"
    )

    @model_validator(mode="after")
    def _offline_says_why(self) -> AgentStatus:
        if self.state == "offline" and self.reason is None:
            raise ValueError("an offline status says why (reason: lost or shutdown)")
        return self


class OutboxFigures(Payload):
    pending: Count
    dropped: Count = Field(description="snapshots/detections dropped over max_messages or max_bytes")
    inflight: Count | None = omitted()
    sent: Count | None = omitted()
    expired: Count | None = omitted("snapshots/detections dropped for age (max_age_s)")
    bytes: Count | None = omitted("bytes in the on-disk outbox")
    in_memory: Count | None = omitted("messages kept in memory because the disk refused them")
    recovered: Count | None = omitted("messages left by the previous run, sent again at start")
    refused: Count | None = omitted(
        "publishes the broker refused (PUBACK reason code 0x80 or more); each stays queued and is tried again"
    )


class ReaderFigures(Payload):
    processes: Count = Field(description="reader processes (each reads and decodes some cameras' streams)")
    restarts: Count = Field(description="reader processes started again after one died")
    shedding: bool = Field(description="the agent sheds image checks and detection frames to keep liveness")


class DetectionFigures(Payload):
    """One camera's detection, counted since start."""

    frames: Count
    gated: Count
    dropped: Count
    suppressed: Count
    queued: Count | None = omitted()
    skipped: Count | None = omitted()
    inferences: Count | None = omitted()
    window_inferences: Count | None = omitted()
    errors: Count | None = omitted()
    events: Count | None = omitted()
    tracks: Count | None = omitted()


class CameraFigures(Payload):
    state: State | None = omitted()
    fps: float | None = None
    bitrate_kbps: float | None = None
    reconnects: int | None = omitted()
    probes: int | None = omitted("TCP connects to the camera's port while it was unreachable (one a second at most)")
    packets: int | None = omitted()
    frames_decoded: int | None = omitted()
    frames_sampled: int | None = omitted()
    samples_skipped: int | None = omitted()
    image_samples_shed: Count | None = omitted()
    detection_frames_shed: Count | None = omitted()
    detection_frames_dropped: Count | None = omitted()
    detection: DetectionFigures | None = omitted()


class DetectorFigures(Payload):
    model: str | None = omitted()
    queue: Count | None = omitted()
    queue_max: Count | None = omitted()
    inference_ms: float | None = None
    max_cores: float | None = Field(None, description="the CPU the detector may use (null: no limit)")
    rested_s: Amount | None = omitted("seconds the detector rested to keep to max_cores, since the agent started")
    problem: str | None = None


class Stats(Payload):
    """A ward agent's resource figures, every ``stats_s``."""

    model_config = ConfigDict(title="camwatch agent resource figures (QoS 0, every stats_s)")

    schema_: Literal["camwatch.stats/1"] = Field(alias="schema")
    ward: Name
    ts: Ts
    version: str | None = omitted()
    pid: Count | None = omitted()
    uptime_s: Amount
    cpu_s: Amount
    cpu_percent: Amount | None = None
    rss_bytes: Count | None
    threads: Count
    fds: Count | None
    outbox: OutboxFigures
    readers: ReaderFigures | None = omitted()
    cameras: dict[str, CameraFigures]
    detector: DetectorFigures | None = Field(None, description="the shared detector (null when detection is off)")


# -- what each schema name is -----------------------------------------------------------------------------------

ADAPTERS: Final[dict[str, TypeAdapter[Any]]] = {
    HEALTH_SCHEMA: TypeAdapter(Health),
    EVENT_SCHEMA: EVENT,
    AGENT_SCHEMA: TypeAdapter(AgentStatus),
    STATS_SCHEMA: TypeAdapter(Stats),
}
