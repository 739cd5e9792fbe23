"""Thin Telegram adapters: each module declares its handlers on the registry with their needs."""

from __future__ import annotations

from bot.handlers import (  # noqa: F401  (they register)
    documents,
    export,
    fallback,
    incidents,
    nudge,
    reopen,
    report,
    report_notes,
    requests,
    start,
    summary,
)
from bot.handlers.registry import REGISTRY, Registry


def load_all() -> Registry:
    """The registry with every handler module's declarations (importing this package registers them)."""
    return REGISTRY
