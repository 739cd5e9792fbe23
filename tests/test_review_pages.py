"""Every shipped form filled completely (random valid answers, and a worst case): every review page fits
a phone screen (≤ 1,200 characters, ≤ 12 buttons), every row is on exactly one page, and the counter
never grows while one answers."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.forms import engine
from bot.forms.engine import Step, handle, start
from bot.forms.events import Ask, AskAddAnother, ConfirmValue, Review
from bot.forms.inputs import Action, Document, Input, Location, Photo, Text
from bot.forms.loader import load_form_files
from bot.forms.model import Form
from bot.views.form import render_events, tg_len

NOW = datetime(2026, 11, 15, 9, 0, tzinfo=timezone(timedelta(hours=7)))
MAX_CHARS = 1200
MAX_BUTTONS = 12
FORMS = {f.id: f for f in load_form_files(sorted(Path("deploy/forms").glob("*.yaml"))).forms}


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "STRICT", True)


def _answer(ev: Ask, rng: random.Random, worst: bool) -> Input:
    """A valid answer to `ev` (after a refused one, the smallest allowed number)."""
    q = ev.question
    seq = -1  # replaced by the caller
    roles = {o.role: o.action for o in ev.options}
    if q.type in ("integer", "decimal", "percent"):
        low = int(q.min) if q.min is not None else 0
        high = int(q.max) if q.max is not None else 1000
        if ev.error:  # a cross-question check failed: try the ends of the range
            return Text(str(rng.choice([low, high])))
        low = max(low, 1) if worst else low
        return Text(str(rng.randint(low, min(high, max(low, 5000)))))
    if q.type in ("text", "long_text"):
        limit = q.max_length or 200
        size = limit if worst else rng.randint(1, limit)
        words = " ".join(
            rng.choice(["trộm", "xe máy", "đêm", "Thôn", "ANTT", "<b>", "&"]) for _ in range(size)
        )
        return Text(words[:size].strip() or "x")
    if q.type == "yes_no":
        return Action("y" if worst or rng.random() < 0.6 else "n", seq)
    if q.type == "single_choice":
        choices = [o.action for o in ev.options if o.role == "choice"]
        return Action(choices[-1] if worst else rng.choice(choices), seq)
    if q.type == "multi_choice":
        toggles = [o.action for o in ev.options if o.role == "toggle"]
        if not ev.selected and not ev.error:
            return Action(toggles[0] if worst else rng.choice(toggles), seq)
        return Action(roles["done"], seq)
    if q.type == "date":
        return Action(roles.get("today", "d:today"), seq)
    if q.type == "photo":
        return Photo("photo-id", "photo-unique")
    if q.type == "location":
        return Location(21.5, 105.8)
    if q.type == "document":  # files until "Xong" (worst: until the list is full and the question moves on)
        if "done" in roles and not (worst or rng.random() < 0.3):
            return Action(roles["done"], seq)
        n = rng.randrange(10**9)
        name = "h" * 120 + ".pdf" if worst else f"ho-so-{n}.pdf"
        return Document(f"doc-{n}", f"doc-u-{n}", name, "application/pdf", 1_000_000)
    raise AssertionError(f"no answer for type {q.type}")


def fill(form: Form, rng: random.Random, *, worst: bool = False) -> tuple[Step, list[tuple[int, int]]]:
    """Answer every question until the review; also return the counter of each question asked."""
    step = start(form, NOW)
    counters: list[tuple[int, int]] = []
    items = {q.id: (q.max_count or 20) if worst else rng.randint(0, 3) for q in form.questions}
    for _ in range(3000):
        ev = step.events[-1]
        if isinstance(ev, Review):
            return step, counters
        if isinstance(ev, Ask):
            counters.append(ev.progress)
            inp = _answer(ev, rng, worst)
        elif isinstance(ev, ConfirmValue):
            inp = Action("ok:0", -1)
        elif isinstance(ev, AskAddAnother):
            counters.append(ev.progress)
            want = items[ev.group.id] if ev.group.required is False else max(items[ev.group.id], 1)
            inp = Action("more:y" if ev.count < want else "more:n", -1)
        else:
            raise AssertionError(f"unexpected {ev!r}")
        if isinstance(inp, Action):
            inp = Action(inp.token, step.state.seq)
        step = handle(form, step.state, inp, NOW)
    raise AssertionError("the form never reached its review")


def check_pages(form: Form, step: Step) -> int:
    """Walk every review page; assert the limits; return the number of pages."""
    review = step.events[-1]
    assert isinstance(review, Review)
    assert review.can_submit
    seen: list[str] = []
    count = max(len(review.pages), 1)
    for n in range(count):
        if n:
            step = handle(form, step.state, Action(f"p:{n}", step.state.seq), NOW)
        screens = render_events(form, step.state, step.events)
        assert len(screens) == 1, f"{form.id} page {n + 1}: {len(screens)} messages"
        screen = screens[0]
        assert tg_len(screen.text) <= MAX_CHARS, f"{form.id} page {n + 1}: {tg_len(screen.text)} characters"
        assert len(screen.actions) <= MAX_BUTTONS, f"{form.id} page {n + 1}: {len(screen.actions)} buttons"
        assert "submit" in screen.actions
        seen += [a for a in screen.actions if a.startswith("e:")]
    numbers = [f"e:{r.number}" for r in review.rows if r.number is not None]
    assert seen == numbers  # every editable row on exactly one page, in order
    return count


@pytest.mark.parametrize("form_id", sorted(FORMS))
@pytest.mark.parametrize("seed", range(12))
def test_random_complete_fill_fits_a_phone(form_id: str, seed: int) -> None:
    form = FORMS[form_id]
    step, counters = fill(form, random.Random(seed))
    check_pages(form, step)
    totals = [total for _, total in counters]
    assert all(b <= a for a, b in itertools.pairwise(totals)), totals  # never grows
    assert all(1 <= i <= total for i, total in counters)


@pytest.mark.parametrize("form_id", sorted(FORMS))
def test_worst_case_fill_fits_a_phone(form_id: str) -> None:
    """Every yes, every follow-up, the longest texts, repeat groups filled to their maximum."""
    form = FORMS[form_id]
    step, counters = fill(form, random.Random(0), worst=True)
    pages = check_pages(form, step)
    main = [q for q in form.questions if q.type != "note"]
    # the long reports must page; the incident form and a short one (the 5-question dossier) fit one screen
    assert pages >= 2 or form.kind == "incident" or len(main) <= MAX_BUTTONS
    assert max(total for _, total in counters) == len(main)


def test_annual_report_review_is_paged() -> None:
    """The annual report (3,347 characters and 36 buttons on one screen before) is paged."""
    form = FORMS["bao-cao-nam"]
    step, _ = fill(form, random.Random(1))
    assert check_pages(form, step) >= 3
