"""The security suite's world: two communes, six roles signed up through /start, and a counting harness.

Hiệp Lực (Thái Nguyên) from the shipped setup file is commune X with villages A (Thôn Nà Làng) and
B (Thôn Bản Duồm); Yên Sơn (Tuyên Quang) is commune Y with Thôn Bình Ca. The clock stands at
2026-05-15 09:00 in Hà Nội, inside the 2026-6T period (due at the end of 19/05).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select
from telegram import Update

from bot.app import build_application
from bot.clock import FixedClock
from bot.config import settings_from
from bot.deps import Deps
from bot.services.accounts import create_invite
from bot.services.forms import store_setup_forms
from bot.services.setup import apply_setup
from bot.setup_file import parse_setup
from storage.db import session_scope
from storage.models import AuditLog, Commune, Draft, Period, Person, Submission, Village
from tests.support.telegram import TOKEN, FakeUser, Harness, RecordingRequest

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


class DocumentRecorder(RecordingRequest):
    """A recording request that also keeps uploaded files (sendDocument)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    async def do_request(self, url: str, method: str, request_data: Any = None, **kwargs: Any):
        """Record multipart uploads, then answer as the base class does."""
        if request_data is not None and request_data.multipart_data:
            params = dict(request_data.json_parameters)
            self.files.append((url.rsplit("/", 1)[-1], params, dict(request_data.multipart_data)))
        return await super().do_request(url, method, request_data, **kwargs)


@dataclass
class CountingHarness(Harness):
    """A harness that tells a callback about every update it feeds (for the suite's figures)."""

    on_update: Callable[[], None] = field(default=lambda: None)

    async def feed(self, data: dict[str, Any]) -> Update:
        """Feed one update and count it."""
        self.on_update()
        return await super().feed(data)


