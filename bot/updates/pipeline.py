"""The per-update transaction every declared handler runs in (`run_update`): gate, session, chat lock,
update dedup, actor, need, handler, commit; then its own outbox rows at once (bot.updates.urgent), the
queued replies and the after-commit actions.

Design notes: docs/design-notes.md#botupdatespipelinepy
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from telegram import Update
from telegram.constants import ChatType
from telegram.error import RetryAfter
from telegram.ext import ContextTypes

from bot import metrics
from bot.auth import Need, load_actor
from bot.deps import Deps
from bot.services import reports
from bot.services.wording import actor_wording
from bot.texts.templates import render
from bot.texts.units import speaking_for
from bot.updates.context import Ctx
from bot.updates.replies import deliver, quietly
from bot.updates.urgent import send_urgent, with_notes
from storage import audit
from storage.db import session_scope
from storage.dialect import is_sqlite
from storage.locks import int32_key, try_advisory_xact_lock
from storage.processed_updates import first_delivery
from storage.sqlite_loop import begin_immediate, checkpoint, gated, rollback_if_open

log = logging.getLogger(__name__)

Handler = Callable[[Ctx], Awaitable[None]]
Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]

CHAT_LOCK_NAMESPACE = 0x62630001  # first key of the per-chat advisory locks ("bc", 1)
CHAT_LOCK_WAIT = 30.0  # seconds an update waits for another worker to finish its chat's update
_LOCK_POLL = (0.005, 0.25)  # first and longest sleep between two tries of a held chat lock


class ChatBusy(Exception):
    """Another worker held this chat's lock for longer than CHAT_LOCK_WAIT."""


class Declared(Protocol):
    """What the pipeline reads of a declared handler (bot.handlers.registry.Spec)."""

    @property
    def kind(self) -> str: ...
    @property
    def on(self) -> str: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def need(self) -> Need: ...
    @property
    def handler(self) -> Handler: ...
    @property
    def in_groups(self) -> bool: ...


def wrap(spec: Declared, deps: Deps, in_group: Handler) -> Callback:
    """The python-telegram-bot callback running `spec` through the pipeline; `in_group` answers a group chat
    when the handler is for private chats only."""

    async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await run_update(spec, deps, update, context, in_group)

    callback.__name__ = f"{spec.kind}:{spec.names[0]}"
    return callback


