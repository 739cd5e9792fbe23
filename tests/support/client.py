"""The one in-process test client: people send text, press buttons by label, share photos, read the screen.

It drives the real Application (no updater) over the offline RecordingRequest of tests/support/telegram.py.
The production names it takes to start the bot in process are imported here, in one place.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select
from telegram import Update
from telegram.ext import Application

from bot.app import build_application
from bot.config import settings_from
from bot.deps import Deps
from bot.services.accounts import create_invite
from storage.db import session_scope
from storage.models import AuditLog, Commune, Draft, Period, Person, Submission, Village
from tests.support.telegram import TOKEN, FakeUser, RecordingRequest

__all__ = ["BotClient", "Invite", "build_app", "running_bot", "text_update"]

MESSAGE_DATE = datetime(2026, 5, 15, 2, 0, tzinfo=UTC)
#: What a village head presses, in this order, to get past a question that offers it.
WALK_CHOICES = ("submit", "more:n", "ok:0", "d:yday", "c:0", "n")
#: (who, create_invite's keyword arguments) of one person to sign up with /start CODE.
Invite = tuple[FakeUser, dict[str, Any]]


def build_app(
    engine: Engine,
    database_url: str,
    clock: Callable[[], datetime],
    request: RecordingRequest,
    **options: Any,
) -> Application:
    """The real application on the offline `request` (use it with `async with`; `options`: e.g. registry)."""
    settings = settings_from({"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url})
    return build_application(settings, deps=Deps(engine, clock, settings), request=request, **options)


def text_message(
    user: FakeUser, text: str, *, chat: dict[str, Any] | None = None, message_id: int = 1, **extra: Any
) -> dict[str, Any]:
    """A user's text message as Telegram sends it (commands get their bot_command entity)."""
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(extra.pop("date", MESSAGE_DATE).timestamp()),
        "chat": chat or {"id": user.id, "type": "private", "first_name": user.first_name},
        "from": user.as_dict(),
        "text": text,
        **extra,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return message


def text_update(user: FakeUser, text: str, update_id: int) -> dict[str, Any]:
    """A whole private text update with a chosen id (its message id is the same), e.g. for the webhook."""
    return {"update_id": update_id, "message": text_message(user, text, message_id=update_id)}


@contextlib.asynccontextmanager
async def running_bot(
    engine: Engine,
    database_url: str,
    clock: Callable[[], datetime],
    *,
    request: RecordingRequest | None = None,
    invites: Iterable[Invite] = (),
    check: Callable[[FakeUser, str], None] | None = None,
    **client: Any,
) -> AsyncIterator[BotClient]:
    """Start the application and sign `invites` up with /start CODE (`check` sees each reply); yields the client."""
    request = request or RecordingRequest()
    async with build_app(engine, database_url, clock, request) as app:
        bot = BotClient(app, request, engine=engine, clock=clock, **client)
        for user, kwargs in invites:
            with session_scope(engine) as s:
                code = create_invite(s, now=clock(), **{"actor": "t", **kwargs}).code
            await bot.send(user, f"/start {code}")
            if check is not None:
                check(user, bot.texts(user)[-1])
        yield bot