class World:
    """The running bot, its database and helpers that act as the people of the world."""

    def __init__(
        self, harness: CountingHarness, engine: Engine, clock: FixedClock, figures: Any = None
    ) -> None:
        self.h, self.engine, self.clock, self.figures = harness, engine, clock, figures

    @property
    def request(self) -> RecordingRequest:
        """The recording request (every Bot API call)."""
        return self.h.request

    def texts(self, user: FakeUser) -> list[str]:
        """Every text sent to the user's private chat."""
        return self.h.request.texts(user.id)

    def last_keyboard(self, user: FakeUser) -> tuple[int, list[str]]:
        """(message id, callback data) of the newest message with buttons sent to the user."""
        for call in reversed(self.h.request.sent(user.id)):
            markup = call.params.get("reply_markup")
            if markup and markup.get("inline_keyboard"):
                data = [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
                return int(call.params.get("message_id") or 0), data
        raise AssertionError(f"no keyboard for {user.first_name}: {self.texts(user)[-3:]}")

    def tokens(self, user: FakeUser) -> list[str]:
        """The action tokens of the newest form keyboard."""
        return [d.split(":", 3)[-1] for d in self.last_keyboard(user)[1]]

    async def send(self, user: FakeUser, text: str, **extra: Any) -> Update:
        """The user types a message."""
        return await self.h.send(user, text, **extra)

    async def press(self, user: FakeUser, data: str, message_id: int = 1) -> Update:
        """The user presses a button with this callback data."""
        return await self.h.press(user, data, message_id=message_id)

    async def press_token(self, user: FakeUser, token: str) -> str:
        """Press the newest keyboard's button whose data ends with `:token`."""
        message_id, data = self.last_keyboard(user)
        match = [d for d in data if d == token or d.endswith(f":{token}")]
        assert match, f"{token!r} not in {data}"
        await self.h.press(user, match[0], message_id=message_id)
        return match[0]

    async def open_report(self, user: FakeUser) -> None:
        """/baocao and press the first report's button."""
        await self.send(user, "/baocao")
        await self.press_token(user, self.last_keyboard(user)[1][0])

    async def answer_until(
        self, user: FakeUser, stop: str = "confirm", text: str = "3", limit: int = 80
    ) -> int:
        """Answer with small valid values (free text: `text`) until `stop` is offered; returns answers given."""
        for given in range(limit):
            tokens = self.tokens(user)
            if stop in tokens:
                return given
            for choice in ("submit", "more:n", "ok:0", "d:yday", "c:0", "n"):
                if choice in tokens:
                    await self.press_token(user, choice)
                    break
            else:
                if "t:0" in tokens:
                    await self.press_token(user, "t:0")
                    await self.press_token(user, "done")
                elif "skip" in tokens and "⚠️" not in self.texts(user)[-1]:
                    await self.send(user, text)
                else:
                    await self.send(user, "3")
        raise AssertionError(f"never reached {stop}: {self.texts(user)[-2:]}")

    async def submit_report(self, user: FakeUser, text: str = "3") -> None:
        """Fill and send the first open report; the answers saved in the draft must all be in the submission."""
        await self.open_report(user)
        await self.answer_until(user, text=text)
        person = self.person(user)
        with session_scope(self.engine) as s:
            acknowledged = dict(s.get(Draft, person.active_draft_id).state["answers"])
        before = {sub.id for sub in self.submissions()}
        await self.press_token(user, "confirm")
        new = [sub for sub in self.submissions() if sub.id not in before]
        found = [k for k, v in acknowledged.items() if len(new) == 1 and new[0].answers.get(k) == v]
        if self.figures is not None:
            self.figures.answers(len(acknowledged), len(found), f"report of {user.first_name}")
            self.figures.duplicate(max(len(new) - 1, 0), f"report of {user.first_name}")
        assert len(new) == 1 and len(found) == len(acknowledged), (len(new), acknowledged)

    # --- database views -----------------------------------------------------------------------

    def village_id(self, name: str, commune: str = COMMUNE_X) -> int:
        """A village's id."""
        with session_scope(self.engine) as s:
            return s.exec(
                select(Village.id)
                .join(Commune, Commune.id == Village.commune_id)
                .where(Village.name == name, Commune.code == commune)
            ).one()

    def period_id(
        self, commune: str = COMMUNE_X, code: str = "2026-6T", form: str = "bao-cao-6-thang"
    ) -> int:
        """A period's id."""
        with session_scope(self.engine) as s:
            return s.exec(
                select(Period.id)
                .join(Commune, Commune.id == Period.commune_id)
                .where(Commune.code == commune, Period.code == code, Period.form_id == form)
            ).one()

    def drafts(self) -> list[Draft]:
        """Every draft, oldest first."""
        with session_scope(self.engine) as s:
            return list(s.exec(select(Draft).order_by(Draft.id)))

    def draft_of(self, village: str, commune: str = COMMUNE_X) -> Draft:
        """The one draft of a village."""
        vid = self.village_id(village, commune)
        (draft,) = [d for d in self.drafts() if d.village_id == vid]
        return draft

    def submissions(self) -> list[Submission]:
        """Every submission, oldest first."""
        with session_scope(self.engine) as s:
            return list(s.exec(select(Submission).order_by(Submission.id)))

    def audit(self, action: str | None = None) -> list[AuditLog]:
        """Audit rows (optionally of one action), oldest first."""
        with session_scope(self.engine) as s:
            query = select(AuditLog).order_by(AuditLog.id)
            if action is not None:
                query = query.where(AuditLog.action == action)
            return list(s.exec(query))

    def audit_count(self) -> int:
        """How many audit rows there are."""
        with session_scope(self.engine) as s:
            return s.exec(select(func.count()).select_from(AuditLog)).one()

    def person(self, user: FakeUser) -> Person:
        """The person row of a Telegram user."""
        with session_scope(self.engine) as s:
            return s.exec(select(Person).where(Person.telegram_user_id == user.id)).one()


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
    """Apply the setup, build the real application and sign everyone up with /start CODE; yields a World."""
    clock = FixedClock(NOW)
    result = parse_setup(setup_data(edit), setup_path or ROOT / "deploy" / "security.yaml")
    assert not result.errors, result.errors
    with session_scope(engine) as s:
        apply_setup(s, result.setup, now=NOW, actor="test")
        store_setup_forms(s, result.setup, now=NOW, actor="test")
    settings = settings_from({"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url})
    request = request or DocumentRecorder()
    app = build_application(settings, deps=Deps(engine, clock, settings), request=request)
    async with app:
        harness = CountingHarness(app, request, on_update=figures.update if figures else lambda: None)
        world = World(harness, engine, clock, figures)
        for user, kwargs in INVITES if users is None else users:
            with session_scope(engine) as s:
                code = create_invite(s, now=NOW, actor="cli:test", **kwargs).code
            await harness.send(user, f"/start {code}")
            assert "Đăng ký thành công" in world.texts(user)[-1], world.texts(user)[-1]
        yield world
