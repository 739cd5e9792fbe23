"""Issue 15, "location by one tap": a location question carries a reply keyboard with one "📍 Gửi vị trí hiện
tại" button (request_location), plus "Bỏ qua" when optional; the keyboard is taken down (ReplyKeyboardRemove)
by the next message once the location (or a skip, a back, a pause) is received. A message takes either inline
buttons or a reply keyboard, so the question's inline buttons (back, skip, pause) go on a short message just
above it. Groups never get the keyboard. Also here: the read-back line in the real conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.forms import engine
from bot.forms.engine import handle, start
from bot.forms.events import Ask, LeftInput, Paused, Review
from bot.forms.inputs import Action, Input, Location, Photo, Text
from bot.forms.loader import form_from_dict, load_form_file
from bot.forms.model import Form
from bot.services.accounts import create_invite
from bot.updates.replies import reply_keyboard
from bot.views.buttons import REMOVE_KEYBOARD, KeyButton, ReplyKeyboard
from bot.views.form import Screen, render_events, screen_plain
from storage.db import session_scope
from storage.models import Draft
from tests.support.client import BotClient
from tests.support.telegram import FakeUser, RecordingRequest
from tests.test_report_conversation import AN, CUONG, POLICE_CHAT, STRANGER, heads_bot

NOW = datetime(2026, 5, 15, 9, 0, tzinfo=timezone(timedelta(hours=7)))
WHERE = {"id": "v", "type": "location", "label": "Nơi xảy ra ở đâu?", "short": "Vị trí"}


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "STRICT", True)


def build(*, required: bool = False) -> Form:
    """A number, a location (optional unless `required`), a yes/no."""
    result = form_from_dict(
        {
            "id": "loc",
            "title": "Vị trí",
            "version": 1,
            "kind": "incident",
            "questions": [
                {"id": "a", "type": "integer", "label": "Bao nhiêu người?", "short": "Số người"},
                {**WHERE, "required": required},
                {"id": "z", "type": "yes_no", "label": "Có người bị thương không?"},
            ],
        }
    )
    assert result.ok, result.errors
    return result.forms[0]


def run(form: Form, *inputs: Input | str) -> tuple[Any, list[Screen]]:
    """Start, send the inputs (str: typed text, "@token": a button), return the state and the last screens."""
    step = start(form, NOW)
    for inp in inputs:
        if isinstance(inp, str):
            inp = Action(inp[1:], step.state.seq) if inp.startswith("@") else Text(inp)
        step = handle(form, step.state, inp, NOW)
    return step, render_events(form, step.state, step.events)


def keys(screen: Screen) -> list[list[tuple[str, bool]]]:
    """A screen's reply keyboard as (label, request_location) rows."""
    assert screen.keyboard is not None and not screen.keyboard.remove
    return [[(b.label, b.request_location) for b in row] for row in screen.keyboard.rows]


# ------------------------------------------------------------------------------------------- the screens


def test_an_optional_location_question_offers_one_tap_and_skip() -> None:
    step, screens = run(build(), "12")
    assert isinstance(step.events[0], Ask) and step.events[0].question.id == "v"
    nav, question = screens
    assert nav.keyboard is None and set(nav.actions) == {"back", "skip", "pause"}
    assert "vị trí" in screen_plain(nav) and "Câu 2/3" not in screen_plain(nav)
    assert question.buttons == () and "Câu 2/3" in screen_plain(question)
    assert keys(question) == [[("📍 Gửi vị trí hiện tại", True)], [("Bỏ qua", False)]]
    assert "📎" not in screen_plain(question) and "📍 Gửi vị trí hiện tại" in screen_plain(question)


def test_a_required_location_question_has_no_skip_key() -> None:
    _, (nav, question) = run(build(required=True), "12")
    assert keys(question) == [[("📍 Gửi vị trí hiện tại", True)]]
    assert set(nav.actions) == {"back", "pause"}