async def run_update(
    spec: Declared, deps: Deps, update: Update, context: ContextTypes.DEFAULT_TYPE, in_group: Handler
) -> None:
    """Handle one update (see the module doc) and log one line about it: never its contents."""
    started = time.perf_counter()
    handler = f"{spec.kind}:{spec.names[0]}"
    chat = update.effective_chat
    fields: dict[str, Any] = {"role": "stranger", "outcome": "error"}
    try:
        if spec.kind == "unhandled":  # nobody takes it: the log line and the count, no session, no reply
            fields.update(role="-", outcome="ignored")
            return
        fields["outcome"] = await _handle(spec, deps, update, context, fields, in_group)
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
    spec: Declared,
    deps: Deps,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    fields: dict[str, Any],
    in_group: Handler,
) -> str:
    """The work of `run_update`; returns the outcome (ok, refused, group, duplicate).

    The transaction runs in a worker thread (`in_db_thread`), so a slow, locked or hung database never stalls
    the event loop: other chats, the sends and /readyz go on. It may take `settings.update_timeout` seconds,
    waiting for SQLite's one-writer gate included; after that the person is told to try again in a few
    minutes (DatabaseUnavailable, answered by the application's error handler) and the transaction, should it
    ever go on, is rolled back instead of committed. On SQLite an answer's short transaction runs on the
    event loop itself when the write lock is free at once (`in_sqlite`), else in the writer thread as above.
    """
    now = deps.clock()
    user = update.effective_user
    chat = update.effective_chat
    deadline = time.monotonic() + deps.settings.update_timeout
    box: dict[str, Any] = {}
    sqlite = is_sqlite(deps.engine)
    answer = _answer_of(spec, update)  # what an answer reads; on PostgreSQL sent ahead with the claim
    ahead = reports.actor_and_draft_read(*answer) if answer is not None and not sqlite else None

    async def transaction(abandoned: threading.Event, bind: Any = deps.engine) -> str:
        with session_scope(bind) as session:  # `bind`: the engine, or SQLite's loop connection (in_sqlite)
            lock_id = chat.id if chat is not None else (user.id if user is not None else None)
            if not await claim_update(session, update.update_id, now, lock_id, read_ahead=ahead):
                return "duplicate"
            actor = _load_actor(session, update, answer)
            fields["role"] = ",".join(sorted(actor.roles)) or "stranger"
            ctx = box["ctx"] = Ctx(update, session, actor, deps, now, tuple(context.args or ()))
            with speaking_for(actor_wording(session, actor)):  # "thôn" or "tổ dân phố", "Công an xã" or …
                outcome = await _dispatch(ctx, spec, chat, in_group)
            if abandoned.is_set():  # the person was already told to try again: no commit behind their back
                raise DatabaseUnavailable("the update outlasted its time; rolled back")
            return outcome

    # SQLite has one writer: an answer's transaction on the event loop when the write lock is free at once,
    # the others (and an answer that found it held) in the one writer thread (Deps.db_writer), waiting in its
    # queue counted in the budget; PostgreSQL's run in the pool of update threads
    try:
        if sqlite:
            outcome = await in_sqlite(deps, transaction, deadline, try_loop=_is_answer(spec, update))
        else:
            outcome = await in_db_thread(transaction, max(0.0, deadline - time.monotonic()))
    except DatabaseUnavailable:
        fields["outcome"] = "db_timeout"
        raise
    if outcome == "duplicate":
        return outcome
    ctx = box["ctx"]
    bot = context.bot
    replies = ctx.replies
    if ctx.urgent and not await send_urgent(deps, bot, context.bot_data, ctx.urgent):
        replies = with_notes(replies)
    await deliver(
        bot,
        replies,
        chat_id=chat.id if chat is not None else None,
        query=ctx.update.callback_query,
        callback_answer=ctx.callback_answer,
        alongside=ctx.alongside,
    )
    for action in ctx.after_commit:
        await quietly(action, bot)
    return outcome


ANSWER_CALLBACK = "f"  # a form screen's button (bot.handlers.report.CB_FORM): `f:<draft id>:<seq>:<token>`


def _is_answer(spec: Declared, update: Update) -> bool:
    """Whether the update may be an answer to a form (a private text to the catch-all handler, a form
    button): the short transactions SQLite may run on the event loop (`in_sqlite`)."""
    if spec.kind == "callback":
        return spec.names[0] == ANSWER_CALLBACK
    chat = update.effective_chat
    return spec.kind == "message" and spec.on == "text" and chat is not None and chat.type == ChatType.PRIVATE


def _answer_of(spec: Declared, update: Update) -> tuple[int, int | None] | None:
    """(user id, draft id or None for the active draft) when the update may be an answer to a form (a private
    message to the catch-all handler, a form button): the draft `_load_actor` reads locked with the actor."""
    user = update.effective_user
    if user is None or not _is_answer(spec, update):
        return None
    if spec.kind != "callback":
        return user.id, None  # a text: the person's active draft, if any
    parts = (update.callback_query.data if update.callback_query else "").split(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and 0 < int(parts[1]) < 2**31:
        return user.id, int(parts[1])
    return None


def _load_actor(session: Any, update: Update, answer: tuple[int, int | None] | None) -> Any:
    """The sender (`load_actor`); for what may be an answer (`_answer_of`), with the draft it answers read
    locked in the same statement (`load_actor_with_draft`)."""
    if answer is not None:
        return reports.load_actor_with_draft(session, *answer)
    user = update.effective_user
    return load_actor(session, user.id if user is not None else None)


async def _dispatch(ctx: Ctx, spec: Declared, chat: Any, in_group: Handler) -> str:
    """Run the handler (or the group or refusal answer) for one update; returns the outcome."""
    if chat is not None and chat.type != ChatType.PRIVATE and not spec.in_groups:
        await in_group(ctx)
        return "group"
    if not ctx.actor.satisfies(spec.need):
        ctx.reply("auth/refused.html", need=str(spec.need), stranger=ctx.actor.is_stranger)
        ctx.callback_answer = render("auth/refused_short.html")
        _audit_refusal(ctx, spec)
        return "refused"
    await spec.handler(ctx)
    return "ok"


class DatabaseUnavailable(Exception):
    """An update's database work did not finish in time (a hung or locked database)."""


DB_THREADS = 16  # updates whose database work may run at once (each holds a pooled connection)
_EXECUTOR = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="update-db")
_LOCAL = threading.local()


