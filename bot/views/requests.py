"""The notice a unit's head gets when the police ask for an ad hoc report (`request_notice`): its text and the
button that opens the report (the same from /yeucau and `baocao request`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.services.wording import collector_of
from bot.texts.templates import render
from bot.texts.units import wording
from storage.models import Commune, Period

CB_PICK = "rp"  # bot.handlers.report.CB_PICK: starts or resumes the period's report

Notice = tuple[str, list[list[tuple[str, str]]]]


def request_notice(commune: Commune, tz: ZoneInfo) -> Callable[[Period, str], Notice]:
    """A builder of the heads' notice for a request of `commune` (deadline shown as its last local day)."""

    def build(period: Period, form_title: str) -> Notice:
        last_day = (period.due_at.astimezone(tz) - timedelta(seconds=1)).date()
        who = wording(None, collector_of(commune))  # "Công an xã yêu cầu …" or the commune's own collector
        text = render("request/notice.html", commune.code, form_title=form_title, due=last_day, who=who)
        label = render("request/button.html", commune.code, name="notice")
        return text, [[(label, f"{CB_PICK}:{period.id}")]]

    return build
