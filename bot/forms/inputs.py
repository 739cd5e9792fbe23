"""What a user can send to the engine: text, a photo, a document, a location, a button press, start/resume
(`Text`, `Photo`, `Location`, `Action`, `Start`, `Resume`), and the button tokens (`parse_token`).

Design notes: docs/design-notes.md#botformsinputspy
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
        "clear",
    }
)
INDEXED_PREFIXES = ("c", "t", "ok", "e", "p")  # p:N shows page N of the review
_INDEXED_RE = re.compile(r"(c|t|ok|e|p):(\d{1,5})\Z")


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
class Document:
    """A file sent as a document: Telegram's ids, its file name, MIME type and size in bytes (as Telegram
    gives them; any may be missing)."""

    file_id: str
    file_unique_id: str
    name: str | None = None
    mime: str | None = None
    size: int | None = None


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


Input = Text | Photo | Document | Location | Action | Start | Resume


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
    "Document",
    "Input",
    "Location",
    "Photo",
    "Resume",
    "Start",
    "Text",
    "parse_token",
]
