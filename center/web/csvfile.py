"""The uptime report as CSV: UTF-8 with a BOM (Excel then shows Vietnamese), no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

from center.i18n import t
from center.uptime import Uptime

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet will not run: text starting like a formula gets a leading apostrophe.

    Ward-supplied names reach the report; ``=HYPERLINK(...)`` in one must stay text (OWASP's CSV injection advice).
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class SafeCsv:
    """A csv writer whose every cell goes through :func:`csv_cell`."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: Sequence[object]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])


def ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}"


def uptime_csv(report: Any, lang: str, fmt_time: Callable[[float | None], str]) -> bytes:
    """Every camera's, every ward's and the city's uptime over the report's period, one row each."""
    out = io.StringIO()
    w = SafeCsv(csv.writer(out))
    words = ("ward", "camera")
    head = [t(words[0], lang), t(words[1], lang), "name", t("availability", lang), t("healthy", lang)]
    head += ["online_s", "degraded_s", "offline_s", "unknown_s", "maintenance_s", t("start", lang), t("end", lang)]
    w.writerow(head)
    span = [fmt_time(report.begin), fmt_time(report.end)]

    def row(ward: str, camera: str, name: str, u: Uptime) -> list[object]:
        figures = [u.online_s, u.degraded_s, u.offline_s, u.unknown_s, u.maintenance_s]
        return [ward, camera, name, ratio(u.availability), ratio(u.healthy), *map(round, figures), *span]

    for r in [*report.per_camera, *report.per_ward]:
        w.writerow(row(r.ward, r.camera or "*", r.name or "", r.uptime))
    w.writerow(row("*", "*", t("city", lang), report.city))
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM: Excel then reads UTF-8 (Vietnamese) correctly
