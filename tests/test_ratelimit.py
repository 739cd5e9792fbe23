"""The send-rate limiter in virtual time: 1/s per chat, 30/s in all, 20/min per group, 429 pauses everyone."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import defaultdict
from collections.abc import Coroutine
from typing import Any

import pytest

from bot.delivery.ratelimit import IN_FLIGHT_POLL, ManualTime, RateLimiter, SendLimits


class VirtualTime:
    """Discrete-event time: sleepers wake in deadline order, the clock jumps when every task sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        """The virtual time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of virtual time."""
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), fut))
        await fut

    async def run(self, *coros: Coroutine[Any, Any, Any]) -> list[Any]:
        """Run tasks to completion, advancing the clock whenever all of them are asleep."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        while True:
            for _ in range(10_000):
                live = sum(not t.done() for t in tasks)
                if live == 0 or len(self._sleepers) >= live:
                    break
                await asyncio.sleep(0)
            else:  # pragma: no cover - a task awaited something other than our sleep
                raise AssertionError("tasks neither finished nor slept")
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            at, _, fut = heapq.heappop(self._sleepers)
            self.now = max(self.now, at)
            fut.set_result(None)


def limiter_on(vt: VirtualTime | ManualTime, limits: SendLimits | None = None) -> RateLimiter:
    return RateLimiter(limits, clock=vt.clock, sleep=vt.sleep)


def max_in_window(times: list[float], span: float) -> int:
    """The most events inside any half-open window [t, t + span)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - span:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_100_sends_to_one_chat_take_at_least_99_seconds() -> None:
    vt = VirtualTime()
    limiter = limiter_on(vt)
    granted: list[float] = []

    async def sender() -> None:
        for _ in range(100):
            await limiter.acquire(42)
            granted.append(vt.now)

    await vt.run(sender())
    assert len(granted) == 100
    assert granted[-1] - granted[0] >= 99.0
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(granted))
    assert limiter.granted == 100


async def test_100_concurrent_sends_to_one_chat_are_still_a_second_apart() -> None:
    vt = VirtualTime()
    limiter = limiter_on(vt)
    granted: list[float] = []

    async def one() -> None:
        await limiter.acquire(7)
        granted.append(vt.now)

    await vt.run(*(one() for _ in range(100)))
    granted.sort()
    assert granted[-1] - granted[0] >= 99.0
    assert max_in_window(granted, 1.0) == 1


async def test_1000_chats_never_more_than_30_in_any_second() -> None:
    vt = VirtualTime()
    limiter = limiter_on(vt)
    granted: list[float] = []
    queue = list(range(1, 1001))

    async def worker() -> None:
        while queue:
            chat = queue.pop(0)
            await limiter.acquire(chat)
            granted.append(vt.now)

    await vt.run(*(worker() for _ in range(8)))
    assert len(granted) == 1000
    assert max_in_window(granted, 1.0) <= 30
    # 1000 / 30 windows of 1.05 s (the margin): about 34 s, and not much more
    assert 33.0 <= granted[-1] - granted[0] <= 36.0


async def test_margin_zero_gives_exactly_30_per_second() -> None:
    vt = VirtualTime()
    limiter = limiter_on(vt, SendLimits(margin=0.0))
    granted: list[float] = []

    async def sender() -> None:
        for chat in range(1, 301):
            await limiter.acquire(chat)
            granted.append(vt.now)

    await vt.run(sender())
    assert max_in_window(granted, 1.0) == 30
    assert granted[-1] == pytest.approx(9.0)


