"""A commune with reporters and police for the reminder tests (Hiệp Lực from deploy/, 14 villages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.services.accounts import TelegramUser, create_invite, redeem_invite
from bot.services.forms import store_setup_forms
from bot.services.setup import apply_setup
from bot.setup_file import load_setup
from storage.db import session_scope
from storage.models import Commune, Period, Person, Village

ROOT = Path(__file__).resolve().parent.parent.parent
HIEP_LUC = ROOT / "deploy" / "hiep-luc.yaml"
POLICE_CHAT = -1001234567890
SET_UP_AT = datetime(2026, 4, 20, 2, 0, tzinfo=UTC)


def local(month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "Asia/Ho_Chi_Minh") -> datetime:
    """A 2026 local wall-clock time as aware UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo(tz)).astimezone(UTC)


@dataclass(frozen=True)
class World:
    """Ids of what the tests talk about."""

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


def build_world(engine: Engine, setup_file: Path = HIEP_LUC, at: datetime = SET_UP_AT) -> World:
    """Apply the setup file and sign up An, Bình, Dung and Cường (police) before the period opens."""
    setup = load_setup(setup_file)
    assert setup.ok, [str(e) for e in setup.errors]
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        apply_setup(s, setup.setup, now=at, actor="test")
        store_setup_forms(s, setup.setup, now=at, actor="test")
    with session_scope(engine) as s:
        code = setup.setup.communes[0].code
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
    return World(
        commune.id,
        period.id,
        villages["Thôn Nà Làng"],
        villages["Thôn Bản Duồm"],
        ids["an"],
        ids["binh"],
        ids["dung"],
        ids["cuong"],
    )


def session_for(engine: Engine) -> Session:
    """A plain session (the caller commits)."""
    return Session(engine, expire_on_commit=False)
