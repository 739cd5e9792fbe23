"""The question-type interface every plug-in implements, with the shared helpers (refusals, folding).

A type object answers everything the engine, state, views, loader, summaries and exports need to know
about one kind of question; the defaults here fit a question that takes no answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from bot.forms.model import Question
from bot.forms.option import Option
from bot.forms.parsing import Parsed

NOTHING: Any = object()  # "this token is not for this type"
SPLIT_RE = re.compile(r"\s*(?:[,;/+]|\bva\b)\s*")  # between several choices typed at once


class Refusal(Exception):
    """Raised while reading an answer: re-ask the current question with the error `code`."""

    def __init__(self, code: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.detail = dict(detail or {})


class IncompatibleValue(ValueError):
    """A stored JSON value that does not fit the question's type (e.g. after a form change)."""


def fold(text: str) -> str:
    """Lower-case, accents removed (đ → d), punctuation at the ends dropped, spaces collapsed."""
    text = unicodedata.normalize("NFD", text.casefold().replace("đ", "d"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = " ".join(text.split())
    return text.strip(" .!?…:")


def plain_decimal(d: Decimal) -> str:
    """A decimal in plain notation: "1500000" rather than "1.5E+6" (trailing zeros kept)."""
    if not d.is_finite():
        raise IncompatibleValue(str(d))
    return format(d, "f")


@dataclass(frozen=True)
class Formats:
    """The Vietnamese formatters a display uses (the views pass theirs in; types import no view)."""

    number: Callable[[Any], str]
    date: Callable[[Any], str]


@dataclass
class LoadProblems:
    """Where a type's YAML checks write their Vietnamese messages (the loader's report, for one question)."""

    add: Any  # callable(message) — the loader binds the question's name
    at: str = ""  # prefix for a question without a usable id
    bounds: tuple[Any, Any] = (None, None)
    max_length: int | None = None
    choices: tuple[Any, ...] = ()
    suggest: Callable[[Any, list[str]], str] = lambda word, options: ""  # the loader's "did you mean"


class QuestionType:
    """One kind of question. Subclasses override what differs; one instance each sits in `TYPES`."""

    name: ClassVar[str] = ""
    answered: ClassVar[bool] = True  # takes an answer (a note does not)
    numeric: ClassVar[bool] = False  # min/max apply; older versions of the other numeric types compare
    choice: ClassVar[bool] = False  # has `choices`
    many: ClassVar[bool] = False  # several values at once (multi choice: toggles and "done")
    group: ClassVar[bool] = False  # a repeat group holding sub-questions
    typed: ClassVar[bool] = False  # answered by typing (the terminal preview reads numbers as text)
    needs_input: ClassVar[str | None] = None  # "photo" / "location": the only input it takes
    takes_default: ClassVar[bool] = True
    text_limit: ClassVar[int | None] = None  # max_length when the YAML gives none (texts only)
    yes_no_is_answer: ClassVar[bool] = False  # "không" answers it rather than refusing a reading
    counted: ClassVar[bool] = False  # count(x) works in conditions
    error_codes: ClassVar[tuple[str, ...]] = ()  # extra refusal codes, each with a text in form/errors.html
    export_kind: ClassVar[str] = "text"  # the cell kind: "int" | "number" | "date" | "text"
    export_width: ClassVar[float] = 20
    summary: ClassVar[str | None] = None  # how villages' values combine: see bot.services.summaries
    free_text: ClassVar[bool] = False  # listed among the summary's free texts (long answers)
    kind_words: ClassVar[str] = ""  # Vietnamese words for loader messages ("câu số", …)

    # ---------------------------------------------------------------- reading an answer

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """Typed text → a parse result (value in Python form); raise `Refusal` for type-level refusals."""
        raise Refusal("not_understood", {"text": text})

    def check(self, q: Question, value: Any) -> None:
        """Refuse a candidate JSON value outside the question's limits (`Refusal`)."""

    def options(self, q: Question, has: bool, current: Any, selected: tuple[str, ...]) -> list[Option]:
        """The type's own buttons for an open question (choices, yes/no, today …)."""
        return []

    def on_button(self, q: Question, name: str, index: int | None, today: date | None) -> Any:
        """The JSON answer a pressed button gives, or `NOTHING` when the button is not this type's."""
        return NOTHING

    def default_json(self, q: Question, today: date | None) -> Any:
        """The YAML default as a JSON candidate (None when there is none or it cannot be used now)."""
        return q.default

    def spellings(self, q: Question, value: Any) -> tuple[str, ...]:
        """How a non-null JSON answer is written as it is: typing one of these (accents, case and end
        punctuation aside) needs no read-back line ("✔ 182") under the next question."""
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return (str(value),)
        return ()

    # ---------------------------------------------------------------- JSON form

    def normalize(self, q: Question, raw: Any) -> Any:
        """Check a non-null JSON answer and return it in canonical form; raise `IncompatibleValue`."""
        raise IncompatibleValue(f"{self.name} takes no answer")

    def to_json(self, q: Question, value: Any) -> Any:
        """A Python answer value → its JSON form."""
        return self.normalize(q, value)

    def from_json(self, q: Question, raw: Any) -> Any:
        """A JSON answer → the Python value conditions and summaries use."""
        return raw

    # ---------------------------------------------------------------- showing it

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """How a non-null JSON answer is shown: {"kind": …, "text": …} for the `value` macro."""
        return {"kind": "text", "text": str(value)}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """A non-null JSON answer as a typed spreadsheet cell (int/Decimal, date or text)."""
        return value if isinstance(value, str) else str(value)

    # ---------------------------------------------------------------- YAML checks (the loader)

    def read_default(self, value: Any, p: LoadProblems) -> Any:
        """Check a YAML `default` (never None here); report with `p.add` and return None when unusable."""
        p.add(f"{p.at}câu kiểu {self.name} không có giá trị mặc định")
        return None

    def literal_problem(self, qid: str, literal: Any, op: str, choice_values: tuple[str, ...]) -> str | None:
        """Why `qid <op> literal` in a condition can never hold (None: it can)."""
        return f"câu kiểu {self.name} ({qid}) không so sánh được với một giá trị; dùng answered({qid})"
