"""What handlers and jobs share: the DB engine, the clock and the settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bot.clock import Clock
from bot.config import Settings


@dataclass(frozen=True)
class Deps:
    """Dependencies injected into every handler through the registry."""

    engine: Engine
    clock: Clock
    settings: Settings
    # SQLite has one writer: the registry runs the transaction part of updates one at a time under this
    # gate (the sends after the commit still overlap). PostgreSQL needs none.
    db_gate: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False)
