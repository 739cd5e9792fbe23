"""Building the database side of a test: a setup file applied, bare communes seeded, people signed up.

Two worlds for two jobs: `seed_communes` puts bare rows (communes, villages, a police group; no forms) for
the account tests; `sign_up_commune` applies the shipped Hiệp Lực setup (forms, periods) and signs up its
reporters and police for the reminder tests. `apply_setup_file` is the one way every test applies a setup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.services.accounts import TelegramUser, create_invite, redeem_invite
from bot.services.forms import store_setup_forms
from bot.services.setup import apply_setup
from bot.setup_file import load_setup, parse_setup
from storage.db import session_scope
from storage.models import Commune, Period, Person, PoliceChat, Village

ROOT = Path(__file__).resolve().parent.parent.parent
HIEP_LUC = ROOT / "deploy" / "hiep-luc.yaml"
POLICE_CHAT = -1001234567890
SET_UP_AT = datetime(2026, 4, 20, 2, 0, tzinfo=UTC)


def local(month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "Asia/Ho_Chi_Minh") -> datetime:
    """A 2026 local wall-clock time as aware UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def apply_setup_file(
    session: Session, source: Path | dict[str, Any] = HIEP_LUC, *, now: datetime, path: Path | None = None
) -> Any:
    """Read a setup file (or parse `source` data as if read from `path`), apply it and store its forms."""
    result = load_setup(source) if isinstance(source, Path) else parse_setup(source, path or HIEP_LUC)
    assert result.ok, [str(e) for e in result.errors]
    apply_setup(session, result.setup, now=now, actor="test")
    store_setup_forms(session, result.setup, now=now, actor="test")
    return result.setup


# --- bare communes for the account tests -------------------------------------------------------


@dataclass
class SeededCommunes:
    """The rows `seed_communes` added."""

    commune: Commune
    villages: list[Village]
    other_commune: Commune
    other_villages: list[Village]
    police_chat_id: int


def seed_communes(session: Session, now: datetime) -> SeededCommunes:
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
    return SeededCommunes(commune, villages, other, others, chat.chat_id)


# --- the shipped commune with its people signed up, for the reminder tests ---------------------


@dataclass(frozen=True)
class SignedUpCommune:
    """Ids of what the reminder tests talk about."""

    commune_id: int
    period_id: int  # 2026-6T of bao-cao-6-thang: opens 01/05, due 20/05 00:00 local
    na_lang: int
    ban_duom: int
    an: int  # head of Nà Làng
    binh: int  # deputy of Nà Làng
    dung: int  # head of Bản Duồm
    cuong: int  # police of Hiệp Lực


PEOPLE = {
    "an": (2001, "Hoàng Văn An", "village_head", "Thôn Nà Làng", False),
    "binh": (2002, "Nông Thị Bình", "village_head", "Thôn Nà Làng", True),
    "dung": (2004, "Ma Thị Dung", "village_head", "Thôn Bản Duồm", False),
    "cuong": (2003, "Lý Văn Cường", "police", None, False),
}


def sign_up_commune(engine: Engine, setup_file: Path = HIEP_LUC, at: datetime = SET_UP_AT) -> SignedUpCommune:
    """Apply the setup file and sign up An, Bình, Dung and Cường (police) before the period opens."""
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        setup = apply_setup_file(s, setup_file, now=at)
    with session_scope(engine) as s:
        code = setup.communes[0].code
        for name, (tg, full_name, role, village, deputy) in PEOPLE.items():
            issued = create_invite(
                s,
                role=role,
                now=at,
                actor="t",
                village=village,
                commune=code if role == "police" else None,
                deputy=deputy,
            )
            redeem_invite(s, issued.code, TelegramUser(tg, tg, full_name), now=at)
            ids[name] = s.exec(select(Person).where(Person.telegram_user_id == tg)).one().id
        commune = s.exec(select(Commune).where(Commune.code == code)).one()
        period = s.exec(select(Period).where(Period.commune_id == commune.id, Period.code == "2026-6T")).one()
        villages = {v.name: v.id for v in s.exec(select(Village).where(Village.commune_id == commune.id))}
    return SignedUpCommune(
        commune.id,
        period.id,
        villages["Thôn Nà Làng"],
        villages["Thôn Bản Duồm"],
        ids["an"],
        ids["binh"],
        ids["dung"],
        ids["cuong"],
    )
