"""Questionnaire definitions as immutable data: forms, sections, questions, choices, checks.

These are built by `bot.forms.loader` from versioned YAML and walked by `bot.forms.engine`.
Nothing here knows about Telegram or the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.forms.placeholders import fill


class QType(StrEnum):
    """The names of the built-in question types (the table of types is `bot.forms.types.TYPES`)."""

    INTEGER = "integer"
    DECIMAL = "decimal"
    TEXT = "text"  # short text, one line
    LONG_TEXT = "long_text"
    YES_NO = "yes_no"
    SINGLE_CHOICE = "single_choice"
    MULTI_CHOICE = "multi_choice"
    DATE = "date"
    PHOTO = "photo"
    DOCUMENT = "document"  # files (PDF, Word, Excel, images) sent as documents
    LOCATION = "location"
    NOTE = "note"  # shown, never answered
    REPEAT = "repeat"  # a group asked again and again ("thêm một vụ nữa?")


@dataclass(frozen=True)
class Choice:
    """One option of a choice question: a stable value and the label people see."""

    value: str
    label: str


@dataclass(frozen=True)
class Question:
    """One question (or a repeat group holding sub-questions).

    `relevant` is the source text of a condition (see `bot.forms.conditions`); the loader has
    already checked it compiles and names only earlier questions.
    """

    id: str
    type: str  # a name in bot.forms.types.TYPES (the QType values, and any type added there)
    label: str
    hint: str | None = None
    short: str | None = None  # a few words for review pages, summaries and exports (`short_label`)
    required: bool = True
    default: Any = None
    relevant: str | None = None
    section: str | None = None
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    choices: tuple[Choice, ...] = ()
    # repeat groups only
    questions: tuple[Question, ...] = ()
    max_count: int | None = None
    add_prompt: str | None = None
    # document questions only (bot.forms.types.document): extensions accepted, MB per file, files at most
    accept: tuple[str, ...] = ()
    max_mb: float | None = None
    max_files: int | None = None
    # `plausible: {factor: 10}`: a number this many times the village's previous answer (or a tenth of it)
    # is confirmed once before it is kept (numbers only; the previous answers come with the draft)
    plausible: float | None = None

    @property
    def short_label(self) -> str:
        """The short label when the form gives one, else the full question text (a period placeholder in it
        read as plain words: "kỳ này", "năm nay" — a summary or export fills the form for its period first)."""
        if self.short:
            return self.short
        if "{" in self.label or "}" in self.label:
            return fill(self.label, None) or self.label
        return self.label

    def choice_label(self, value: str) -> str:
        """The label of a choice value (the value itself if unknown, e.g. an old form version)."""
        for choice in self.choices:
            if choice.value == value:
                return choice.label
        return value


@dataclass(frozen=True)
class Check:
    """A cross-question rule: `condition` must hold, else `message` is shown.

    `questions` names the answers the check involves; on failure the engine refuses the answer just
    given (or, at review, re-asks the last involved question in form order).
    """

    condition: str
    message: str
    questions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Derived:
    """A figure the form computes from the villages' answers (`derived:`; see `bot.forms.derived`).

    kind "share": `questions` = (of, out_of), a percentage; "sum": the questions added up; "count": the
    villages whose answers meet `condition` (the language of `relevant`). `section`: where reports show it
    (None: the section of the first question it names). `places`: a share's decimals.
    """

    id: str
    short: str
    kind: str  # "share" | "sum" | "count"
    questions: tuple[str, ...] = ()
    condition: str | None = None
    section: str | None = None
    places: int = 1  # a share's decimal places (`places:`, 0–3)


@dataclass(frozen=True)
class Form:
    """A versioned questionnaire."""

    id: str
    title: str
    version: int
    questions: tuple[Question, ...]
    checks: tuple[Check, ...] = ()
    kind: str = "periodic"  # "periodic" (scheduled) or "incident" (any time, alerts police at once)
    description: str | None = None
    source: str | None = None  # file it came from, for error messages
    alert_early_when: str | None = None  # incident forms: alert the police as soon as this holds
    derived: tuple[Derived, ...] = ()  # computed figures, shown in reports (never asked)
    _index: dict[str, Question] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, Question] = {}
        for q in self.questions:
            index[q.id] = q
            for sub in q.questions:
                index[f"{q.id}.{sub.id}"] = sub
        object.__setattr__(self, "_index", index)
        texts = (getattr(q, key) for q in index.values() for key in ("label", "hint", "add_prompt"))
        object.__setattr__(self, "_templated", any(t and ("{" in t or "}" in t) for t in texts))

    @property
    def templated(self) -> bool:
        """Whether a question text holds a period placeholder or an escaped brace (see `period_text`)."""
        return bool(getattr(self, "_templated", False))

    def question(self, qid: str) -> Question:
        """Look a question up by id (`group.sub` for a repeat group's sub-question)."""
        return self._index[qid]

    def has_question(self, qid: str) -> bool:
        """Whether the form has a question with this id."""
        return qid in self._index

    @property
    def answerable(self) -> tuple[Question, ...]:
        """Top-level questions that take an answer (no notes)."""
        return tuple(q for q in self.questions if q.type != "note")
