"""Send-rate limits shared by everything the bot sends: 30/s in all, 1/s per chat, 20/min per group.
`RateLimiter` (`acquire` for bulk senders, `note_reply` for interactive replies, `pause`), `SendLimits`, and
`ManualTime` for tests in virtual time.

The global window of a bulk send taken with `acquire_send` is stamped when Telegram answers (its
`SendTicket.answered()`), not when it was granted: Telegram counted the request at some moment between the
two, so a send granted `1 s + answer_margin` after the previous one's answer reaches Telegram more than a
second after it whatever the network's jitter, and the window needs no margin for jitter. A slot stays taken
while its request is in flight. Stamping at the grant (`acquire`, `try_acquire`) needs `margin` (0.05 s)
against jitter, which caps a wave at 30 / 1.05 = 95.2 % of the limit before any 429 (each one pauses every
sender for a second): the reminder waves measured 0.93–0.95 of 30/s that way.

Interactive replies go first: they never wait here, they are only counted (`note_reply`), and bulk senders
(reminders, pushes, outbox) leave them headroom in the shared global window. While replies were seen in the
last `reply_memory` seconds, bulk sends may fill at most `global − reserve` of a window, the reserve being
`reply_floor` plus the most replies seen in about a second (a window of 4 quarter-second buckets) over the
last `reply_peak_seconds`, or in the current window if more; with no reply for `reply_memory` seconds the
reserve is 0 and a wave runs at the full configured rate. `SendLimits.from_env` reads BAOCAO_REPLY_RESERVE
("off" turns it all off).

Design notes: docs/design-notes.md#botdeliveryratelimitpy
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

Sleep = Callable[[float], Awaitable[None]]
MonotonicClock = Callable[[], float]

LIMITER_KEY = "send_limiter"  # the application's shared limiter, in bot_data (bot.app puts it there)
RESERVE_ENV = "BAOCAO_REPLY_RESERVE"  # the reply floor, or "off" (replies neither counted nor reserved)
_QUARTERS = 4  # reply buckets a second
_PRUNE_EVERY = 1024  # sends between sweeps of idle per-chat windows
IN_FLIGHT_POLL = 0.005  # seconds between looks while every free slot is a send in flight


@dataclass(frozen=True)
class SendLimits:
    """Telegram's limits; None turns one off."""

    global_per_second: int | None = 30
    per_chat_per_second: int | None = 1
    per_group_per_minute: int | None = 20
    margin: float = 0.05  # seconds added to every window (network jitter)
    reply_floor: int = 5  # global sends a window kept free for replies while replies are flowing
    reply_memory: float = 60.0  # seconds a reply keeps the headroom on (0: never reserve)
    reply_peak_seconds: int = 10  # the reserve follows the busiest second of replies this far back
    bulk_share: float = 0.1  # bulk always keeps at least this share of the global limit (at least 1)
    answer_margin: float = 0.01  # seconds added to the global window of a send stamped at its answer

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SendLimits:
        """Telegram's limits, with BAOCAO_REPLY_RESERVE as the reply floor ("off" or "0": no reserve)."""
        raw = environ.get(RESERVE_ENV, "").strip().lower()
        if not raw:
            return cls()
        if raw in {"off", "0", "no", "false"}:
            return cls(reply_floor=0, reply_memory=0.0)
        try:
            floor = int(raw)
        except ValueError:
            raise ValueError(f"{RESERVE_ENV} must be a whole number or 'off', not {raw!r}") from None
        if floor < 0:
            raise ValueError(f"{RESERVE_ENV} must not be negative")
        return cls(reply_floor=floor)

    @property
    def reserving(self) -> bool:
        """Whether replies are counted and given headroom at all."""
        return self.reply_memory > 0 and bool(self.global_per_second)


