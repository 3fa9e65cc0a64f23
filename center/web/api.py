"""The JSON API under ``/api/v1/``: every answer has a response model, so ``/api/v1/openapi.json`` describes it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from center.alerts import detail_fields
from center.store import AlertRow
from center.uptime import Uptime
from center.views import fleet_now, wards_now
from center.web.site import ApiAdmin, ApiSession, ApiWriter, SiteDep
from contract.payloads import Event
from contract.vocab import State

router = APIRouter(prefix="/api/v1")


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class CameraNow(Answer):
    ward: str
    camera: str
    name: str | None
    state: State
    since: float = Field(description="Unix seconds (UTC)")
    since_local: str | None = Field(description="the same, ISO 8601 in the center's time zone")
    problems: list[str]
    ward_state: str = Field(description="up | unreachable | stopped | unreported (see /api/v1/agents)")


class Cameras(Answer):
    cameras: list[CameraNow]


class UptimeFigures(Answer):
    availability: float | None = Field(description="(online + degraded) / observed; null: nothing observed")
    healthy: float | None = Field(description="online / observed")
    unknown_share: float
    maintenance_share: float
    period_s: float
    online_s: float
    degraded_s: float
    offline_s: float
    unknown_s: float
    maintenance_s: float


class CameraUptime(UptimeFigures):
    ward: str
    camera: str | None


class WardUptime(UptimeFigures):
    ward: str


class Period(Answer):
    name: str
    begin: float
    end: float
    begin_local: str | None
    end_local: str | None


class UptimeAnswer(Answer):
    period: Period
    cameras: list[CameraUptime]
    wards: list[WardUptime]
    city: UptimeFigures


class Outage(Answer):
    ward: str
    camera: str
    start: float
    end: float | None
    ongoing: bool
    duration_s: float
    reasons: list[str]


class Outages(Answer):
    outages: list[Outage]


class Events(Answer):
    events: list[Event] = Field(description="each as its ward sent it (the MQTT contract's camwatch.event/1)")


class Agent(Answer):
    ward: str
    state: str = Field(description="online | offline, as the agent's newest connection said")
    ward_state: str
    since: float
    since_local: str | None
    reason: str
    version: str
    hostname: str
    problems: list[str]
    started_at: float | None
    seq: int | None
    last_heard: float | None


class Agents(Answer):
    agents: list[Agent]


class DayFigure(Answer):
    day: str = Field(description="the local day judged, YYYY-MM-DD")
    percent: float = Field(description="the camera's uptime (availability) that day, in percent")
    target: float = Field(description="the target it fell below, in percent")


class Alert(Answer):
    id: int
    kind: str = Field(description="camera_offline | camera_degraded | agent_gone | camera_uptime_low")
    ward: str
    camera: str | None = Field(description="None for a ward's agent")
    since: float = Field(description="when the condition began (UTC seconds)")
    fired: float
    resolved: float | None = Field(description="None while open")
    detail: list[str] = Field(description="the problem codes, or the agent's offline reason")
    uptime: DayFigure | None = Field(description="camera_uptime_low: the day that fired it")
    acked_by: str | None
    acked: float | None
    ack_note: str | None


class Alerts(Answer):
    alerts: list[Alert]


class IngestStatus(Answer):
    """The center's own ingest figures (empty when the pages run without an ingest)."""

    connected: bool | None = None
    messages: int | None = None
    bad: int | None = None
    bad_reasons: dict[str, int] | None = Field(None, description="refused messages by why")
    duplicates: int | None = None
    clamped: int | None = None
    events: int | None = None
    snapshots: int | None = None
    stale_status: int | None = None
    unsequenced: int | None = None
    pending: int | None = None
    store_errors: int | None = None
    store_error: str | None = None


class AuditEntry(Answer):
    id: int
    ts: float
    actor: str
    action: str
    detail: str
    addr: str


class AuditLog(Answer):
    entries: list[AuditEntry]


def _figures(u: Uptime) -> dict[str, Any]:
    return {
        "availability": u.availability,
        "healthy": u.healthy,
        "unknown_share": u.unknown_share,
        "maintenance_share": u.maintenance_share,
        "period_s": u.period_s,
        "online_s": u.online_s,
        "degraded_s": u.degraded_s,
        "offline_s": u.offline_s,
        "unknown_s": u.unknown_s,
        "maintenance_s": u.maintenance_s,
    }


@router.get("/cameras", tags=["cameras"], response_model=Cameras)
def cameras(site: SiteDep, _: ApiSession) -> dict[str, Any]:
    """Every camera's state now, since when (UTC seconds and local ISO time), its problems, its ward's state.

    A camera ``offline`` is a camera problem; cameras ``unknown`` whose
    ``ward_state`` is ``unreachable`` are one ward problem (see /api/v1/agents).
    """
    rows = fleet_now(site.fleet, site.clock())
    wards = wards_now(site.store.agents(), [r.ward for r in rows])
    return {
        "cameras": [
            {
                "ward": r.ward,
                "camera": r.camera,
                "name": r.name,
                "state": r.state,
                "since": r.since,
                "since_local": site.iso(r.since),
                "problems": list(r.problems),
                "ward_state": wards[r.ward].state,
            }
            for r in rows
        ]
    }


def _alert(a: AlertRow) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "ward": a.ward,
        "camera": a.camera or None,
        "since": a.since,
        "fired": a.fired,
        "resolved": a.resolved,
        **detail_fields(a),
        "acked_by": a.acked_by,
        "acked": a.acked,
        "ack_note": a.ack_note,
    }


