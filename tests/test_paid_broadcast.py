"""Paid broadcasts (BAOCAO_PAID_BROADCAST): bulk rows go out with `allow_paid_broadcast` at their own rate while
the day's Stars last, counted in the database across restarts; alerts and notices never; the emulator lets
them past the free 30 a second and counts the Stars. Limiters and the emulator's windows run in virtual time."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from telegram import Bot

from bot.clock import FixedClock
from bot.config import ConfigError, settings_from
from bot.delivery import paid_broadcast
from bot.delivery.paid_broadcast import CAP_ACTION, PaidBroadcast, paid_broadcast_of, reserved
from bot.delivery.ratelimit import ManualTime, RateLimiter
from bot.emulator.limits import FloodController, FloodLimits
from bot.emulator.server import EmulatorServer
from storage import audit
from storage.db import session_scope
from storage.models import Outbox, OutboxStatus
from tests.test_dispatch import NOW, add_people, add_rows, dispatch, person_id

TOKEN = "525252:PaidBroadcastTokenPaidBroadcast0"
UTC_ZONE = UTC  # the budget's days (BAOCAO_TIMEZONE in the bot)


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    """The emulator with Telegram's limits: 30 a second free, 1,000 a second paid."""
    srv = EmulatorServer(token=TOKEN, flood_control=FloodLimits())
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def tg(server: EmulatorServer) -> AsyncIterator[Bot]:
    """A PTB Bot talking to it."""
    async with Bot(TOKEN, base_url=server.base_url) as bot:
        yield bot


def paid_of(engine: Any, vtime: ManualTime, *, rate: int = 300, stars: int = 100, at=NOW) -> PaidBroadcast:
    """A paid broadcast setting whose limiter waits in virtual time."""
    limiter = RateLimiter(paid_broadcast.paid_limits(rate), clock=vtime.clock, sleep=vtime.sleep)
    return PaidBroadcast(
        engine, rate=rate, max_stars=stars, timezone=UTC_ZONE, clock=FixedClock(at), limiter=limiter
    )


def sends(server: EmulatorServer) -> list[tuple[int, bool, int]]:
    """(chat, sent paid, HTTP status) of every sendMessage."""
    return [
        (int(r.params["chat_id"]), str(r.params.get("allow_paid_broadcast", "")).lower() == "true", r.status)
        for r in server.requests_for("sendMessage")
    ]


def virtual(server: EmulatorServer, vtime: ManualTime) -> None:
    """The emulator's flood windows on the same virtual time as our limiters."""
    assert server._flood is not None
    server._flood._clock = vtime.clock


async def test_bulk_rows_go_paid_alerts_and_notices_free_and_each_arrives_once(engine, server, tg) -> None:
    vtime = ManualTime(1000.0)
    virtual(server, vtime)
    chats = add_people(engine, server, 300)
    bulk = add_rows(engine, [{"chat_id": c, "person_id": person_id(engine, c)} for c in chats[:290]])
    kinds = ["notice", "alert", "digest", "summary", "nudge"] * 2
    add_rows(
        engine, [{"chat_id": c, "kind": k, "key": f"k:{c}"} for c, k in zip(chats[290:], kinds, strict=True)]
    )
    free = RateLimiter(clock=vtime.clock, sleep=vtime.sleep)
    paid = paid_of(engine, vtime, rate=300, stars=100)
    started = vtime.now

    report = await dispatch(engine, tg, free, paid=paid)

    assert report.sent == 300 and not report.failed and report.flood_waits == 0
    seen = sends(server)
    assert Counter(chat for chat, _, status in seen if status == 200) == Counter(chats)  # once each
    paid_chats = {chat for chat, was_paid, _ in seen if was_paid}
    by_kind = {c: k for c, k in zip(chats[290:], kinds, strict=True)}
    assert paid_chats == set(chats[:290]) | {c for c, k in by_kind.items() if k not in {"notice", "alert"}}
    assert server.counters["paid_broadcast"] == 296  # 0.1 Star each: 29.6 Stars
    assert reserved(engine, NOW.date().isoformat()) == 296  # the unused rest of the block was given back
    assert vtime.now - started < 2.0  # 300 a second, not the free 30 (10 s)
    with session_scope(engine) as session:
        statuses = Counter(session.scalars(select(Outbox.status)))
    assert statuses == Counter({OutboxStatus.SENT: 300}) and bulk


