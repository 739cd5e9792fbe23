"""Authorisation in one place: who the sender is, and whether a declared need is met."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, bindparam
from sqlmodel import Session, select

from storage.models import Commune, Membership, Person, Role, Village


class Need(StrEnum):
    """The role a handler declares it needs."""

    ANYONE = "anyone"  # strangers included (/start, /help)
    MEMBER = "member"  # any signed-up person
    VILLAGE_HEAD = "village_head"  # village head or deputy of an active village
    POLICE = "police"  # commune police (or a supervisor above the commune)


@dataclass(frozen=True)
class Actor:
    """The person behind an update and their current, still-valid roles."""

    telegram_user_id: int | None
    person: Person | None = None
    memberships: tuple[Membership, ...] = ()
    villages: dict[int, Village] = field(default_factory=dict)
    communes: dict[int, Commune] = field(default_factory=dict)

    @property
    def roles(self) -> frozenset[Role]:
        """The roles this actor holds right now."""
        return frozenset(Role(m.role) for m in self.memberships)

    @property
    def is_stranger(self) -> bool:
        """True for someone with no current role."""
        return not self.memberships

    def satisfies(self, need: Need) -> bool:
        """Whether this actor may use a handler declaring `need`."""
        if need == Need.ANYONE:
            return True
        if need == Need.MEMBER:
            return bool(self.memberships)
        if need == Need.VILLAGE_HEAD:
            return Role.VILLAGE_HEAD in self.roles
        if need == Need.POLICE:
            return bool(self.roles & {Role.POLICE, Role.SUPERVISOR})
        return False  # pragma: no cover - Need is closed

    def village_membership(self) -> Membership | None:
        """The village-head membership, if any."""
        return next((m for m in self.memberships if m.role == Role.VILLAGE_HEAD), None)

    def can_see_commune(self, commune: Commune) -> bool:
        """Police of that commune, or a supervisor of its province."""
        for m in self.memberships:
            if m.role == Role.POLICE and m.commune_id == commune.id:
                return True
            if m.role == Role.SUPERVISOR and m.province and commune.province == m.province:
                return True
        return False

    def can_report_for(self, village: Village) -> bool:
        """Whether this actor is a current reporter (head or deputy) of `village`."""
        return any(m.role == Role.VILLAGE_HEAD and m.village_id == village.id for m in self.memberships)


def _actor_query() -> Any:
    """Person, current memberships and their places in one outer-joined SELECT (built once)."""
    membership = and_(Membership.person_id == Person.id, Membership.ended_at.is_(None))  # type: ignore[union-attr]
    return (
        select(Person, Membership, Village, Commune)
        .outerjoin(Membership, membership)
        .outerjoin(Village, Village.id == Membership.village_id)  # type: ignore[arg-type]
        .outerjoin(Commune, Commune.id == Membership.commune_id)  # type: ignore[arg-type]
        .where(Person.telegram_user_id == bindparam("uid"))
        .order_by(Membership.id)  # type: ignore[arg-type]
    )


_ACTOR_QUERY = _actor_query()


def load_actor(session: Session, telegram_user_id: int | None) -> Actor:
    """Load the actor; memberships of inactive places or inactive people do not count."""
    if telegram_user_id is None:
        return Actor(None)
    rows = session.exec(_ACTOR_QUERY, params={"uid": telegram_user_id}).all()  # type: ignore[call-overload]
    return actor_from_rows(telegram_user_id, rows)


def actor_query() -> Any:
    """The SELECT `load_actor` runs (person, membership, village, commune rows), for queries built on it."""
    return _ACTOR_QUERY


def actor_from_rows(telegram_user_id: int, rows: Any) -> Actor:
    """The actor from the rows of `actor_query` (extra columns after the first four are ignored)."""
    if not rows:
        return Actor(telegram_user_id)
    person = rows[0][0]
    if person.forgotten_at is not None:
        return Actor(telegram_user_id, person)
    memberships: list[Membership] = []
    villages: dict[int, Village] = {}
    communes: dict[int, Commune] = {}
    for _, membership, village, commune, *_ in rows:
        if membership is None:  # no current membership: the one row of the outer join
            continue
        if village is not None and not village.active:
            continue
        if commune is not None and not commune.active:
            continue
        memberships.append(membership)
        if village is not None:
            villages[village.id] = village
        if commune is not None:
            communes[commune.id] = commune
    return Actor(telegram_user_id, person, tuple(memberships), villages, communes)


def police_commune_ids(actor: Actor) -> list[int]:
    """Communes the actor is police of."""
    return sorted({m.commune_id for m in actor.memberships if m.role == Role.POLICE and m.commune_id})


def supervised_provinces(actor: Actor) -> list[str]:
    """Provinces the actor supervises."""
    return sorted({m.province for m in actor.memberships if m.role == Role.SUPERVISOR and m.province})


def supervises(actor: Actor, commune: Commune) -> bool:
    """Whether the actor is a supervisor of the commune's province."""
    return bool(commune.province) and commune.province in supervised_provinces(actor)
