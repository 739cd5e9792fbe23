"""Interactive replies before bulk sends, in virtual time: replies are counted in the shared limiter and never
wait on it, bulk senders leave them headroom, a wave with no replies keeps its full rate, memory stays bounded.

"Telegram" here is the emulator's own flood controller (30 in any second, nothing per chat), fed every send
the moment it is made; a reply it refuses is a reply that would have met 429.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest

from bot.delivery.ratelimit import RESERVE_ENV, ManualTime, RateLimiter, SendLimits
from bot.emulator.limits import FloodController, FloodLimits
from bot.updates import replies as replies_module
from bot.updates.context import OutgoingReply
from tests.test_ratelimit import VirtualTime, max_in_window

GLOBAL = 30
WAVE_ONLY = SendLimits(per_chat_per_second=None, per_group_per_minute=None)  # the global window alone


class Telegram:
    """Counts every send in virtual time the way the emulator does; remembers what it refused."""

    def __init__(self, vt: VirtualTime) -> None:
        self.flood = FloodController(
            FloodLimits(global_per_second=GLOBAL, per_chat_per_second=None, per_group_per_minute=None),
            clock=vt.clock,
        )
        self.bulk: list[float] = []
        self.replies: list[float] = []
        self.bulk_refused = 0
        self.replies_refused = 0
        self.vt = vt

    def bulk_send(self) -> None:
        if self.flood.check(None, is_group=False) is None:
            self.bulk.append(self.vt.now)
        else:
            self.bulk_refused += 1

    def reply(self) -> None:
        if self.flood.check(None, is_group=False) is None:
            self.replies.append(self.vt.now)
        else:
            self.replies_refused += 1


def wave(
    vt: VirtualTime,
    limiter: RateLimiter,
    telegram: Telegram,
    until: float,
    senders: int = 8,
    start: float = 0.0,
) -> list[Coroutine[Any, Any, None]]:
    """`senders` bulk senders (the dispatcher's concurrency) to ever new chats from `start` until `until` (one
    task each: `VirtualTime.run` moves the clock once every task it runs sleeps)."""
    counter = iter(range(10**9))

    async def sender() -> None:
        if start > vt.now:
            await vt.sleep(start - vt.now)
        while vt.now < until:
            await limiter.acquire(100_000 + next(counter))
            if vt.now < until:
                telegram.bulk_send()

    return [sender() for _ in range(senders)]


async def heads(
    vt: VirtualTime, limiter: RateLimiter, telegram: Telegram, times: list[float], chat: int = 7
) -> None:
    """Replies at the given virtual times, counted and sent at once (never waiting on the limiter)."""
    for at in sorted(times):
        if at > vt.now:
            await vt.sleep(at - vt.now)
        limiter.note_reply(chat)
        telegram.reply()


def limiter_on(vt: VirtualTime | ManualTime, limits: SendLimits = WAVE_ONLY) -> RateLimiter:
    return RateLimiter(limits, clock=vt.clock, sleep=vt.sleep)


async def test_a_wave_with_no_replies_keeps_95_percent_of_the_configured_rate() -> None:
    vt = VirtualTime()
    limiter, telegram = limiter_on(vt), Telegram(vt)
    await vt.run(*wave(vt, limiter, telegram, until=60.0))
    rate = len(telegram.bulk) / 60.0
    assert rate >= 0.95 * GLOBAL, rate
    assert telegram.bulk_refused == 0
    assert limiter.reserve() == 0


async def test_replies_flowing_during_a_saturated_wave_never_meet_flood_control() -> None:
    vt = VirtualTime()
    limiter, telegram = limiter_on(vt), Telegram(vt)
    # heads already answering when the wave starts (t=2): a steady 8 replies a second, plus 3 at once (within
    # the floor) every 7 s, for a minute
    times = [i / 8 for i in range(8 * 60)] + [7 * k + 0.01 * j for k in range(1, 8) for j in range(3)]
    await vt.run(heads(vt, limiter, telegram, times), *wave(vt, limiter, telegram, until=60.0, start=2.0))
    assert telegram.replies_refused == 0
    assert len(telegram.replies) == len(times)
    assert telegram.bulk_refused == 0
    # the wave still moves: what the replies leave, less the reserve (floor and bursts)
    floor = limiter.limits.reply_floor
    assert len(telegram.bulk) / 58.0 >= GLOBAL / 1.05 - floor - 8 - 3 - 1, len(telegram.bulk)
    assert max_in_window(telegram.bulk + telegram.replies, 1.0) <= GLOBAL


async def test_recurring_bursts_of_replies_keep_their_room_in_the_window() -> None:
    vt = VirtualTime()
    limiter, telegram = limiter_on(vt), Telegram(vt)
    refused_at: list[float] = []

    async def bursts() -> None:
        for k in range(15):  # 12 replies at once every 2 s, from t=0
            if 2 * k > vt.now:
                await vt.sleep(2 * k - vt.now)
            for _ in range(12):
                limiter.note_reply(7)
                before = telegram.replies_refused
                telegram.reply()
                if telegram.replies_refused > before:
                    refused_at.append(vt.now)

    await vt.run(bursts(), *wave(vt, limiter, telegram, until=30.0))
    assert refused_at == []  # four times the floor at once, every 2 s: the peak is remembered
    assert len(telegram.bulk) / 30.0 >= 5  # the wave keeps moving between the bursts


async def test_the_first_replies_after_a_minute_of_silence_may_meet_flood_control_once() -> None:
    """The documented limit: a reserve that costs a wave with no replies nothing cannot foresee the very
    first reply; it may meet one 429 (waited out by the reply, never dropped), the ones after it do not."""
    vt = VirtualTime()
    limiter, telegram = limiter_on(vt), Telegram(vt)
    times = [5.0 + i / 8 for i in range(8 * 20)]
    await vt.run(heads(vt, limiter, telegram, times), *wave(vt, limiter, telegram, until=25.0))
    assert 0 < telegram.replies_refused <= 8
    assert len(telegram.replies) + telegram.replies_refused == len(times)


async def test_without_the_reserve_the_same_replies_meet_flood_control() -> None:
    """The tests above can fail: with BAOCAO_REPLY_RESERVE=off (replies not counted) they are refused."""
    vt = VirtualTime()
    limiter = limiter_on(vt, SendLimits(per_chat_per_second=None, per_group_per_minute=None, reply_memory=0))
    telegram = Telegram(vt)
    times = [0.5 + i / 8 for i in range(8 * 20)]
    await vt.run(*wave(vt, limiter, telegram, until=20.0), heads(vt, limiter, telegram, times))
    assert telegram.replies_refused >= len(times) / 4


async def test_a_reply_never_waits_on_the_limiter_even_when_paused_or_full() -> None:
    mt = ManualTime()
    limiter = limiter_on(mt)
    for chat in range(GLOBAL):
        assert limiter.try_acquire(chat) == 0
    limiter.pause(10)
    limiter.note_reply(1)  # returns at once, no await
    assert mt.slept == 0
    assert limiter.replies == 1


def test_the_reserve_adapts_to_the_replies_seen() -> None:
    mt = ManualTime(100.0)
    limiter = limiter_on(mt)
    assert limiter.reserve() == 0  # never a reply: the whole window is the wave's
    floor, memory = limiter.limits.reply_floor, limiter.limits.reply_peak_seconds
    for _ in range(12):  # a burst of 12 in one second
        limiter.note_reply(5)
    assert limiter.reserve() == floor + 12  # the floor on top of the busiest second
    mt.advance(1.2)  # the burst left the window; another like it may come
    assert limiter.reserve() == floor + 12
    for _ in range(memory + 1):  # now a steady 4 a second, until the burst is older than reply_peak_seconds
        for _ in range(4):
            limiter.note_reply(5)
            mt.advance(0.25)
    assert limiter.reserve() == floor + 4
    mt.advance(memory + 2.0)  # no reply for a while: just the floor
    assert limiter.reserve() == floor
    mt.advance(60.0)  # no reply for reply_memory: no reserve at all
    assert limiter.reserve() == 0


def test_the_wave_keeps_a_share_however_many_replies() -> None:
    mt = ManualTime(10.0)
    limiter = limiter_on(mt)
    for _ in range(200):
        limiter.note_reply(5)
    mt.advance(1.1)
    assert limiter.reserve() == GLOBAL - 3  # bulk keeps 10 % of the limit
    assert limiter.try_acquire(9) == 0  # and may send now


def test_bulk_takes_what_the_reserve_leaves_of_the_window() -> None:
    mt = ManualTime(10.0)
    limiter = limiter_on(mt)
    limiter.note_reply(1)  # t=10.0: one reply → reserve = floor + 1
    mt.advance(0.5)
    granted = 0
    while limiter.try_acquire(1000 + granted) == 0:
        granted += 1
    assert granted == GLOBAL - limiter.limits.reply_floor - 1
    assert limiter.delay(5000) == pytest.approx(1.05)  # when the first of them leaves the window


def test_a_reply_holds_its_chat_for_the_next_bulk_send() -> None:
    mt = ManualTime(10.0)
    limiter = RateLimiter(SendLimits(), clock=mt.clock, sleep=mt.sleep)
    limiter.note_reply(42)
    assert limiter.delay(42) == pytest.approx(1.05)
    assert limiter.delay(43) == 0


def test_memory_stays_bounded_under_a_long_run_of_replies_and_sends() -> None:
    mt = ManualTime(0.0)
    limiter = RateLimiter(SendLimits(), clock=mt.clock, sleep=mt.sleep)
    for i in range(50_000):
        limiter.note_reply(1_000_000 + i)  # a new chat each time
        if i % 3 == 0:
            limiter.try_acquire(-(i % 50) - 1)
        mt.advance(0.05)
    assert len(limiter._replies) <= GLOBAL
    assert len(limiter._reply_quarters) <= 4 * (limiter.limits.reply_peak_seconds + 1)
    assert limiter.tracked_chats() <= 1024 + 60 + 50  # idle chats are swept as sends go on


def test_off_means_replies_are_neither_counted_nor_reserved() -> None:
    mt = ManualTime(0.0)
    limiter = limiter_on(mt, SendLimits.from_env({RESERVE_ENV: "off"}))
    for _ in range(10):
        limiter.note_reply(1)
    assert limiter.reserve() == 0
    assert sum(limiter.try_acquire(100 + i) == 0 for i in range(GLOBAL)) == GLOBAL


@pytest.mark.parametrize(
    ("raw", "floor", "reserving"),
    [
        ("", SendLimits().reply_floor, True),
        ("7", 7, True),
        (" 2 ", 2, True),
        ("off", 0, False),
        ("0", 0, False),
    ],
)
def test_the_reserve_is_read_from_the_environment(raw: str, floor: int, reserving: bool) -> None:
    limits = SendLimits.from_env({RESERVE_ENV: raw} if raw else {})
    assert limits.reply_floor == floor and limits.reserving is reserving


@pytest.mark.parametrize("raw", ["three", "-1", "2.5"])
def test_a_bad_reserve_setting_is_refused_with_its_name(raw: str) -> None:
    with pytest.raises(ValueError, match=RESERVE_ENV):
        SendLimits.from_env({RESERVE_ENV: raw})


class FakeBot:
    """Answers every call at once; records the method names."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def send_message(self, chat_id: int, *args: Any, **kwargs: Any) -> None:
        self.calls.append("sendMessage")

    async def send_location(self, chat_id: int, **kwargs: Any) -> None:
        self.calls.append("sendLocation")


