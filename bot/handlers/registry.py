"""The handler registry: every command, button and message handler declares the role it needs.

`Registry.install(application)` turns the declarations into python-telegram-bot handlers wrapped
by one function (`_run`) that, for every update: skips a redelivered update, opens the one DB
session, loads the actor, checks the declared need, calls the handler, commits, and only then
sends the replies the handler queued. Handlers never open sessions or talk SQL themselves.

Several workers (processes or machines on one PostgreSQL) may handle updates of the same bot. Every
update's transaction starts by taking a transaction-level advisory lock on its chat
(`pg_try_advisory_xact_lock(CHAT_LOCK_NAMESPACE, crc32(<chat id>))` as signed 32-bit keys, retried with short
asynchronous sleeps so the event loop keeps serving while another worker finishes that chat's
update; given up after `CHAT_LOCK_WAIT` seconds with an error). Under that lock the update id is
checked and inserted into `processed_update` in the same transaction as the handler's writes: both
commit together or neither does, so a crash never marks an update without applying it, and a
redelivery — to this worker or another — waits for the first delivery's commit, then sees the id
and is skipped. The lock ends with the transaction (commit or rollback). Replies are sent after the
commit; the webhook answers Telegram after that (bot.web.app), and Telegram sends a chat's next
update only once the previous one was answered, so one chat's updates are applied one after the
other and in order (long polling: one process, one update at a time). SQLite has a single writer and a single supported process: no lock is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import metrics
from bot.auth import Actor, Need, load_actor
from bot.deps import Deps
from bot.views.templates import render
from storage.db import session_scope
from storage.models import ProcessedUpdate

log = logging.getLogger(__name__)

Handler = Callable[["Ctx"], Awaitable[None]]

CHAT_LOCK_NAMESPACE = 0x62630001  # first key of the per-chat advisory locks ("bc", 1)
CHAT_LOCK_WAIT = 30.0  # seconds an update waits for another worker to finish its chat's update
_LOCK_POLL = (0.005, 0.25)  # first and longest sleep between two tries of a held chat lock


class ChatBusy(Exception):
    """Another worker held this chat's lock for longer than CHAT_LOCK_WAIT."""


@dataclass(frozen=True)
class Button:
    """An inline button: a label and its callback data (≤ 64 bytes)."""

    label: str
    data: str


