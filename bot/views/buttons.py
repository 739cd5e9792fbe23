"""The buttons of a message the bot sends: inline buttons (a label and its callback data, in rows), or a
reply keyboard under the typing field (`ReplyKeyboard`, e.g. one "send my location" button) or its removal."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplyButton:
    """An inline button of a queued reply: a label and its callback data (≤ 64 bytes)."""

    label: str
    data: str


ButtonRows = tuple[tuple[ReplyButton, ...], ...]


@dataclass(frozen=True)
class KeyButton:
    """A reply-keyboard button: pressing it sends its label as text, or (`request_location`) the location."""

    label: str
    request_location: bool = False


@dataclass(frozen=True)
class ReplyKeyboard:
    """A reply keyboard shown in place of the phone's keyboard (rows of `KeyButton`), or with `remove` the
    order to take it down. A message carries either this or inline buttons, never both (Telegram)."""

    rows: tuple[tuple[KeyButton, ...], ...] = ()
    remove: bool = False


REMOVE_KEYBOARD = ReplyKeyboard(remove=True)
