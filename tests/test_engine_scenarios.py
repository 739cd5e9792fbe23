"""Scenario tests for the questionnaire engine, one YAML file per scenario in tests/scenarios/.

Each file holds a form (inline, in the loader's format) and a list of steps; every step sends one
input and lists the events expected back, in order. Between steps the draft goes through JSON and
back — exactly what a restart of the bot does — so every scenario is also a restart test.

Step keys (one input per step):
  send: "mười hai"            typed text
  press: back | c:1 | "Có"     a button, by token or by its label on the current screens
  stale: true                  (with press) the press comes from an old message (seq - 1)
  raw: true                    (with press) send the token as is, even if no button carries it
  photo: true | location: [lat, lon] | resume: true | start: true
  document: {name, mime, size, id}   a file sent as a document (id: its file id, default "doc-file-id")
  switch_form: {...}           the form gets a new version (no input is sent)
  expect: [...]                matchers, see `_match`
  screen: ["text", …]          substrings the rendered (plain-text) screens must contain
  not_on_screen: ["text", …]   substrings they must not contain
  answers: {...}               the draft's answers after the step

File keys: `form` (inline) or `form_file` (a path from the repository root, e.g. a shipped form), `now` (ISO
datetime, default 2026-05-15 09:00 +07:00), `context` (the period's facts and previous answers the service
gives a period's draft: ky, nam, tu_ngay, den_ngay, previous, previous_ky), `start: {answers: …}` (an
amendment), `expect_start`, `screen_start`, `steps`, and the final `answers` / `mode`.
Matchers: `ask: id | group[n].sub` (+ error, detail, current, progress, options, …),
`confirm: id` (+ readings, reason), `more: group` (+ count, current), `review` (+ rows, missing,
failing), `confirm_submit`, `submitted: {…}`, `paused: [i, n]`, `stale`, `already_submitted`,
`form_changed` (+ dropped, versions), `info: code`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.forms import engine
from bot.forms.engine import Step, handle, start
from bot.forms.events import (
    AlreadySubmitted,
    Ask,
    AskAddAnother,
    ConfirmSubmit,
    ConfirmValue,
    Event,
    FormChanged,
    Info,
    Paused,
    Review,
    Stale,
    Submitted,
)
from bot.forms.inputs import Action, Document, Input, Location, Photo, Resume, Start, Text, parse_token
from bot.forms.loader import form_from_dict, load_form_file
from bot.forms.model import Form
from bot.forms.state import DraftState, Position
from bot.views.form import Screen, render_events, screen_plain

SCENARIOS = Path(__file__).parent / "scenarios"
ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 5, 15, 9, 0, tzinfo=timezone(timedelta(hours=7)))
FILES = sorted(SCENARIOS.glob("*.yaml"))


def build_form(data: Mapping[str, Any], source: str = "<scenario>") -> Form:
    """A form from the loader's dict format; fails the test on any loader error."""
    result = form_from_dict(data, source)
    assert result.ok, "\n".join(str(e) for e in result.errors)
    return result.forms[0]


def position_name(pos: Position) -> str:
    """ "so_vu", "vu[2].loai" (items counted from 1) or "vu[+3]" (the add-item-3 prompt)."""
    if pos.kind == "sub":
        return f"{pos.qid}[{(pos.item or 0) + 1}].{pos.sub}"
    if pos.kind == "more":
        return f"{pos.qid}[+{(pos.item or 0) + 1}]"
    return pos.qid


def roundtrip(state: DraftState) -> DraftState:
    """Through JSON text and back, as the database would store it."""
    data = json.loads(json.dumps(state.to_json(), ensure_ascii=False))
    back = DraftState.from_json(data)
    assert back == state, "state does not survive JSON"
    return back


def _subset(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, Mapping):
        assert isinstance(actual, Mapping), f"{where}: expected a mapping, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: missing {key!r} in {actual!r}"
            _subset(value, actual[key], f"{where}.{key}")
    else:
        if isinstance(actual, tuple):
            actual = list(actual)
        assert expected == actual, f"{where}: expected {expected!r}, got {actual!r}"


def _describe(ev: Event) -> str:
    if isinstance(ev, Ask):
        return f"ask {position_name(ev.position)} error={ev.error}"
    if isinstance(ev, AskAddAnother):
        return f"more {ev.group.id} count={ev.count} error={ev.error}"
    if isinstance(ev, ConfirmValue):
        return f"confirm {position_name(ev.position)} {ev.readings}"
    return type(ev).__name__