class BotClient:
    """Feeds updates to the real Application as people would, and reads what the bot showed them."""

    def __init__(
        self,
        app: Application,
        request: RecordingRequest,
        *,
        engine: Engine | None = None,
        clock: Callable[[], datetime] | None = None,
        date: datetime = MESSAGE_DATE,
        on_update: Callable[[], None] | None = None,
        figures: Any = None,
        strict_submit: bool = False,
        first_update_id: int = 1,
        commune: str = "hiep-luc",
        typed_answer: str | None = None,
        world: Any = None,
    ) -> None:
        """`date` is the messages' send time; `strict_submit` checks every answer reaches the submission.

        `typed_answer` is what a form walk types into optional free-text questions (None: skip them);
        `world` is whatever the test seeded the database with (ids it talks about).
        """
        self.app, self.request, self.engine, self.clock, self.date = app, request, engine, clock, date
        self.on_update, self.figures, self.strict_submit = on_update, figures, strict_submit
        self.commune, self.typed_answer, self.world = commune, typed_answer, world
        self._update_ids = itertools.count(first_update_id)
        self._message_ids = itertools.count(1)
        self._mark: dict[int, int] = {}

    # --- acting -------------------------------------------------------------------------------

    async def feed(self, data: dict[str, Any]) -> Update:
        """Process one raw update dict (update_id added if missing)."""
        if self.on_update is not None:
            self.on_update()
        data = {"update_id": next(self._update_ids), **data}
        update = Update.de_json(data, self.app.bot)
        await self.app.process_update(update)
        return update

    def _message(self, user: FakeUser, chat: dict[str, Any], **extra: Any) -> dict[str, Any]:
        self._mark[int(chat["id"])] = len(self.request.sent(int(chat["id"])))
        return {
            "message_id": next(self._message_ids),
            "date": int(extra.pop("date", self.date).timestamp()),
            "chat": chat,
            "from": user.as_dict(),
            **extra,
        }

    async def send(
        self, user: FakeUser, text: str, *, group: dict[str, Any] | None = None, **extra: Any
    ) -> Update:
        """The user sends a text, in private or in `group` (commands get their bot_command entity)."""
        chat = group or {"id": user.id, "type": "private", "first_name": user.first_name}
        self._mark[int(chat["id"])] = len(self.request.sent(int(chat["id"])))
        extra = {"date": self.date, **extra}
        message = text_message(user, text, chat=chat, message_id=next(self._message_ids), **extra)
        return await self.feed({"message": message})

    async def send_raw(self, user: FakeUser, kind: str = "message", **payload: Any) -> Update:
        """The user sends a non-text message (sticker, photo, …) or an edit (`kind="edited_message"`)."""
        chat = {"id": user.id, "type": "private", "first_name": user.first_name}
        return await self.feed({kind: self._message(user, chat, **payload)})

    async def send_photo(self, user: FakeUser, file_id: str, size: int = 90) -> Update:
        """The user shares a photo."""
        photo = [{"file_id": file_id, "file_unique_id": f"u-{file_id}", "width": size, "height": size}]
        return await self.send_raw(user, photo=photo)

    async def send_location(self, user: FakeUser, latitude: float, longitude: float) -> Update:
        """The user shares a location."""
        return await self.send_raw(user, location={"latitude": latitude, "longitude": longitude})

    async def press(
        self,
        user: FakeUser,
        data: str,
        message_id: int = 1,
        *,
        group: dict[str, Any] | None = None,
        query_id: str | None = None,
        text: str = "…",
        date: datetime = datetime(2026, 5, 15, tzinfo=UTC),
    ) -> Update:
        """The user presses an inline button with callback data `data` (under a message in `group`)."""
        chat = group or {"id": user.id, "type": "private"}
        self._mark[int(chat["id"])] = len(self.request.sent(int(chat["id"])))
        return await self.feed(
            {
                "callback_query": {
                    "id": query_id or str(next(self._update_ids)),
                    "from": user.as_dict(),
                    "chat_instance": "ci",
                    "data": data,
                    "message": {
                        "message_id": message_id,
                        "date": int(date.timestamp()),
                        "chat": chat,
                        "text": text,
                    },
                }
            }
        )

    async def press_button(self, user: FakeUser, label: str) -> str:
        """Press the newest keyboard's button whose label holds `label`; returns its callback data."""
        message_id, buttons = self._last_markup(user.id)
        match = [data for text, data in buttons if label in text]
        assert match, f"{label!r} not among {[text for text, _ in buttons]}"
        await self.press(user, match[0], message_id=message_id)
        return match[0]

    async def press_token(self, user: FakeUser, token: str) -> str:
        """Press the newest keyboard's button whose data equals `token` or ends with `:token`."""
        message_id, data = self.last_keyboard(user)
        match = [d for d in data if d == token or d.endswith(f":{token}")]
        assert match, f"{token!r} not in {data}"
        await self.press(user, match[0], message_id=message_id)
        return match[0]

    async def ask(self, user: FakeUser, text: str) -> list[str]:
        """Send a text and return the texts the bot sent to that chat in answer."""
        await self.send(user, text)
        return self.said(user)

    async def tap(self, user: FakeUser, data: str) -> list[str]:
        """Press a button by callback data and return the texts the bot sent in answer."""
        await self.press(user, data)
        return self.said(user)

    # --- reading the screen -------------------------------------------------------------------

    def texts(self, chat: FakeUser | int) -> list[str]:
        """Every text sent (or edited in) to a user's private chat or to a chat id."""
        return self.request.texts(_chat_id(chat))

    def last_text(self, chat: FakeUser | int) -> str:
        """The newest text in a chat."""
        return self.texts(chat)[-1]

    def said(self, chat: FakeUser | int) -> list[str]:
        """The texts sent to a chat since its last message or button press."""
        chat_id = _chat_id(chat)
        return self.request.texts(chat_id)[self._mark.get(chat_id, 0) :]

    def _last_markup(self, chat_id: int) -> tuple[int, list[tuple[str, str]]]:
        for call in reversed(self.request.sent(chat_id)):
            markup = call.params.get("reply_markup")
            if markup and markup.get("inline_keyboard"):
                buttons = [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]
                return int(call.params.get("message_id") or 0), buttons
        raise AssertionError(f"no keyboard in chat {chat_id}: {self.request.texts(chat_id)[-3:]}")

    def last_keyboard(self, chat: FakeUser | int) -> tuple[int, list[str]]:
        """(message id, callback data) of the newest message with buttons in a chat."""
        message_id, buttons = self._last_markup(_chat_id(chat))
        return message_id, [data for _, data in buttons]

    def buttons(self, chat: FakeUser | int) -> list[tuple[str, str]]:
        """(label, callback data) of every button the bot sent to a chat since the last action there."""
        chat_id = _chat_id(chat)
        out = []
        for call in self.request.sent(chat_id)[self._mark.get(chat_id, 0) :]:
            markup = call.params.get("reply_markup")
            if markup and markup.get("inline_keyboard"):
                out += [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]
        assert out, "no keyboard"
        return out

    def tokens(self, user: FakeUser) -> list[str]:
        """The action tokens (callback data after the form prefix) of the newest keyboard."""
        return [d.split(":", 3)[-1] for d in self.last_keyboard(user)[1]]

    def answers(self) -> list[str | None]:
        """The texts of every answer to a button press (answerCallbackQuery), oldest first."""
        return [c.params.get("text") for c in self.request.calls if c.method == "answerCallbackQuery"]

    # --- walking a form -----------------------------------------------------------------------

    async def open_report(self, user: FakeUser) -> None:
        """/baocao and press the first report's button."""
        await self.send(user, "/baocao")
        await self.press_token(user, self.last_keyboard(user)[1][0])

    async def answer_until(
        self, user: FakeUser, stop: str = "confirm", *, text: str | None = None, limit: int = 80
    ) -> int:
        """Answer with small valid values until `stop` is offered; returns the answers given.

        Optional questions are answered with `text` (default: the client's `typed_answer`), or skipped.
        """
        text = text if text is not None else self.typed_answer
        choices = WALK_CHOICES if text is not None else (*WALK_CHOICES, "skip")
        for given in range(limit):
            tokens = self.tokens(user)
            if stop in tokens:
                return given
            for choice in choices:
                if choice in tokens:
                    await self.press_token(user, choice)
                    break
            else:
                if "t:0" in tokens:
                    await self.press_token(user, "t:0")
                    await self.press_token(user, "done")
                elif text is not None and "skip" in tokens and "⚠️" not in self.texts(user)[-1]:
                    await self.send(user, text)
                else:
                    await self.send(user, "3")
        raise AssertionError(f"never reached {stop}: {self.texts(user)[-2:]}")

    async def submit_report(self, user: FakeUser, text: str | None = None) -> None:
        """Fill and send the first open report (with `strict_submit`, every saved answer must arrive)."""
        await self.open_report(user)
        await self.answer_until(user, text=text)
        if not self.strict_submit:
            await self.press_token(user, "confirm")
            return
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

    # --- what the database holds --------------------------------------------------------------

    def village_id(self, name: str, commune: str | None = None) -> int:
        """A village's id."""
        with session_scope(self.engine) as s:
            return s.exec(
                select(Village.id)
                .join(Commune, Commune.id == Village.commune_id)
                .where(Village.name == name, Commune.code == (commune or self.commune))
            ).one()

    def period_id(
        self, commune: str | None = None, code: str = "2026-6T", form: str = "bao-cao-6-thang"
    ) -> int:
        """A period's id."""
        with session_scope(self.engine) as s:
            return s.exec(
                select(Period.id)
                .join(Commune, Commune.id == Period.commune_id)
                .where(Commune.code == (commune or self.commune), Period.code == code, Period.form_id == form)
            ).one()

    def drafts(self) -> list[Draft]:
        """Every draft, oldest first."""
        with session_scope(self.engine) as s:
            return list(s.exec(select(Draft).order_by(Draft.id)))

    def draft_of(self, village: str, commune: str | None = None) -> Draft:
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


def _chat_id(chat: FakeUser | int) -> int:
    return chat if isinstance(chat, int) else chat.id
