"""The security suite's world: two communes, six roles signed up through /start on the one test client.

Hiệp Lực (Thái Nguyên) from the shipped setup file is commune X with villages A (Thôn Nà Làng) and
B (Thôn Bản Duồm); Yên Sơn (Tuyên Quang) is commune Y with Thôn Bình Ca. The clock stands at
2026-05-15 09:00 in Hà Nội, inside the 2026-6T period (due at the end of 19/05).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from storage.db import session_scope
from tests.support.client import running_bot
from tests.support.telegram import DocumentRecorder, FakeUser, RecordingRequest
from tests.support.world import apply_setup_file

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 15, 2, 0, tzinfo=UTC)  # 09:00 on 15/05/2026 in Hà Nội: 2026-6T is open
VILLAGE_A, VILLAGE_B, VILLAGE_Y = "Thôn Nà Làng", "Thôn Bản Duồm", "Thôn Bình Ca"
COMMUNE_X, COMMUNE_Y = "hiep-luc", "yen-son"
POLICE_CHAT_X, POLICE_CHAT_Y = -1001234567890, -1009000000002

STRANGER = FakeUser(7001, "Lạ")
HEAD_A = FakeUser(7002, "An", "Hoàng Văn", "an_hv")
DEPUTY_A = FakeUser(7003, "Bình", "Nông Thị")
HEAD_B = FakeUser(7004, "Dung", "Ma Thị")
POLICE_X = FakeUser(7005, "Cường", "Lý Văn")
POLICE_Y = FakeUser(7006, "Khoa", "Hà Văn")
SUPERVISOR = FakeUser(7007, "Sáng", "Trần Văn")  # the district/province level: supervisor of Thái Nguyên
HEAD_Y = FakeUser(7008, "Yến", "Đinh Thị")

ROLES: dict[str, FakeUser] = {
    "stranger": STRANGER,
    "head_a": HEAD_A,
    "head_b": HEAD_B,
    "police_x": POLICE_X,
    "police_y": POLICE_Y,
    "supervisor": SUPERVISOR,
}
INVITES: list[tuple[FakeUser, dict[str, Any]]] = [
    (HEAD_A, {"role": "village_head", "village": VILLAGE_A, "commune": COMMUNE_X}),
    (DEPUTY_A, {"role": "village_head", "village": VILLAGE_A, "commune": COMMUNE_X, "deputy": True}),
    (HEAD_B, {"role": "village_head", "village": VILLAGE_B, "commune": COMMUNE_X}),
    (HEAD_Y, {"role": "village_head", "village": VILLAGE_Y, "commune": COMMUNE_Y}),
    (POLICE_X, {"role": "police", "commune": COMMUNE_X}),
    (POLICE_Y, {"role": "police", "commune": COMMUNE_Y}),
    (SUPERVISOR, {"role": "supervisor", "province": "Thái Nguyên"}),
]


def setup_data(edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The shipped Hiệp Lực setup plus Yên Sơn in another province (optionally edited first)."""
    data = yaml.safe_load((ROOT / "deploy" / "hiep-luc.yaml").read_text(encoding="utf-8"))
    x = data["communes"][0]
    y = copy.deepcopy(x)
    y.update(code=COMMUNE_Y, name="Xã Yên Sơn", province="Tuyên Quang", villages=[VILLAGE_Y])
    y["police_chats"] = [{"chat_id": POLICE_CHAT_Y, "title": "CA Yên Sơn"}]
    data["communes"].append(y)
    if edit is not None:
        edit(data)
    return data


async def start_world(
    engine: Engine,
    database_url: str,
    *,
    figures: Any = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    request: RecordingRequest | None = None,
    users: list[tuple[FakeUser, dict[str, Any]]] | None = None,
    setup_path: Path | None = None,
):
    """Apply the setup, build the real application and sign everyone up with /start CODE; yields the client."""
    clock = FixedClock(NOW)
    with session_scope(engine) as s:
        apply_setup_file(s, setup_data(edit), now=NOW, path=setup_path or ROOT / "deploy" / "security.yaml")

    def signed_up(user: FakeUser, reply: str) -> None:
        assert "Đăng ký thành công" in reply, reply

    async with running_bot(
        engine,
        database_url,
        clock,
        request=request or DocumentRecorder(),
        invites=[
            (user, {"actor": "cli:test", **kwargs}) for user, kwargs in (INVITES if users is None else users)
        ],
        check=signed_up,
        on_update=figures.update if figures else None,
        figures=figures,
        strict_submit=True,
        commune=COMMUNE_X,
        typed_answer="3",
    ) as world:
        yield world