@dataclass
class Reply:
    """A message queued by a handler, sent after the transaction commits."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    chat_id: int | None = None  # default: the chat the update came from
    edit_message_id: int | None = None
    photo: str | None = None  # file_id: sent as a photo with `text` as caption
    location: tuple[float, float] | None = None  # sent as a map pin after `text`


@dataclass
class Ctx:
    """What a handler gets: the update, its session, the actor and a reply queue."""

    update: Update
    session: Any  # sqlmodel.Session
    actor: Actor
    deps: Deps
    now: datetime
    args: tuple[str, ...] = ()
    replies: list[Reply] = field(default_factory=list)
    callback_answer: str | None = None
    after_commit: list[Callable[[Any], Awaitable[None]]] = field(default_factory=list)
    # after the commit too, started once the first reply is out and run at the same time as the rest: calls
    # whose order against the chat's new messages does not matter (removing an old message's buttons, setting
    # the chat's command menu)
    alongside: list[Callable[[Any], Awaitable[None]]] = field(default_factory=list)

    @property
    def chat_id(self) -> int:
        """The chat the update came from."""
        return self.update.effective_chat.id  # type: ignore[union-attr]

    @property
    def sent_at(self) -> datetime:
        """When the person sent the message (Telegram's date), else now."""
        message = self.update.effective_message
        return message.date if message is not None and message.date is not None else self.now

    def reply(
        self,
        template: str,
        /,
        *,
        buttons: tuple[tuple[Button, ...], ...] = (),
        to_chat: int | None = None,
        **context: Any,
    ) -> None:
        """Queue a message rendered from `template` (to this chat unless `to_chat`)."""
        self.replies.append(Reply(render(template, **context), buttons, to_chat))

    def reply_html(
        self, text: str, buttons: tuple[tuple[Button, ...], ...] = (), *, to_chat: int | None = None
    ) -> None:
        """Queue an already rendered message (e.g. a form screen from bot.forms.view)."""
        self.replies.append(Reply(text, buttons, to_chat))

    def answer_callback(self, template: str, /, **context: Any) -> None:
        """Set the short toast shown when a button is pressed."""
        self.callback_answer = render(template, **context)


@dataclass(frozen=True)
class Spec:
    """A declared handler."""

    kind: str  # "command" | "callback" | "message"
    on: str  # for messages: "text" (non-command), "command" (unknown command), "edited"
    names: tuple[str, ...]  # command names, or the callback prefix
    need: Need
    handler: Handler = field(compare=False)
    in_menu: bool = True
    in_groups: bool = False


class Registry:
    """All handlers of the bot with their declared needs."""

    def __init__(self) -> None:
        self.specs: list[Spec] = []

    def command(
        self, *names: str, need: Need, in_menu: bool = True, in_groups: bool = False
    ) -> Callable[[Handler], Handler]:
        """Declare a command handler (first name is the main one, others are aliases)."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(Spec("command", "text", names, need, fn, in_menu, in_groups))
            return fn

        return decorate

    def callback(self, prefix: str, *, need: Need, in_groups: bool = False) -> Callable[[Handler], Handler]:
        """Declare a button handler for callback data `prefix:…` (in_groups: also in group chats)."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(
                Spec("callback", "text", (prefix,), need, fn, in_menu=False, in_groups=in_groups)
            )
            return fn

        return decorate

    def message(self, name: str, *, need: Need, on: str = "text") -> Callable[[Handler], Handler]:
        """Declare a private-chat fallback: `on` is "text" (any non-command), "command" or "edited"."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(Spec("message", on, (name,), need, fn, in_menu=False))
            return fn

        return decorate

    def commands_for(self, actor: Actor) -> list[Spec]:
        """Menu commands this actor may use."""
        return [s for s in self.specs if s.kind == "command" and s.in_menu and actor.satisfies(s.need)]

    def install(self, application: Application, deps: Deps) -> None:
        """Register every spec with python-telegram-bot, each wrapped by `_run`."""
        private = filters.ChatType.PRIVATE
        for spec in self.specs:
            callback = _wrap(spec, deps)
            if spec.kind == "command":
                application.add_handler(
                    CommandHandler(list(spec.names), callback, filters=filters.UpdateType.MESSAGE)
                )
            elif spec.kind == "callback":
                application.add_handler(CallbackQueryHandler(callback, pattern=rf"^{spec.names[0]}(:|$)"))
        chosen = {
            "text": private & filters.UpdateType.MESSAGE & ~filters.COMMAND,
            "command": filters.UpdateType.MESSAGE & filters.COMMAND,
            "edited": private & filters.UpdateType.EDITED_MESSAGE,
        }
        for spec in self.specs:
            if spec.kind == "message":
                application.add_handler(MessageHandler(chosen[spec.on], _wrap(spec, deps)))
        for spec in self.specs:
            if spec.kind == "stale_button":
                application.add_handler(CallbackQueryHandler(_wrap(spec, deps)))
        for spec in self.specs:  # last of all: whatever no handler above took
            if spec.kind == "unhandled":
                application.add_handler(TypeHandler(Update, _wrap(spec, deps)))

    def unhandled(self, *, need: Need) -> Callable[[Handler], Handler]:
        """Declare the handler for updates nothing else takes (a group's chatter, a member change, a channel
        post), so that each of them too gets its log line and its count. `_run` does only that for them: no
        database work (an outage must not make the bot answer chatter with an error), no reply."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(
                Spec("unhandled", "update", ("update",), need, fn, in_menu=False, in_groups=True)
            )
            return fn

        return decorate

    def stale_button(self, *, need: Need) -> Callable[[Handler], Handler]:
        """Declare the handler for button presses no other handler claims (old keyboards)."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(Spec("stale_button", "text", ("stale",), need, fn, in_menu=False))
            return fn

        return decorate


def _wrap(spec: Spec, deps: Deps) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
    async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await _run(spec, deps, update, context)

    callback.__name__ = f"{spec.kind}:{spec.names[0]}"
    return callback


async def _run(spec: Spec, deps: Deps, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handle one update (see the module doc) and log one line about it: never its contents."""
    started = time.perf_counter()
    handler = f"{spec.kind}:{spec.names[0]}"
    chat = update.effective_chat
    fields: dict[str, Any] = {"role": "stranger", "outcome": "error"}
    try:
        if spec.kind == "unhandled":  # nobody takes it: the log line and the count, no session, no reply
            fields.update(role="-", outcome="ignored")
            return
        fields["outcome"] = await _handle(spec, deps, update, context, fields)
    except Exception as err:
        if isinstance(err, RetryAfter):
            metrics.record_429()
        raise
    finally:
        seconds = time.perf_counter() - started
        metrics.record_update(handler, fields["outcome"], seconds)
        log.info(
            "update %s chat %s role %s handler %s %.1fms %s",
            update.update_id,
            chat.id if chat else None,
            fields["role"],
            handler,
            seconds * 1000,
            fields["outcome"],
            extra={
                "update_id": update.update_id,
                "chat_id": chat.id if chat else None,
                "role": fields["role"],
                "handler": handler,
                "duration_ms": round(seconds * 1000, 1),
                "outcome": fields["outcome"],
            },
        )


