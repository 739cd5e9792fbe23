"""Reminders from the real `baocao run` process (APScheduler ticking every second) against the emulator.

1. Rules in minutes: a village that submits between two reminders gets no more; the other does.
2. A wave of 200 reminders, the bot SIGKILLed in the middle and restarted: each delivered once.
3. A wave of 200 under flood control stricter than Telegram's: all delivered, every 429 waited out.

Village heads are written straight into the database (joined days ago, so yesterday's rule applies
to them) and started in the emulator before the bot runs; the planner, the renderer and the
dispatcher are the real ones inside the bot process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.emulator.client import EmulatorClient
from bot.emulator.limits import FaultPlan, FloodLimits
from bot.emulator.server import EmulatorServer
from storage.db import make_engine, session_scope
from storage.models import Commune, Membership, Outbox, OutboxStatus, Person, Role, Submission, Village
from tests.e2e.conftest import HCM, BotProcess, answer, child_env, press

pytestmark = pytest.mark.e2e

QUICK_FORM = """\
id: nhanh
title: Báo cáo nhanh
version: 1
kind: periodic
questions:
  - id: da_hop
    type: yes_no
    label: Thôn đã họp dân trong tháng chưa?
"""


def write_reminder_setup(
    tmp: Path, *, villages: list[str], opens: datetime, due: datetime, before: list[str]
) -> Path:
    """One commune with `villages`, no quiet hours, a one-question form due at `due` (local minute)."""
    (tmp / "forms").mkdir(exist_ok=True)
    (tmp / "forms" / "nhanh.yaml").write_text(QUICK_FORM, encoding="utf-8")
    names = "\n".join(f"      - {name}" for name in villages)
    rules = ", ".join(f'"{b}"' for b in before)
    text = f"""
version: 1
communes:
  - code: nhac-viec
    name: Xã Nhắc Việc
    quiet_hours: false
    villages:
{names}
    forms: [forms/nhanh.yaml]
    schedules:
      - form: nhanh
        main: true
        reminders:
          before: [{rules}]
          after: false
        periods:
          - id: "E2E-NHAC"
            label: "Kỳ thử nhắc"
            opens: "{opens.astimezone(HCM):%d/%m/%Y}"
            due: "{due.astimezone(HCM):%d/%m/%Y %H:%M}"
"""
    path = tmp / "setup.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def seed_heads(
    database_url: str, heads: dict[str, int], joined_at: datetime, commune_code: str = "nhac-viec"
) -> None:
    """Each village's head as a person with a membership since `joined_at` (as if invited then)."""
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            commune = session.exec(select(Commune).where(Commune.code == commune_code)).one()
            villages = {
                v.name: v.id for v in session.exec(select(Village).where(Village.commune_id == commune.id))
            }
            for name, uid in heads.items():
                person = Person(
                    telegram_user_id=uid,
                    chat_id=uid,
                    full_name=f"Trưởng {name}",
                    created_at=joined_at,
                    updated_at=joined_at,
                )
                session.add(person)
                session.flush()
                session.add(
                    Membership(
                        person_id=person.id,
                        role=Role.VILLAGE_HEAD,
                        commune_id=commune.id,
                        village_id=villages[name],
                        created_at=joined_at,
                    )
                )
    finally:
        engine.dispose()


def start_users(emulator: EmulatorServer, uids: list[int]) -> None:
    """Users who once opened the bot (so it may write to them); their /start is not redelivered."""
    for uid in uids:
        emulator.add_user(uid, f"Trưởng thôn {uid}")
        emulator.send_text(uid, "/start")
    emulator.drop_pending_updates()


def delivered(emulator: EmulatorServer) -> Counter[int]:
    """Successful sendMessage requests per chat."""
    return Counter(int(r.params["chat_id"]) for r in emulator.requests_for("sendMessage") if r.status == 200)


def outbox(database_url: str) -> list[Outbox]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Outbox).order_by(Outbox.id)))
    finally:
        engine.dispose()


class ReminderBot(BotProcess):
    """`baocao run` ticking reminders (BotProcess: ready as soon as its first long poll arrives)."""


@pytest.fixture
def reminder_bot(emulator: EmulatorServer, database_url: str, tmp_path: Path) -> Iterator[ReminderBot]:
    """A `baocao run` process (not started yet) ticking reminders every second, with 3-second leases."""
    env = child_env(emulator, database_url, BAOCAO_TICK_SECONDS="1", BAOCAO_SEND_LEASE_SECONDS="3")
    (tmp_path / "logs").mkdir()
    process = ReminderBot(env, tmp_path / "logs", emulator)
    yield process
    process.stop()


