"""Engine events → screens (Telegram HTML text + button rows), still knowing nothing of Telegram's API
(`render_events`, `render_event`, `Screen`, `ActionButton`, `split_html`).

Design notes: docs/design-notes.md#botviewsformpy
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any

from bot.forms.engine import REVIEW_VALUE_CHARS
from bot.forms.events import (
    AlreadySubmitted,
    Ask,
    AskAddAnother,
    ConfirmSubmit,
    ConfirmValue,
    Event,
    FormChanged,
    Info,
    LeftInput,
    Option,
    Paused,
    ReadBack,
    Review,
    Stale,
    Submitted,
)
from bot.forms.model import Form, Question
from bot.forms.state import DraftState
from bot.forms.types import TYPES, document
from bot.texts.filters import vn_date, vn_number
from bot.texts.templates import render
from bot.texts.values import cut, display, format_answer, format_value
from bot.views.buttons import REMOVE_KEYBOARD, KeyButton, ReplyKeyboard

MAX_TEXT = 4096  # Telegram: characters per message (counted here in UTF-16 code units, to be safe)
MAX_BUTTONS = 100  # Telegram: buttons per inline keyboard
MAX_ROW = 8  # Telegram: buttons per row
EDIT_ROW = 5  # "Sửa N" buttons per row on the review
SHORT_LABEL = 16  # choice labels up to this long go two per row
MAX_BUTTON_TEXT = 120  # a longer button label is cut (the loader keeps choice labels to 100 characters)
_TAG_MARGIN = 200  # a long line is cut this much below the limit, leaving room for closing tags
READ_BACK_LABEL = 40  # the read-back line ("✔ Số hộ: 182") cuts a longer short label …
READ_BACK_VALUE = 60  # … and a longer answer

ERROR_CODES = (
    "required",
    "empty",
    "not_a_number",
    "not_an_integer",
    "too_long",
    "not_yes_no",
    "not_a_date",
    "impossible_date",
    "below_min",
    "above_max",
    "too_long_text",
    "need_photo",
    "need_location",
    "unexpected_photo",
    "unexpected_location",
    "not_a_choice",
    "check_failed",
    "at_start",
    "review_hint",
    "no_such_row",
    "not_understood",
    *(code for t in TYPES.values() for code in t.error_codes),
)
"""Every error code the engine (or the parsers) can put in `Ask.error` / `Review.error`."""


@dataclass(frozen=True)
class ActionButton:
    """One inline button: the label people see and the engine token it sends."""

    label: str
    action: str


@dataclass(frozen=True)
class Screen:
    """One message: Telegram-HTML text (≤ 4096) and rows of buttons (≤ 100 in all), or instead of buttons
    a reply keyboard (the location question's "📍 Gửi vị trí hiện tại") or its removal."""

    text: str
    buttons: tuple[tuple[ActionButton, ...], ...] = ()
    keyboard: ReplyKeyboard | None = None

    @property
    def actions(self) -> tuple[str, ...]:
        """Every button's token, row by row."""
        return tuple(b.action for row in self.buttons for b in row)


# ---------------------------------------------------------------------------------------------- values


# ---------------------------------------------------------------------------------------------- buttons


def _label(option: Option, question: Question | None = None) -> str:
    """A button label from `form/button.html` (plain text: Telegram does not parse HTML in buttons)."""
    shown: Any = option.value
    if option.role in ("default", "keep", "reading", "plausible_yes") and question is not None:
        shown = format_value(question, option.value)
    if type(shown) in _CACHED_LABEL_TYPES:
        return _label_text(option.role, shown, option.selected)
    return _label_text.__wrapped__(option.role, shown, option.selected)


# the exact types whose equal values always render alike (not 1 and True, not Decimal("1") and Decimal("1.0"),
# not a str and a Markup): the engine's labels are choice texts, formatted values and item numbers
_CACHED_LABEL_TYPES = frozenset({str, int, type(None)})


@lru_cache(maxsize=4096, typed=True)  # typed: 1 and True never share an entry
def _label_text(role: str, shown: Any, selected: bool) -> str:
    """The rendered label (templates are read once per process, so a label never changes)."""
    text = render("form/button.html", role=role, value=shown, selected=selected)
    return cut(html.unescape(" ".join(text.split())), MAX_BUTTON_TEXT)


def _rows(buttons: Sequence[ActionButton], per_row: int) -> list[tuple[ActionButton, ...]]:
    per_row = max(1, min(per_row, MAX_ROW))
    return [tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def _layout(
    options: Iterable[Option], question: Question | None = None
) -> tuple[tuple[ActionButton, ...], ...]:
    """Answer buttons first (two per row when short), then keep/default, then navigation."""
    answer: list[ActionButton] = []
    wide: list[ActionButton] = []
    nav: list[ActionButton] = []
    pager: list[ActionButton] = []
    skip: list[ActionButton] = []
    short = True
    for opt in options:
        button = ActionButton(_label(opt, question), opt.action)
        if opt.role in ("choice", "toggle"):
            answer.append(button)
            short = short and len(opt.value or "") <= SHORT_LABEL
        elif opt.role in (
            "yes",
            "no",
            "today",
            "yesterday",
            "more_yes",
            "more_no",
            "plausible_yes",
            "plausible_edit",
        ):
            answer.append(button)
        elif opt.role in ("back", "pause"):
            nav.append(button)
        elif opt.role == "skip":
            skip.append(button)
        elif opt.role in ("prev_page", "next_page"):
            pager.append(button)
        else:  # done, default, keep, reading, retry, review, submit, confirm, cancel, resume
            wide.append(button)
    kinds = {opt.role for opt in options}
    rows: list[tuple[ActionButton, ...]] = []
    if kinds & {"choice", "toggle"}:
        rows += _rows(answer, 2 if short else 1)
    else:
        rows += _rows(answer, 2)
    if pager:
        rows.append(tuple(pager))
    rows += [(b,) for b in wide]
    rows += [(b,) for b in skip]
    if nav:
        rows.append(tuple(nav))
    return tuple(rows)


# ---------------------------------------------------------------------------------------------- splitting

_TAG_SPLIT_RE = re.compile(r"(<[^>]*>)")
_ATOM_RE = re.compile(r"&[#\w]+;|.", re.S)
_TAG_RE = re.compile(r"<\s*(/?)\s*([a-zA-Z0-9-]+)[^>]*>")


def tg_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_html(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut Telegram HTML into pieces of at most `limit`, at line breaks when possible.

    A line longer than the limit is cut between words (never inside a tag or an entity); tags open at
    the cut are closed at the end of the piece and opened again at the start of the next.
    """
    if tg_len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if tg_len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
            current = ""
        if tg_len(line) <= limit:
            current = line
        else:
            parts = _split_line(line, limit)
            pieces.extend(parts[:-1])
            current = parts[-1]
    if current or not pieces:
        pieces.append(current)
    return [p.strip("\n") or p for p in pieces]


def _split_line(line: str, limit: int) -> list[str]:
    tokens: list[str] = []
    for part in _TAG_SPLIT_RE.split(line):
        if part.startswith("<") and part.endswith(">"):
            tokens.append(part)
        elif part:  # words (entities included) with the space after them: cuts fall between words
            tokens.extend(re.findall(r"\S+\s*|\s+", part))
    budget = max(limit - _TAG_MARGIN, limit // 2)  # room left for the closing tags of a piece
    pieces: list[str] = []
    open_tags: list[tuple[str, str]] = []  # (name, opening tag as written)

    def closing() -> str:
        return "".join(f"</{name}>" for name, _ in reversed(open_tags))

    def reopening() -> str:
        return "".join(tag for _, tag in open_tags)

    current = ""
    for tok in tokens:
        m = _TAG_RE.fullmatch(tok)
        if tg_len(current) + tg_len(tok) > budget and current != reopening():
            pieces.append(current + closing())
            current = reopening()
        while not m and tg_len(current) + tg_len(tok) > budget:
            # one word longer than a message: cut it by characters (it holds no tag or entity)
            head, tok = _cut_word(tok, max(1, budget - tg_len(current)))
            pieces.append(current + head + closing())
            current = reopening()
        current += tok
        if m:
            name = m.group(2).lower()
            if m.group(1):
                for i in range(len(open_tags) - 1, -1, -1):
                    if open_tags[i][0] == name:
                        del open_tags[i]
                        break
            elif not tok.endswith("/>"):
                open_tags.append((name, tok))
    pieces.append(current)
    return pieces


def _cut_word(word: str, units: int) -> tuple[str, str]:
    """Split a word so the head takes at most `units` UTF-16 code units, never inside an entity."""
    count = 0
    cut = 0
    for atom in _ATOM_RE.findall(word):
        count += tg_len(atom)
        if count > units:
            break
        cut += len(atom)
    if cut == 0:  # not even one atom fits: take one anyway (the budget leaves room)
        cut = len(_ATOM_RE.findall(word)[0])
    return word[:cut], word[cut:]


def _screens(text: str, buttons: tuple[tuple[ActionButton, ...], ...] = ()) -> list[Screen]:
    """One or more screens for a text; the buttons go on the last one."""
    parts = split_html(text)
    return [Screen(p, buttons if i == len(parts) - 1 else ()) for i, p in enumerate(parts)]


# ---------------------------------------------------------------------------------------------- events


def _ask(form: Form, ev: Ask) -> list[Screen]:
    q = ev.question
    read_back = _read_back_line(ev.read_back, ev.left)
    location = TYPES[q.type].needs_input == "location"
    text = render(
        "form/ask.html",
        form=form,
        q=q,
        ev=ev,
        index=ev.progress[0],
        total=ev.progress[1],
        current=display(q, ev.current) if ev.has_current else None,
        selected=[q.choice_label(v) for v in ev.selected],
        bounds={"min": _bound(q.min), "max": _bound(q.max), **document.limit_words(q)},
        error=None if location else ev.error,
        detail=_detail(ev.detail),
    )
    buttons = _layout(ev.options, q)
    if location:
        # one message takes inline buttons or a reply keyboard, not both: a short first message carries the
        # error if any and the usual buttons (back, skip, pause), the question under it the location keyboard
        screens = _screens(text)
        more = read_back + render("form/location_more.html", error=ev.error, detail=_detail(ev.detail))
        return [*_screens(more, buttons), *screens[:-1], replace(screens[-1], keyboard=_location_keys(ev))]
    return _screens(read_back + text, buttons)


def _location_keys(ev: Ask) -> ReplyKeyboard:
    """ "📍 Gửi vị trí hiện tại" (shares the location in one tap), and the typed words for keep and skip."""
    rows = [(KeyButton(_label(Option("loc", "send_location")), request_location=True),)]
    if ev.has_current:
        rows.append((KeyButton(_label(Option("keep", "key_keep"))),))
    if ev.can_skip:
        rows.append((KeyButton(_label(Option("skip", "key_skip"))),))
    return ReplyKeyboard(tuple(rows))


def _read_back_line(read_back: ReadBack | None, left: LeftInput | None) -> str:
    """ "✔ Số hộ: 182" and a line break, to go above the next screen; "" when there is nothing to say or
    when it goes in the message that takes a location keyboard down (`_left_screens`)."""
    if read_back is None or _takes_keyboard_down(left):
        return ""
    return _read_back_text(read_back.question, read_back.value, "answered") + "\n"


def _read_back_text(q: Question, value: Any, how: str) -> str:
    label = cut(q.short_label, READ_BACK_LABEL)
    shown = display(q, value) if value is not None else {"kind": "skipped"}
    if isinstance(shown.get("text"), str):
        shown = {**shown, "text": cut(shown["text"], READ_BACK_VALUE)}
    return " ".join(render("form/read_back.html", label=label, v=shown, how=how).split())


def _takes_keyboard_down(left: LeftInput | None) -> bool:
    return left is not None and left.needs == "location"


def _left_screens(ev: Event) -> list[Screen]:
    """After a location question: one short message that takes its keyboard down (a message with inline
    buttons cannot), saying what was received ("✔ Vị trí: 📍 21.50000, 105.80000") or skipped."""
    left: LeftInput | None = getattr(ev, "left", None)
    if left is None or not _takes_keyboard_down(left):
        return []
    return [Screen(_read_back_text(left.question, left.value, left.how), keyboard=REMOVE_KEYBOARD)]


def _bound(value: float | None) -> str | None:
    return None if value is None else vn_number(Decimal(str(value)))


def _detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """Error details ready for the templates: numbers formatted the Vietnamese way."""
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if value is None:
            continue
        if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
            out[key] = vn_number(value)
        else:
            out[key] = value
    return out


def _confirm(form: Form, ev: ConfirmValue) -> list[Screen]:
    readings = [format_value(ev.question, v) for v in ev.readings]
    previous = ev.detail.get("previous") if ev.reason == "implausible" else None
    text = render(
        "form/confirm_value.html",
        form=form,
        q=ev.question,
        ev=ev,
        readings=readings,
        previous=format_value(ev.question, previous) if previous is not None else None,
        index=ev.progress[0],
        total=ev.progress[1],
    )
    return _screens(text, _layout(ev.options, ev.question))


def _more(form: Form, ev: AskAddAnother) -> list[Screen]:
    text = _read_back_line(ev.read_back, ev.left) + render(
        "form/add_another.html",
        form=form,
        group=ev.group,
        ev=ev,
        index=ev.progress[0],
        total=ev.progress[1],
        error=ev.error,
        detail=_detail(ev.detail),
    )
    return _screens(text, _layout(ev.options))


def _review(form: Form, ev: Review) -> list[Screen]:
    """One page of the review: its sections' rows, "Sửa" buttons for them, page and send buttons."""
    page_rows = ev.page_rows
    rows = [
        {
            "row": row,
            "value": _cut_value(display(row.question, row.value, status=row.status))
            if row.kind != "group"
            else {"kind": "items", "count": row.value},
            "section": (row.group or row.question).section,
        }
        for row in page_rows
    ]
    text = _read_back_line(ev.read_back, ev.left) + render(
        "form/review.html",
        form=form,
        ev=ev,
        rows=rows,
        page=ev.page + 1,
        pages=max(len(ev.pages), 1),
        error=ev.error,
        detail=_detail(ev.detail),
    )
    edits = [
        ActionButton(_label(Option(f"e:{r.number}", "edit", r.number)), f"e:{r.number}")
        for r in page_rows
        if r.number is not None
    ]
    return _screens(text, (*_rows(edits, EDIT_ROW), *_layout(ev.options)))


def _cut_value(shown: dict[str, Any]) -> dict[str, Any]:
    """A review value with a long text cut (the whole answer shows when one presses "Sửa")."""
    text = shown.get("text")
    if isinstance(text, str) and len(text) > REVIEW_VALUE_CHARS:
        return {**shown, "text": cut(text, REVIEW_VALUE_CHARS)}
    return shown


def render_event(form: Form, state: DraftState | None, event: Event) -> list[Screen]:
    """The screens for one event (after a location question, first the message taking its keyboard down)."""
    return [*_left_screens(event), *_event_screens(form, event)]


def _event_screens(form: Form, event: Event) -> list[Screen]:
    if isinstance(event, Ask):
        return _ask(form, event)
    if isinstance(event, ConfirmValue):
        return _confirm(form, event)
    if isinstance(event, AskAddAnother):
        return _more(form, event)
    if isinstance(event, Review):
        return _review(form, event)
    if isinstance(event, ConfirmSubmit):
        return _screens(render("form/confirm_submit.html", form=form), _layout(event.options))
    if isinstance(event, Submitted):
        return _screens(render("form/submitted.html", form=form))
    if isinstance(event, Paused):
        text = render("form/paused.html", form=form, index=event.index, total=event.total)
        return _screens(text, _layout(event.options))
    if isinstance(event, Stale):
        return _screens(render("form/stale.html"))
    if isinstance(event, AlreadySubmitted):
        return _screens(render("form/already_submitted.html", form=form))
    if isinstance(event, FormChanged):
        return _screens(render("form/form_changed.html", form=form, ev=event, dropped=len(event.dropped)))
    if isinstance(event, Info):
        return _screens(render("form/info.html", code=event.code, detail=_detail(event.detail)))
    return []


def render_events(form: Form, state: DraftState | None, events: Iterable[Event]) -> list[Screen]:
    """All screens for a step's events, in order."""
    out: list[Screen] = []
    for event in events:
        out.extend(render_event(form, state, event))
    return out


def screen_plain(screen: Screen) -> str:
    """A screen's text without HTML (for terminals): tags dropped, entities decoded."""
    text = re.sub(r"<br\s*/?>", "\n", screen.text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


__all__ = [
    "ERROR_CODES",
    "MAX_BUTTONS",
    "MAX_TEXT",
    "ActionButton",
    "Screen",
    "cut",
    "display",
    "format_answer",
    "format_value",
    "render_event",
    "render_events",
    "screen_plain",
    "split_html",
    "tg_len",
    "vn_date",
    "vn_number",
]
