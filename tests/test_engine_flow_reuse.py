"""The engine makes the flow of the draft's answers once a turn: `_with_left` (the "keyboard taken down"
marker) takes the run's flow instead of making it again. Every step is the same as with a fresh flow."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.forms import engine
from bot.forms.engine import handle, start
from bot.forms.events import LeftInput
from bot.forms.inputs import Action, Input, Location, Text
from bot.forms.loader import load_form_file
from bot.forms.model import Form
from tests.test_location_keyboard import build

NOW = datetime(2026, 5, 15, 9, 0, tzinfo=timezone(timedelta(hours=7)))
SIX_MONTHS = Path(__file__).resolve().parent.parent / "deploy" / "forms" / "bao-cao-6-thang.yaml"


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "STRICT", True)


def walk(form: Form, inputs: list[Input | str]) -> list[Any]:
    """Every step of the walk (str: typed text, "@token": a button)."""
    step = start(form, NOW)
    steps = [step]
    for inp in inputs:
        if isinstance(inp, str):
            inp = Action(inp[1:], step.state.seq) if inp.startswith("@") else Text(inp)
        step = handle(form, step.state, inp, NOW)
        steps.append(step)
    return steps


def fresh_flows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `_with_left` build its own flow, as before."""
    original = engine._with_left

    def without(form: Form, before: Any, step: Any, accepted: Any, before_flow: Any = None) -> Any:
        return original(form, before, step, accepted, None)

    monkeypatch.setattr(engine, "_with_left", without)


WALKS: list[list[Input | str]] = [
    ["12", Location(21.5, 105.8), "có"],
    ["12", "Bỏ qua", "không"],
    ["12", Location(21.5, 105.8), "@back", "Giữ nguyên"],
    ["12", "@pause", "@resume", Location(10.0, 106.0)],
    ["12", Location(91.0, 0.0), Location(21.0, 105.0)],
]


@pytest.mark.parametrize("inputs", WALKS, ids=range(len(WALKS)))
def test_a_location_walk_is_the_same_with_the_runs_flow(
    inputs: list[Input | str], monkeypatch: pytest.MonkeyPatch
) -> None:
    form = build()
    reused = walk(form, inputs)
    fresh_flows(monkeypatch)
    assert walk(form, inputs) == reused
    if inputs[:2] == ["12", Location(21.5, 105.8)]:  # the keyboard is taken down once the location came
        assert any(isinstance(getattr(e, "left", None), LeftInput) for e in reused[2].events)


def test_the_six_month_report_is_the_same_with_the_runs_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_form_file(SIX_MONTHS)
    assert loaded.ok, loaded.errors
    form = loaded.forms[0]
    answers: list[Input | str] = ["3", "@y", "12", "@n", "@back", "4", "@skip", "không", "2", "@review"]
    reused = walk(form, answers)
    fresh_flows(monkeypatch)
    assert walk(form, answers) == reused
