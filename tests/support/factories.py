"""Small data factories for tests (a commune with villages and a police group)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from storage.models import Commune, PoliceChat, Village


@dataclass
class World:
    """Ids of the rows a test seeded."""

    commune: Commune
    villages: list[Village]
    other_commune: Commune
    other_villages: list[Village]
    police_chat_id: int


def seed_world(session: Session, now: datetime) -> World:
    """Two communes: Hiệp Lực with three villages and a police group, Sơn Dương with two villages."""
    commune = Commune(
        code="hiep-luc", name="Xã Hiệp Lực", province="Thái Nguyên", created_at=now, updated_at=now
    )
    other = Commune(
        code="son-duong", name="Xã Sơn Dương", province="Tuyên Quang", created_at=now, updated_at=now
    )
    session.add_all([commune, other])
    session.flush()
    villages = [
        Village(commune_id=commune.id, name=name, created_at=now, updated_at=now)
        for name in ("Thôn Đại Sơn", "Thôn Bản Mới", "Thôn Nà Mòn")
    ]
    others = [
        Village(commune_id=other.id, name=name, created_at=now, updated_at=now)
        for name in ("Thôn Đại Sơn", "Thôn Cầu Trắng")
    ]
    session.add_all(villages + others)
    chat = PoliceChat(commune_id=commune.id, chat_id=-100200300, title="Công an xã Hiệp Lực")
    session.add(chat)
    session.flush()
    return World(commune, villages, other, others, chat.chat_id)
