"""What handlers and jobs share: the DB engine, the clock and the settings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bot.clock import Clock
from bot.config import Settings
from storage.sqlite_loop import WriteSlot


@dataclass(frozen=True)
class Deps:
    """Dependencies injected into every handler through the registry."""

    engine: Engine
    clock: Clock
    settings: Settings
    # SQLite has one writer: the pipeline runs the transaction part of updates one after the other in this
    # one thread, which goes straight from one to the next (the sends after the commit still overlap; the
    # thread starts at the first update). PostgreSQL's run in the pipeline's pool of update threads.
    db_writer: ThreadPoolExecutor = field(default_factory=lambda: _one_writer(), compare=False)
    # SQLite: who writes now, the event loop (an answer's short transaction, when the write lock is free at
    # once) or the writer thread; never both (storage/sqlite_loop.py, bot.updates.pipeline.in_sqlite)
    write_slot: WriteSlot = field(default_factory=WriteSlot, compare=False)


def _one_writer() -> ThreadPoolExecutor:
    """The thread SQLite's update transactions run in, one after the other."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="update-db-writer")
