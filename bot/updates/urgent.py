"""Sending an update's own outbox rows (an incident alert, a notice to a head) right after its commit, and
adding the "not delivered yet, will retry" note to the replies when one of them did not go out."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.delivery.dispatcher import send_now
from bot.delivery.outbox import Outgoing, default_worker_id, render_stored
from bot.delivery.ratelimit import LIMITER_KEY, RateLimiter
from bot.deps import Deps
from bot.updates.context import OutgoingReply
from storage.models import Outbox

log = logging.getLogger(__name__)

URGENT_TIMEOUT = 10.0  # seconds the actor's reply waits for their alert; what is left goes to the ticks


@functools.cache
def worker_id() -> str:
    """This process's name in `claimed_by` for the rows it sends at once."""
    return default_worker_id()


def _render(session: Session, row: Outbox, now: datetime) -> Outgoing | None:
    return render_stored(row)


async def send_urgent(deps: Deps, bot: Any, bot_data: dict[str, Any], row_ids: Sequence[int]) -> bool:
    """Send the rows now; True when every one went out (on any error the rows stay for the next tick)."""
    limiter = bot_data.setdefault(LIMITER_KEY, RateLimiter())
    try:
        sent = await send_now(
            deps.engine,
            bot,
            list(row_ids),
            deps.clock(),
            render=_render,
            limiter=limiter,
            worker_id=worker_id(),
            timeout=URGENT_TIMEOUT,
        )
    except Exception:
        log.warning("sending outbox rows %s at once failed; the dispatcher retries them", list(row_ids))
        return False
    return set(row_ids) <= sent


def with_notes(replies: Sequence[OutgoingReply]) -> list[OutgoingReply]:
    """The replies, each with its `unsent_note` below its text."""
    return [
        dataclasses.replace(r, text=f"{r.text}\n\n{r.unsent_note}", unsent_note="") if r.unsent_note else r
        for r in replies
    ]