class RateLimiter:
    """Sliding-window limiter with a global pause; one instance per process, shared by all bulk senders,
    which leave headroom for the interactive replies it is told about (`note_reply`)."""

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
        # when each counted bulk send leaves the global window (appended in time order), and the sends
        # granted with a ticket whose answer has not come yet (they hold a slot until it does)
        self._global: deque[float] | None = deque() if lim.global_per_second else None
        self._in_flight = 0
        self._chats: dict[int, deque[float]] = {}
        self._groups: dict[int, deque[float]] = {}
        # replies: their send times (a window's worth) and replies per quarter second (reply_peak_seconds' worth)
        self._replies: deque[float] = deque(maxlen=max(1, lim.global_per_second or 1))
        self._reply_quarters: deque[list[int]] = deque(maxlen=_QUARTERS * (lim.reply_peak_seconds + 1))
        self._last_reply = float("-inf")
        self._paused_until = float("-inf")
        self._since_prune = 0
        self.granted = 0  # sends counted so far
        self.replies = 0  # replies counted so far (note_reply)
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
            wait = max(wait, self._global_wait(lim.global_per_second, now))
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
        return self._try(chat_id, ticket=False)

    def _try(self, chat_id: int, *, ticket: bool) -> float:
        """Count a send if allowed now (0), else the seconds to wait; a ticketed send holds an in-flight slot."""
        wait = self.delay(chat_id)
        if wait > 0:
            return wait
        now = self._clock()
        lim = self.limits
        if self._global is not None:
            if ticket:
                self._in_flight += 1
            else:
                self._global.append(now + 1.0 + lim.margin)
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

    def note_reply(self, chat_id: int) -> None:
        """Count an interactive reply (or edit) to `chat_id` about to be sent; it never waits here."""
        self.replies += 1
        lim = self.limits
        if not lim.reserving:  # BAOCAO_REPLY_RESERVE=off: replies are not counted at all
            return
        now = self._clock()
        self._last_reply = now
        if lim.global_per_second:
            self._replies.append(now)
            quarter = math.floor(now * _QUARTERS)
            if self._reply_quarters and self._reply_quarters[-1][0] == quarter:
                self._reply_quarters[-1][1] += 1
            else:
                self._reply_quarters.append([quarter, 1])
        if lim.per_chat_per_second:  # a reminder to the same chat waits its turn after the reply
            window = self._chats.get(chat_id)
            if window is None:
                window = self._chats[chat_id] = deque(maxlen=lim.per_chat_per_second)
            window.append(now)
        self._since_prune += 1
        if self._since_prune >= _PRUNE_EVERY:
            self._prune(now)

    def reserve(self) -> int:
        """Global sends a window now kept free for replies (0 when none were seen for `reply_memory` s)."""
        lim = self.limits
        if not lim.global_per_second or not lim.reserving:
            return 0
        now = self._clock()
        if now - self._last_reply > lim.reply_memory:
            return 0
        peak = _busiest_second(self._reply_quarters, math.floor(now * _QUARTERS), lim.reply_peak_seconds)
        in_window = _count_since(self._replies, now - (1.0 + lim.margin))
        wanted = lim.reply_floor + max(peak, in_window)
        most = lim.global_per_second - max(1, math.ceil(lim.global_per_second * lim.bulk_share))
        return max(0, min(wanted, most))

    def _global_wait(self, limit: int, now: float) -> float:
        """Seconds until the bulk sends in the global window leave room for one more beside the reserve."""
        window = self._global
        assert window is not None
        while window and window[0] <= now:
            window.popleft()
        allowed = limit - self.reserve()  # at least 1 (bulk_share)
        excess = len(window) + self._in_flight - allowed + 1  # how many must leave the window first
        if excess <= 0:
            return 0.0
        if excess > len(window):  # sends in flight hold the slots: look again shortly
            return IN_FLIGHT_POLL
        return max(IN_FLIGHT_POLL / 10, window[excess - 1] - now)

    def answered(self) -> None:
        """A ticketed send got Telegram's answer (or was not made): its slot is counted from now for 1 s."""
        if self._global is None:
            return
        self._in_flight = max(0, self._in_flight - 1)
        self._global.append(self._clock() + 1.0 + self.limits.answer_margin)

    @property
    def in_flight(self) -> int:
        """Ticketed sends granted and not answered yet."""
        return self._in_flight

    async def acquire_send(self, chat_id: int) -> SendTicket:
        """Wait until a send to `chat_id` fits, count it as in flight; call the ticket's `answered()` when
        Telegram answers (or the send is given up) — the global window then counts it from that moment."""
        waited = 0.0
        while True:
            wait = self._try(chat_id, ticket=True)
            if wait <= 0:
                self.waited += waited
                return SendTicket(self)
            await self._sleep(wait)
            waited += wait

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


class SendTicket:
    """A granted bulk send; `answered()` (idempotent) when Telegram answered or the send was not made."""

    __slots__ = ("_limiter", "_open")

    def __init__(self, limiter: RateLimiter) -> None:
        """Hold one in-flight slot of `limiter`."""
        self._limiter: RateLimiter = limiter
        self._open = True

    def answered(self) -> None:
        """Free the in-flight slot; the send counts in the global window for a second from now."""
        if self._open:
            self._open = False
            self._limiter.answered()


def _busiest_second(quarters: deque[list[int]], current: int, seconds: int) -> int:
    """The most replies in 4 consecutive quarter-second buckets of the last `seconds` (to `current`)."""
    oldest = current - _QUARTERS * seconds
    counts = {q: n for q, n in quarters if q >= oldest}
    if not counts:
        return 0
    best = 0
    for start in counts:  # a window starting at a bucket with replies is as busy as any
        best = max(best, sum(counts.get(start + i, 0) for i in range(_QUARTERS)))
    return best


def _count_since(window: deque[float], since: float) -> int:
    """How many times in the (sorted) `window` are later than `since`."""
    count = 0
    for t in reversed(window):
        if t <= since:
            break
        count += 1
    return count


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
