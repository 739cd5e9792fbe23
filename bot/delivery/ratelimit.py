"""Send-rate limits shared by everything the bot sends in bulk: 30/s in all, 1/s per chat, 20/min per group.
`RateLimiter` (`acquire`, `pause`), `SendLimits`, and `ManualTime` for tests in virtual time.

Design notes: docs/design-notes.md#botdeliveryratelimitpy
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Sleep = Callable[[float], Awaitable[None]]
MonotonicClock = Callable[[], float]

LIMITER_KEY = "send_limiter"  # the application's shared limiter, in bot_data (bot.app puts it there)
_PRUNE_EVERY = 1024  # sends between sweeps of idle per-chat windows


@dataclass(frozen=True)
class SendLimits:
    """Telegram's limits; None turns one off."""

    global_per_second: int | None = 30
    per_chat_per_second: int | None = 1
    per_group_per_minute: int | None = 20
    margin: float = 0.05  # seconds added to every window (network jitter)


class RateLimiter:
    """Sliding-window limiter with a global pause; one instance per process, shared by all bulk senders."""

    def __init__(
        self,
        limits: SendLimits | None = None,
        *,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Empty windows; `clock` is monotonic seconds, `sleep` awaits seconds (both injectable)."""
        self.limits = limits or SendLimits()
        self._clock = clock
        self._sleep = sleep
        lim = self.limits
        self._global: deque[float] | None = (
            deque(maxlen=lim.global_per_second) if lim.global_per_second else None
        )
        self._chats: dict[int, deque[float]] = {}
        self._groups: dict[int, deque[float]] = {}
        self._paused_until = float("-inf")
        self._since_prune = 0
        self.granted = 0  # sends counted so far
        self.waited = 0.0  # seconds spent waiting in acquire, summed over callers
        self.pauses = 0  # how many times pause() was called

    @property
    def paused_until(self) -> float:
        """Clock value before which nothing is sent (-inf when never paused)."""
        return self._paused_until

    def pause(self, seconds: float) -> None:
        """Stop every sender for `seconds` from now (Telegram said retry_after); pauses never shorten."""
        self.pauses += 1
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def delay(self, chat_id: int) -> float:
        """Seconds until a send to `chat_id` would be allowed (0: now); nothing is counted."""
        now = self._clock()
        wait = self._paused_until - now
        lim = self.limits
        if self._global is not None and lim.global_per_second:
            wait = max(wait, _window_wait(self._global, lim.global_per_second, 1.0 + lim.margin, now))
        if lim.per_chat_per_second:
            window = self._chats.get(chat_id)
            if window is not None:
                wait = max(wait, _window_wait(window, lim.per_chat_per_second, 1.0 + lim.margin, now))
        if chat_id < 0 and lim.per_group_per_minute:
            window = self._groups.get(chat_id)
            if window is not None:
                wait = max(wait, _window_wait(window, lim.per_group_per_minute, 60.0 + lim.margin, now))
        return max(0.0, wait)

    def try_acquire(self, chat_id: int) -> float:
        """Count a send to `chat_id` if allowed now and return 0, else return the seconds to wait."""
        wait = self.delay(chat_id)
        if wait > 0:
            return wait
        now = self._clock()
        lim = self.limits
        if self._global is not None:
            self._global.append(now)
        if lim.per_chat_per_second:
            window = self._chats.get(chat_id)
            if window is None:
                window = self._chats[chat_id] = deque(maxlen=lim.per_chat_per_second)
            window.append(now)
        if chat_id < 0 and lim.per_group_per_minute:
            window = self._groups.get(chat_id)
            if window is None:
                window = self._groups[chat_id] = deque(maxlen=lim.per_group_per_minute)
            window.append(now)
        self.granted += 1
        self._since_prune += 1
        if self._since_prune >= _PRUNE_EVERY:
            self._prune(now)
        return 0.0

    async def acquire(self, chat_id: int) -> float:
        """Wait until a send to `chat_id` fits every window and the pause, count it; return seconds waited."""
        waited = 0.0
        while True:
            wait = self.try_acquire(chat_id)
            if wait <= 0:
                self.waited += waited
                return waited
            await self._sleep(wait)
            waited += wait

    def tracked_chats(self) -> int:
        """How many per-chat and per-group windows are kept (idle ones are dropped as sends go on)."""
        return len(self._chats) + len(self._groups)

    def _prune(self, now: float) -> None:
        self._since_prune = 0
        chat_span = 1.0 + self.limits.margin
        group_span = 60.0 + self.limits.margin
        self._chats = {k: w for k, w in self._chats.items() if w and w[-1] > now - chat_span}
        self._groups = {k: w for k, w in self._groups.items() if w and w[-1] > now - group_span}


def _window_wait(window: deque[float], limit: int, span: float, now: float) -> float:
    """Seconds until `window` (maxlen == limit) accepts one more send within `span`."""
    if len(window) < limit:
        return 0.0
    return window[0] + span - now


class ManualTime:
    """A virtual monotonic clock whose `sleep` moves it forward at once (tests and simulations).

    Concurrent sleepers each move the clock by their own wait, so time may run ahead of a real
    schedule; what a limiter grants is still correct for the times it saw.
    """

    def __init__(self, start: float = 0.0) -> None:
        """Start at `start` seconds."""
        self.now = start
        self.slept = 0.0

    def clock(self) -> float:
        """The current virtual time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Advance by `seconds` and let other tasks run."""
        if seconds > 0:
            self.now += seconds
            self.slept += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> float:
        """Move the clock forward without sleeping; returns the new time."""
        self.now += seconds
        return self.now
