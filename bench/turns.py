"""Benchmark conversation turns: our bot against a bare python-telegram-bot echo bot, and latency over HTTP.

In process (`--mode inprocess`): a throw-away database (a temporary SQLite file, or a PostgreSQL database
created next to --pg-url and dropped at the end) gets one commune of --heads villages with the shipped
forms and an open period of `bao-cao-6-thang`; every head joins with an invite. Then, head after head,
the real application (`bot.app.build_application`: the registry, its handlers, the DB session per
update) is fed a whole report — /baocao, the period's button, every question answered (each answer
saved to the draft), confirm — through `Application.process_update` with an offline recording request
(tests/support/telegram.py: no network). After each of our updates, a bare echo bot (an Application
with one MessageHandler that replies with the same text, same request class) processes one text
update, so both are measured in the same run, turn for turn. Only `process_update` is timed; the first
head is a warm-up. A third bot, the echo bot plus one INSERT committed per message through SQLAlchemy
Core, and a fourth, the same INSERT straight through the driver (sqlite3/psycopg, one open connection),
show the floor of any bot that saves each answer. Offline, a fifth, the **mirror** bot, gets the same
update as ours (text or press) and does what our turn must do at the least: the same INSERT through the
driver, then exactly the Bot API calls our bot made for that update (methods, texts, keyboards), with no
logic: its ratio to the bare echo is the floor of a bot with our obligations, and 2x (3x) the echo minus it
is what the target leaves for everything else. `--profile pyinstrument` (`pip install -e ".[bench]"`) or
`--profile cprofile` adds a profiled pass over 8 more heads of our bot (not timed). `--transport http`:
the same four bots, but each talks to the Bot API emulator (a child process) over HTTP with PTB's
HTTPXRequest, as a deployed bot talks to Telegram, and the users' texts and presses are made into
updates by the emulator (untimed); the CPU this process spent in each turn is reported beside wall time.

Over HTTP (`--mode latency`): the Bot API emulator in a child process, the real bot (`baocao run`,
reminders off: BAOCAO_TICK_SECONDS=0) in another, and --users village heads (a generated setup file
applied with `baocao setup`, invites issued with `bot.services.accounts.create_invite`) who start,
open the report, then all answer --turns questions at once. Latency is from just before the user's
message is posted to the emulator until the emulator records the bot's first sendMessage in that chat.
`--py-spy PREFIX` samples the bot process with py-spy for the whole run and adds its hottest functions.

Gate 1 of issue 18 (`--mode gate`): --rounds rounds of the bare echo bot (its own process polling the
emulator; each of --users heads sends --turns texts, each after the echo of the one before), then the
latency run above on each backend; a round's ratio is the echo's turns/s over ours; medians of the rounds.
`--before TREE` also runs the bot of another checkout (PYTHONPATH=TREE) in every round.

    .venv/bin/python bench/turns.py                              # in process, SQLite and PostgreSQL
    .venv/bin/python bench/turns.py --mode inprocess --backend sqlite --heads 20 --profile cprofile
    .venv/bin/python bench/turns.py --mode inprocess --backend both --heads 10 --transport http
    .venv/bin/python bench/turns.py --mode latency --users 500 --turns 10 --backend sqlite --py-spy /tmp/spy
    .venv/bin/python bench/turns.py --mode gate --users 300 --turns 10 --rounds 3 --before /tmp/turns-before
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "777000:BenchTokenBenchTokenBenchToken00"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST_UID = 20_000_001
ECHO_UID_OFFSET = 1_000_000_000  # the echo bots' user: head + this
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
HANDLER_MS = re.compile(r"handler \S+ ([\d.]+)ms|\bms=([\d.]+)")
CHOICES = ("submit", "more:n", "ok:0", "d:yday", "c:0", "n", "skip")  # as tests/test_report_conversation.py


# --------------------------------------------------------------------------- databases and setup


@contextlib.contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    """A migrated, empty throw-away database URL (removed afterwards)."""
    from throwaway_db import database as throwaway

    with throwaway(backend, pg_url, "turns") as url:
        yield url


def village_name(i: int) -> str:
    """The i-th generated village."""
    return f"Thôn Thử Nghiệm {i + 1}"


def write_setup(folder: Path, villages: int, now: datetime) -> Path:
    """A setup file: one commune of `villages` villages, the shipped forms, a period open now."""
    shutil.copytree(ROOT / "deploy" / "forms", folder / "forms", dirs_exist_ok=True)
    opens = (now - timedelta(days=1)).astimezone(HCM)
    due = (now + timedelta(days=10)).astimezone(HCM)
    names = "\n".join(f"      - {village_name(i)}" for i in range(villages))
    text = f"""version: 1
communes:
  - code: xa-thu
    name: Xã Thử Nghiệm
    province: Tỉnh Thử
    police_chats:
      - chat_id: -100777
        title: Công an xã Thử Nghiệm
    villages:
{names}
    forms: [forms/bao-cao-6-thang.yaml, forms/bao-cao-nam.yaml, forms/su-co.yaml]
    schedules:
      - form: bao-cao-6-thang
        main: true
        periods:
          - id: "BENCH-6T"
            label: "Kỳ thử nghiệm"
            opens: "{opens:%d/%m/%Y}"
            due_before: "{due:%d/%m/%Y}"
