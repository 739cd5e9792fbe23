"""The injected clock: production reads the system time, tests pass a fixed one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class FixedClock:
    """A clock that stays where it is put (for tests and dry runs)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self.at = at

    def __call__(self) -> datetime:
        """Return the fixed time."""
        return self.at

    def advance(self, **kwargs: float) -> datetime:
        """Move forward by a timedelta given as keyword arguments."""
        self.at = self.at + timedelta(**kwargs)
        return self.at