def test_the_keyboard_words_are_what_the_engine_reads() -> None:
    """The reply keys send their label as text: "Bỏ qua" skips, "Giữ nguyên" keeps the location sent before."""
    form = build()
    step, _ = run(form, "12", "Bỏ qua")
    assert step.state.answers == {"a": 12, "v": None}
    step, screens = run(form, "12", Location(21.5, 105.8), "@back")
    assert keys(screens[-1]) == [
        [("📍 Gửi vị trí hiện tại", True)],
        [("Giữ nguyên", False)],
        [("Bỏ qua", False)],
    ]
    step, _ = run(form, "12", Location(21.5, 105.8), "@back", "Giữ nguyên")
    assert step.state.answers["v"] == {"lat": 21.5, "lon": 105.8}
    assert isinstance(step.events[0], Ask) and step.events[0].question.id == "z"
    step, screens = run(build(required=True), "12", "Giữ nguyên")  # nothing to keep yet: refused, asked again
    assert (
        isinstance(step.events[0], Ask)
        and step.events[0].error == "need_location"
        and "v" not in step.state.answers
    )
    assert keys(screens[-1]) == [[("📍 Gửi vị trí hiện tại", True)]]


def test_a_received_location_takes_the_keyboard_down_and_says_what_was_received() -> None:
    step, screens = run(build(), "12", Location(21.5, 105.8))
    assert step.state.answers["v"] == {"lat": 21.5, "lon": 105.8}
    ask = step.events[0]
    assert isinstance(ask, Ask) and ask.question.id == "z"
    assert ask.left == LeftInput(build().question("v"), "location", "answered", {"lat": 21.5, "lon": 105.8})
    gone, nxt = screens
    assert gone.keyboard == REMOVE_KEYBOARD and gone.buttons == ()
    assert screen_plain(gone) == "✔ Vị trí: 📍 21.50000, 105.80000"
    assert nxt.keyboard is None and "y" in nxt.actions and "✔" not in screen_plain(nxt)


@pytest.mark.parametrize(
    ("inputs", "line", "kind"),
    [
        (("@skip",), "⏭ Vị trí: bỏ qua", Ask),
        (("Bỏ qua",), "⏭ Vị trí: bỏ qua", Ask),
        (("@back",), "Đã ẩn nút gửi vị trí.", Ask),
        (("quay lại",), "Đã ẩn nút gửi vị trí.", Ask),
        (("@pause",), "Đã ẩn nút gửi vị trí.", Paused),
    ],
)
def test_leaving_the_question_any_way_takes_the_keyboard_down(
    inputs: tuple[str, ...], line: str, kind: type
) -> None:
    step, screens = run(build(), "12", *inputs)
    assert isinstance(step.events[-1], kind)
    gone, *rest = screens
    assert gone.keyboard == REMOVE_KEYBOARD and screen_plain(gone) == line
    assert rest and all(s.keyboard is None for s in rest)


def test_the_last_question_a_location_leads_to_the_review_after_taking_the_keyboard_down() -> None:
    result = form_from_dict({"id": "l", "title": "L", "version": 1, "kind": "incident", "questions": [WHERE]})
    form = result.forms[0]
    step = handle(form, start(form, NOW).state, Location(21.0, 105.0), NOW)
    assert isinstance(step.events[0], Review) and step.events[0].left is not None
    gone, review = render_events(form, step.state, step.events)
    assert gone.keyboard == REMOVE_KEYBOARD and "Xem lại" in screen_plain(review) and review.keyboard is None


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        (Text("ở nhà ông Tòng"), "need_location", "cần vị trí trên bản đồ, không nhận chữ"),
        (
            Photo("F", "U"),
            "need_location",
            "cần vị trí trên bản đồ. Đồng chí bấm nút “📍 Gửi vị trí hiện tại”",
        ),
        (Location(95.0, 105.0), "need_location", "cần vị trí trên bản đồ"),
        (Action("c:0", 999), None, None),  # an old button: nothing changes
    ],
)
def test_bad_input_at_a_location_question_keeps_it_and_its_keyboard(
    bad: Input, error: str | None, words: str | None
) -> None:
    form = build()
    before = run(form, "12")[0].state
    step = handle(form, before, bad, NOW)
    assert step.state.answers == before.answers and step.state.position == before.position
    screens = render_events(form, step.state, step.events)
    assert all(s.keyboard is None or not s.keyboard.remove for s in screens)  # never taken down
    if error is None:
        return
    assert isinstance(step.events[0], Ask) and step.events[0].error == error and step.events[0].left is None
    nav, question = screens  # the error opens the turn, above the buttons; the question keeps its keyboard
    assert screen_plain(nav).startswith(f"⚠️ Câu này {words}") and "⚠️" not in screen_plain(question)
    assert keys(question)[0] == [("📍 Gửi vị trí hiện tại", True)] and set(nav.actions) == {
        "back",
        "skip",
        "pause",
    }


