"""Opt-in paid broadcasts (BAOCAO_PAID_BROADCAST=1): bulk sends (reminders, digests, nudges, pushed summaries,
never replies, alerts or notices) go out with the Bot API's `allow_paid_broadcast`, up to
BAOCAO_PAID_BROADCAST_RATE a second (Telegram allows 1,000) for 0.1 Telegram Star a message, under a daily cap
of BAOCAO_PAID_BROADCAST_MAX_STARS. `PaidBroadcast` (its own limiter and the day's budget) and the budget's
table `paid_broadcast_day`.

The budget is counted in the database, in blocks of `BLOCK` messages reserved with one compare-and-set
UPDATE, so a restart (or a second process) never resets or exceeds it: a crash loses at most the unused rest
of a block (counted as spent). When the cap is reached the sends fall back to the free rate (the shared
limiter), once a day logged as a warning and written to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bot.clock import Clock, system_clock
from bot.config import Settings
from bot.delivery.ratelimit import RateLimiter, SendLimits
from storage import audit
from storage.db import session_scope
from storage.dialect import dialect_name
from storage.models import PaidBroadcastDay
from storage.upsert import insert_ignoring

log = logging.getLogger(__name__)

DAY = PaidBroadcastDay.__table__
MESSAGES_PER_STAR: Final = 10  # Telegram: 0.1 Star a message
TELEGRAM_MAX_RATE: Final = 1000  # messages a second Telegram allows with allow_paid_broadcast
BLOCK: Final = 50  # messages reserved in the database at a time
CAP_ACTION: Final = "paid_broadcast_cap"  # the audit entry written when a day's cap is reached
PAID_CONCURRENCY: Final = 32  # sends in flight at once when paid (8 carry the free 30 a second)
PAID_BATCH: Final = 200  # rows claimed at a time when paid

Db = Callable[..., Awaitable[Any]]  # runs a blocking database step (the dispatcher's `_db`)


def paid_limits(rate: int) -> SendLimits:
    """Send limits of paid broadcasts: `rate` a second in all, Telegram's per-chat limits, no reply reserve."""
    return SendLimits(global_per_second=rate, reply_floor=0, reply_memory=0.0)


def reserve(engine: Engine, day: str, wanted: int, cap: int) -> int:
    """Reserve up to `wanted` messages of `day`'s budget of `cap` messages; returns how many (0: none left)."""
    with engine.begin() as conn:
        conn.execute(
            insert_ignoring(DAY, dialect=dialect_name(conn), conflict=["day"]).values(day=day, messages=0)
        )
        for _ in range(5):  # a compare-and-set: another process may reserve at the same moment
            used = conn.execute(select(DAY.c.messages).where(DAY.c.day == day)).scalar_one()
            got = min(wanted, cap - used)
            if got <= 0:
                return 0
            done = conn.execute(
                update(DAY).where(DAY.c.day == day, DAY.c.messages == used).values(messages=used + got)
            )
            if done.rowcount == 1:
                return got
    return 0


def give_back(engine: Engine, day: str, unused: int) -> None:
    """Return `unused` reserved messages to `day`'s budget."""
    if unused <= 0:
        return
    with engine.begin() as conn:
        conn.execute(
            update(DAY)
            .where(DAY.c.day == day, DAY.c.messages >= unused)
            .values(messages=DAY.c.messages - unused)
        )


def reserved(engine: Engine, day: str) -> int:
    """Messages of `day` reserved so far (an upper bound of those sent)."""
    with engine.connect() as conn:
        return int(conn.execute(select(DAY.c.messages).where(DAY.c.day == day)).scalar() or 0)


def _note_cap(engine: Engine, at: datetime, day: str, stars: int) -> None:
    """The audit entry telling the operator the day's cap was reached."""
    with session_scope(engine) as session:
        audit.record(
            session,
            at=at,
            actor="system",
            action=CAP_ACTION,
            entity="paid_broadcast",
            entity_id=day,
            stars=stars,
        )


def paid_broadcast_of(
    settings: Settings, engine: Engine, clock: Clock = system_clock
) -> PaidBroadcast | None:
    """The running bot's paid broadcast setting (None unless BAOCAO_PAID_BROADCAST=1)."""
    if not settings.paid_broadcast:
        return None
    log.info(
        "paid broadcasts on: bulk sends up to %s a second, at most %s Stars a day",
        settings.paid_broadcast_rate,
        settings.paid_broadcast_max_stars,
    )
    return PaidBroadcast(
        engine,
        rate=settings.paid_broadcast_rate,
        max_stars=settings.paid_broadcast_max_stars,
        timezone=settings.timezone,
        clock=clock,
    )


class PaidBroadcast:
    """The paid broadcast setting of a running bot: its own rate limiter and the day's Stars budget."""

    def __init__(
        self,
        engine: Engine,
        *,
        rate: int,
        max_stars: int,
        timezone: ZoneInfo,
        clock: Clock = system_clock,
        limiter: RateLimiter | None = None,
    ) -> None:
        """`rate` messages a second at most, `max_stars` Stars a day (local days of `timezone`)."""
        self.engine, self.rate, self.max_stars = engine, rate, max_stars
        self.max_messages = max_stars * MESSAGES_PER_STAR
        self.timezone, self.clock = timezone, clock
        self.limiter = limiter or RateLimiter(paid_limits(rate))
        self._day: str | None = None
        self._left = 0  # messages reserved in the database and not used yet
        self._capped: str | None = None  # the day the cap was reached
        self._lock = asyncio.Lock()
        self.sent = 0  # paid sends handed out by this process (`take` minus `unused`)

    def today(self) -> str:
        """The local day the budget counts now."""
        return self.clock().astimezone(self.timezone).date().isoformat()

    async def take(self, db: Db) -> bool:
        """One message of today's budget (True: send it paid), False when the cap is reached (send it free)."""
        day = self.today()
        if day != self._day:
            self._day, self._left = day, 0  # yesterday's unused rest stays counted: it was that day's
        if self._left <= 0:
            if self._capped == day:
                return False
            async with self._lock:
                if self._left <= 0 and self._capped != day:
                    got = await db(reserve, self.engine, day, BLOCK, self.max_messages)
                    if got <= 0:
                        self._capped = day
                        await self._announce_cap(db, day)
                    self._left += got
            if self._left <= 0:
                return False
        self._left -= 1
        self.sent += 1
        return True

    def unused(self) -> None:
        """A message taken with `take` was not delivered: back into this process's block."""
        self._left += 1
        self.sent -= 1

    async def close(self, db: Db) -> None:
        """Return the unused rest of the block to the database (at the end of a dispatch run)."""
        left, self._left = self._left, 0
        if left > 0 and self._day is not None:
            try:
                await db(give_back, self.engine, self._day, left)
            except Exception:  # counted as spent: the cap errs on the safe side
                log.warning("paid broadcasts: could not give back %s unused message(s)", left, exc_info=True)

    async def _announce_cap(self, db: Db, day: str) -> None:
        log.warning(
            "paid broadcasts: today's cap of %s Stars (%s messages, BAOCAO_PAID_BROADCAST_MAX_STARS) is reached; "
            "bulk sends go on at the free rate until tomorrow",
            self.max_stars,
            self.max_messages,
        )
        try:
            await db(_note_cap, self.engine, self.clock(), day, self.max_stars)
        except Exception:
            log.warning("paid broadcasts: could not write the cap to the audit log", exc_info=True)
