"""The villages' rows of one commune's period, as the Excel and CSV exports read them (`export_rows`).

`bot.services.summaries.village_rows` with only what those files show (name, state, current answers, sent at,
version) and one read-only select: the same villages, order, states and answers (tests/test_exports_fast_path.py
compares the two), without the summaries' imports (Jinja2, the PostgreSQL dialect), which a `baocao export`
of a spreadsheet does not otherwise need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from bot.services.completeness import (
    Scope,
    VillageState,
    draft_flag,
    first_versions,
    join_current_submission,
)
from bot.services.period_units import villages_of_period
from storage.models import Period, Submission, Village


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One village's line of a spreadsheet export: its state and current submission (if any)."""

    village: str
    state: VillageState
    answers: dict[str, Any] | None = None  # the current version's answers
    sent_at: datetime | None = None  # current version
    version_no: int | None = None

    @property
    def submitted(self) -> bool:
        """Whether a report is in."""
        return self.answers is not None


def export_rows(session: Session, period: Period, form_id: str, *, batch: int = 1000) -> Iterator[ExportRow]:
    """Every active village of the period's commune taking part in it, in setup order, with its current
    submission of `form_id`: streamed in batches of `batch` rows (a server-side cursor on PostgreSQL).
    Consume it while the session is open. Read through the session's connection: plain rows, no ORM loading."""
    scope = Scope(period)
    first = first_versions(scope)
    drafts, has_draft = draft_flag(session, scope, form_id)
    query = (
        select(
            Village.name,
            Period.due_at,
            Submission.id,
            Submission.answers,
            Submission.sent_at,
            Submission.version_no,
            first.c.first_sent_at,
            has_draft,
        )
        .select_from(Period)
        .join(Village, villages_of_period())
    )
    query = join_current_submission(query, form_id, first, drafts)
    query = query.where(Period.id == period.id).order_by(Village.id)
    result = session.connection().execute(query, execution_options={"yield_per": batch})
    on_time, late, draft, missing = (
        VillageState.ON_TIME,
        VillageState.LATE,
        VillageState.DRAFT,
        VillageState.NOT_STARTED,
    )
    try:
        for name, due, sid, answers, sent, version_no, first_sent, has in result:
            if sid is None:
                yield ExportRow(name, draft if has else missing)
                continue
            state = on_time if (first_sent or sent) < due else late
            yield ExportRow(name, state, answers, sent, version_no)
    finally:
        result.close()