def _run_in_thread(work: Callable[[threading.Event], Awaitable[Any]], abandoned: threading.Event) -> Any:
    """In a worker thread: drive the coroutine on that thread's own event loop (made once per thread)."""
    runner = getattr(_LOCAL, "runner", None)
    if runner is None:
        runner = _LOCAL.runner = asyncio.Runner()
    return runner.run(work(abandoned))


async def in_db_thread(
    work: Callable[[threading.Event], Awaitable[Any]],
    timeout: float,
    executor: Executor | None = None,
    on_done: Callable[[Any], None] | None = None,
) -> Any:
    """Run `work(abandoned)` in a worker thread of `executor` (the pool of update threads by default);
    DatabaseUnavailable after `timeout` seconds, the wait for a free thread included (then `abandoned` is
    set: the work must not commit). A try that never started is dropped. `on_done(future)` is called once
    the work is done, failed or dropped (from whichever thread)."""
    abandoned = threading.Event()
    call = functools.partial(contextvars.copy_context().run, _run_in_thread, work, abandoned)
    try:
        submitted = (executor or _EXECUTOR).submit(call)  # as loop.run_in_executor, with the thread's future
    except BaseException:  # not submitted (an executor shut down): done all the same
        if on_done is not None:
            on_done(None)
        raise
    if on_done is not None:
        submitted.add_done_callback(on_done)
    future = asyncio.wrap_future(submitted)
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError:
        abandoned.set()
        raise DatabaseUnavailable(f"database work took more than {timeout:.0f}s") from None


Transaction = Callable[[threading.Event, Any], Awaitable[Any]]
_LOCK_HELD = object()  # `_on_loop`: the write lock was not free at once


async def in_sqlite(deps: Deps, work: Transaction, deadline: float, *, try_loop: bool) -> Any:
    """Run SQLite's `work(abandoned, bind)` by `deadline` (time.monotonic): with `try_loop`, on the event loop
    once the process's write slot is free and if SQLite's write lock is free at once (`_on_loop`); otherwise,
    or when another connection holds that lock, in the writer thread holding the slot (`_in_writer`).
    DatabaseUnavailable when the time is up."""
    if try_loop and deps.write_slot.enabled:
        outcome = await _on_loop(deps, work, deadline)
        if outcome is not _LOCK_HELD:
            return outcome
    return await _in_writer(deps, work, deadline)


async def _on_loop(deps: Deps, work: Transaction, deadline: float) -> Any:
    """`work` on the loop's own connection inside `BEGIN IMMEDIATE` (storage.sqlite_loop): `_LOCK_HELD`
    without running it when another connection holds SQLite's write lock.

    Nothing here blocks the loop: the slot is awaited (`WriteSlot.take_for_loop`: the earlier loop
    transactions and the writer thread's work first), SQLite's lock is tried with a zero busy timeout. The
    work may still await (no other transaction runs in between: the slot stays held). Past `deadline`, the
    wait or the work is cancelled at its next await and rolled back (DatabaseUnavailable)."""
    slot = deps.write_slot
    limit = asyncio.timeout(max(0.0, deadline - time.monotonic()))
    try:
        async with limit:
            await slot.take_for_loop()
            try:
                conn = slot.connection(deps.engine)
                if conn is None:  # an in-memory database: the loop's connection would see another one
                    return _LOCK_HELD
                if not begin_immediate(conn):
                    slot.fallbacks += 1
                    return _LOCK_HELD
                try:
                    outcome = await work(threading.Event(), conn)
                finally:
                    rollback_if_open(conn)  # only after an error before the session took the transaction
                if slot.committed():
                    _queue_checkpoint(deps)
                return outcome
            finally:
                slot.release_loop()
    except TimeoutError:
        if limit.expired():
            raise DatabaseUnavailable("the update outlasted its time; rolled back") from None
        raise


