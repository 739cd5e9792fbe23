"""Which words a text uses for units, heads and the collecting body (`who` in templates): a village's own
kind, a commune's kinds, an actor's, and the commune's collector (`report: collector:` in the setup file)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from bot.texts.units import Wording, lazy_wording, wording
from storage.models import Commune, Role, Village

if TYPE_CHECKING:  # the exports ask for a commune's words only: bot.auth is not imported for them
    from bot.auth import Actor


def collector_of(commune: Commune | None) -> str | None:
    """The commune's collecting body as set up (`report: collector:`), or None for the shipped "Công an xã"."""
    report: dict[str, Any] = (commune.report or {}) if commune is not None else {}
    name = report.get("collector")
    return str(name) if name else None


def commune_kinds(session: Session, commune_ids: list[int]) -> list[str]:
    """The distinct kinds of the active units of these communes."""
    if not commune_ids:
        return []
    query = select(Village.kind).where(col(Village.commune_id).in_(commune_ids), Village.active).distinct()
    return list(session.exec(query))


def commune_wording(session: Session, commune: Commune) -> Wording:
    """The words for all units of `commune` (their kinds asked only when a text uses them) and its collector."""
    commune_id = commune.id or 0
    return lazy_wording(lambda: commune_kinds(session, [commune_id]), collector_of(commune))


def village_wording(village: Village, commune: Commune | None) -> Wording:
    """The words for one unit (its own kind) and its commune's collector."""
    return wording([village.kind], collector_of(commune))


def actor_wording(session: Session, actor: Actor) -> Wording | None:
    """The words for the texts an actor reads: a head's own unit; police, their commune's units; a supervisor,
    the units of the communes they oversee; a stranger, the deployment's when it has one commune (all asked
    when a text uses them). None otherwise (the shipped words)."""
    for m in actor.memberships:
        if m.role == Role.VILLAGE_HEAD and m.village_id in actor.villages:
            village = actor.villages[m.village_id]
            return village_wording(village, actor.communes.get(village.commune_id))
    police = sorted({m.commune_id for m in actor.memberships if m.role == Role.POLICE and m.commune_id})
    if police:
        commune = actor.communes.get(police[0])
        return lazy_wording(lambda: commune_kinds(session, police), collector_of(commune))
    provinces = sorted({m.province for m in actor.memberships if m.role == Role.SUPERVISOR and m.province})
    if provinces:
        return lazy_wording(lambda: _province_kinds(session, provinces))
    if actor.is_stranger:  # a deployment of one commune (a provincial office) speaks as it even to strangers
        return lazy_wording(
            lambda: commune_kinds(session, [c.id for c in _sole_commune(session) if c.id]),
            lambda: next((collector_of(c) for c in _sole_commune(session)), None),
        )
    return None


def _sole_commune(session: Session) -> list[Commune]:
    """The deployment's only active commune, or nothing when it has none or several."""
    communes = list(session.exec(select(Commune).where(Commune.active).limit(2)))
    return communes if len(communes) == 1 else []


def _province_kinds(session: Session, provinces: list[str]) -> list[str]:
    """The distinct kinds of the active units of the active communes of these provinces."""
    query = (
        select(Village.kind)
        .join(Commune, col(Commune.id) == Village.commune_id)
        .where(col(Commune.province).in_(provinces), Commune.active, Village.active)
        .distinct()
    )
    return list(session.exec(query))


__all__ = ["actor_wording", "collector_of", "commune_kinds", "commune_wording", "village_wording"]
