"""What handlers and jobs share: the DB engine, the clock and the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from bot.clock import Clock
from bot.config import Settings


@dataclass(frozen=True)
class Deps:
    """Dependencies injected into every handler through the registry."""

    engine: Engine
    clock: Clock
    settings: Settings