@router.get("/alerts", tags=["alerts"], response_model=Alerts)
def alerts(site: SiteDep, _: ApiSession, days: float = 7) -> dict[str, Any]:
    """Open alerts, and those that fired or ended in the last ``days``, newest first."""
    rows = site.store.alerts(since=site.clock() - max(0.0, min(days, 400.0)) * 86400)
    return {"alerts": [_alert(a) for a in rows]}


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=1000, description="what is being done about it")


@router.post(
    "/alerts/{alert_id}/ack",
    tags=["alerts"],
    response_model=Alert,
    responses={404: {"description": "no such alert"}, 409: {"description": "already taken on by someone else"}},
)
def ack_alert(request: Request, site: SiteDep, s: ApiWriter, alert_id: int, body: Acknowledgement) -> dict[str, Any]:
    """Take an alert on ("đã tiếp nhận"), with a note: any role, the first one keeps it; audited. With a session
    cookie, send its CSRF token in ``X-CSRF-Token``."""
    alert, took = site.store.ack_alert(alert_id, s.user, body.note.strip(), site.clock())
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id}")
    if not took:
        raise HTTPException(409, f"alert {alert_id} was already taken on by {alert.acked_by}")
    site.audit(request, s.user, "alert_acked", f"alert {alert_id}: {body.note[:200]}")
    return _alert(alert)


@router.get("/uptime", tags=["uptime"], response_model=UptimeAnswer)
def uptime(
    site: SiteDep, _: ApiSession, period: str = "24h", start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    """Uptime per camera, per ward and for the city over a period (today, 24h, 7d, 30d, YYYY-MM, custom)."""
    report = site.report(period, start, end)
    return {
        "period": {
            "name": period,
            "begin": report.begin,
            "end": report.end,
            "begin_local": site.iso(report.begin),
            "end_local": site.iso(report.end),
        },
        "cameras": [{"ward": r.ward, "camera": r.camera, **_figures(r.uptime)} for r in report.per_camera],
        "wards": [{"ward": r.ward, **_figures(r.uptime)} for r in report.per_ward],
        "city": _figures(report.city),
    }


@router.get("/outages", tags=["outages"], response_model=Outages)
def outages(
    site: SiteDep, _: ApiSession, days: Annotated[int, Query(ge=1, le=400)] = 7, ward: str | None = None
) -> dict[str, Any]:
    """Outages (offline stretches) overlapping the last ``days``: ongoing first, longest first."""
    now = site.clock()
    return {
        "outages": [
            {
                "ward": r.ward,
                "camera": r.camera,
                "start": r.outage.start,
                "end": r.outage.end,
                "ongoing": r.outage.end is None,
                "duration_s": round(r.outage.duration_s(now), 3),
                "reasons": list(r.outage.reasons),
            }
            for r in site.outages(ward, days, now)
        ]
    }


@router.get("/events", tags=["events"], response_model=Events)
def events(  # noqa: PLR0917 (FastAPI query parameters)
    site: SiteDep,
    _: ApiSession,
    ward: str | None = None,
    camera: str | None = None,
    since: float | None = None,
    type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Contract events as the wards sent them (newest first), deduplicated."""
    rows = site.store.events(ward=ward, camera=camera, since=since, types=[type] if type else None, limit=limit)
    # Stored as received (validated then): written out as they are, not parsed again.
    return Response('{"events":[' + ",".join(r.payload for r in rows) + "]}", media_type="application/json")


@router.get("/agents", tags=["cameras"], response_model=Agents)
def agents(site: SiteDep, _: ApiSession) -> dict[str, Any]:
    """Each ward agent as its newest connection described itself: online, or gone since it was last heard from.

    ``ward_state`` says where a failure is: ``up``, ``unreachable`` (the
    broker sent its last will: the ward PC or its uplink is down, its
    cameras are unknown) or ``stopped`` (a clean stop).
    """
    found = site.store.agents()
    heard = site.store.heard()
    states = wards_now(found, [])
    return {
        "agents": [
            {
                "ward": a.ward,
                "state": a.state,
                "ward_state": states[a.ward].state,
                "since": a.ts,
                "since_local": site.iso(a.ts),
                "reason": a.reason,
                "version": a.version,
                "hostname": a.hostname,
                "problems": list(a.problems),
                "started_at": a.started_at or None,
                "seq": a.seq if a.seq >= 0 else None,
                "last_heard": heard.get(a.ward),
            }
            for a in sorted(found.values(), key=lambda a: a.ward)
        ]
    }


@router.get("/status", tags=["service"], response_model=IngestStatus, response_model_exclude_unset=True)
def status(site: SiteDep, _: ApiSession) -> dict[str, Any]:
    """The center's own ingest figures."""
    return site.service.stats() if site.service is not None else {}


@router.get("/audit", tags=["service"], response_model=AuditLog)
def audit(
    site: SiteDep, _: ApiAdmin, limit: Annotated[int, Query(ge=1, le=5000)] = 200, before: int | None = None
) -> dict[str, Any]:
    """The audit trail, newest first (admins): logins, failed logins, logouts, maintenance changes,
    snapshot and report views; who, what, when (``ts``, Unix seconds) and from which address.
    Older entries: pass the smallest ``id`` seen as ``before``."""
    rows = site.store.audit_log(limit, before)
    entries = [
        {"id": r.id, "ts": r.ts, "actor": r.actor, "action": r.action, "detail": r.detail, "addr": r.addr} for r in rows
    ]
    return {"entries": entries}


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, _: ApiSession) -> JSONResponse:
    return JSONResponse(request.app.openapi())
