"""Telegram faults (item 6): the emulator answers 429, 500, 502 and dropped connections at random rates on
every method while three village heads fill in their reports and a reminder wave goes out to twenty
villages; one head has blocked the bot (403).

Nothing is lost (every acknowledged answer is in the database; an answer whose next question never
arrived is either stored or was never applied, and the person is told or can resume), every reminder
reaches its chat exactly once (except the 403 person, who is marked inactive), and the bot keeps
serving everyone to the end.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.emulator.client import EmulatorClient, UserSession
from bot.emulator.limits import FaultPlan
from bot.emulator.server import EmulatorServer
from bot.texts.templates import render
from storage.db import make_engine, session_scope
from storage.models import Outbox, OutboxStatus, Person, Submission, Village
from tests.security.conftest import Figures
from tests.security.test_crash_restart import (
    HCM,
    QUESTIONS,
    PollingBot,
    bot_env,
    db_state,
    screen_index,
    seed_village_heads,
    write_short_setup,
)

pytestmark = [pytest.mark.e2e, pytest.mark.security]

VILLAGES = [f"Thôn Nhắc {i:02d}" for i in range(1, 21)]
HEADS = {name: 950_001 + i for i, name in enumerate(VILLAGES)}
TALKERS = VILLAGES[:3]  # they fill in the report during the wave
BLOCKED = VILLAGES[3]  # has blocked the bot: 403
ERROR = render("common/error.html")
PLAN = FaultPlan(
    seed=6,
    rates={
        "sendMessage": {"429": 0.08, "500": 0.06, "502": 0.06, "timeout": 0.04},
        "*": {"429": 0.05, "500": 0.05, "502": 0.05, "timeout": 0.03},
    },
    hold_seconds=1.0,
    retry_after=1,
)


def write_wave_setup(tmp: Path) -> Path:
    """Twenty villages, the three-question form due in twelve hours, yesterday's "1d" reminder due at once."""
    now = datetime.now(UTC)
    due = (now + timedelta(hours=12)).replace(second=0, microsecond=0)
    schedule = f"""        reminders:
          before: ["1d"]
          after: false
        periods:
          - id: "E2E-NHAC"
            label: "Kỳ chịu lỗi"
            opens: "{(now - timedelta(days=3)).astimezone(HCM):%d/%m/%Y}"
            due: "{due.astimezone(HCM):%d/%m/%Y %H:%M}"
"""
    return write_short_setup(tmp, VILLAGES, schedule=schedule)


@pytest.fixture
def wave_bot(
    emulator: EmulatorServer,
    database_url: str,
    tmp_path: Path,
) -> Iterator[PollingBot]:
    """A bot ticking reminders every second (3-second leases); twenty heads seeded, one has blocked it."""
    (tmp_path / "logs").mkdir()
    env = bot_env(emulator, database_url, BAOCAO_TICK_SECONDS="1", BAOCAO_SEND_LEASE_SECONDS="3")
    bot = PollingBot(env, tmp_path / "logs", emulator)
    bot.cli("setup", str(write_wave_setup(tmp_path)))
    seed_village_heads(database_url, HEADS)
    for name, uid in HEADS.items():  # each opened the bot once (so it may write to them)
        emulator.add_user(uid, f"Trưởng {name}")
        emulator.send_text(uid, "/start")
    emulator.drop_pending_updates()
    emulator.block(HEADS[BLOCKED])
    yield bot
    bot.stop()


def screen_or_none(user: UserSession, timeout: float) -> str | None:
    """The newest message the bot sends next, or None when it stays silent for `timeout` s."""
    events = user.wait_events(timeout, counted=("sent",), settle=0.1)
    sent = [e for e in events if e["type"] == "sent" and "message" in e]
    return (sent[-1]["message"].get("plain") or "") if sent else None


def open_draft(user: UserSession, tries: int = 8) -> int:
    """/baocao and the report's button, again until the bot answers both: the question it resumes at."""
    for _ in range(tries):
        user.send("/baocao")
        listing = screen_or_none(user, 4)
        if listing is None or "Kỳ chịu lỗi" not in listing:
            continue
        message = user.latest(with_keyboard=True)
        button = next((b for b in message.flat_buttons if (b.callback_data or "").startswith("rp:")), None)
        if button is None:
            continue
        user.press(data=button.callback_data, message_id=message.message_id)
        shown = screen_or_none(user, 4)
        index = screen_index(shown or "")
        if index is not None:
            return index
    raise AssertionError(f"{user.name}: could not reopen the report in {tries} tries")


