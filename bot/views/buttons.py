"""The inline button of a message the bot sends: a label and its callback data, and rows of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplyButton:
    """An inline button of a queued reply: a label and its callback data (≤ 64 bytes)."""

    label: str
    data: str


ButtonRows = tuple[tuple[ReplyButton, ...], ...]
