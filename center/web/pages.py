"""The operators' pages: fleet, camera, snapshot, outages, report (and its CSV), maintenance, alerts, audit."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from center.i18n import t
from center.periods import PERIODS, period_bounds
from center.views import fleet_now, uptime_table, ward_counts, wards_now
from center.web.csvfile import uptime_csv
from center.web.site import PageSession, SiteDep, admin_form, forged_form, safe_next

log = logging.getLogger(__name__)

AUDIT_SHOWN = 200
HISTORY_SHOWN = 500  # the most recent ended outages on the page; the API has them all
ALL_TILES_UP_TO = 600  # cameras; above this the fleet page shows healthy ones as a count per ward

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def fleet_page(request: Request, site: SiteDep, s: PageSession, ward: str = "") -> HTMLResponse:
    now = site.clock()
    rows = fleet_now(site.fleet, now)
    counts = ward_counts(rows)
    totals = {k: sum(c[k] for c in counts.values()) for k in ("offline", "unknown", "degraded", "online")}
    ward_states = wards_now(site.store.agents(), list(counts))
    down = {w for w, st in ward_states.items() if st.state in ("unreachable", "stopped")}
    # A big city: healthy cameras are a count per ward (a link shows them); the rest are always tiles.
    # A ward that is unreachable is one ward problem: its unknown cameras are a count, not tiles.
    show_online = bool(ward) or len(rows) <= ALL_TILES_UP_TO
    wards: dict[str, list[Any]] = {}
    for r in rows:
        if ward and r.ward != ward:
            continue
        if (show_online or r.state != "online") and not (r.ward in down and r.state == "unknown" and not ward):
            wards.setdefault(r.ward, []).append(r)
    return site.render(
        request,
        "fleet.html",
        s,
        wards=[(w, wards.get(w, []), counts[w]) for w in counts if not ward or w == ward],
        totals=totals,
        now=now,
        ward_states=ward_states,
        wards_down=sorted(down),
        show_online=show_online,
        ward=ward,
        ward_filter=ward,
    )


@router.get("/camera/{ward}/{camera}", response_class=HTMLResponse)
def camera_page(
    request: Request, site: SiteDep, *, s: PageSession, ward: str, camera: str, span: str = "24h"
) -> HTMLResponse:
    store, fleet = site.store, site.fleet
    cam = next((c for c in store.cameras() if (c.ward, c.camera) == (ward, camera)), None)
    if cam is None:
        return site.message(request, s, t("not_found", site.lang_of(request)), 404)
    now = site.clock()
    span_s = 7 * 86400 if span == "7d" else 86400
    maint = store.maintenance(now - 30 * 86400, now + 365 * 86400)
    figures = {}
    for name in ("24h", "7d", "30d"):
        begin, end = period_bounds(name, now, site.tz)
        _, _, figures[name] = uptime_table(fleet, [cam], maint, begin, end)
    events = store.events(ward=ward, camera=camera, limit=50)
    snaps = [e for e in events if e.type == "detection_started"]
    return site.render(
        request,
        "camera.html",
        s,
        cam=cam,
        state=fleet.state_at(ward, camera, now),
        ivs=fleet.timeline(ward, camera, now - span_s, now),
        span=span,
        span_s=span_s,
        begin=now - span_s,
        figures=figures,
        events=events,
        latest=next((e.id for e in snaps if store.snapshot(e.id) is not None), None),
        now=now,
        maintenance=[m for m in maint if m.ward == ward and m.camera in (None, camera)],
    )


@router.get("/snapshot/{event_id}")
def snapshot(request: Request, site: SiteDep, s: PageSession, event_id: str) -> Response:
    jpeg = site.store.snapshot(event_id)
    if jpeg is None:
        raise HTTPException(404, "no such snapshot")
    site.audit(request, s.user, "snapshot_viewed", event_id)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/outages", response_class=HTMLResponse)
def outages_page(
    request: Request, site: SiteDep, s: PageSession, ward: str = "", days: Annotated[int, Query(ge=1, le=400)] = 7
) -> HTMLResponse:
    now = site.clock()
    rows = site.outages(ward or None, days, now)
    history = [r for r in rows if r.outage.end is not None]
    return site.render(
        request,
        "outages.html",
        s,
        ongoing=[r for r in rows if r.outage.end is None],
        history=history[:HISTORY_SHOWN],
        history_total=len(history),
        now=now,
        wards=sorted({c.ward for c in site.store.cameras()}),
        ward=ward,
        days=days,
    )


@router.get("/report", response_class=HTMLResponse)
def report_page(
    request: Request,
    site: SiteDep,
    *,
    s: PageSession,
    period: str = "24h",
    start: str | None = None,
    end: str | None = None,
) -> HTMLResponse:
    report = site.report(period, start, end)
    site.audit(request, s.user, "report_viewed", f"{period} {start or ''} {end or ''}".strip())
    return site.render(
        request,
        "report.html",
        s,
        period=period,
        periods=PERIODS,
        begin=report.begin,
        end=report.end,
        per_camera=report.per_camera,
        per_ward=report.per_ward,
        city=report.city,
        start=start or "",
        end_day=end or "",
    )


@router.get("/report.csv")
def report_csv(
    request: Request,
    site: SiteDep,
    *,
    s: PageSession,
    period: str = "24h",
    start: str | None = None,
    end: str | None = None,
) -> Response:
    report = site.report(period, start, end)
    site.audit(request, s.user, "report_downloaded", f"{period} {start or ''} {end or ''}".strip())
    return Response(
        uptime_csv(report, site.lang_of(request), site.fmt_time),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="camwatch-uptime-{period}.csv"'},
    )


@router.post("/maintenance")
def add_maintenance(
    request: Request,
    site: SiteDep,
    *,
    s: PageSession,
    ward: Annotated[str, Form()],
    start: Annotated[str, Form()],
    end: Annotated[str, Form()],
    camera: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    refused = admin_form(request, site, s, csrf)
    if refused is not None:
        return refused
    try:
        lo = datetime.fromisoformat(start).replace(tzinfo=site.tz).timestamp()
        hi = datetime.fromisoformat(end).replace(tzinfo=site.tz).timestamp()
        site.store.add_maintenance(
            ward=ward, camera=camera or None, start=lo, end=hi, note=note[:500], created_by=s.user, now=site.clock()
        )
    except ValueError:
        return site.message(request, s, t("bad_form", site.lang_of(request)), 400)
    site.audit(request, s.user, "maintenance_added", f"{ward}/{camera or '*'} {start} – {end}: {note[:200]}")
    site.recent.clear()  # uptime figures change with maintenance
    back = f"/camera/{quote(ward)}/{quote(camera)}" if camera else "/"
    return RedirectResponse(back, status_code=303)


@router.post("/maintenance/{window_id}/delete")
def delete_maintenance(
    request: Request,
    site: SiteDep,
    *,
    s: PageSession,
    window_id: int,
    back: Annotated[str, Form()] = "/",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    refused = admin_form(request, site, s, csrf)
    if refused is not None:
        return refused
    if not site.store.delete_maintenance(window_id):
        return site.message(request, s, t("not_found", site.lang_of(request)), 404)
    log.info("maintenance window %d deleted by %s", window_id, s.user)
    site.audit(request, s.user, "maintenance_deleted", f"window {window_id}")
    site.recent.clear()
    return RedirectResponse(safe_next(back), status_code=303)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, site: SiteDep, s: PageSession, days: int = 7) -> HTMLResponse:
    now = site.clock()
    rows = site.store.alerts(since=now - max(1, min(days, 400)) * 86400)
    return site.render(
        request,
        "alerts.html",
        s,
        names={(c.ward, c.camera): c.name for c in site.fleet.cameras() if c.name},
        open_alerts=[a for a in rows if a.resolved is None],
        ended=[a for a in rows if a.resolved is not None],
        days=days,
        now=now,
    )


@router.post("/alerts/{alert_id}/ack")
def ack_alert(
    request: Request,
    site: SiteDep,
    *,
    s: PageSession,
    alert_id: int,
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """An operator (any role) takes an alert on, with a note ("đã tiếp nhận")."""
    refused = forged_form(request, site, s, csrf)
    if refused is not None:
        return refused
    lang = site.lang_of(request)
    alert, took = site.store.ack_alert(alert_id, s.user, note.strip(), site.clock())
    if alert is None:
        return site.message(request, s, t("no_such_alert", lang), 404)
    if not took:
        return site.message(request, s, t("already_taken_on", lang).format(user=alert.acked_by), 409)
    site.audit(request, s.user, "alert_acked", f"alert {alert_id}: {note[:200]}")
    return RedirectResponse("/alerts", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, site: SiteDep, s: PageSession, before: int | None = None) -> HTMLResponse:
    if s.role != "admin":
        return site.message(request, s, t("admins_only", site.lang_of(request)), 403)
    rows = site.store.audit_log(AUDIT_SHOWN, before)
    return site.render(request, "audit.html", s, rows=rows, more=rows[-1].id if len(rows) == AUDIT_SHOWN else None)
