"""The roll-up's file, any format: `build_rollup_export` (behind `/xuat tinh` and `baocao export --province`)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.exports import MIME, ExportFile, normalise_format
from bot.exports.filenames import ascii_filename, export_filename
from bot.exports.rollup import (
    DEFAULT_TZ,
    RollupScope,
    problem,
    rollup_words,
    write_rollup_csv,
    write_rollup_xlsx,
)
from bot.forms.model import Form
from bot.forms.period_text import fill_form
from bot.services.period_facts import period_facts
from bot.services.zones import commune_zone
from storage.models import Commune, Period


def build_rollup_export(
    session: Session,
    province: str,
    communes: list[Commune],
    form: Form,
    period: Period,
    fmt: str,
    now: datetime,
    *,
    default_tz: ZoneInfo = DEFAULT_TZ,
) -> ExportFile:
    """Build the roll-up file (xlsx, docx or csv) of `period`'s code of `form` across `province`."""
    fmt = normalise_format(fmt) or fmt
    if fmt not in MIME:
        raise problem("bad_format", fmt=fmt[:20], formats=", ".join(MIME))
    tz = commune_zone(communes[0], default_tz.key) if communes else default_tz
    rollup = RollupScope(province, fill_form(form, period_facts(period, tz)), period, communes, tz, now)
    if fmt == "xlsx":
        content = write_rollup_xlsx(session, rollup)
    elif fmt == "csv":
        content = write_rollup_csv(session, rollup)
    else:
        from bot.exports.rollup_word import write_rollup_docx  # lazy: python-docx only for the Word report

        content = write_rollup_docx(session, rollup)
    return ExportFile(
        filename=export_filename(f"{rollup_words()['file']} {form.title}", province, period.code, fmt),
        ascii_filename=ascii_filename(f"tong-hop-{form.id}", province, period.code, fmt),
        content=content,
        mime=MIME[fmt],
    )