async def _handle(
    spec: Spec, deps: Deps, update: Update, context: ContextTypes.DEFAULT_TYPE, fields: dict[str, Any]
) -> str:
    """The work of `_run`; returns the outcome (ok, refused, group, duplicate)."""
    now = deps.clock()
    user = update.effective_user
    chat = update.effective_chat
    gate = deps.db_gate if deps.engine.dialect.name == "sqlite" else contextlib.nullcontext()
    async with gate:  # updates of other chats run meanwhile (their sends, or their whole work on PostgreSQL)
        with session_scope(deps.engine) as session:
            lock_id = chat.id if chat is not None else (user.id if user is not None else None)
            if lock_id is not None:
                await lock_chat(session, lock_id)
            if not _first_delivery(session, update.update_id, now):
                return "duplicate"
            actor = load_actor(session, user.id if user else None)
            fields["role"] = ",".join(sorted(actor.roles)) or "stranger"
            ctx = Ctx(update, session, actor, deps, now, tuple(context.args or ()))
            if chat is not None and chat.type != ChatType.PRIVATE and not spec.in_groups:
                from bot.handlers.groups import answer_group

                outcome = "group"
                await answer_group(ctx)
            elif not actor.satisfies(spec.need):
                outcome = "refused"
                ctx.reply("auth/refused.html", need=str(spec.need), stranger=actor.is_stranger)
                ctx.callback_answer = render("auth/refused_short.html")
                _audit_refusal(ctx, spec)
            else:
                outcome = "ok"
                await spec.handler(ctx)
    await _deliver(ctx, context)
    for action in ctx.after_commit:
        await _quietly(action, context.bot)
    return outcome


async def _quietly(action: Callable[[Any], Awaitable[None]], bot: Any) -> None:
    """Run an after-commit action; its failure is logged and stops nothing else."""
    try:
        await action(bot)
    except Exception:
        log.warning("after-commit action failed", exc_info=True)


def chat_lock_key(chat_id: int) -> int:
    """The chat id hashed to the signed 32-bit second key of its advisory lock (a clash only serialises)."""
    folded = zlib.crc32(str(chat_id).encode())
    return folded - (1 << 32) if folded >= 1 << 31 else folded


_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:ns, :key)")


def try_lock_chat(session: Any, chat_id: int) -> bool:
    """Try the chat's transaction-level advisory lock once; True when held (always on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(
        session.execute(_TRY_LOCK, {"ns": CHAT_LOCK_NAMESPACE, "key": chat_lock_key(chat_id)}).scalar_one()
    )


async def lock_chat(session: Any, chat_id: int, *, wait: float = CHAT_LOCK_WAIT) -> None:
    """Hold the chat's advisory lock until the transaction ends, waiting without blocking the loop."""
    if try_lock_chat(session, chat_id):
        return
    deadline = time.monotonic() + wait
    pause = _LOCK_POLL[0]
    log.debug("chat %s busy in another worker, waiting", chat_id)
    while time.monotonic() < deadline:
        await asyncio.sleep(pause)
        if try_lock_chat(session, chat_id):
            return
        pause = min(pause * 2, _LOCK_POLL[1])
    raise ChatBusy(f"chat {chat_id} still locked by another worker after {wait:g}s")


def _first_delivery(session: Any, update_id: int, now: datetime) -> bool:
    """Record the update id; False when it was processed before (a redelivery).

    One `INSERT … ON CONFLICT DO NOTHING` in the update's own transaction: on PostgreSQL a second worker
    inserting the same id waits for the first one's transaction and then inserts nothing (or inserts, if
    the first rolled back), so the mark and the handler's writes are committed together or not at all.
    """
    stmt = _MARK_UPDATE["postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"]
    return session.execute(stmt, {"uid": update_id, "at": now}).first() is not None


UPDATE_IDS_KEPT = timedelta(days=7)  # Telegram re-sends an unanswered update for 24 hours at most


def forget_old_updates(
    session: Any, now: datetime, keep: timedelta = UPDATE_IDS_KEPT, *, limit: int = 10_000
) -> int:
    """Delete at most `limit` update ids recorded before `now - keep` (none can come back by then); how many.

    In batches, so that a first clean-up of a long history never holds SQLite's write lock for long.
    """
    table = ProcessedUpdate.__table__
    oldest = select(table.c.update_id).where(table.c.processed_at < now - keep).limit(limit)
    result = session.execute(delete(table).where(table.c.update_id.in_(oldest.scalar_subquery())))
    return int(result.rowcount or 0)


def _mark_update(insert: Any) -> Any:
    """The `_first_delivery` statement for one dialect's INSERT, built once (values bound per call)."""
    table = ProcessedUpdate.__table__
    return (
        insert(table)
        .values(
            update_id=bindparam("uid", type_=table.c.update_id.type),
            processed_at=bindparam("at", type_=table.c.processed_at.type),
        )
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(table.c.update_id)  # a row back = inserted (rowcount is -1 on psycopg)
    )


