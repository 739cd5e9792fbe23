"""Periods limited to some villages (an ad hoc request to "some units only"): a period with rows in
`period_unit` is for those villages only, one with none for every village of its commune; a period the
commune police write themselves (`period.reporter == "police"`) is for none."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, not_, or_
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, select

from bot.calendar import REPORTER_POLICE  # not the periods' module (an export does not expand schedules)
from storage.models import Period, PeriodUnit, Village


def in_period_units(period_id: Any, village_id: Any) -> ColumnElement[bool]:
    """SQL: the village takes part in the period (the period has no unit rows, or one for this village), and
    the period is not one the commune police write themselves (`reporter: police`: no unit takes part)."""
    limited = exists().where(PeriodUnit.period_id == period_id)
    chosen = exists().where(PeriodUnit.period_id == period_id, PeriodUnit.village_id == village_id)
    own = aliased(Period)
    police = exists().where(own.id == period_id, own.reporter == REPORTER_POLICE)
    return and_(or_(not_(limited), chosen), not_(police))


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
    police = session.exec(select(Period.reporter).where(Period.id == period_id)).first()
    if police == REPORTER_POLICE:
        return False  # the police's own report: no unit files it
    chosen = period_village_ids(session, period_id)
    return chosen is None or village_id in chosen
