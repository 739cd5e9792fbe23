"""Describing an actor's places (village, commune, province) for templates."""

from __future__ import annotations

from bot.auth import Actor


def places_of(actor: Actor) -> list[dict[str, object]]:
    """One dict per current membership, ready for templates."""
    places = []
    for m in actor.memberships:
        village = actor.villages.get(m.village_id) if m.village_id else None
        commune = actor.communes.get(m.commune_id) if m.commune_id else None
        places.append(
            {
                "role": m.role,
                "deputy": m.is_deputy,
                "village": village.name if village else None,
                "kind": village.kind if village else None,  # the unit's kind: "trưởng thôn", "tổ trưởng", …
                "commune": commune.name if commune else None,
                "province": m.province,
            }
        )
    return places
