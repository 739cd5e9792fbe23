"""Files attached to reports (answers of `document` questions): listed per submission in form order, per
period for the exports, and one file looked up (with its village and commune) to be sent again."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bot.forms.model import Form, Question
from bot.forms.types import type_of
from bot.forms.types.document import files_of
from bot.services.forms import get_form
from bot.services.summaries import village_rows
from storage.models import Commune, Period, Submission, Village


@dataclass(frozen=True)
class Attached:
    """One file of a report: the question's short label, the file's name, size, MIME type and Telegram ids."""

    label: str
    name: str
    size: int | None
    mime: str
    file_id: str
    file_unique_id: str


def has_documents(form: Form) -> bool:
    """Whether the form asks for files anywhere (a repeat group's sub-questions included)."""
    return any(
        type_of(q).needs_input == "document" or any(type_of(s).needs_input == "document" for s in q.questions)
        for q in form.questions
    )


def _items(question: Question, value: Any, prefix: str = "") -> list[Attached]:
    label = f"{prefix}{question.short_label}"
    return [
        Attached(
            label=label,
            name=str(f.get("name") or ""),
            size=f.get("size") if isinstance(f.get("size"), int) else None,
            mime=str(f.get("mime") or ""),
            file_id=f["file_id"],
            file_unique_id=str(f.get("file_unique_id") or ""),
        )
        for f in files_of(value)
    ]


def attached_files(form: Form, answers: Mapping[str, Any] | None) -> list[Attached]:
    """Every file of a submission's answers, in form order (repeat items numbered "1. …")."""
    out: list[Attached] = []
    for q in form.questions:
        value = (answers or {}).get(q.id)
        if value is None:
            continue
        if type_of(q).group and isinstance(value, list):
            for n, item in enumerate(value, start=1):
                for sub in q.questions if isinstance(item, dict) else ():
                    if type_of(sub).needs_input == "document":
                        out += _items(sub, item.get(sub.id), prefix=f"{n}. ")
        elif type_of(q).needs_input == "document":
            out += _items(q, value)
    return out


def period_files(session: Session, period: Period, form: Form) -> Iterator[tuple[str, Attached]]:
    """(village name, file) for every file of the period's current reports, villages in setup order."""
    if not has_documents(form):
        return
    for row in village_rows(session, period, form):
        for item in attached_files(form, row.answers):
            yield row.village, item


@dataclass(frozen=True)
class FileOf:
    """One file of a submission, with what an authorisation check and a caption need."""

    submission: Submission
    village: Village
    commune: Commune
    files: list[Attached]


def submission_files(session: Session, submission_id: int) -> FileOf | None:
    """A submission's files with its village and commune (None when the submission or its form is gone)."""
    submission = session.get(Submission, submission_id)
    if submission is None or submission.village_id is None:
        return None
    village = session.get(Village, submission.village_id)
    commune = session.get(Commune, village.commune_id) if village is not None else None
    form = get_form(session, submission.form_id, submission.form_version) or get_form(
        session, submission.form_id
    )
    if village is None or commune is None or form is None:
        return None
    return FileOf(submission, village, commune, attached_files(form, submission.answers))
