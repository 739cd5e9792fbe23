"""What a user can send to the engine: text, a photo, a location, a button press, start/resume.

Button presses carry short engine-level tokens (each at most 20 bytes, Telegram-agnostic) and the
state's `seq` at the time the button was shown; a press with another `seq` is stale.

=================  ==============================================================
token              meaning
=================  ==============================================================
``back``           "⬅️ Quay lại": the previous asked question
``skip``           "⏭ Bỏ qua" (optional questions only)
``pause``          "⏸ Tạm dừng"
``resume``         "▶️ Tiếp tục" after a pause (same as the `Resume` input)
``def``            keep the question's default value ("Giữ …")
``keep``           keep the current answer when a question is asked again
``c:3``            single choice: pick choice #3 (0-based index)
``t:3``            multi choice: tick / untick choice #3
``done``           multi choice: "Xong", confirm the ticks
``y`` / ``n``      yes / no
``d:today``        date: today (from `now`)
``d:yday``         date: yesterday
``ok:0``           uncertain input: take reading #0
``retry``          uncertain input: none of the readings, type again
``more:y``         repeat group: add an item
``more:n``         repeat group: no more items
``e:12``           review: edit row #12 (1-based, as numbered on the review)
``review``         go (back) to the review
``submit``         review: send the report (asks for confirmation)
``confirm``        confirm sending
``cancel``         do not send now, back to the review
=================  ==============================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TOKEN_BYTES = 20

FIXED_TOKENS = frozenset(
    {
        "back",
        "skip",
        "pause",
        "resume",
        "def",
        "keep",
        "done",
        "y",
        "n",
        "d:today",
        "d:yday",
        "retry",
        "more:y",
        "more:n",
        "review",
        "submit",
        "confirm",
        "cancel",
    }
)
INDEXED_PREFIXES = ("c", "t", "ok", "e")
_INDEXED_RE = re.compile(r"(c|t|ok|e):(\d{1,5})\Z")


@dataclass(frozen=True)
class Text:
    """A typed message."""

    text: str


@dataclass(frozen=True)
class Photo:
    """A photo message (Telegram's file ids of the largest size)."""

    file_id: str
    file_unique_id: str


@dataclass(frozen=True)
class Location:
    """A shared location."""

    lat: float
    lon: float


@dataclass(frozen=True)
class Action:
    """A button press: an engine token and the `seq` of the state when the button was shown."""

    token: str
    seq: int


@dataclass(frozen=True)
class Start:
    """Begin the form (or continue an unfinished draft)."""


@dataclass(frozen=True)
class Resume:
    """Show again where the draft stands (after a pause, a restart, a stale button)."""


Input = Text | Photo | Location | Action | Start | Resume


def parse_token(token: str) -> tuple[str, int | None] | None:
    """Split a token into (name, index): "c:3" → ("c", 3), "back" → ("back", None); None if unknown."""
    if token in FIXED_TOKENS:
        return token, None
    m = _INDEXED_RE.match(token)
    if m:
        return m.group(1), int(m.group(2))
    return None


__all__ = [
    "FIXED_TOKENS",
    "INDEXED_PREFIXES",
    "MAX_TOKEN_BYTES",
    "Action",
    "Input",
    "Location",
    "Photo",
    "Resume",
    "Start",
    "Text",
    "parse_token",
]