"""
    path = folder / "setup.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def apply_setup_file(url: str, path: Path, now: datetime) -> None:
    """What `baocao setup` does, in process."""
    from bot.services.forms import store_setup_forms
    from bot.services.setup import apply_setup
    from bot.setup_file import load_setup
    from storage.db import make_engine, session_scope

    result = load_setup(path)
    if result.errors:
        raise SystemExit("\n".join(map(str, result.errors)))
    engine = make_engine(url)
    with session_scope(engine) as s:
        apply_setup(s, result.setup, now=now, actor="bench")
        store_setup_forms(s, result.setup, now=now, actor="bench")
    engine.dispose()


def issue_invites(url: str, count: int, now: datetime) -> list[str]:
    """One village-head invite code per generated village."""
    from bot.services.accounts import create_invite
    from storage.db import make_engine, session_scope
    from storage.models import Role

    engine = make_engine(url)
    codes = []
    with session_scope(engine) as s:
        for i in range(count):
            issued = create_invite(s, role=Role.VILLAGE_HEAD, village=village_name(i), now=now, actor="bench")
            codes.append(issued.code)
    engine.dispose()
    return codes


def next_action(tokens: list[str]) -> tuple[str, str] | None:
    """What a head does on a screen: ("press", token) or ("send", text); None at the confirm screen."""
    if "confirm" in tokens:
        return None
    for choice in CHOICES:
        if choice in tokens:
            return ("press", choice)
    if "t:0" in tokens:
        return ("press", "t:0")
    return ("send", "3")


# --------------------------------------------------------------------------- in process


@dataclass
class Timings:
    """Seconds spent in process_update, by kind of turn."""

    by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu: list[float] = field(default_factory=list)  # this process's CPU seconds in process_update

    def add(self, kind: str, seconds: float, cpu: float = 0.0) -> None:
        """Record one turn."""
        self.by_kind[kind].append(seconds)
        self.cpu.append(cpu)

    @property
    def all(self) -> list[float]:
        """Every turn."""
        return [s for values in self.by_kind.values() for s in values]


class Driver:
    """Feeds raw updates to an Application, timing `process_update` only.

    Offline, the updates are made up here; over the wire (`emu`, an EmulatorClient) the emulator makes
    them — the user's text or press goes through its control API first, untimed — and the bot's replies
    travel to it over HTTP.
    """

    def __init__(self, app: Any, request: Any, emu: Any = None) -> None:
        self.app, self.request, self.emu = app, request, emu
        self.update_id = 0
        self.message_id = 0
        self.last_cpu = 0.0
        self.last_update: dict[str, Any] = {}  # the update just processed, without its id
        self.last_calls: list[Any] = []  # the Bot API calls it made (offline: RecordingRequest's Calls)

    def _message(self, uid: int, text: str) -> dict[str, Any]:
        self.message_id += 1
        message: dict[str, Any] = {
            "message_id": self.message_id,
            "date": int(time.time()),
            "chat": {"id": uid, "type": "private", "first_name": "Trưởng thôn"},
            "from": {"id": uid, "is_bot": False, "first_name": "Trưởng thôn", "language_code": "vi"},
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return {"message": message}

    def _press(self, uid: int, data: str, message_id: int) -> dict[str, Any]:
        return {
            "callback_query": {
                "id": str(self.update_id + 1),
                "from": {"id": uid, "is_bot": False, "first_name": "Trưởng thôn"},
                "chat_instance": "ci",
                "data": data,
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": uid, "type": "private"},
                    "text": "…",
                },
            }
        }

    async def feed(self, data: dict[str, Any]) -> float:
        """Process one update; seconds spent in process_update."""
        from telegram import Update

        if "update_id" in data:  # made by the emulator
            data = {k: v for k, v in data.items() if k != "update_id"}
        self.update_id += 1
        update = Update.de_json({"update_id": self.update_id, **data}, self.app.bot)
        before = len(self.request.calls)
        cpu = time.process_time()
        started = time.perf_counter()
        await self.app.process_update(update)
        seconds = time.perf_counter() - started
        self.last_cpu = time.process_time() - cpu
        self.last_update, self.last_calls = data, self.request.calls[before:]
        return seconds

    async def replay(self, uid: int, update: dict[str, Any], calls: list[Any]) -> float:
        """Feed `update` (made for another chat) as this driver's chat `uid`, the bot to make `calls`."""
        data = json.loads(json.dumps(update))
        kind = "message" if "message" in data else "callback_query"
        data[kind]["from"]["id"] = uid
        (data[kind] if kind == "message" else data[kind]["message"])["chat"]["id"] = uid
        self.app.bot_data["replay"] = calls
        return await self.feed(data)

    async def send(self, uid: int, text: str) -> float:
        """The user sends a text."""
        if self.emu is not None:
            return await self.feed(self.emu.send_text(uid, text)["update"])
        return await self.feed(self._message(uid, text))

    async def press(self, uid: int, data: str, message_id: int) -> float:
        """The user presses a button."""
        if self.emu is not None:
            return await self.feed(self.emu.press(uid, message_id, data=data)["update"])
        return await self.feed(self._press(uid, data, message_id))

    def last_keyboard(self, uid: int) -> tuple[int, list[str]]:
        """(message id, callback data) of the newest message with buttons sent to this chat."""
        for call in reversed(self.request.calls):
            if call.method not in ("sendMessage", "editMessageText") or int(call.params["chat_id"]) != uid:
                continue
            markup = call.params.get("reply_markup")
            if markup and markup.get("inline_keyboard"):
                data = [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
                return int(call.params.get("message_id") or getattr(call, "message_id", 0) or 0), data
        raise RuntimeError(f"no keyboard for {uid}")


@dataclass
class WireCall:
    """A Bot API call made over HTTP, as RecordingRequest keeps them offline."""

    method: str
    params: dict[str, Any]
    message_id: int = 0


def wire_request(client: str = "httpx") -> Any:
    """A real HTTPXRequest (or, `client` "aiohttp", our AiohttpRequest) that also keeps the calls carrying a
    keyboard (with the message id Telegram — here the emulator — gave back), so the driver can press the
    buttons."""
    from telegram.request import HTTPXRequest

    from bot.telegram_request import AiohttpRequest

    base: Any = AiohttpRequest if client == "aiohttp" else HTTPXRequest

    class WireRequest(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(connection_pool_size=4)
            self.calls: list[WireCall] = []

        async def do_request(self, url: str, method: str, request_data: Any = None, **kwargs: Any) -> Any:
            status, body = await super().do_request(url, method, request_data=request_data, **kwargs)
            params = dict(request_data.json_parameters) if request_data else {}
            if "reply_markup" in params:
                markup = json.loads(params["reply_markup"])
                result = json.loads(body).get("result")
                message_id = result.get("message_id", 0) if isinstance(result, dict) else 0
                name = url.rsplit("/", 1)[-1]
                self.calls.append(WireCall(name, {**params, "reply_markup": markup}, message_id))
            return status, body

    return WireRequest()


def build_echo(request: Any, engine: Any = None, base_url: str | None = None, *, raw: bool = False) -> Any:
    """The bare python-telegram-bot bot: one MessageHandler replying with the same text.

    With `engine`: the same, plus one INSERT committed per message through SQLAlchemy Core; with `raw`
    too, the INSERT goes straight through the database driver on one connection kept open (sqlite3 with
    our pragmas, or psycopg) — the floor of any bot that durably saves each answer.
    """
    from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, Text, insert
    from telegram import Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    table = None
    driver: Any = None
    if engine is not None:
        table = Table(
            "bench_echo",
            MetaData(),
            Column("id", Integer, primary_key=True),
            Column("chat_id", BigInteger),
            Column("text", Text),
        )
        table.create(engine, checkfirst=True)
        if raw:
            driver = engine.raw_connection().driver_connection  # checked out for good: no pool per turn
    marker = "?" if engine is not None and engine.dialect.name == "sqlite" else "%s"
    raw_insert = f"INSERT INTO bench_echo (chat_id, text) VALUES ({marker}, {marker})"

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        if driver is not None:
            driver.execute(raw_insert, (message.chat_id, message.text))
            driver.commit()
        elif table is not None:
            with engine.begin() as conn:
                conn.execute(insert(table).values(chat_id=message.chat_id, text=message.text))
        await message.reply_text(message.text)  # type: ignore[arg-type]

    builder = Application.builder().token(TOKEN)
    if base_url is not None:
        builder = builder.base_url(base_url)
    app = (
        builder.request(request).get_updates_request(request).updater(None).concurrent_updates(False).build()
    )
    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


def build_mirror(request: Any, engine: Any) -> Any:
    """The floor of a bot with our bot's obligations: for each update it commits one INSERT straight
    through the driver (as the fourth bot) and makes exactly the Bot API calls our bot made for the same
    update (same methods, texts and keyboards, posted from plain dicts as `do_api_request` does), with no
    logic at all: no lookup, no lock, no engine, no template."""
    from telegram import Message, Update
    from telegram.ext import Application, ContextTypes, TypeHandler

    driver = engine.raw_connection().driver_connection
    marker = "?" if engine.dialect.name == "sqlite" else "%s"
    raw_insert = f"INSERT INTO bench_echo (chat_id, text) VALUES ({marker}, {marker})"
    returns_message = {"sendMessage", "editMessageText", "editMessageReplyMarkup"}

    async def mirror(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        driver.execute(raw_insert, (chat.id, update.effective_message.text if update.message else ""))
        driver.commit()
        for call in context.bot_data["replay"]:
            # what Bot.do_api_request does, minus its "use Bot.send_message" warning on every call
            result = await context.bot._post(call.method, api_kwargs=dict(call.params))
            if call.method in returns_message and isinstance(result, dict):
                Message.de_json(result, context.bot)

    app = Application.builder().token(TOKEN).request(request).get_updates_request(request).updater(None)
    app = app.concurrent_updates(False).build()
    app.add_handler(TypeHandler(Update, mirror))
    return app


async def walk(
    ours: Driver,
    uid: int,
    timings: Timings | None,
    others: list[tuple[Driver, Timings]],
    mirror: tuple[Driver, Timings] | None = None,
) -> int:
    """One head files the whole report; after each of our turns every other bot does one, and the mirror
    bot (offline) the same update with our turn's Bot API calls. Returns turns."""
    turns = 0

    async def step(kind: str, seconds: float) -> None:
        nonlocal turns
        turns += 1
        if timings is not None:
            timings.add(kind, seconds, ours.last_cpu)
        for driver, other_t in others:
            other_seconds = await driver.send(uid + ECHO_UID_OFFSET, "3")
            if timings is not None:
                other_t.add("echo", other_seconds, driver.last_cpu)
        if mirror is not None:
            driver, mirror_t = mirror
            mirror_seconds = await driver.replay(uid + ECHO_UID_OFFSET, ours.last_update, ours.last_calls)
            if timings is not None:
                mirror_t.add(kind, mirror_seconds, driver.last_cpu)

    await step("/baocao", await ours.send(uid, "/baocao"))
    message_id, data = ours.last_keyboard(uid)
    await step("pick period", await ours.press(uid, data[0], message_id))
    for _ in range(200):
        message_id, data = ours.last_keyboard(uid)
        tokens = [d.split(":", 3)[-1] for d in data]
        action = next_action(tokens)
        if action is None:
            token = data[tokens.index("confirm")]
            await step("confirm (submit)", await ours.press(uid, token, message_id))
            return turns
        if action[0] == "press":
            token = data[tokens.index(action[1])]
            await step("answer: button", await ours.press(uid, token, message_id))
            if action[1] == "t:0":
                message_id, data = ours.last_keyboard(uid)
                done = next(d for d in data if d.endswith(":done"))
                await step("answer: button", await ours.press(uid, done, message_id))
        else:
            await step("answer: text", await ours.send(uid, action[1]))
    raise RuntimeError(f"head {uid} never reached confirm")


async def run_inprocess(
    url: str,
    heads: int,
    profile: str | None,
    transport: str = "offline",
    mirror: bool = True,
    http_client: str = "aiohttp",
) -> dict[str, Any]:
    """Turns per second, ours vs the bare echo bot, interleaved turn by turn.

    `transport` "offline": every bot's Bot API calls are answered by RecordingRequest in memory (a send
    costs nothing but PTB's own work); "http": every bot talks to the emulator (a child process) over
    HTTP with PTB's HTTPXRequest, as a deployed bot talks to Telegram, and the users' updates are made
    by the emulator.
    """
    if transport == "http":
        with emulator_process() as (emu_url, _):
            return await _run_inprocess(url, heads, profile, emu_url, False, http_client)
    return await _run_inprocess(url, heads, profile, None, mirror, http_client)


async def _run_inprocess(
    url: str, heads: int, profile: str | None, emu_url: str | None, with_mirror: bool, http_client: str
) -> dict[str, Any]:
    from bot.app import build_application
    from bot.clock import system_clock
    from bot.config import settings_from
    from bot.deps import Deps
    from storage.db import make_engine
    from tests.support.telegram import TOKEN as HARNESS_TOKEN
    from tests.support.telegram import RecordingRequest

    now = datetime.now(UTC)
    extra = 8 if profile else 0
    total = heads + 1 + extra  # +1 warm-up head
    with tempfile.TemporaryDirectory(prefix="baocao-turns-") as tmp:
        apply_setup_file(url, write_setup(Path(tmp), total, now), now)
    codes = issue_invites(url, total, now)
    emu = None
    if emu_url is None:
        settings = settings_from({"TELEGRAM_BOT_TOKEN": HARNESS_TOKEN, "DATABASE_URL": url})
        request, echo_request, db_request = RecordingRequest(), RecordingRequest(), RecordingRequest()
    else:
        from bot.emulator.client import EmulatorClient

        settings = settings_from(
            {"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": url, "TELEGRAM_API_URL": emu_url}
        )
        # ours with its own client (BAOCAO_HTTP_CLIENT's default unless --http-client), the echo bots with PTB's
        request, echo_request, db_request = wire_request(http_client), wire_request(), wire_request()
        emu = EmulatorClient(emu_url)
        for i in range(total):
            emu.add_user(FIRST_UID + i, "Trưởng thôn")
            emu.add_user(FIRST_UID + i + ECHO_UID_OFFSET, "Người thử")
    engine = make_engine(url)
    app = build_application(settings, deps=Deps(engine, system_clock, settings), request=request)
    base_url = settings.base_url if emu_url is not None else None
    echo_app, db_app = build_echo(echo_request, base_url=base_url), build_echo(db_request, engine, base_url)
    raw_request = RecordingRequest() if emu_url is None else wire_request()
    raw_app = build_echo(raw_request, engine, base_url, raw=True)
    # offline only: replaying our calls needs no emulator state (edits of messages it never sent)
    mirror_request = RecordingRequest() if emu_url is None and with_mirror else None
    mirror_app = build_mirror(mirror_request, engine) if mirror_request is not None else None
    ours_t, echo_t, db_t, raw_t, mirror_t = Timings(), Timings(), Timings(), Timings(), Timings()
    out: dict[str, Any] = {"heads": heads, "transport": "offline" if emu_url is None else "http"}
    if emu_url is not None:
        out["our_http_client"] = http_client
    async with app, echo_app, db_app, raw_app, mirror_app or contextlib.nullcontext():
        ours = Driver(app, request, emu)
        others = [
            (Driver(echo_app, echo_request, emu), echo_t),
            (Driver(db_app, db_request, emu), db_t),
            (Driver(raw_app, raw_request, emu), raw_t),
        ]
        mirror = (Driver(mirror_app, mirror_request), mirror_t) if mirror_app is not None else None
        for i, code in enumerate(codes):
            await ours.send(FIRST_UID + i, f"/start {code}")
        await walk(ours, FIRST_UID, None, others, mirror)  # warm-up
        gc.collect()
        cpu = time.process_time()
        for i in range(1, heads + 1):
            await walk(ours, FIRST_UID + i, ours_t, others, mirror)
            for r in (request, echo_request, db_request, raw_request, mirror_request):
                if r is not None and len(r.calls) > 2000:
                    r.calls[:] = r.calls[-200:]
        out["cpu_s"] = time.process_time() - cpu
        if profile:
            out["profile"] = await _profile(ours, profile, range(heads + 1, heads + 1 + extra))
    engine.dispose()
    if emu is not None:
        emu.close()
    ours_all = ours_t.all
    out["turns"] = len(ours_all)
    bots = [("ours", ours_t), ("echo", echo_t), ("echo_db", db_t), ("echo_raw_db", raw_t)]
    for name, t in bots + ([("mirror", mirror_t)] if mirror_t.all else []):
        values = t.all
        out[f"{name}_turns_per_s"] = len(values) / sum(values)
        out[f"{name}_ms_per_turn"] = 1000 * statistics.fmean(values)
        out[f"{name}_median_ms"] = 1000 * statistics.median(values)
        out[f"{name}_cpu_ms_per_turn"] = 1000 * statistics.fmean(t.cpu)
    out["ratio"] = out["ours_ms_per_turn"] / out["echo_ms_per_turn"]
    out["ratio_to_echo_db"] = out["ours_ms_per_turn"] / out["echo_db_ms_per_turn"]
    out["echo_raw_db_ratio"] = out["echo_raw_db_ms_per_turn"] / out["echo_ms_per_turn"]  # the floor's ratio
    out["cpu_ratio"] = out["ours_cpu_ms_per_turn"] / out["echo_cpu_ms_per_turn"]
    if mirror_t.all:  # the floor with our obligations, and what the 2x / 3x targets leave for our logic
        echo_ms = out["echo_ms_per_turn"]
        out["mirror_ratio"] = out["mirror_ms_per_turn"] / echo_ms
        out["ours_over_mirror_ms"] = out["ours_ms_per_turn"] - out["mirror_ms_per_turn"]
        for target in (2, 3):
            out[f"logic_budget_ms_at_{target}x"] = target * echo_ms - out["mirror_ms_per_turn"]
        out["mirror_by_kind_ms"] = {kind: 1000 * statistics.fmean(v) for kind, v in mirror_t.by_kind.items()}
    out["by_kind_ms"] = {
        kind: {"n": len(v), "mean": 1000 * statistics.fmean(v), "median": 1000 * statistics.median(v)}
        for kind, v in ours_t.by_kind.items()
    }
    return out


async def _profile(ours: Driver, kind: str, heads: range) -> str:
    """Profile our turns for a few more heads; the top of the report as text."""
    if kind == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        for i in heads:
            await walk(ours, FIRST_UID + i, None, [])
        profiler.stop()
        return profiler.output_text(unicode=True, color=False, show_all=False)
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for i in heads:
        await walk(ours, FIRST_UID + i, None, [])
    prof.disable()
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(80)
    return stream.getvalue()


# --------------------------------------------------------------------------- over HTTP


def serve_emulator() -> None:
    """Child process: the emulator; prints its url, runs until stdin closes, then prints its CPU time."""
    import resource

    from bot.emulator.server import EmulatorServer

    server = EmulatorServer(token=TOKEN, bot_username="baocao_bench_bot")
    server.start_in_thread()
    print(server.url, flush=True)
    sys.stdin.read()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime, "stats": server.stats()}), flush=True)
    server.stop_thread()


