"""Walk a form in the terminal with the real engine and view (``baocao forms try FORM_ID``):
`run_preview`.

Design notes: docs/design-notes.md#botviewsform_previewpy
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bot.forms.engine import Step, handle, resume, start
from bot.forms.events import Ask, Stale, Submitted
from bot.forms.inputs import Action, Input, Location, Photo, Text
from bot.forms.model import Form
from bot.forms.state import DraftState
from bot.forms.types import type_of
from bot.views.form import ActionButton as Button
from bot.views.form import render_events, screen_plain

QUIT = "/thoat"
HELP = (
    "(Gõ số để bấm nút — ở câu hỏi cần gõ số thì gõ #số để bấm nút; /anh gửi ảnh thử, "
    "/vitri 21.5 105.8 gửi vị trí, /thoat để dừng.)"
)


def _show(step: Step, form: Form, output_fn: Callable[[str], Any]) -> list[Button]:
    """Print the step's screens; return its buttons in the order they are numbered."""
    buttons: list[Button] = []
    for screen in render_events(form, step.state, step.events):
        output_fn(screen_plain(screen))
        for row in screen.buttons:
            labels = []
            for button in row:
                buttons.append(button)
                labels.append(f"[{len(buttons)}] {button.label}")
            output_fn("   ".join(labels))
        output_fn("")
    return buttons


def _read(line: str, buttons: list[Button], seq: int, photos: int, typed: bool) -> Input | None:
    """Turn a terminal line into an engine input (None: not understood, show help)."""
    text = line.strip()
    m = re.fullmatch(r"(#?)(\d{1,3})", text)
    if m and buttons and (m.group(1) or not typed):
        n = int(m.group(2))
        if 1 <= n <= len(buttons):
            return Action(buttons[n - 1].action, seq)
        if m.group(1):
            return None
    if text.lower() == "/anh":
        return Photo(f"preview-photo-{photos}", f"preview-{photos}")
    if text.lower().startswith("/vitri"):
        parts = text.replace(",", " ").split()[1:]
        try:
            lat, lon = (float(p) for p in parts)
        except ValueError:
            return None
        return Location(lat, lon)
    return Text(line)


def run_preview(
    form: Form,
    *,
    now: datetime,
    input_fn: Callable[[str], str] = input,
    output_fn: Callable[[str], Any] = print,
    answers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Walk `form` interactively; return the submitted answers (or the draft's answers on quit)."""
    step = start(form, now, answers)
    output_fn(f"== {form.title} (phiên bản {form.version}) ==")
    output_fn(HELP)
    output_fn("")
    photos = 0
    while True:
        buttons = _show(step, form, output_fn)
        for event in step.events:
            if isinstance(event, Submitted):
                return dict(event.answers)
        if any(isinstance(e, Stale) for e in step.events):
            step = resume(form, step.state)
            continue
        try:
            line = input_fn("> ")
        except (EOFError, KeyboardInterrupt):
            line = QUIT
        if line.strip().lower() == QUIT:
            return dict(step.state.answers)
        typed = any(isinstance(e, Ask) and type_of(e.question).typed for e in step.events)
        inp = _read(line, buttons, step.state.seq, photos, typed)
        if inp is None:
            output_fn(HELP)
            continue
        if isinstance(inp, Photo):
            photos += 1
        state = DraftState.from_json(json.loads(json.dumps(step.state.to_json())))
        step = handle(form, state, inp, now)


__all__ = ["run_preview"]
