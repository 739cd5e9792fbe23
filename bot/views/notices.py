"""The one table from the services' typed notices to the templates that word them."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Final

from bot.services.report_notices import (
    Amending,
    Closed,
    DraftGone,
    DraftReset,
    FormChanged,
    FormIntro,
    FormMissing,
    MovedOn,
    Notice,
    NotOpen,
    NotYours,
)

TEMPLATES: Final[dict[type, str]] = {
    NotOpen: "report/not_open.html",
    FormMissing: "report/form_missing.html",
    Closed: "report/closed.html",
    Amending: "report/amending.html",
    FormIntro: "report/form_intro.html",
    DraftReset: "report/draft_reset.html",
    FormChanged: "report/form_changed.html",
    NotYours: "report/not_yours.html",
    MovedOn: "report/moved_on.html",
    DraftGone: "report/draft_gone.html",
}


def notice_template(notice: Notice) -> tuple[str, dict[str, Any]]:
    """The template wording `notice` and its context (the notice's fields)."""
    return TEMPLATES[type(notice)], {f.name: getattr(notice, f.name) for f in fields(notice)}


__all__ = ["TEMPLATES", "notice_template"]
