"""Small typed notices the report service returns or raises besides the form's screens.

`bot/views/notices.py` maps each kind to the template that words it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class NotOpen:
    """The period is unknown, inactive, not open yet, or closed with nothing to amend."""


@dataclass(frozen=True)
class FormMissing:
    """The period's form is no longer loaded or no longer used by the commune."""


@dataclass(frozen=True)
class Closed:
    """The time to change the report of `period` (receipt `receipt`, may be empty) is over."""

    period: str
    receipt: str


@dataclass(frozen=True)
class Amending:
    """A submitted report is opened again to be amended: its version and receipt."""

    version: int
    receipt: str


@dataclass(frozen=True)
class FormIntro:
    """A new report starts: the form's (shortened) title and description."""

    title: str
    description: str | None


@dataclass(frozen=True)
class DraftReset:
    """The saved draft could not be read and was started again."""


@dataclass(frozen=True)
class FormChanged:
    """The form got a new version meanwhile; the draft moved to `version`."""

    version: int


@dataclass(frozen=True)
class NotYours:
    """The draft belongs to another village."""


@dataclass(frozen=True)
class MovedOn:
    """Another reporter of the village moved the shared draft on."""


@dataclass(frozen=True)
class DraftGone:
    """The draft was submitted or removed meanwhile: the village's latest receipt and its time, if any."""

    receipt: str | None
    at: datetime | None


Notice = (
    NotOpen
    | FormMissing
    | Closed
    | Amending
    | FormIntro
    | DraftReset
    | FormChanged
    | NotYours
    | MovedOn
    | DraftGone
)

__all__ = [
    "Amending",
    "Closed",
    "DraftGone",
    "DraftReset",
    "FormChanged",
    "FormIntro",
    "FormMissing",
    "MovedOn",
    "NotOpen",
    "NotYours",
    "Notice",
]