@pytest.fixture
def counted() -> Any:
    seen: list[int] = []
    replies_module.count_replies_with(seen.append)
    yield seen
    replies_module.count_replies_with(None)


async def test_every_reply_and_alongside_edit_is_counted_for_its_chat(counted: list[int]) -> None:
    bot = FakeBot()

    async def edit(_bot: Any) -> None:
        return None

    await replies_module.send_replies(
        bot,
        [
            OutgoingReply(text="một"),
            OutgoingReply(text="hai", chat_id=99),
            OutgoingReply(text="ba", location=(1, 2)),
        ],
        chat_id=7,
        alongside=[edit],
    )
    assert counted == [7, 7, 99, 7, 7]  # the first reply, the edit, the other chat's, the text and its pin
    assert bot.calls == ["sendMessage", "sendMessage", "sendMessage", "sendLocation"]


async def test_with_no_counter_replies_go_as_before() -> None:
    replies_module.count_replies_with(None)
    bot = FakeBot()
    await replies_module.send_replies(bot, [OutgoingReply(text="một")], chat_id=7)
    assert bot.calls == ["sendMessage"]


async def test_a_counter_that_fails_never_stops_a_reply(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_chat_id: int) -> None:
        raise TypeError("unhashable")

    replies_module.count_replies_with(broken)
    try:
        bot = FakeBot()
        await replies_module.send_replies(
            bot, [OutgoingReply(text="một"), OutgoingReply(text="hai")], chat_id=7
        )
    finally:
        replies_module.count_replies_with(None)
    assert bot.calls == ["sendMessage", "sendMessage"]
    assert "could not count a reply" in caplog.text