def wave(reminder_bot: BotProcess, emulator: EmulatorServer, database_url: str, tmp_path: Path, count: int):
    """`count` villages, each head owing the report, yesterday's "1d" reminder due at once."""
    now = datetime.now(UTC)
    names = [f"Thôn {i:03d}" for i in range(1, count + 1)]
    heads = {name: 930_001 + i for i, name in enumerate(names)}
    due = (now + timedelta(hours=12)).replace(second=0, microsecond=0)
    reminder_bot.cli(
        "setup",
        str(
            write_reminder_setup(
                tmp_path, villages=names, opens=now - timedelta(days=3), due=due, before=["1d"]
            )
        ),
    )
    seed_heads(database_url, heads, now - timedelta(days=2))
    start_users(emulator, list(heads.values()))
    return list(heads.values())


def test_a_village_that_submits_between_two_reminders_gets_no_more(
    reminder_bot: BotProcess,
    emulator: EmulatorServer,
    client: EmulatorClient,
    database_url: str,
    tmp_path: Path,
) -> None:
    started = datetime.now(UTC)
    # due at a whole local minute, so that the "1m" rule falls 20–79 s from now; "1d" is already past
    due = (started + timedelta(seconds=80 + 59)).replace(second=0, microsecond=0)
    second_at = due - timedelta(minutes=1)
    reminder_bot.cli(
        "setup",
        str(
            write_reminder_setup(
                tmp_path,
                villages=["Thôn Nà Làng", "Thôn Bản Duồm"],
                opens=started - timedelta(days=3),
                due=due,
                before=["1d", "1m"],
            )
        ),
    )
    seed_heads(database_url, {"Thôn Nà Làng": 920_001, "Thôn Bản Duồm": 920_002}, started - timedelta(days=2))
    start_users(emulator, [920_001, 920_002])
    an, binh = client.user(920_001, "An"), client.user(920_002, "Bình")
    reminder_bot.start()

    # the first tick plans yesterday's "1d" reminder (catch-up) and sends it to both
    first_an = an.wait_reply(timeout=20).last
    first_binh = binh.wait_reply(timeout=20).last
    for message in (first_an, first_binh):
        assert "Nhắc báo cáo" in message.plain and "Báo cáo nhanh" in message.plain

    # An starts the report from the reminder's own button and sends it
    an.press(data=first_an.flat_buttons[0].callback_data, message_id=first_an.message_id)
    an.wait_reply(timeout=20)
    answer(an)
    press(an, "confirm")
    assert "Mã biên nhận" in an.messages()[-1].plain
    submitted = datetime.now(UTC)
    assert submitted < second_at, f"setup too slow: submitted {submitted}, the 1m rule at {second_at}"

    # at due − 1 minute the second reminder reaches Bình only
    wait = (second_at - datetime.now(UTC)).total_seconds() + 20
    second_binh = binh.wait_reply(timeout=wait).last
    assert "Nhắc báo cáo" in second_binh.plain
    assert datetime.now(UTC) >= second_at
    reminder_bot.stop()  # graceful: whatever was in flight is marked before we look

    assert len(delivered(emulator)) == 2 and delivered(emulator)[920_002] == 2
    reminders_to_an = [m for m in an.messages() if "Nhắc báo cáo" in (m.plain or "")]
    assert len(reminders_to_an) == 1, [m.plain for m in an.messages()]
    rows = outbox(database_url)
    sent = Counter((r.chat_id, r.rule) for r in rows if r.status == OutboxStatus.SENT)
    assert sent == Counter({(920_001, "b1d"): 1, (920_002, "b1d"): 1, (920_002, "b1m"): 1}), rows
    assert not [r for r in rows if r.chat_id == 920_001 and r.rule == "b1m" and r.status == OutboxStatus.SENT]
    engine = make_engine(database_url)
    with Session(engine) as session:
        assert len(session.exec(select(Submission)).all()) == 1
    engine.dispose()


def test_a_wave_of_200_survives_a_sigkill_mid_wave_each_delivered_once(
    reminder_bot: BotProcess, emulator: EmulatorServer, database_url: str, tmp_path: Path
) -> None:
    chats = wave(reminder_bot, emulator, database_url, tmp_path, 200)
    # after 60 messages Telegram says "retry after 5": every sender pauses, the requests already in
    # flight finish, and the process is quiet — that is when the power goes. (A kill inside a
    # request→commit window is the one documented duplicate; see bot/delivery/dispatcher.py.)
    emulator.set_faults(FaultPlan(script={"sendMessage": [None] * 60 + ["429"]}, retry_after=5))
    reminder_bot.start()
    emulator.wait_for_sync(lambda: any(r.status == 429 for r in emulator.requests_for("sendMessage")), 30)
    while True:  # wait for one quiet second (returns early whenever another request arrives)
        seen = len(emulator.requests_for("sendMessage"))
        if not emulator.wait_for_sync(lambda n=seen: len(emulator.requests_for("sendMessage")) > n, 1.0):
            break
    reminder_bot.kill()
    at_kill = delivered(emulator)
    assert 60 <= sum(at_kill.values()) < 200 and max(at_kill.values()) == 1
    claimed = [r for r in outbox(database_url) if r.status == OutboxStatus.SENDING]
    assert claimed, "the kill should leave claimed rows behind"

    emulator.set_faults(None)
    reminder_bot.start()  # the new process takes the dead one's rows over when their 3 s lease ends
    emulator.wait_for_sync(lambda: len(delivered(emulator)) >= 200, 45)
    reminder_bot.stop()

    assert delivered(emulator) == Counter(chats), "each village head gets exactly one successful send"
    rows = outbox(database_url)
    assert len(rows) == 200 and {r.status for r in rows} == {OutboxStatus.SENT}
    assert all(r.telegram_message_id for r in rows)
    # the rows the dead process held were taken over after their lease: one attempt counted each
    assert {r.id for r in claimed} <= {r.id for r in rows if r.attempts == 1}