def test_faults_lose_nothing_send_nothing_twice_and_the_bot_keeps_serving(
    wave_bot: PollingBot,
    emulator: EmulatorServer,
    client: EmulatorClient,
    database_url: str,
    figures: Figures,
) -> None:
    """Three heads answer every question and submit during a 20-message reminder wave under random faults."""
    emulator.set_faults(PLAN)
    wave_bot.start()
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        ids = {v.name: v.id for v in s.exec(select(Village))}
    users = {name: UserSession(client, HEADS[name], name) for name in TALKERS}
    positions = {name: 0 for name in TALKERS}
    acknowledged: dict[str, dict[str, int]] = {name: {} for name in TALKERS}
    told_error = unacknowledged = applied_unseen = 0
    started = time.monotonic()

    def nudge_retries() -> None:
        """Bring rows handed back after an error forward (the dispatcher's backoff starts at 30 s)."""
        with engine.begin() as conn:
            conn.execute(
                update(Outbox)
                .where(Outbox.status == OutboxStatus.PENDING, Outbox.attempts > 0)
                .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
            )

    done: set[str] = set()
    while len(done) < len(TALKERS):
        assert time.monotonic() - started < 90, (
            f"the bot stopped serving: {positions}\n{wave_bot.log()[-3000:]}"
        )
        nudge_retries()
        for name in TALKERS:
            if name in done:
                continue
            user, position = users[name], positions[name]
            if db_state(engine, ids[name])[1]:  # submitted (the receipt may have been lost)
                done.add(name)
                continue
            if position == 0 or position > len(QUESTIONS):
                if position > len(QUESTIONS) and _submit(user):
                    done.add(name)
                    continue
                if not db_state(engine, ids[name])[1]:
                    positions[name] = open_draft(user)
                continue
            value = 10 * position + len(acknowledged[name])
            qid = QUESTIONS[position - 1]
            user.send(str(value))
            shown = screen_or_none(user, 4)
            if shown is not None and screen_index(shown) == position + 1:
                acknowledged[name][qid] = value
                positions[name] = position + 1
                continue
            unacknowledged += 1
            told_error += shown is not None and ERROR in shown
            resumed = open_draft(user)
            answers, _ = db_state(engine, ids[name])
            if resumed == position + 1:  # stored, its screen lost: acknowledged by the resumed screen
                assert answers is not None and answers.get(qid) == value, (name, qid, answers)
                acknowledged[name][qid] = value
                applied_unseen += 1
            else:
                assert resumed == position, (name, resumed, position)
                assert answers is None or answers.get(qid) == acknowledged[name].get(qid), (name, answers)
            positions[name] = resumed

    # the wave: every head but the blocked one gets one reminder
    expected = {uid for name, uid in HEADS.items() if name != BLOCKED}

    def reminders() -> Counter[int]:
        """Reminders that are in each chat (a request executed but whose answer was lost counts too)."""
        return Counter(
            {
                uid: n
                for uid in HEADS.values()
                if (n := sum("Nhắc báo cáo" in (m.plain or "") for m in client.messages(uid)))
            }
        )

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and set(reminders()) < expected:
        nudge_retries()
        emulator.wait_for_sync(lambda: set(reminders()) >= expected, 1.0)
    emulator.set_faults(None)
    wave_bot.stop()

    delivered = reminders()
    faults = _faults(emulator)
    for kind, count in faults.items():
        figures.fault(f"Telegram {kind}", count)
    figures.fault(
        "Telegram 403 (blocked)", sum(1 for r in emulator.requests_for("sendMessage") if r.status == 403)
    )
    figures.updates += emulator.counters["updates"]
    figures.check("reminders delivered under faults", sum(delivered.values()))
    figures.duplicate(sum(n - 1 for n in delivered.values() if n > 1), "reminders delivered twice")
    found = 0
    with session_scope(engine) as s:
        for name in TALKERS:
            subs = list(s.exec(select(Submission).where(Submission.village_id == ids[name])))
            figures.duplicate(max(len(subs) - 1, 0), f"Telegram faults: submissions of {name}")
            stored = subs[0].answers if subs else {}
            got = sum(stored.get(k) == v for k, v in acknowledged[name].items())
            figures.answers(len(acknowledged[name]), got, f"Telegram faults: {name}")
            found += got
            assert len(subs) == 1 and got == len(acknowledged[name]), (name, subs, acknowledged[name])
        blocked = s.exec(select(Person).where(Person.telegram_user_id == HEADS[BLOCKED])).one()
        rows = list(s.exec(select(Outbox).where(Outbox.kind == "reminder")))
    engine.dispose()
    print(
        f"Telegram faults: {dict(faults)}; reminders delivered {sum(delivered.values())} to {len(delivered)} "
        f"chats; answers {sum(map(len, acknowledged.values()))} acknowledged, {unacknowledged} without "
        f"their screen ({told_error} told about the error, {applied_unseen} stored and resumed after it); "
        f"{time.monotonic() - started:.0f}s"
    )
    assert set(delivered) == expected and max(delivered.values()) == 1, delivered
    assert not blocked.active and blocked.blocked_at is not None
    by_chat = {r.chat_id: r.status for r in rows}
    assert by_chat[HEADS[BLOCKED]] == OutboxStatus.FAILED
    assert {by_chat[uid] for uid in expected} == {OutboxStatus.SENT}
    assert sum(faults.values()) >= 10, f"too few faults injected to mean anything: {faults}"