@contextlib.contextmanager
def emulator_process() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The Bot API emulator in a child process: (its url, the process); stopped afterwards."""
    emulator = subprocess.Popen(
        [sys.executable, __file__, "--serve-emulator"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert emulator.stdout is not None and emulator.stdin is not None
    try:
        yield emulator.stdout.readline().strip(), emulator
    finally:
        emulator.stdin.close()
        emulator.wait(30)


def serve_echo(emu_url: str) -> None:
    """Child process: the bare python-telegram-bot echo bot polling the emulator (updates of different
    chats handled at once, PTB's default HTTPXRequest), until killed."""
    from telegram import Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        await message.reply_text(message.text)  # type: ignore[arg-type]

    app = Application.builder().token(TOKEN).base_url(f"{emu_url}/bot").concurrent_updates(True).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.run_polling(poll_interval=0.0, timeout=10, drop_pending_updates=False)


@contextlib.asynccontextmanager
async def _control_api(url: str, heads: int) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """`call(verb, path, params=…, json=…)` on the emulator's control API (`/_emu…`): its result, or
    RuntimeError. The simulated heads' own client, on aiohttp: with httpx, httpcore's pool walked every
    pooled connection for every idle one on each request and response (O(idle × connections), 300+
    connections here), which made the heads' process the costliest on the two cores, and costlier the longer
    the heads wait for the bot (more idle connections): 6.3–6.7 ms of CPU a turn with our bot against
    2.8–3.8 ms with the echo (session 12, helper turnshape)."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=heads + 16)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout) as http:

        async def call(verb: str, path: str, **kwargs: Any) -> Any:
            async with http.request(verb, f"/_emu{path}", **kwargs) as response:
                body = await response.json()
            if not body.get("ok"):
                raise RuntimeError(f"{verb} {path}: {body}")
            return body["result"]

        yield call


async def _drive_echo(url: str, heads: list[Head], turns: int, started: dict[str, float]) -> None:
    """Every head sends `turns` texts one after the other, each after the echo of the one before."""
    async with _control_api(url, len(heads)) as call:
        by_chat = {h.uid: h for h in heads}
        stop = asyncio.Event()

        cursor = (await call("GET", ""))["event_seq"]

        async def reader() -> None:
            nonlocal cursor
            while not stop.is_set():
                result = await call(
                    "GET", "/events", params={"after": cursor, "wait": 2, "count": 1, "types": "sent"}
                )
                for event in result["events"]:
                    cursor = max(cursor, event["seq"])
                    if event["chat_id"] in by_chat:
                        by_chat[event["chat_id"]].events.put_nowait(event)

        for chunk in range(0, len(heads), 100):
            await asyncio.gather(
                *(
                    call("POST", "/users", json={"user_id": h.uid, "first_name": f"Trưởng thôn {h.uid}"})
                    for h in heads[chunk : chunk + 100]
                )
            )
        read_task = asyncio.create_task(reader())

        async def answer(head: Head) -> None:
            for n in range(turns):
                posted = time.time()
                await call("POST", f"/users/{head.uid}/send", json={"text": str(n + 1)})
                first = await head.expect(lambda e: True, 600)
                if first is None:
                    raise RuntimeError(f"no echo for {head.uid}")
                head.seen_by_client.append(time.time() - posted)
                head.latencies.append(first["time"] - posted)
                head.turns += 1

        started["t"] = time.perf_counter()
        await asyncio.gather(*(answer(h) for h in heads))
        started["end"] = time.perf_counter()
        stop.set()
        await read_task


def run_echo_latency(users: int, turns: int) -> dict[str, Any]:
    """The floor of `run_latency`: as many heads over HTTP, each sending `turns` texts to the bare echo."""
    with emulator_process() as (emu_url, emulator):
        echo = subprocess.Popen(
            [sys.executable, __file__, "--serve-echo", emu_url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            import httpx

            for _ in range(600):
                if httpx.get(f"{emu_url}/_emu/requests", params={"method": "getUpdates"}).json()["result"]:
                    break
                time.sleep(0.1)
            heads = [Head(FIRST_UID + i, "") for i in range(users)]
            times: dict[str, float] = {}
            cpu_start = {"bot": cpu_seconds(echo.pid), "emulator": cpu_seconds(emulator.pid)}
            asyncio.run(_drive_echo(emu_url, heads, turns, times))
            cpu_end = {"bot": cpu_seconds(echo.pid), "emulator": cpu_seconds(emulator.pid)}
        finally:
            echo.terminate()
            echo.wait(30)
    return _latency_figures(heads, times, cpu_start, cpu_end, {"users": users, "turns_per_user": turns})


def _latency_figures(
    heads: list[Head],
    times: dict[str, float],
    cpu_start: dict[str, float],
    cpu_end: dict[str, float],
    out: dict[str, Any],
) -> dict[str, Any]:
    """Throughput, latency percentiles and CPU a turn of one latency run, added to `out`."""
    latencies = [1000 * x for h in heads for x in h.latencies]
    client = [1000 * x for h in heads for x in h.seen_by_client]
    measured = sum(h.turns for h in heads)
    wall = times["end"] - times["t"]
    out.update(
        turns=measured,
        wall_s=wall,
        throughput_turns_per_s=measured / wall,
        latency_ms={
            "p50": percentile(latencies, 0.5),
            "p90": percentile(latencies, 0.9),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies),
            "mean": statistics.fmean(latencies),
        },
        seen_by_client_ms={"p50": percentile(client, 0.5), "p99": percentile(client, 0.99)},
        bot_cpu_ms_per_turn=1000 * (cpu_end["bot"] - cpu_start["bot"]) / measured,
        emulator_cpu_ms_per_turn=1000 * (cpu_end["emulator"] - cpu_start["emulator"]) / measured,
    )
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _keyboard(event: dict[str, Any]) -> list[str]:
    return [b.get("callback_data") or "" for row in event["message"].get("buttons") or [] for b in row]


@dataclass
class Head:
    """One simulated village head over HTTP."""

    uid: int
    code: str
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    screen: dict[str, Any] | None = None  # the latest event carrying a form keyboard
    latencies: list[float] = field(default_factory=list)  # emulator-recorded reply time - post time
    seen_by_client: list[float] = field(default_factory=list)
    turns: int = 0
    anomalies: int = 0

    async def expect(
        self, matches: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """Drop events until one matches (None on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                event = await asyncio.wait_for(self.events.get(), remaining)
            except TimeoutError:
                return None
            if matches(event):
                return event


def _has(prefix: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: any(d.startswith(prefix) for d in _keyboard(e))


async def _drive(url: str, heads: list[Head], turns: int, started: dict[str, float]) -> None:
    async with _control_api(url, len(heads)) as call:
        by_chat = {h.uid: h for h in heads}
        stop = asyncio.Event()

        cursor = (await call("GET", ""))["event_seq"]

        async def reader() -> None:
            nonlocal cursor
            while not stop.is_set():
                result = await call(
                    "GET", "/events", params={"after": cursor, "wait": 2, "count": 1, "types": "sent"}
                )
                for event in result["events"]:
                    cursor = max(cursor, event["seq"])
                    if event["chat_id"] in by_chat:
                        by_chat[event["chat_id"]].events.put_nowait(event)

        async def send(head: Head, text: str) -> None:
            await call("POST", f"/users/{head.uid}/send", json={"text": text})

        async def press(head: Head, data: str) -> None:
            assert head.screen is not None
            await call(
                "POST",
                f"/users/{head.uid}/press",
                json={"message_id": head.screen["message_id"], "data": data},
            )

        for chunk in range(0, len(heads), 100):
            await asyncio.gather(
                *(
                    call("POST", "/users", json={"user_id": h.uid, "first_name": f"Trưởng thôn {h.uid}"})
                    for h in heads[chunk : chunk + 100]
                )
            )
        read_task = asyncio.create_task(reader())
        gate = asyncio.Semaphore(50)
        go = asyncio.Event()
        ready = 0

        async def prepare(head: Head) -> None:
            nonlocal ready
            async with gate:
                await send(head, f"/start {head.code}")
                if await head.expect(lambda e: True, 300) is None:
                    raise RuntimeError(f"no answer to /start for {head.uid}")
                await send(head, "/baocao")
                listing = await head.expect(_has("rp:"), 300)
                if listing is None:
                    raise RuntimeError(f"no report list for {head.uid}")
                head.screen = listing
                await press(head, next(d for d in _keyboard(listing) if d.startswith("rp:")))
                head.screen = await head.expect(_has("f:"), 300)
                if head.screen is None:
                    raise RuntimeError(f"no first question for {head.uid}")
            ready += 1
            if ready == len(heads):
                started["t"] = time.perf_counter()
                go.set()
            await go.wait()
            await answer(head)

        async def answer(head: Head) -> None:
            for _ in range(turns):
                assert head.screen is not None
                data = _keyboard(head.screen)
                tokens = [d.split(":", 3)[-1] for d in data]
                action = next_action(tokens)
                if action is None:
                    return
                posted = time.time()
                if action[0] == "press":
                    await press(head, data[tokens.index(action[1])])
                else:
                    await send(head, action[1])
                first = await head.expect(lambda e: True, 600)
                if first is None:
                    raise RuntimeError(f"no reply for {head.uid}")
                head.seen_by_client.append(time.time() - posted)
                head.latencies.append(first["time"] - posted)
                head.turns += 1
                screen = first if _has("f:")(first) else await head.expect(_has("f:"), 60)
                if screen is None:
                    head.anomalies += 1  # no new keyboard: answer the old one again
                else:
                    head.screen = screen
            started["end"] = time.perf_counter()

        await asyncio.gather(*(prepare(h) for h in heads))
        stop.set()
        await read_task


def run_latency(
    url: str,
    users: int,
    turns: int,
    spy_path: str | None = None,
    http_client: str = "aiohttp",
    tree: str | None = None,
) -> dict[str, Any]:
    """500 heads answering at once through the emulator and the real `baocao run` process.

    With `spy_path`, py-spy samples the bot process during the whole run (collapsed stacks written there)
    and the functions it was found in most often are added to the result.
    """
    now = datetime.now(UTC)
    with emulator_process() as (emu_url, emulator):
        return _run_latency(url, users, turns, now, emu_url, emulator, spy_path, http_client, tree)


def start_py_spy(pid: int, path: str) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` (100 Hz, raw collapsed stacks) until stop_py_spy."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            path,
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_py_spy(proc: subprocess.Popen[bytes], path: str, top: int = 25) -> dict[str, Any]:
    """Stop py-spy; the share of samples in which each function was on the stack (inclusive) and on top."""
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    inclusive: dict[str, int] = defaultdict(int)
    on_top: dict[str, int] = defaultdict(int)
    total = 0
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [re.sub(r" \(/.*?([^/]+/[^/]+\.py):\d+\)", r" (\1)", f) for f in stack.split(";")]
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        on_top[frames[-1]] += n

    def share(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * n / max(total, 1), 1)) for name, n in ranked]

    return {"samples": total, "inclusive_pct": share(inclusive), "self_pct": share(on_top)}


def _run_latency(
    url: str,
    users: int,
    turns: int,
    now: datetime,
    emu_url: str,
    emulator: subprocess.Popen[str],
    spy_path: str | None = None,
    http_client: str = "aiohttp",
    tree: str | None = None,
) -> dict[str, Any]:
    baocao = str(Path(sys.executable).with_name("baocao"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BAOCAO_", "DATABASE_URL"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=emu_url,
        TELEGRAM_BOT_USERNAME="baocao_bench_bot",
        DATABASE_URL=url,
        BAOCAO_TICK_SECONDS="0",
        BAOCAO_HTTP_CLIENT=http_client,
        PYTHONUNBUFFERED="1",
    )
    if tree:  # another checkout of the project (e.g. `git archive main`): its code runs the bot
        env["PYTHONPATH"] = tree
    out: dict[str, Any] = {"users": users, "turns_per_user": turns, "http_client": http_client}
    with tempfile.TemporaryDirectory(prefix="baocao-latency-") as tmp:
        done = subprocess.run(
            [baocao, "setup", str(write_setup(Path(tmp), users, now))],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        codes = issue_invites(url, users, now)
        heads = [Head(FIRST_UID + i, code) for i, code in enumerate(codes)]
        log = (Path(tmp) / "bot.log").open("wb")
        bot = subprocess.Popen([baocao, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            import httpx

            for _ in range(600):
                if httpx.get(f"{emu_url}/_emu/requests", params={"method": "getUpdates"}).json()["result"]:
                    break
                if bot.poll() is not None:
                    raise SystemExit((Path(tmp) / "bot.log").read_text())
                time.sleep(0.1)
            times: dict[str, float] = {}
            cpu_start = {"bot": cpu_seconds(bot.pid), "emulator": cpu_seconds(emulator.pid)}

            async def run() -> None:
                task = asyncio.create_task(_drive(emu_url, heads, turns, times))
                while "t" not in times:  # CPU from the moment every head is on its first question
                    await asyncio.sleep(0.05)
                    if task.done():
                        break
                cpu_start.update(bot=cpu_seconds(bot.pid), emulator=cpu_seconds(emulator.pid))
                await task

            spy = start_py_spy(bot.pid, spy_path) if spy_path else None
            asyncio.run(run())
            cpu_end = {"bot": cpu_seconds(bot.pid), "emulator": cpu_seconds(emulator.pid)}
            if spy is not None and spy_path:
                out["py_spy_top"] = stop_py_spy(spy, spy_path)
        finally:
            bot.terminate()
            bot.wait(30)
        lines = (Path(tmp) / "bot.log").read_text(errors="replace").splitlines()
        if os.environ.get("BENCH_KEEP_BOT_LOG"):  # a copy of the bot's log, for reading after the run
            shutil.copyfile(Path(tmp) / "bot.log", os.environ["BENCH_KEEP_BOT_LOG"])
    warnings = sum("WARNING" in line or "ERROR" in line for line in lines)
    if os.environ.get("BENCH_SHOW_WARNINGS"):
        print(
            "\n".join(line for line in lines if "WARNING" in line or "ERROR" in line)[:20000], file=sys.stderr
        )
    too_old = sum("could not answer callback query" in line for line in lines)
    handler_ms = [float(m.group(1) or m.group(2)) for line in lines if (m := HANDLER_MS.search(line))]
    _latency_figures(heads, times, cpu_start, cpu_end, out)
    measured = out["turns"]
    out.update(
        no_new_keyboard=sum(h.anomalies for h in heads),
        bot_log_warnings=warnings,
        callback_answers_too_late=too_old,
    )
    writes = [line.split("SQLite writes: ", 1)[1] for line in lines if "SQLite writes: " in line]
    if writes:  # where SQLite's answers ran (bot.updates.pipeline logs it at each WAL checkpoint)
        out["sqlite_writes"] = writes[-1][:200]
    if handler_ms:  # the bot's own per-update duration (its log line), for the measured turns
        measured_ms = handler_ms[-measured:]
        out["bot_handler_ms"] = {"p50": percentile(measured_ms, 0.5), "p99": percentile(measured_ms, 0.99)}
    return out


def run_gate(
    backends: tuple[str, ...],
    pg_url: str,
    users: int,
    turns: int,
    rounds: int,
    http_client: str,
    before: str | None = None,
) -> dict[str, Any]:
    """Issue 18 gate 1: `rounds` rounds of the bare echo then `baocao run` on each backend, the same heads
    and turns over HTTP; each round's ratio is the echo's throughput over ours (= our time / the echo's);
    the medians of the rounds. `before`: another checkout whose bot also runs in every round ("before")."""
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for n in range(rounds):
        load = Path("/proc/loadavg").read_text().split()[:3]
        echo = run_echo_latency(users, turns)
        echo["loadavg"] = load
        runs["echo"].append(echo)
        print(json.dumps({"round": n, "echo": echo["throughput_turns_per_s"], "load": load}), file=sys.stderr)
        for backend in backends:
            for name, tree in ((f"{backend}_before", before), (backend, None)):
                if name.endswith("_before") and not before:
                    continue
                with database(backend, pg_url) as url:
                    ours = run_latency(url, users, turns, None, http_client, tree)
                ours["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
                ours["ratio_to_echo"] = echo["throughput_turns_per_s"] / ours["throughput_turns_per_s"]
                runs[name].append(ours)
                figures = {"round": n, name: ours["throughput_turns_per_s"], "ratio": ours["ratio_to_echo"]}
                print(json.dumps(figures), file=sys.stderr, flush=True)
    summary: dict[str, Any] = {"users": users, "turns_per_user": turns, "rounds": rounds}
    for name, items in runs.items():
        summary[name] = {
            "turns_per_s": statistics.median(r["throughput_turns_per_s"] for r in items),
            "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in items),
            "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in items),
            "cpu_ms_a_turn": statistics.median(r["bot_cpu_ms_per_turn"] for r in items),
        }
        if name != "echo":
            summary[name]["ratio_to_echo"] = statistics.median(r["ratio_to_echo"] for r in items)
            summary[name]["ratios"] = [round(r["ratio_to_echo"], 3) for r in items]
    summary["runs"] = runs
    return summary


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def pg_version(pg_url: str) -> str | None:
    """The PostgreSQL server's version string."""
    from sqlalchemy import create_engine, text

    from bot.config import settings_from

    try:
        engine = create_engine(settings_from({"DATABASE_URL": pg_url}).database_url)
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()
        return str(version)
    except Exception:
        return None


def main() -> int:
    """Parse arguments, run the chosen measurements, print JSON (and the profile, if asked)."""
    if len(sys.argv) == 2 and sys.argv[1] == "--serve-emulator":
        serve_emulator()
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-echo":
        serve_echo(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("inprocess", "latency", "both", "gate"), default="inprocess")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--heads", type=int, default=20, help="in process: measured heads (each ~30 turns)")
    parser.add_argument("--profile", choices=("pyinstrument", "cprofile"))
    parser.add_argument(
        "--transport",
        choices=("offline", "http"),
        default="offline",
        help="in process: Bot API answered in memory, or a real Bot API server (the emulator) over HTTP",
    )
    parser.add_argument(
        "--no-mirror",
        dest="mirror",
        action="store_false",
        help="in process, offline: leave out the mirror bot (to compare with runs made before it existed)",
    )
    parser.add_argument(
        "--http-client",
        choices=("aiohttp", "httpx"),
        default="aiohttp",
        help="our bot's Bot API client (BAOCAO_HTTP_CLIENT) over HTTP; the echo bots always use PTB's httpx",
    )
    parser.add_argument("--rounds", type=int, default=3, help="gate: interleaved rounds (echo, then ours)")
    parser.add_argument("--before", metavar="TREE", help="gate: also run the bot of this checkout each round")
    parser.add_argument("--users", type=int, default=500, help="latency: simultaneous village heads")
    parser.add_argument("--turns", type=int, default=10, help="latency: answers each head sends")
    parser.add_argument(
        "--py-spy",
        metavar="PREFIX",
        help="latency: sample the bot process with py-spy (pip install py-spy); stacks to PREFIX.<backend>.txt",
    )
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    result: dict[str, Any] = {"machine": machine(), "postgresql": pg_version(args.pg_url)}
    profiles = []
    if args.mode == "gate":
        result["gate"] = run_gate(
            backends, args.pg_url, args.users, args.turns, args.rounds, args.http_client, args.before
        )
        backends = ()
    for backend in backends:
        if args.mode in ("inprocess", "both"):
            with database(backend, args.pg_url) as url:
                r = asyncio.run(
                    run_inprocess(
                        url, args.heads, args.profile, args.transport, args.mirror, args.http_client
                    )
                )
            if "profile" in r:
                profiles.append((backend, r.pop("profile")))
            result[f"inprocess_{args.transport}_{backend}"] = r
            print(json.dumps({backend: r}, ensure_ascii=False), file=sys.stderr, flush=True)
        if args.mode in ("latency", "both"):
            with database(backend, args.pg_url) as url:
                spy = f"{args.py_spy}.{backend}.txt" if args.py_spy else None
                result[f"latency_{backend}"] = run_latency(url, args.users, args.turns, spy, args.http_client)
    result["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    for backend, text in profiles:
        print(f"===== profile of our turns, {backend} =====")
        print(text)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