def test_a_location_where_none_is_asked_is_refused_in_words() -> None:
    form = build()
    step = handle(form, start(form, NOW).state, Location(21.5, 105.8), NOW)
    assert (
        step.state.answers == {}
        and isinstance(step.events[0], Ask)
        and step.events[0].error == "unexpected_location"
    )
    (screen,) = render_events(form, step.state, step.events)
    assert "Câu này không cần vị trí" in screen_plain(screen) and screen.keyboard is None


def test_only_location_questions_of_the_shipped_incident_form_get_the_keyboard() -> None:
    """Walk su-co.yaml with small answers: every screen of a location question has the key, no other does."""
    result = load_form_file(Path(__file__).parent.parent / "deploy" / "forms" / "su-co.yaml")
    assert result.ok, result.errors
    (form,) = result.forms
    step = start(form, NOW)
    seen_location = False
    for _ in range(60):
        screens = render_events(form, step.state, step.events)
        ask = next((e for e in step.events if isinstance(e, Ask)), None)
        if ask is None:
            break
        is_location = ask.question.type == "location"
        with_keys = [s for s in screens if s.keyboard is not None and not s.keyboard.remove]
        assert len(with_keys) == (1 if is_location else 0), ask.question.id
        seen_location |= is_location
        options = [o.action for o in ask.options]
        if is_location:
            inp: Input = Location(21.6, 105.8)
        else:
            token = next((t for t in ("c:0", "d:today", "n") if t in options), None)
            inp = (
                Action(token, step.state.seq)
                if token
                else Text("3" if ask.question.type == "integer" else "Nhà ông Tòng")
            )
        step = handle(form, step.state, inp, NOW)
    assert seen_location


# ----------------------------------------------------------------------------------------- sending it


def test_the_keyboard_markup_and_its_removal() -> None:
    keys_ = ReplyKeyboard(
        ((KeyButton("📍 Gửi vị trí hiện tại", request_location=True),), (KeyButton("Bỏ qua"),))
    )
    markup = reply_keyboard(keys_, 2001)
    assert markup is not None
    data = markup.to_dict()
    assert data["keyboard"] == [
        [{"text": "📍 Gửi vị trí hiện tại", "request_location": True}],
        [{"text": "Bỏ qua"}],
    ]
    assert data["resize_keyboard"] is True and data["one_time_keyboard"] is True
    assert reply_keyboard(REMOVE_KEYBOARD, 2001).to_dict() == {"remove_keyboard": True}  # type: ignore[union-attr]
    assert reply_keyboard(None, 2001) is None


@pytest.mark.parametrize("chat_id", [POLICE_CHAT, -42])
def test_a_group_never_gets_the_keyboard(chat_id: int) -> None:
    keys_ = ReplyKeyboard(((KeyButton("📍 Gửi vị trí hiện tại", request_location=True),),))
    assert reply_keyboard(keys_, chat_id) is None and reply_keyboard(REMOVE_KEYBOARD, chat_id) is None


# ------------------------------------------------------------------------------- the real conversation


@pytest.fixture
async def bot(engine: Any, database_url: str, clock: Any) -> AsyncIterator[BotClient]:
    """Hiệp Lực with its three village heads, and a police officer (as in test_report_conversation)."""
    async with heads_bot(engine, database_url, clock, RecordingRequest()) as b:
        with session_scope(engine) as s:
            code = create_invite(s, role="police", commune="hiep-luc", now=clock(), actor="t").code
        await b.send(CUONG, f"/start {code}")
        yield b


def markups(bot: BotClient, chat: int) -> list[dict[str, Any] | None]:
    """The reply_markup of every message sent to a chat since its last message or button press."""
    calls = bot.request.sent(chat)[bot._mark.get(chat, 0) :]
    return [c.params.get("reply_markup") for c in calls]


async def walk_to_location(bot: BotClient, user: FakeUser) -> None:
    """/suco, then small answers until a message carries the location keyboard."""
    await bot.send(user, "/suco")
    for _ in range(40):
        if any(m and "keyboard" in m for m in markups(bot, user.id)):
            return
        tokens = bot.tokens(user)
        choice = next((t for t in ("c:0", "d:today", "n") if t in tokens), None)
        if "⚠️" in bot.texts(user)[-1] and "skip" in tokens:
            await bot.press_token(user, "skip")
        elif choice is not None:
            await bot.press_token(user, choice)
        else:
            await bot.send(user, "3" if "Gõ một số" in bot.texts(user)[-1] else "Nhà ông Tòng")
    raise AssertionError(f"no location keyboard: {bot.texts(user)[-2:]}")