async def test_the_daily_cap_falls_back_to_the_free_rate_and_tells_the_operator(engine, server, tg) -> None:
    vtime = ManualTime(1000.0)
    virtual(server, vtime)
    chats = add_people(engine, server, 40)
    add_rows(engine, [{"chat_id": c, "person_id": person_id(engine, c)} for c in chats])
    free = RateLimiter(clock=vtime.clock, sleep=vtime.sleep)
    paid = paid_of(engine, vtime, stars=2)  # 20 messages

    report = await dispatch(engine, tg, free, paid=paid)

    assert report.sent == 40 and report.flood_waits == 0
    seen = sends(server)
    assert sum(was_paid for _, was_paid, status in seen if status == 200) == 20
    assert Counter(chat for chat, _, status in seen if status == 200) == Counter(chats)
    assert server.counters["paid_broadcast"] == 20
    day = NOW.date().isoformat()
    assert reserved(engine, day) == 20
    with session_scope(engine) as session:
        (entry,) = audit.entries(session, action=CAP_ACTION)
        assert entry.entity_id == day and entry.detail == {"stars": 2}

    # a restart the same day: the count is in the database, nothing more goes paid
    chats2 = add_people(engine, server, 5, first=91001)
    add_rows(engine, [{"chat_id": c, "key": f"again:{c}"} for c in chats2])
    again = await dispatch(engine, tg, free, paid=paid_of(engine, vtime, stars=2))
    assert again.sent == 5 and server.counters["paid_broadcast"] == 20
    # the next day the budget is new
    chats3 = add_people(engine, server, 3, first=92001)
    add_rows(engine, [{"chat_id": c, "key": f"next:{c}"} for c in chats3])
    tomorrow = NOW + timedelta(days=1)
    await dispatch(engine, tg, free, tomorrow, paid=paid_of(engine, vtime, stars=2, at=tomorrow))
    assert server.counters["paid_broadcast"] == 23
    assert reserved(engine, tomorrow.date().isoformat()) == 3


def test_reservations_never_pass_the_cap(engine) -> None:
    day = "2026-12-07"
    assert paid_broadcast.reserve(engine, day, 50, 120) == 50
    assert paid_broadcast.reserve(engine, day, 50, 120) == 50
    assert paid_broadcast.reserve(engine, day, 50, 120) == 20
    assert paid_broadcast.reserve(engine, day, 50, 120) == 0
    paid_broadcast.give_back(engine, day, 7)
    assert reserved(engine, day) == 113
    assert paid_broadcast.reserve(engine, day, 50, 120) == 7


def test_settings_off_by_default_and_a_cap_required() -> None:
    base = {"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": "sqlite:///x.db"}
    settings = settings_from(base)
    assert not settings.paid_broadcast and paid_broadcast_of(settings, None) is None  # type: ignore[arg-type]
    on = settings_from({**base, "BAOCAO_PAID_BROADCAST": "1", "BAOCAO_PAID_BROADCAST_MAX_STARS": "500"})
    assert (on.paid_broadcast, on.paid_broadcast_rate, on.paid_broadcast_max_stars) == (True, 1000, 500)
    for bad, says in [
        ({"BAOCAO_PAID_BROADCAST": "1"}, "BAOCAO_PAID_BROADCAST_MAX_STARS"),
        ({"BAOCAO_PAID_BROADCAST": "1", "BAOCAO_PAID_BROADCAST_MAX_STARS": "0"}, "mỗi ngày"),
        ({"BAOCAO_PAID_BROADCAST": "1", "BAOCAO_PAID_BROADCAST_MAX_STARS": "nhiều"}, "số nguyên"),
        ({"BAOCAO_PAID_BROADCAST": "có"}, "BAOCAO_PAID_BROADCAST="),
        (
            {
                "BAOCAO_PAID_BROADCAST": "1",
                "BAOCAO_PAID_BROADCAST_MAX_STARS": "5",
                "BAOCAO_PAID_BROADCAST_RATE": "5000",
            },
            "1000",
        ),
    ]:
        with pytest.raises(ConfigError, match=says):
            settings_from({**base, **bad})


def test_the_emulator_counts_paid_sends_outside_the_free_window() -> None:
    vtime = ManualTime(0.0)
    flood = FloodController(FloodLimits(per_chat_per_second=None), clock=vtime.clock)
    assert all(flood.check(i, is_group=False) is None for i in range(30))
    assert flood.check(99, is_group=False) == 1  # the free window is full
    assert all(flood.check(100 + i, is_group=False, paid=True) is None for i in range(1000))
    assert flood.check(5000, is_group=False, paid=True) == 1  # and so is the paid one
    vtime.advance(1.0)
    assert flood.check(99, is_group=False) is None
