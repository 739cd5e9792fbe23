"""Two real `baocao serve` workers on one PostgreSQL behind a round-robin forwarder, fed by the emulator.

The emulator delivers like Telegram with several connections (`webhook_parallel`: chats in parallel,
one chat's updates one at a time, each only after the previous one was answered); a small forwarder
in this test spreads the POSTs over both workers in turn and records, for every POST, the update,
its chat, the worker, the status and whether the update was committed when the worker answered.
Village heads get the reminder (both workers plan and dispatch), answer the form from it at the
same time, and one update is delivered to both workers at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import ClientSession, ClientTimeout, web
from sqlmodel import Session, select

from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer, update_chat_key
from storage.db import make_engine
from storage.models import OutboxStatus, ProcessedUpdate, Submission
from tests.e2e.conftest import TOKEN, answer, press
from tests.e2e.test_reminders_e2e import outbox, seed_heads, start_users, write_reminder_setup
from tests.e2e.test_webhook_e2e import SECRET, ServeProcess, _env

pytestmark = pytest.mark.e2e

HEADS = 8
FIRST_UID = 940_001
DUPLICATE_ID = 900_000_001
SECRET_H = "x-telegram-bot-api-secret-token"


class Forwarder:
    """A round-robin HTTP forwarder (aiohttp, in a thread of its own) in front of the workers."""

    def __init__(self, targets: list[str], database_url: str) -> None:
        self.targets = targets
        self.engine = make_engine(database_url)
        self.records: list[dict[str, Any]] = []
        self.url = ""
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)

    def start(self) -> None:
        """Listen on a free loopback port."""
        self._thread.start()
        assert self._ready.wait(10)

    def stop(self) -> None:
        """Stop listening."""
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.engine.dispose()

    def _committed(self, update_id: int) -> bool:
        with Session(self.engine) as session:
            return session.get(ProcessedUpdate, update_id) is not None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        update = json.loads(body)
        with self._lock:
            worker = next(self._turn) % len(self.targets)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", SECRET_H)}
        started = time.monotonic()
        async with self._http.post(self.targets[worker] + request.path_qs, data=body, headers=headers) as got:
            payload, status = await got.read(), got.status
        ended = time.monotonic()
        committed = await asyncio.to_thread(self._committed, update["update_id"])
        with self._lock:
            self.records.append(
                {
                    "update_id": update["update_id"],
                    "chat": update_chat_key(update["update_id"], update),
                    "worker": worker,
                    "status": status,
                    "started": started,
                    "ended": ended,
                    "committed": committed,
                }
            )
        return web.Response(status=status, body=payload)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._http = ClientSession(timeout=ClientTimeout(total=60))
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        await self._stop.wait()
        await self._http.close()
        await runner.cleanup()


@pytest.fixture
def postgres_url(database_url: str, db_backend: str) -> str:
    """The test database, PostgreSQL only."""
    if db_backend != "postgresql":
        pytest.skip(
            "several workers need PostgreSQL (advisory locks, SKIP LOCKED); with SQLite one process "
            "is the supported setup — run with DATABASE_URL=postgresql://…"
        )
    return database_url


@pytest.fixture
def parallel_emulator() -> Iterator[EmulatorServer]:
    """The emulator delivering webhooks like Telegram with several connections."""
    server = EmulatorServer(token=TOKEN, bot_username="baocao_e2e_bot")
    server.webhook_parallel = True
    server.start_in_thread()
    yield server
    server.stop_thread()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def head_flow(url: str, uid: int) -> list[str]:
    """One village head: wait for the reminder, start from its button, answer, confirm; their chat."""
    client = EmulatorClient(url, timeout=30)
    try:
        user = client.user(uid, f"Trưởng {uid}")
        deadline = time.monotonic() + 40
        while True:  # the reminder may have come before this session started reading
            reminders = [m for m in user.messages() if "Nhắc báo cáo" in (m.plain or "")]
            if reminders or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert reminders, f"no reminder reached {uid}"
        reminder = reminders[0]
        user.press(data=reminder.flat_buttons[0].callback_data, message_id=reminder.message_id)
        user.wait_reply(timeout=20)
        answer(user)
        press(user, "confirm")
        deadline = time.monotonic() + 20  # a late edit of an earlier keyboard may have ended the wait first
        while True:
            texts = [m.plain or "" for m in user.messages()]
            if "Mã biên nhận" in texts[-1] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "Mã biên nhận" in texts[-1], texts[-3:]
        return texts
    finally:
        client.close()


def test_two_workers_process_every_update_once_in_order_and_send_each_reminder_once(
    parallel_emulator: EmulatorServer, postgres_url: str, tmp_path: Path
) -> None:
    emulator = parallel_emulator
    now = datetime.now(UTC)
    names = [f"Thôn {i:02d}" for i in range(1, HEADS + 1)]
    heads = {name: FIRST_UID + i for i, name in enumerate(names)}
    (tmp_path / "logs").mkdir()

    roots, envs = zip(
        *(_env(emulator, postgres_url, BAOCAO_LOG_FORMAT="json") for _ in range(2)), strict=True
    )
    forwarder = Forwarder([f"{root}" for root in roots], postgres_url)
    forwarder.start()
    workers: list[ServeProcess] = []
    for i, (root, env) in enumerate(zip(roots, envs, strict=True)):
        env.update(
            BAOCAO_WEBHOOK_URL=f"{forwarder.url}/telegram/webhook",
            BAOCAO_TICK_SECONDS="1",
            BAOCAO_SEND_LEASE_SECONDS="5",
        )
        (tmp_path / "logs" / f"w{i}").mkdir()
        workers.append(ServeProcess(env, tmp_path / "logs" / f"w{i}", emulator, root))
    try:
        # a period due in 12 hours; yesterday's "1d" reminder is due as soon as someone plans
        setup = write_reminder_setup(
            tmp_path,
            villages=names,
            opens=now - timedelta(days=3),
            due=now + timedelta(hours=12),
            before=["1d"],
        )
        workers[0].cli("setup", str(setup))
        seed_heads(postgres_url, heads, now - timedelta(days=2))
        start_users(emulator, list(heads.values()))
        for worker in workers:
            worker.start()
        done = workers[0].run("webhook", "set")
        assert done.returncode == 0, done.stderr.decode()

        # every head answers from their reminder, all at the same time
        with ThreadPoolExecutor(HEADS) as pool:
            flows = pool.map(lambda u: head_flow(emulator.url, u), heads.values())
            chats = dict(zip(heads.values(), flows, strict=True))

        # the same update delivered to both workers at once
        uid = FIRST_UID
        before = len(chats[uid])
        duplicate = {
            "update_id": DUPLICATE_ID,
            "message": {
                "message_id": 999_001,
                "date": int(time.time()),
                "chat": {"id": uid, "type": "private", "first_name": "Trưởng"},
                "from": {"id": uid, "is_bot": False, "first_name": "Trưởng"},
                "text": "/help",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            },
        }
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda r: httpx.post(
                        f"{r}/telegram/webhook", json=duplicate, headers=headers, timeout=60
                    ),
                    roots,
                )
            )
        assert [a.status_code for a in answers] == [200, 200]
        client = EmulatorClient(emulator.url, timeout=30)
        after = [m.plain or "" for m in client.user(uid, "Trưởng").messages()]
        client.close()
        assert len(after) == before + 1, after[before:]

        for worker in workers:
            assert worker.terminate() == 0, worker.log()
    finally:
        for worker in workers:
            worker.kill()
        forwarder.stop()

    logs = [json_lines(w.log()) for w in workers]
    handled = [e for lines in logs for e in lines if "update_id" in e and "outcome" in e]

    # every update the emulator delivered went through the forwarder once, answered 200 after its commit
    records = forwarder.records
    assert records and all(r["status"] == 200 for r in records), [r for r in records if r["status"] != 200]
    assert all(r["committed"] for r in records), "a worker answered before committing"
    assert Counter(r["update_id"] for r in records).most_common(1)[0][1] == 1
    assert {r["worker"] for r in records} == {0, 1}, "both workers should have had updates"
    delivered = [d for d in emulator.webhook_log if d["error"] is None]
    assert sorted(d["update_id"] for d in delivered) == sorted(r["update_id"] for r in records)

    # per chat: updates reached the workers in update_id order, each after the previous was answered
    by_chat: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r["started"]):
        by_chat[record["chat"]].append(record)
    assert len(by_chat) == HEADS
    for chat, seq in by_chat.items():
        ids = [r["update_id"] for r in seq]
        assert ids == sorted(ids), (chat, ids)
        assert all(a["ended"] <= b["started"] for a, b in itertools.pairwise(seq)), chat
    assert any(len({r["worker"] for r in seq}) == 2 for seq in by_chat.values()), "no chat crossed workers"

    # no update processed twice: one ok per update id, the duplicate skipped by the other worker
    outcomes = Counter((e["update_id"], e["outcome"]) for e in handled)
    assert all(n == 1 for n in outcomes.values()), [k for k, n in outcomes.items() if n > 1]
    assert outcomes[(DUPLICATE_ID, "ok")] == 1 and outcomes[(DUPLICATE_ID, "duplicate")] == 1
    assert {e["update_id"] for e in handled if e["outcome"] != "duplicate"} == {
        r["update_id"] for r in records
    } | {DUPLICATE_ID}
    assert not [e for e in handled if e["outcome"] == "error"]

    # every answer in the database once; every reminder sent once though both workers planned
    engine = make_engine(postgres_url)
    try:
        with Session(engine) as session:
            submissions = list(session.exec(select(Submission)))
            processed = {p.update_id for p in session.exec(select(ProcessedUpdate))}
    finally:
        engine.dispose()
    assert len(submissions) == HEADS and len({s.village_id for s in submissions}) == HEADS
    assert processed == {r["update_id"] for r in records} | {DUPLICATE_ID}
    rows = outbox(postgres_url)
    reminders = [r for r in rows if r.rule == "b1d"]
    assert len(reminders) == HEADS and {r.status for r in reminders} == {OutboxStatus.SENT}
    sends = Counter(
        int(r.params["chat_id"])
        for r in emulator.requests_for("sendMessage")
        if r.status == 200 and "Nhắc báo cáo" in str(r.params.get("text", ""))
    )
    assert sends == Counter(heads.values())
    for lines in logs:  # both workers ticked the planner and the dispatcher
        assert any(e.get("job") == "reminders-cycle" for e in lines)

    # replies: each once and in order in every chat (reminder first, receipt last, nothing repeated)
    shapes = set()
    for uid, texts in chats.items():
        assert "Nhắc báo cáo" in texts[0] and "Mã biên nhận" in texts[-1], uid
        assert all(a != b for a, b in itertools.pairwise(texts)), texts
        shapes.add(len(texts))
    assert len(shapes) == 1, "every head should have seen the same conversation"
    assert "Traceback" not in "".join(w.log() for w in workers)