def _match(matcher: Mapping[str, Any], ev: Event, where: str) -> None:
    """Check one event against one matcher (its first key says which event is expected)."""
    kind = next(iter(matcher))
    got = _describe(ev)
    if kind == "ask":
        assert isinstance(ev, Ask), f"{where}: expected ask {matcher['ask']}, got {got}"
        assert position_name(ev.position) == matcher["ask"], (
            f"{where}: expected ask {matcher['ask']}, got {got}"
        )
        assert ev.error == matcher.get("error"), f"{where}: expected error {matcher.get('error')}, got {got}"
        for key in ("current", "has_current", "can_skip", "editing", "section", "new_section"):
            if key in matcher:
                _subset(matcher[key], getattr(ev, key), f"{where}.{key}")
        if "progress" in matcher:
            assert list(ev.progress) == matcher["progress"], f"{where}: progress {ev.progress}"
        if "detail" in matcher:
            _subset(matcher["detail"], {k: _plain(v) for k, v in ev.detail.items()}, f"{where}.detail")
        if "selected" in matcher:
            assert list(ev.selected) == matcher["selected"], f"{where}: selected {ev.selected}"
        if "options" in matcher:
            tokens = [o.action for o in ev.options]
            for token in matcher["options"]:
                assert token in tokens, f"{where}: option {token} not in {tokens}"
        if "no_options" in matcher:
            tokens = [o.action for o in ev.options]
            for token in matcher["no_options"]:
                assert token not in tokens, f"{where}: option {token} unexpectedly in {tokens}"
    elif kind == "confirm":
        assert isinstance(ev, ConfirmValue), f"{where}: expected confirm, got {got}"
        assert position_name(ev.position) == matcher["confirm"], f"{where}: got {got}"
        if "readings" in matcher:
            assert list(ev.readings) == matcher["readings"], f"{where}: readings {ev.readings}"
        if "reason" in matcher:
            assert ev.reason == matcher["reason"], f"{where}: reason {ev.reason}"
        if "detail" in matcher:
            _subset(matcher["detail"], {k: _plain(v) for k, v in ev.detail.items()}, f"{where}.detail")
    elif kind == "more":
        assert isinstance(ev, AskAddAnother), f"{where}: expected more {matcher['more']}, got {got}"
        assert ev.group.id == matcher["more"], f"{where}: got {got}"
        assert ev.error == matcher.get("error"), f"{where}: expected error {matcher.get('error')}, got {got}"
        for key in ("count", "current", "max_count", "editing"):
            if key in matcher:
                assert getattr(ev, key) == matcher[key], f"{where}: {key} = {getattr(ev, key)!r}"
    elif kind == "review":
        assert isinstance(ev, Review), f"{where}: expected review, got {got}"
        spec = matcher["review"] if isinstance(matcher["review"], Mapping) else {}
        assert ev.error == matcher.get("error"), f"{where}: review error {ev.error}"
        if "missing" in spec:
            names = [position_name(r.position) for r in ev.missing]
            assert names == spec["missing"], f"{where}: missing {names}"
        if "failing" in spec:
            assert list(ev.failing_checks) == spec["failing"], f"{where}: failing {ev.failing_checks}"
        if "rows" in spec:
            rows = {position_name(r.position): (r.status, r.value) for r in ev.rows if r.kind != "group"}
            assert list(rows) == list(spec["rows"]), f"{where}: rows {list(rows)}"
            for name, value in spec["rows"].items():
                status, actual = rows[name]
                if value == "(skipped)":
                    assert status == "skipped", f"{where}: {name} is {status}"
                elif value == "(missing)":
                    assert status == "missing", f"{where}: {name} is {status}"
                else:
                    assert actual == value, f"{where}: row {name} = {actual!r}, expected {value!r}"
    elif kind == "confirm_submit":
        assert isinstance(ev, ConfirmSubmit), f"{where}: expected confirm_submit, got {got}"
    elif kind == "submitted":
        assert isinstance(ev, Submitted), f"{where}: expected submitted, got {got}"
        assert dict(ev.answers) == matcher["submitted"], f"{where}: submitted {dict(ev.answers)!r}"
    elif kind == "paused":
        assert isinstance(ev, Paused), f"{where}: expected paused, got {got}"
        assert [ev.index, ev.total] == matcher["paused"], f"{where}: paused at {ev.index}/{ev.total}"
    elif kind == "stale":
        assert isinstance(ev, Stale), f"{where}: expected stale, got {got}"
    elif kind == "already_submitted":
        assert isinstance(ev, AlreadySubmitted), f"{where}: expected already_submitted, got {got}"
    elif kind == "form_changed":
        assert isinstance(ev, FormChanged), f"{where}: expected form_changed, got {got}"
        spec = matcher["form_changed"] if isinstance(matcher["form_changed"], Mapping) else {}
        if "dropped" in spec:
            assert sorted(ev.dropped) == sorted(spec["dropped"]), f"{where}: dropped {ev.dropped}"
        if "versions" in spec:
            assert [ev.old_version, ev.new_version] == spec["versions"], f"{where}: versions"
    elif kind == "info":
        assert isinstance(ev, Info), f"{where}: expected info, got {got}"
        assert ev.code == matcher["info"], f"{where}: info {ev.code}"
    else:  # pragma: no cover - a typo in a scenario file
        raise AssertionError(f"{where}: unknown matcher {kind!r}")


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def _find_button(screens: list[Screen], wanted: str, where: str) -> str:
    buttons = [b for s in screens for row in s.buttons for b in row]
    for b in buttons:
        if b.action == wanted:
            return b.action
    for b in buttons:
        if b.label == wanted:
            return b.action
    loose = [b for b in buttons if wanted.casefold() in b.label.casefold()]
    if not loose and parse_token(wanted) is not None:
        return wanted  # a token with no button on screen: as if an old or forged button were pressed
    assert len(loose) == 1, f"{where}: no single button {wanted!r} among {[b.label for b in buttons]}"
    return loose[0].action


