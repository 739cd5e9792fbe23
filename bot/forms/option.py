"""A button the engine offers (`Option`): shared by the events and the question types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """A button the engine offers: its token, its role (how the view labels it) and a value to show."""

    action: str
    role: str  # choice, toggle, done, yes, no, today, yesterday, default, keep, back, skip, pause, …
    value: Any = None  # choice label, default/current JSON value, reading …
    selected: bool = False  # multi-choice: ticked