_MARK_UPDATE = {"postgresql": _mark_update(postgresql_insert), "sqlite": _mark_update(sqlite_insert)}


def _audit_refusal(ctx: Ctx, spec: Spec) -> None:
    from storage import audit

    audit.record(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        action="auth.refused",
        entity="handler",
        entity_id=f"{spec.kind}:{spec.names[0]}",
        need=str(spec.need),
    )


def keyboard(buttons: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    """Inline keyboard markup for queued buttons."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in buttons]
    )


async def _deliver(ctx: Ctx, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the queued replies in order (after commit), answering the pressed button at the same time."""
    query = ctx.update.callback_query
    if query is None:
        await _send_replies(ctx, context)
        return
    # both round trips at once; wait for both, then raise what the replies raised (the answer logs its own)
    sent, _ = await asyncio.gather(
        _send_replies(ctx, context), _answer_query(query, ctx.callback_answer), return_exceptions=True
    )
    if isinstance(sent, BaseException):
        raise sent


async def _answer_query(query: Any, text: str | None) -> None:
    """Stop the pressed button's spinner; an expired query must not stop the replies."""
    try:
        await query.answer(text)
    except Exception:
        log.warning("could not answer callback query", exc_info=True)


async def _send_replies(ctx: Ctx, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The queued replies, one after the other (the chat shows them in this order); the `alongside` calls
    start once the first reply is out — the next question goes before a cosmetic edit that counts against the
    same per-chat flood limit — and still run when a reply fails, which is raised after them."""
    bot = context.bot
    started: list[asyncio.Task[None]] = []

    def start_alongside() -> None:
        if not started:
            started.extend(asyncio.create_task(_quietly(action, bot)) for action in ctx.alongside)

    try:
        for reply in ctx.replies:
            await _send_reply(bot, reply, reply.chat_id if reply.chat_id is not None else ctx.chat_id)
            start_alongside()
    except asyncio.CancelledError:  # shutdown: stop the alongside calls too, and wait until they have
        for task in started:
            task.cancel()
        await asyncio.gather(*started, return_exceptions=True)
        raise
    except Exception:
        start_alongside()
        await asyncio.gather(*started)
        raise
    start_alongside()
    await asyncio.gather(*started)


async def _send_reply(bot: Any, reply: Reply, chat_id: int) -> None:
    """One queued reply: a message (or an edit), a photo with its caption, or a message and its map pin."""
    if reply.photo is not None:
        await _retrying(
            lambda: bot.send_photo(chat_id, reply.photo, caption=reply.text[:1024], parse_mode=ParseMode.HTML)
        )
        return
    if reply.location is not None:
        latitude, longitude = reply.location
        await _retrying(lambda: bot.send_message(chat_id, reply.text, parse_mode=ParseMode.HTML))
        await _retrying(lambda: bot.send_location(chat_id, latitude=latitude, longitude=longitude))
        return
    markup = keyboard(reply.buttons)
    if reply.edit_message_id is not None:
        message_id = reply.edit_message_id
        await _retrying(
            lambda: bot.edit_message_text(
                reply.text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
        )
        return
    await _retrying(
        lambda: bot.send_message(chat_id, reply.text, parse_mode=ParseMode.HTML, reply_markup=markup)
    )


REPLY_TRIES = 3  # a reply is tried this often on flood control (429) and network errors, then given up
REPLY_WAIT_CAP = 30.0  # seconds: longest wait for one retry_after; the chat's next update waits meanwhile


async def _retrying(send: Callable[[], Awaitable[Any]]) -> Any:
    """Send a reply, waiting out 429s and retrying network errors (a reply lost after the commit would
    leave the person without their next question). A timeout may have been delivered: at worst the
    same question arrives twice, which the person can ignore; a missing one they cannot see."""
    for attempt in range(1, REPLY_TRIES + 1):
        try:
            return await send()
        except RetryAfter as err:
            if attempt == REPLY_TRIES:
                raise
            from bot.reminders.dispatch import retry_seconds

            metrics.record_429()
            wait = min(retry_seconds(err), REPLY_WAIT_CAP)
            log.warning("reply: flood control, retrying in %.1fs (try %d of %d)", wait, attempt, REPLY_TRIES)
            await asyncio.sleep(wait)
        except BadRequest:
            raise
        except NetworkError as err:  # includes TimedOut; BadRequest (also a NetworkError) is final
            if attempt == REPLY_TRIES:
                raise
            wait = 0.5 * 2**attempt
            # the class only: an aiohttp error's message can hold the request URL, and with it the token
            log.warning(
                "reply: %s, retrying in %.1fs (try %d of %d)", type(err).__name__, wait, attempt, REPLY_TRIES
            )
            await asyncio.sleep(wait)
    return None


REGISTRY = Registry()