def _input(step: Mapping[str, Any], state: DraftState, screens: list[Screen], where: str) -> Input | None:
    if "send" in step:
        return Text(str(step["send"]))
    if "press" in step:
        if step.get("stale"):
            return Action(str(step["press"]), state.seq - 1)
        if step.get("raw"):
            return Action(str(step["press"]), state.seq)  # a token no button on screen carries
        return Action(_find_button(screens, str(step["press"]), where), state.seq)
    if "photo" in step:
        return Photo("photo-file-id", "photo-unique-id")
    if "document" in step:
        file = step["document"]
        file_id = str(file.get("id", "doc-file-id"))
        return Document(file_id, f"u-{file_id}", file.get("name"), file.get("mime"), file.get("size"))
    if "location" in step:
        lat, lon = step["location"]
        return Location(lat, lon)
    if "resume" in step:
        return Resume()
    if "start" in step:
        return Start()
    return None


def run_scenario(path: Path) -> None:
    """Play one scenario file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    now = datetime.fromisoformat(data["now"]) if "now" in data else NOW
    if "form_file" in data:
        loaded = load_form_file(ROOT / data["form_file"])
        assert loaded.ok, "\n".join(str(e) for e in loaded.errors)
        form = loaded.forms[0]
    else:
        form = build_form(data["form"], path.name)
    begin = data.get("start") or {}
    step: Step = start(form, now, begin.get("answers"), context=data.get("context"))
    if "expect_start" in data:
        _expect(data["expect_start"], step, "start")
    state = roundtrip(step.state)
    screens = render_events(form, state, step.events)
    if "screen_start" in data:
        _screen_has(screens, data["screen_start"], f"{path.name} start")
    for n, spec in enumerate(data["steps"], 1):
        where = (
            f"{path.name} step {n} {dict((k, v) for k, v in spec.items() if k not in ('expect', 'screen'))}"
        )
        if "switch_form" in spec:
            form = build_form(spec["switch_form"], path.name)
        inp = _input(spec, state, screens, where)
        if inp is not None:
            before = state
            step = handle(form, state, inp, now)
            if "expect" in spec:
                _expect(spec["expect"], step, where)
            state = roundtrip(step.state)
            if any(isinstance(e, Stale) for e in step.events):
                assert step.state == before, f"{where}: a stale press changed the state"
                check_screens = render_events(form, state, step.events)  # earlier buttons stay usable
            else:
                screens = check_screens = render_events(form, state, step.events)
            if "screen" in spec:
                _screen_has(check_screens, spec["screen"], where)
            if "not_on_screen" in spec:
                _screen_lacks(check_screens, spec["not_on_screen"], where)
        if "answers" in spec:
            assert state.answers == spec["answers"], f"{where}: answers {state.answers!r}"
    if "answers" in data:
        assert state.answers == data["answers"], f"{path.name}: final answers {state.answers!r}"
    if "mode" in data:
        assert state.mode.value == data["mode"], f"{path.name}: final mode {state.mode}"


def _screen_text(screens: list[Screen]) -> str:
    return "\n".join(
        screen_plain(s) + "\n" + " | ".join(b.label for row in s.buttons for b in row) for s in screens
    )


def _screen_has(screens: list[Screen], needles: list[str], where: str) -> None:
    text = _screen_text(screens)
    for needle in needles:
        assert needle in text, f"{where}: {needle!r} not on screen:\n{text}"


def _screen_lacks(screens: list[Screen], needles: list[str], where: str) -> None:
    text = _screen_text(screens)
    for needle in needles:
        assert needle not in text, f"{where}: {needle!r} on screen:\n{text}"


def _expect(spec: Any, step: Step, where: str) -> None:
    matchers = spec if isinstance(spec, list) else [spec]
    got = [_describe(e) for e in step.events]
    assert len(matchers) == len(step.events), f"{where}: expected {len(matchers)} events, got {got}"
    for i, (matcher, ev) in enumerate(zip(matchers, step.events, strict=True)):
        _match(matcher, ev, f"{where} event {i + 1}")


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "STRICT", True)


def test_there_are_scenarios() -> None:
    """The directory is not empty (a glob typo would silently test nothing)."""
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path) -> None:
    """Play the scenario; every expectation in it must hold."""
    run_scenario(path)
