"""The center's pages in Vietnamese and English: named texts, read from the one gettext catalogue.

Templates name a text by key (``t("fleet")``); its English is here, its
Vietnamese in the catalogue (:mod:`common.i18n`). Problem and reason codes are
shown as words (:mod:`common.words`), never as codes.
"""

from __future__ import annotations

from center.alerts import DayUptime
from common.i18n import LANGUAGES, N_, translations
from common.words import word

__all__ = ["LANGUAGES", "alert_detail", "count", "duration", "history_cut", "problems", "t"]

TEXT: dict[str, str] = {
    "title": N_("Camera monitoring"),
    "fleet": N_("Fleet"),
    "outages": N_("Outages"),
    "report": N_("Report"),
    "audit": N_("Audit log"),
    "who": N_("Who"),
    "action": N_("Action"),
    "address": N_("Address"),
    "older": N_("Older"),
    "audit_login": N_("logged in"),
    "audit_login_failed": N_("failed login"),
    "audit_login_blocked": N_("login blocked"),
    "audit_logout": N_("logged out"),
    "audit_maintenance_added": N_("added maintenance"),
    "audit_maintenance_deleted": N_("deleted maintenance"),
    "audit_snapshot_viewed": N_("viewed a snapshot"),
    "audit_report_viewed": N_("viewed a report"),
    "audit_report_downloaded": N_("downloaded a report (CSV)"),
    "audit_user_added": N_("added or reset a user"),
    "audit_user_removed": N_("removed a user"),
    "audit_token_added": N_("issued an API token"),
    "audit_token_revoked": N_("revoked an API token"),
    "login": N_("Log in"),
    "logout": N_("Log out"),
    "user": N_("User name"),
    "password": N_("Password"),
    "bad_login": N_("Wrong user name or password."),
    "too_many": N_("Too many failed logins. Try again in a few minutes."),
    "online": N_("Online"),
    "degraded": N_("Degraded"),
    "offline": N_("Offline"),
    "unknown": N_("Unknown"),
    "ward": N_("Ward"),
    "camera": N_("Camera"),
    "state": N_("State"),
    "since": N_("Since"),
    "for": N_("For"),
    "problems": N_("Problems"),
    "problem_history": N_("Problems history"),
    "availability": N_("Availability"),
    "healthy": N_("Healthy"),
    "unknown_share": N_("Unknown"),
    "maintenance": N_("Maintenance"),
    "ongoing": N_("Ongoing"),
    "history": N_("History"),
    "start": N_("Start"),
    "end": N_("End"),
    "duration": N_("Duration"),
    "reasons": N_("Reasons"),
    "period": N_("Period"),
    "today": N_("Today"),
    "24h": N_("24 hours"),
    "7d": N_("7 days"),
    "30d": N_("30 days"),
    "show": N_("Show"),
    "csv": N_("Download CSV"),
    "print": N_("Print"),
    "city": N_("City"),
    "timeline": N_("State timeline"),
    "events": N_("Recent events"),
    "snapshot": N_("Snapshot"),
    "no_snapshot": N_("No snapshot yet."),
    "none": N_("None."),
    "add_maintenance": N_("Add a maintenance window"),
    "note": N_("Note"),
    "whole_ward": N_("The whole ward"),
    "save": N_("Save"),
    "delete": N_("Delete"),
    "updated": N_("Updated"),
    "type": N_("Type"),
    "time": N_("Time"),
    "detail": N_("Detail"),
    "not_found": N_("No such camera."),
    "bad_form": N_("The form is invalid or has expired."),
    "admins_only": N_("Only administrators can do this."),
    "state_changed": N_("State changed"),
    "problem_started": N_("Problem started"),
    "problem_ended": N_("Problem ended"),
    "detection_started": N_("Detection"),
    "detection_ended": N_("Detection ended"),
    "agent": N_("Ward agent"),
    "agent_up": N_("running"),
    "agent_gone": N_("gone since"),
    "agent_stopped": N_("stopped since"),
    "wards_unreachable": N_("Wards unreachable"),
    "ward_unreachable": N_("Ward unreachable since"),
    "ward_stopped": N_("Ward agent stopped since"),
    "ward_problem": N_(
        "A ward problem (the ward's PC is off or its uplink is down), not a camera problem: "
        "nobody can see this ward's cameras."
    ),
    "not_seen_ward_down": N_("not seen (ward unreachable)"),
    "where_failure": N_(
        "Offline = a camera problem. Unknown = nobody can see the camera; a whole ward unreachable is a ward problem."
    ),
    "no_cameras": N_("No ward has reported yet. Check the connection to the MQTT broker."),
    "alerts": N_("Alerts"),
    "open_alerts": N_("Open"),
    "ended_alerts": N_("Ended"),
    "no_alerts": N_("No alert."),
    "alert": N_("Alert"),
    "where": N_("Where"),
    "lasted": N_("Lasted"),
    "taken_on": N_("Taken on"),
    "acknowledge": N_("Take it on"),
    "ack_placeholder": N_("what is being done, who goes"),
    "no_such_alert": N_("No such alert."),
    "already_taken_on": N_("{user} has already taken this alert on."),
    "audit_alert_acked": N_("took an alert on"),
    "alert_camera_offline": N_("Camera offline"),
    "alert_camera_degraded": N_("Camera degraded"),
    "alert_agent_gone": N_("Ward agent gone"),
    "alert_camera_uptime_low": N_("Uptime below target"),
}


def t(key: str, lang: str) -> str:
    """The text for ``key`` in ``lang``; the key itself if there is none (never an error on a page)."""
    message = TEXT.get(key)
    if message is None:
        return key
    return translations(lang).gettext(message)


def count(n: int, lang: str) -> str:
    """``1 camera`` / ``12 cameras``: the plural the language wants."""
    return translations(lang).ngettext("{n} camera", "{n} cameras", n).format(n=n)


def history_cut(shown: int, total: int, lang: str) -> str:
    return (
        translations(lang)
        .ngettext(
            "Showing the {shown} most recent of {total} outage; pick a ward or fewer days, or get them all:",
            "Showing the {shown} most recent of {total} outages; pick a ward or fewer days, or get them all:",
            total,
        )
        .format(shown=shown, total=total)
    )


def problems(codes: list[str] | tuple[str, ...], lang: str) -> str:
    """Problem or reason codes as the words an operator reads, comma-separated."""
    return ", ".join(word(code, lang) for code in codes)


def alert_detail(detail: str, lang: str) -> str:
    """An alert's detail as words: its problems or reason, or a day's uptime against its target."""
    day = DayUptime.parse(detail)
    if day is None:
        return problems([code for code in detail.split(",") if code], lang)
    return (
        translations(lang)
        .gettext("up {percent} on {day} (target {target})")
        .format(percent=f"{day.percent:.1f} %", day=day.day, target=f"{day.target:g} %")
    )


UNITS = {"d": N_("{n} d"), "h": N_("{n} h"), "min": N_("{n} min"), "s": N_("{n} s")}


def duration(seconds: float, lang: str) -> str:
    """``3 ngày 4 giờ`` / ``3 d 4 h``: the two largest units."""
    s = max(0, int(seconds))
    tr = translations(lang)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            parts.append(tr.gettext(UNITS[unit]).format(n=s // size))
            s %= size
        if len(parts) == 2:
            break
    return " ".join(parts)
