"""Lookups the handlers need: the communes, villages, periods and police chats a person may act on, and the
forms and period codes of a province."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import Session, select

from storage.models import Commune, Period, PoliceChat, Village


def active_villages(session: Session, commune_ids: Iterable[int], *, by_name: bool = False) -> list[Village]:
    """The active villages of these communes (sorted by name when `by_name`)."""
    query = select(Village).where(Village.commune_id.in_(list(commune_ids)), Village.active)  # type: ignore[attr-defined]
    if by_name:
        query = query.order_by(Village.name)
    return list(session.exec(query).all())


def opened_periods(session: Session, commune_ids: Iterable[int], now: datetime) -> list[Period]:
    """The active periods of these communes opened by `now`, latest deadline first."""
    return list(
        session.exec(
            select(Period)
            .where(Period.commune_id.in_(list(commune_ids)), Period.active, Period.opens_at <= now)  # type: ignore[attr-defined]
            .order_by(Period.due_at.desc())  # type: ignore[attr-defined]
        ).all()
    )


def active_period_codes(session: Session, commune_ids: Iterable[int]) -> set[str]:
    """The codes of the active periods of these communes."""
    return set(
        session.exec(
            select(Period.code).where(Period.commune_id.in_(list(commune_ids)), Period.active)  # type: ignore[attr-defined]
        )
    )


def police_chats(session: Session, commune_id: int) -> list[PoliceChat]:
    """The active police group chats of a commune."""
    return list(
        session.exec(select(PoliceChat).where(PoliceChat.commune_id == commune_id, PoliceChat.active)).all()
    )


def communes_of_police_chat(session: Session, chat_id: int) -> list[Commune]:
    """The active communes a group chat is registered for as their police chat."""
    rows = session.exec(
        select(PoliceChat, Commune)
        .join(Commune, Commune.id == PoliceChat.commune_id)
        .where(PoliceChat.chat_id == chat_id, PoliceChat.active, Commune.active)
    ).all()
    return [commune for _chat, commune in rows]


def communes_visible(session: Session, commune_ids: Iterable[int], provinces: Iterable[str]) -> list[Commune]:
    """Active communes among `commune_ids` or in `provinces`, by id."""
    return list(
        session.exec(
            select(Commune)
            .where(
                Commune.active,
                or_(Commune.id.in_(list(commune_ids)), Commune.province.in_(list(provinces))),  # type: ignore[union-attr]
            )
            .order_by(Commune.id)
        )
    )


def active_village_counts(session: Session, commune_ids: Iterable[int]) -> dict[int, int]:
    """commune id → how many active villages it has (communes without any are left out)."""
    return dict(
        session.exec(
            select(Village.commune_id, func.count())
            .where(Village.commune_id.in_(list(commune_ids)), Village.active)  # type: ignore[attr-defined]
            .group_by(Village.commune_id)
        ).all()
    )