async def test_a_group_gets_at_most_20_per_minute_and_others_are_not_held_up() -> None:
    vt = VirtualTime()
    limiter = limiter_on(vt)
    group: list[float] = []
    private: list[float] = []

    async def to_group() -> None:
        for _ in range(45):
            await limiter.acquire(-100200300)
            group.append(vt.now)

    async def to_people() -> None:
        for chat in range(1, 61):
            await limiter.acquire(chat)
            private.append(vt.now)

    await vt.run(to_group(), to_people())
    assert max_in_window(group, 60.0) <= 20
    assert max_in_window(group, 1.0) <= 1
    assert group[-1] - group[0] >= 120.0  # 45 sends: three minutes' windows
    assert private[-1] < 5.0  # private chats go on at the global rate meanwhile


async def test_a_429_pauses_every_sender() -> None:
    vt = VirtualTime()
    limiter = limiter_on(vt)
    granted: dict[int, list[float]] = defaultdict(list)
    paused_at: list[float] = []

    async def sender(chat: int) -> None:
        for _ in range(10):
            await limiter.acquire(chat)
            granted[chat].append(vt.now)
            if chat == 1 and len(granted[1]) == 3:  # Telegram answered 429, retry_after=7
                limiter.pause(7)
                paused_at.append(vt.now)

    await vt.run(*(sender(chat) for chat in (1, 2, 3, 4)))
    (t0,) = paused_at
    every = [t for times in granted.values() for t in times]
    assert not [t for t in every if t0 < t < t0 + 7], "someone sent during the pause"
    assert all(len(times) == 10 for times in granted.values())
    assert limiter.pauses == 1 and limiter.paused_until == t0 + 7


async def test_pause_never_shortens_and_delay_counts_nothing() -> None:
    mt = ManualTime()
    limiter = limiter_on(mt)
    limiter.pause(10)
    limiter.pause(2)
    assert limiter.delay(5) == pytest.approx(10)
    assert limiter.granted == 0
    mt.advance(10)
    assert limiter.delay(5) == 0
    assert await limiter.acquire(5) == 0
    assert limiter.delay(5) == pytest.approx(1.05)


async def test_limits_can_be_turned_off() -> None:
    mt = ManualTime()
    limiter = limiter_on(mt, SendLimits(None, None, None))
    for _ in range(500):
        await limiter.acquire(-1)
    assert mt.now == 0.0


async def test_manual_time_sleep_moves_the_clock_at_once() -> None:
    mt = ManualTime(5.0)
    limiter = limiter_on(mt)
    for _ in range(3):
        await limiter.acquire(9)
    assert mt.now == pytest.approx(5.0 + 2 * 1.05)
    assert limiter.waited == pytest.approx(2 * 1.05)


async def test_idle_chat_windows_are_dropped() -> None:
    mt = ManualTime()
    limiter = limiter_on(mt, SendLimits(global_per_second=None))
    for chat in range(1, 5001):
        await limiter.acquire(chat)
        mt.advance(0.01)
    assert limiter.tracked_chats() < 1200  # pruned every 1024 sends, not 5000 kept


async def test_a_ticketed_send_holds_a_slot_in_flight_and_counts_from_its_answer() -> None:
    vt = ManualTime(0.0)
    lim = SendLimits(
        global_per_second=2, per_chat_per_second=None, per_group_per_minute=None, reply_memory=0.0
    )
    limiter = RateLimiter(lim, clock=vt.clock, sleep=vt.sleep)
    first, second = await limiter.acquire_send(1), await limiter.acquire_send(2)
    assert limiter.in_flight == 2 and limiter.delay(3) == IN_FLIGHT_POLL  # both slots held until answered
    vt.advance(0.3)
    first.answered()
    first.answered()  # once only
    assert limiter.in_flight == 1 and limiter.delay(3) == pytest.approx(1.0 + lim.answer_margin)
    vt.advance(0.2)
    second.answered()
    assert limiter.delay(3) == pytest.approx(0.81)
    vt.advance(0.81)  # a second and the answer margin after the first answer, not after its grant + 1.05
    assert limiter.delay(3) == 0
    assert limiter.try_acquire(3) == 0 and limiter.delay(4) > 0  # the second's slot is still counted