def _submit(user: UserSession) -> bool:
    """Gửi then confirm, from whichever of the two the newest keyboard offers; True once the receipt arrived."""
    for _ in range(2):
        message = user.latest(with_keyboard=True)
        if message is None:
            return False
        button = next(
            (b for b in message.flat_buttons if (b.callback_data or "").endswith((":confirm", ":submit"))),
            None,
        )
        if button is None:
            return False
        user.press(data=button.callback_data, message_id=message.message_id)
        shown = screen_or_none(user, 4)
        if shown is None:
            return False
        if "Mã biên nhận" in shown:
            return True
    return False


def _faults(emulator: EmulatorServer) -> Counter[str]:
    """Faults the emulator injected, by kind."""
    return Counter(
        {k.split(":", 1)[1]: v for k, v in emulator.counters.items() if k.startswith("fault:") and v}
    )


@pytest.mark.xfail(
    strict=True,
    reason="known hole: Telegram has no idempotency key; a reminder Telegram delivered but whose answer was "
    "lost (read timeout, reset) is retried and arrives twice (bot/delivery/dispatcher.py, at-least-once)",
)
def test_a_reminder_whose_answer_is_lost_after_delivery_arrives_twice(
    wave_bot: PollingBot,
    emulator: EmulatorServer,
    client: EmulatorClient,
    database_url: str,
    figures: Figures,
) -> None:
    """The first three reminders are delivered but their answers dropped ("timeout_after"): sent again."""
    emulator.set_faults(FaultPlan(script={"sendMessage": ["timeout_after"] * 3}, hold_seconds=0.5))
    wave_bot.start()
    engine = make_engine(database_url)
    expected = {uid for name, uid in HEADS.items() if name != BLOCKED}

    def reminders() -> Counter[int]:
        return Counter(
            {
                uid: n
                for uid in HEADS.values()
                if (n := sum("Nhắc báo cáo" in (m.plain or "") for m in client.messages(uid)))
            }
        )

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        set(reminders()) >= expected and sum(reminders().values()) >= len(expected) + 3
    ):
        with engine.begin() as conn:  # the dispatcher's backoff starts at 30 s: bring retries forward
            conn.execute(
                update(Outbox)
                .where(Outbox.status == OutboxStatus.PENDING, Outbox.attempts > 0)
                .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        time.sleep(0.5)
    engine.dispose()
    wave_bot.stop()
    delivered = reminders()
    twice = sum(n - 1 for n in delivered.values() if n > 1)
    figures.fault("Telegram timeout_after (delivered, answer lost)", 3)
    if twice:
        figures.known_hole(f"{twice} reminder(s) delivered twice after a lost answer (at-least-once)")
    assert set(delivered) == expected and twice == 0, delivered