def draft_position(bot: BotClient, user: FakeUser) -> tuple[Any, dict[str, Any]]:
    """Where the user's draft stands, and its answers."""
    with session_scope(bot.engine) as s:
        draft = s.get(Draft, bot.person(user).active_draft_id)
        return draft.state.get("position"), dict(draft.state["answers"])


async def test_a_head_shares_the_location_in_one_tap(bot: BotClient) -> None:
    await walk_to_location(bot, AN)
    nav, question = markups(bot, AN.id)[-2:]
    assert nav is not None and "inline_keyboard" in nav
    assert question is not None and question["keyboard"][0] == [
        {"text": "📍 Gửi vị trí hiện tại", "request_location": True}
    ]
    assert "📍 Gửi vị trí hiện tại" in bot.texts(AN)[-1]
    await bot.send_location(AN, 21.6, 105.8)
    gone, *rest = markups(bot, AN.id)
    assert gone == {"remove_keyboard": True} and bot.said(AN)[0].startswith("✔ ")
    assert rest and all(m is None or "inline_keyboard" in m for m in rest)
    _, answers = draft_position(bot, AN)
    assert {"lat": 21.6, "lon": 105.8} in answers.values()


async def test_text_or_a_photo_at_the_location_question_is_explained_and_nothing_moves(
    bot: BotClient,
) -> None:
    await walk_to_location(bot, AN)
    before = draft_position(bot, AN)
    await bot.send(AN, "ở đầu cầu")
    assert "cần vị trí trên bản đồ, không nhận chữ" in bot.said(AN)[0]
    assert markups(bot, AN.id)[-1]["keyboard"][0][0]["request_location"] is True  # type: ignore[index]
    await bot.send_photo(AN, "PHOTO-9")
    assert "cần vị trí trên bản đồ" in bot.said(AN)[0] and "không nhận chữ" not in bot.said(AN)[0]
    assert {"remove_keyboard": True} not in markups(bot, AN.id)
    assert draft_position(bot, AN) == before


async def test_the_skip_key_skips_and_takes_the_keyboard_down(bot: BotClient) -> None:
    await walk_to_location(bot, AN)
    position, _ = draft_position(bot, AN)
    await bot.send(AN, "Bỏ qua")
    assert markups(bot, AN.id)[0] == {"remove_keyboard": True} and bot.said(AN)[0].startswith("⏭ ")
    _, answers = draft_position(bot, AN)
    assert answers[position["q"]] is None


async def test_a_location_where_none_is_asked_or_without_a_draft(bot: BotClient) -> None:
    await bot.send(AN, "/suco")
    await bot.send_location(AN, 21.6, 105.8)
    assert "Câu này không cần vị trí" in bot.said(AN)[-1]
    assert all(m is None or "inline_keyboard" in m for m in markups(bot, AN.id))
    for who in (CUONG, STRANGER):  # police, a stranger: no draft, no keyboard, a plain answer
        await bot.send_location(who, 21.6, 105.8)
        said = bot.said(who)
        assert said and all(m is None for m in markups(bot, who.id))


async def test_in_a_group_the_report_is_refused_and_no_keyboard_is_sent(bot: BotClient) -> None:
    group = {"id": POLICE_CHAT, "type": "supergroup", "title": "Công an xã"}
    await bot.send(AN, "/suco", group=group)
    await bot.send(CUONG, "/suco", group=group)
    for call in bot.request.calls:
        markup = call.params.get("reply_markup")
        if int(call.params.get("chat_id") or 0) < 0 and isinstance(markup, dict):
            assert "keyboard" not in markup and "remove_keyboard" not in markup


async def test_a_number_in_words_is_read_back_on_the_next_question_without_another_message(
    bot: BotClient,
) -> None:
    await bot.open_report(AN)
    assert "Câu 1/" in bot.texts(AN)[-1]
    await bot.send(AN, "mười hai")
    (text,) = bot.said(AN)
    assert text.startswith("✔ ") and ": <b>12</b>" in text.splitlines()[0] and "Câu 2/" in text
    await bot.press_token(AN, "back")
    await bot.send(AN, "12")
    (text,) = bot.said(AN)
    assert not text.startswith("✔") and "Câu 2/" in text
