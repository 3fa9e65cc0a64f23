"""The rows the store gives back: frozen dataclasses, one per kind of thing it keeps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuditRow:
    id: int
    ts: float
    actor: str  # a user name, "token:NAME", or "cli"
    action: str  # login, login_failed, logout, maintenance_added, ..., snapshot_viewed, report_viewed
    detail: str
    addr: str  # the client's address ("cli" for the command line)


@dataclass(frozen=True)
class CameraRow:
    ward: str
    camera: str
    name: str | None
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class EventRow:
    id: str
    ward: str
    camera: str
    ts: float
    type: str
    replayed: bool
    payload: str


@dataclass(frozen=True)
class AgentRow:
    """A ward agent as its newest connection last described itself."""

    ward: str
    state: str  # online | offline
    problems: tuple[str, ...]
    version: str
    ts: float  # since when it is in this state (gone: when the ward was last heard from)
    reason: str = ""  # offline: lost (last will) | shutdown
    hostname: str = ""
    started_at: float = 0.0  # the agent process's start
    seq: int = -1  # its connection number (-1: none given)


@dataclass(frozen=True)
class RollupRow:
    """A camera's seconds (online, degraded, offline, unknown) over the local day [day_start, day_end)."""

    ward: str
    camera: str
    day_start: float
    day_end: float
    seconds: tuple[float, float, float, float]


@dataclass(frozen=True)
class MaintenanceRow:
    id: int
    ward: str
    camera: str | None
    start: float
    end: float
    note: str
    created_by: str


@dataclass(frozen=True)
class UserRow:
    """An operator account as listed (no password hash)."""

    name: str
    role: str  # viewer | admin


@dataclass(frozen=True)
class Credentials:
    """What a login is checked against."""

    role: str
    password_hash: str


@dataclass(frozen=True)
class TokenRow:
    """An API token of the center's other systems (only its SHA-256 is kept)."""

    name: str
    role: str


@dataclass(frozen=True)
class SessionRow:
    """A live login: its user, the user's role now, the session's CSRF token, when it ends."""

    user: str
    role: str
    csrf: str
    expires: float


@dataclass(frozen=True)
class AlertRow:
    """An alert: ``kind`` (camera_offline | camera_degraded | agent_gone) of a camera, or of a ward's agent
    (``camera`` empty), whose condition began at ``since``; open while ``resolved`` is None."""

    id: int
    kind: str
    ward: str
    camera: str
    since: float
    fired: float
    resolved: float | None
    detail: str
    acked_by: str | None = None
    acked: float | None = None
    ack_note: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.ward, self.camera)
