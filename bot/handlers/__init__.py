"""Thin Telegram adapters: each module declares its handlers on the registry with their needs."""

from __future__ import annotations

from bot.handlers.registry import REGISTRY, Registry


def load_all() -> Registry:
    """Import every handler module (they register themselves) and return the registry."""
    from bot.handlers import export, fallback, nudge, report, start, summary  # noqa: F401

    return REGISTRY
