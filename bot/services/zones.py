"""A commune's time zone, apart from the reminders service so that exports and views need not import it."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.calendar import DEFAULT_TZ  # not the reminder planner (~13 ms of imports an export does not use)

if TYPE_CHECKING:
    from storage.models import Commune


def commune_zone(commune: Commune | None, default: str = DEFAULT_TZ) -> ZoneInfo:
    """The commune's time zone (its own, else the default)."""
    for name in (commune.timezone if commune is not None else None, default, DEFAULT_TZ):
        if name:
            try:
                return ZoneInfo(name)
            except Exception:
                continue
    return ZoneInfo(DEFAULT_TZ)
