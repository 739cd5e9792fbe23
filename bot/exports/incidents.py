"""The incidents of one or more communes as an Excel file: one row per incident, the fixed columns (receipt,
village, time, whether an early alert went out, reporter, alert state) and then one column per short label of the answers, in the
order they first appear. Words from templates/incidents/words.yaml."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.exports import ExportFile
from bot.exports.excel import Sheet, finish, new_workbook, set_width, sheet_title
from bot.exports.filenames import ascii_filename, export_filename
from bot.services.incidents import Incident
from bot.texts.templates import templates_dir
from bot.texts.units import words_file
from storage.models import Commune

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _words_file() -> dict[str, Any]:
    with (templates_dir() / "incidents" / "words.yaml").open(encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh))


words = words_file(_words_file)
"""The fixed words of the incidents export, the units and the collector named as set up ({Units_formal},
{collector}: bot.texts.units)."""


def incident_table(
    incidents: Sequence[Incident], tz: ZoneInfo, commune_names: Mapping[int, str] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows): one row per incident, newest first; answers under their short labels (a column of
    commune names from `commune_names` when the incidents are of several communes)."""
    w = words()
    cols = w["columns"]
    labels: list[str] = []
    values: list[dict[str, str]] = []
    for item in incidents:
        answers: dict[str, str] = {}
        lines = item.lines()
        for line in lines.rows:
            if line.label not in answers:
                answers[line.label] = line.value
            if line.label not in labels:
                labels.append(line.label)
        for label, (lat, lon) in lines.pins:
            answers[label] = f"{lat:.6f}, {lon:.6f}"
        values.append(answers)
    communes = len({item.village.commune_id for item in incidents}) > 1
    fixed = ["number", "receipt", *(["commune"] if communes else []), "village", "at", "early", "reporter"]
    fixed += ["complete", "alert"]
    headers = [cols[key] for key in fixed] + labels
    rows = []
    for n, (item, answers) in enumerate(zip(incidents, values, strict=True), start=1):
        row: list[Any] = [n, item.receipt]
        if communes:
            row.append((commune_names or {}).get(item.village.commune_id, str(item.village.commune_id)))
        reporter = item.reporter.full_name if item.reporter is not None else ""
        early = w["early"][str(item.early is not None).lower()]
        row += [item.village.name, _local(item.at, tz), early, reporter]
        row += [w["complete"][str(item.complete).lower()], w["alert"][str(item.status)]]
        row += [answers.get(label, "") for label in labels]
        rows.append(row)
    return headers, rows


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    """A naive local time for a spreadsheet cell."""
    return at.astimezone(tz).replace(tzinfo=None) if at.tzinfo else at


def incidents_xlsx(
    incidents: Sequence[Incident], communes: Sequence[Commune], now: datetime, tz: ZoneInfo
) -> ExportFile:
    """The Excel file of these incidents (of `communes`), named after the first commune and today's date."""
    headers, rows = incident_table(incidents, tz, {c.id: c.name for c in communes})
    wb, buffer, styles = new_workbook(words()["file"])
    sheet = Sheet(wb, styles, sheet_title(words()["sheet"], set()))
    for index in range(len(headers)):
        set_width(sheet.ws, index, 8 if index == 0 else 22)
    sheet.ws.freeze_panes(1, 2)
    for col, header in enumerate(headers):
        sheet.text(col, header)
    sheet.row += 1
    for row in rows:
        sheet.append(row)
    content = finish(wb, buffer)
    first = communes[0] if communes else None
    day = now.astimezone(tz).strftime("%Y-%m-%d")
    return ExportFile(
        filename=export_filename(words()["file"], first.name if first else "", day, "xlsx"),
        ascii_filename=ascii_filename("su-viec", first.code if first else "xa", day, "xlsx"),
        content=content,
        mime=XLSX_MIME,
    )