def test_a_wave_of_200_under_flood_control_is_delivered_with_every_429_waited_out(
    reminder_bot: BotProcess, emulator: EmulatorServer, database_url: str, tmp_path: Path
) -> None:
    chats = wave(reminder_bot, emulator, database_url, tmp_path, 200)
    # stricter than Telegram (20/s in all instead of 30/s), so our limiter meets real 429s
    emulator.set_flood_control(
        FloodLimits(global_per_second=20, per_chat_per_second=1, per_group_per_minute=20)
    )
    reminder_bot.start()
    emulator.wait_for_sync(lambda: len(delivered(emulator)) >= 200, 50)
    reminder_bot.stop()

    assert delivered(emulator) == Counter(chats)
    requests = emulator.requests_for("sendMessage")
    flooded = [r for r in requests if r.status == 429]
    assert flooded, "flood control should have answered 429 at least once"
    assert {r.status for r in requests} == {200, 429}
    last_status: dict[int, int] = {}
    for r in requests:
        last_status[int(r.params["chat_id"])] = r.status
    assert set(last_status.values()) == {200}, "a 429 was left unanswered"
    rows = outbox(database_url)
    assert {r.status for r in rows} == {OutboxStatus.SENT} and len(rows) == 200
    assert "Traceback" not in reminder_bot.log()


@pytest.fixture(params=["run", "serve"])
def stoppable_bot(
    request, emulator: EmulatorServer, database_url: str, tmp_path: Path
) -> Iterator[BotProcess]:
    """`baocao run` or `baocao serve` (webhook mode, the production command), not started yet, ticking
    reminders every second with 3-second leases."""
    (tmp_path / "logs").mkdir()
    settings = {"BAOCAO_TICK_SECONDS": "1", "BAOCAO_SEND_LEASE_SECONDS": "3"}
    process: BotProcess
    if request.param == "serve":
        from tests.e2e.test_webhook_e2e import ServeProcess, _env

        root, env = _env(emulator, database_url, **settings)
        process = ServeProcess(env, tmp_path / "logs", emulator, root)
    else:
        process = ReminderBot(child_env(emulator, database_url, **settings), tmp_path / "logs", emulator)
    yield process
    process.stop()


def test_sigterm_during_a_wave_stops_gracefully_and_the_rest_goes_after_restart(
    stoppable_bot: BotProcess, emulator: EmulatorServer, database_url: str, tmp_path: Path
) -> None:
    """`docker stop` / `systemctl stop` in the middle of a wave: exit 0, no row left claimed, none twice."""
    import signal

    bot = stoppable_bot
    chats = wave(bot, emulator, database_url, tmp_path, 200)
    # Telegram-like pace (20/s), so the wave lasts ~10 s and the signal lands in the middle of it
    emulator.set_flood_control(
        FloodLimits(global_per_second=20, per_chat_per_second=1, per_group_per_minute=20)
    )
    bot.start()
    assert emulator.wait_for_sync(lambda: sum(delivered(emulator).values()) >= 40, 40)
    assert bot.proc is not None
    bot.proc.send_signal(signal.SIGTERM)
    assert bot.proc.wait(40) == 0, bot.log()
    at_stop = delivered(emulator)
    assert 40 <= sum(at_stop.values()) < 200 and max(at_stop.values()) == 1
    rows = outbox(database_url)
    assert not [r for r in rows if r.status == OutboxStatus.SENDING], "a graceful stop hands rows back"
    assert {r.chat_id for r in rows if r.status == OutboxStatus.SENT} == set(at_stop)

    bot.start()
    emulator.wait_for_sync(lambda: len(delivered(emulator)) >= 200, 50)
    bot.proc.send_signal(signal.SIGTERM)
    assert bot.proc.wait(40) == 0, bot.log()
    assert delivered(emulator) == Counter(chats), "each village head gets exactly one successful send"
    assert {r.status for r in outbox(database_url)} == {OutboxStatus.SENT}
    assert "Traceback" not in bot.log()
