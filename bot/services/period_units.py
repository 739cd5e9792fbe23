"""Periods limited to some villages (an ad hoc request to "some units only"): a period with rows in
`period_unit` is for those villages only, one with none for every village of its commune."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, not_, or_
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, select

from storage.models import Period, PeriodUnit, Village


def in_period_units(period_id: Any, village_id: Any) -> ColumnElement[bool]:
    """SQL: the village takes part in the period (the period has no unit rows, or one for this village)."""
    limited = exists().where(PeriodUnit.period_id == period_id)
    chosen = exists().where(PeriodUnit.period_id == period_id, PeriodUnit.village_id == village_id)
    return or_(not_(limited), chosen)


def villages_of_period() -> ColumnElement[bool]:
    """SQL join condition: the commune's active villages that take part in `Period` (its units, if limited)."""
    return and_(
        Village.commune_id == Period.commune_id, Village.active, in_period_units(Period.id, Village.id)
    )


def period_village_ids(session: Session, period: Period | int) -> set[int] | None:
    """The villages a period is limited to, or None when it is for every village of its commune."""
    period_id = period if isinstance(period, int) else period.id
    ids = set(session.exec(select(PeriodUnit.village_id).where(PeriodUnit.period_id == period_id)))
    return ids or None


def units_of_periods(session: Session, period_ids: Sequence[int]) -> dict[int, set[int]]:
    """period id → its chosen villages, for the periods among `period_ids` that are limited (one query)."""
    out: dict[int, set[int]] = {}
    if not period_ids:
        return out
    rows = session.execute(
        select(PeriodUnit.period_id, PeriodUnit.village_id).where(
            PeriodUnit.period_id.in_(list(period_ids))  # type: ignore[attr-defined]
        )
    )
    for period_id, village_id in rows:
        out.setdefault(period_id, set()).add(village_id)
    return out


def takes_part(session: Session, period_id: int, village_id: int) -> bool:
    """Whether the village is one of the period's units (every village when the period is not limited)."""
    chosen = period_village_ids(session, period_id)
    return chosen is None or village_id in chosen
