"""What the engine asks the outside world to do: show a question, a review, persist a submission …

Events are plain frozen dataclasses; `bot.views.form` turns them into screens, the service acts on
`Submitted`. Values inside events are JSON-native answers (see `bot.forms.state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.forms.model import Question
from bot.forms.option import Option
from bot.forms.state import Position


@dataclass(frozen=True)
class ReadBack:
    """How the previous answer was taken, for one line above the next screen ("✔ Số hộ: 182").

    Given when typed text was read as something else than its literal self ("một trăm tám mươi hai hộ"
    → 182, "hôm qua" → a date, "ko" → no), and for a shared location; never for a button press.
    """

    question: Question
    value: Any  # the JSON answer stored
    raw: str | None = None  # the typed text it was read from (None: a location was shared)


@dataclass(frozen=True)
class LeftInput:
    """The previous screen asked for a kind of input this one does not (`needs`: "location"): a view takes
    down what it put up for it (the "send my location" keyboard). `how`: "answered", "skipped" or "left"
    (back, review, pause, another question)."""

    question: Question
    needs: str
    how: str
    value: Any = None  # the JSON answer stored when `how` is "answered"


@dataclass(frozen=True)
class Ask:
    """Ask one question (again, if `error` says why the previous input was not taken)."""

    question: Question
    position: Position
    progress: tuple[int, int]
    options: tuple[Option, ...]
    section: str | None = None
    new_section: bool = False  # the section differs from the previous screen's
    group: Question | None = None  # the repeat group of a sub-question
    item: int | None = None  # 0-based item index inside the group
    items: int = 0  # items of the group in the draft so far ("mục 2/3")
    notes: tuple[Question, ...] = ()  # note "questions" shown just before this one
    current: Any = None  # JSON value of the current answer when re-asking
    has_current: bool = False
    selected: tuple[str, ...] = ()  # multi choice: values ticked so far
    error: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    can_skip: bool = False
    editing: bool = False  # reached from the review; goes back there after
    read_back: ReadBack | None = None  # how the answer just given was read (see `ReadBack`)
    left: LeftInput | None = None  # the previous screen's special input is no longer asked


@dataclass(frozen=True)
class ConfirmValue:
    """The input could be read several ways (or only roughly): pick a reading or type again."""

    question: Question
    position: Position
    progress: tuple[int, int]
    raw: str
    readings: tuple[Any, ...]  # JSON values, one per "ok:i" option
    options: tuple[Option, ...]
    reason: str | None = None  # e.g. "ambiguous", "approximate" (from the parser)
    detail: Mapping[str, Any] = field(default_factory=dict)
    group: Question | None = None
    item: int | None = None
    items: int = 0


@dataclass(frozen=True)
class AskAddAnother:
    """Repeat group: add an item? (`count` = 0: the opening "Có … không?" of an optional group)."""

    group: Question
    position: Position
    count: int
    max_count: int | None
    progress: tuple[int, int]
    options: tuple[Option, ...]
    current: bool | None = None  # when asked again: whether more items already exist
    section: str | None = None
    new_section: bool = False
    notes: tuple[Question, ...] = ()
    error: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    editing: bool = False
    read_back: ReadBack | None = None  # how the answer just given was read (see `ReadBack`)
    left: LeftInput | None = None  # the previous screen's special input is no longer asked


@dataclass(frozen=True)
class ReviewRow:
    """One line of the review: a relevant answer (or a repeat group header), editable by `number`."""

    number: int | None  # "e:<number>" edits it; None when not editable
    position: Position
    question: Question
    kind: str  # "answer" | "group" | "sub"
    status: str  # "answered" | "skipped" | "missing"
    value: Any = None  # JSON value (group header: number of items)
    group: Question | None = None
    item: int | None = None


@dataclass(frozen=True)
class Review:
    """All relevant answers, failing cross-question checks and missing required answers."""

    rows: tuple[ReviewRow, ...]
    failing_checks: tuple[str, ...]
    missing: tuple[ReviewRow, ...]
    options: tuple[Option, ...]
    error: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    page: int = 0  # the page shown (0-based)
    pages: tuple[tuple[int, int], ...] = ()  # each page's rows: rows[start:end]; () = one page of all
    read_back: ReadBack | None = None  # how the answer just given was read (see `ReadBack`)
    left: LeftInput | None = None  # the previous screen's special input is no longer asked

    @property
    def page_rows(self) -> tuple[ReviewRow, ...]:
        """The rows of the page shown."""
        if not self.pages:
            return self.rows
        start, end = self.pages[self.page]
        return self.rows[start:end]

    @property
    def can_submit(self) -> bool:
        """Whether nothing blocks sending."""
        return not self.failing_checks and not self.missing


@dataclass(frozen=True)
class ConfirmSubmit:
    """Ask for a last confirmation before sending."""

    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class Submitted:
    """The report is final: persist `answers` (relevant answers only, JSON-native)."""

    answers: Mapping[str, Any]


@dataclass(frozen=True)
class Paused:
    """The user paused; the draft is kept as it is."""

    index: int
    total: int
    options: tuple[Option, ...] = ()
    left: LeftInput | None = None


@dataclass(frozen=True)
class Stale:
    """A button from an old message was pressed; nothing changed (show the current step again)."""


@dataclass(frozen=True)
class AlreadySubmitted:
    """Input arrived for a draft that has already been submitted; nothing changed."""


@dataclass(frozen=True)
class FormChanged:
    """The form got a new version while the draft was open; answers that no longer fit were dropped."""

    old_version: int
    new_version: int
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Info:
    """A short notice before the next question (e.g. a repeat group reached its maximum)."""

    code: str
    detail: Mapping[str, Any] = field(default_factory=dict)


Event = (
    Ask
    | ConfirmValue
    | AskAddAnother
    | Review
    | ConfirmSubmit
    | Submitted
    | Paused
    | Stale
    | AlreadySubmitted
    | FormChanged
    | Info
)

__all__ = [
    "AlreadySubmitted",
    "Ask",
    "AskAddAnother",
    "ConfirmSubmit",
    "ConfirmValue",
    "Event",
    "FormChanged",
    "Info",
    "LeftInput",
    "Option",
    "Paused",
    "ReadBack",
    "Review",
    "ReviewRow",
    "Stale",
    "Submitted",
]