async def _in_writer(deps: Deps, work: Transaction, deadline: float) -> Any:
    """`work` in the one writer thread (Deps.db_writer) on a pooled connection, once it holds the write
    slot; the wait in the queue and for the slot counted in the time left."""
    slot = deps.write_slot

    async def holding_slot(abandoned: threading.Event) -> Any:
        with slot.holding_gate(abandoned) as held:
            if not held:
                raise DatabaseUnavailable("the update waited past its time for the write slot")
            return await work(abandoned, deps.engine)

    slot.queued()
    slot.in_writer += 1
    return await in_db_thread(
        holding_slot, max(0.0, deadline - time.monotonic()), deps.db_writer, slot.finished
    )


def _queue_checkpoint(deps: Deps) -> None:
    """Queue a WAL checkpoint for the writer thread, holding the write slot (the loop's connection has none
    of its own: its fsyncs would stall the loop)."""
    slot = deps.write_slot
    log.info(
        "SQLite writes: %s answers on the loop, %s transactions in the writer thread, %s found the lock held",
        slot.on_loop,
        slot.in_writer,
        slot.fallbacks,
    )
    slot.queued()
    try:
        done = deps.db_writer.submit(
            gated, slot, threading.Event(), functools.partial(_checkpoint, deps.engine)
        )
    except RuntimeError:  # the executor shut down (the bot is stopping): no checkpoint
        slot.finished()
        return
    done.add_done_callback(slot.finished)


def _checkpoint(engine: Any) -> None:
    try:
        busy, frames, copied = checkpoint(engine)
    except Exception:  # a checkpoint that failed is tried again after the next CHECKPOINT_EVERY commits
        log.warning("WAL checkpoint failed", exc_info=True)
        return
    log.info("SQLite WAL checkpoint: busy %s, %s frames, %s copied", busy, frames, copied)


def chat_lock_key(chat_id: int) -> int:
    """The chat id hashed to the signed 32-bit second key of its advisory lock (a clash only serialises)."""
    return int32_key(chat_id)


def try_lock_chat(session: Any, chat_id: int) -> bool:
    """Try the chat's transaction-level advisory lock once; True when held (always on SQLite)."""
    return try_advisory_xact_lock(session, CHAT_LOCK_NAMESPACE, chat_lock_key(chat_id))


async def claim_update(
    session: Any,
    update_id: int,
    now: datetime,
    chat_id: int | None,
    *,
    wait: float = CHAT_LOCK_WAIT,
    read_ahead: tuple[Any, dict[str, Any]] | None = None,
) -> bool:
    """Hold the chat's advisory lock (as `lock_chat`) and record the update id, in one statement a try;
    False when the update was processed before (a redelivery). `read_ahead`: the read that follows, sent
    with the first try (`first_delivery`); a try that finds the lock held rolls back what that read locked."""
    if chat_id is None:
        return bool(first_delivery(session, update_id, now))
    lock = (CHAT_LOCK_NAMESPACE, chat_lock_key(chat_id))
    first = first_delivery(session, update_id, now, lock=lock, read_ahead=read_ahead)
    if first is not None:
        return first
    deadline = time.monotonic() + wait
    pause = _LOCK_POLL[0]
    log.debug("chat %s busy in another worker, waiting", chat_id)
    while time.monotonic() < deadline:
        if read_ahead is not None:  # the read sent ahead locked the draft without the chat's lock: let go
            session.rollback()  # of it, so the worker holding the lock is never kept waiting for it
        await asyncio.sleep(pause)
        first = first_delivery(session, update_id, now, lock=lock, read_ahead=read_ahead)
        if first is not None:
            return first
        pause = min(pause * 2, _LOCK_POLL[1])
    raise ChatBusy(f"chat {chat_id} still locked by another worker after {wait:g}s")


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


def _audit_refusal(ctx: Ctx, spec: Declared) -> None:
    audit.record(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        action="auth.refused",
        entity="handler",
        entity_id=f"{spec.kind}:{spec.names[0]}",
        need=str(spec.need),
    )
