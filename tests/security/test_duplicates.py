"""Duplicate and out-of-order updates: redeliveries, double taps, old buttons, and the two reporters of one
village answering at the same moment (through the bot, and as two processes racing on the database)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.auth import load_actor
from bot.forms import inputs
from bot.services import reports
from bot.texts.templates import render
from bot.views.notices import notice_template
from storage.db import session_scope
from storage.models import Person
from tests.security.conftest import Figures
from tests.security.world import DEPUTY_A, HEAD_A, HEAD_B, NOW, VILLAGE_A
from tests.support.client import BotClient

pytestmark = pytest.mark.security

STALE = render("form/stale.html")
MOVED_ON = render("report/moved_on.html")


def _answers(world: BotClient, village: str = VILLAGE_A) -> dict[str, Any]:
    return world.draft_of(village).state["answers"]


async def test_the_same_update_twice_is_processed_once(world: BotClient, figures: Figures) -> None:
    """A redelivered answer, button press and /start are each applied and answered once."""
    await world.open_report(HEAD_A)
    update = await world.send(HEAD_A, "6")
    sent = len(world.request.calls)
    await world.feed(update.to_dict())
    figures.fault("redelivered update")
    assert len(world.request.calls) == sent  # nothing sent again
    assert _answers(world) == {"so_buoi_tuyen_truyen": 6}
    figures.answers(1, len(_answers(world)), "redelivered answer")
    figures.duplicate(
        sum("Câu 2/" in t for t in world.texts(HEAD_A)) - 1, "redelivered answer: question 2 asked"
    )

    message_id, data = world.last_keyboard(HEAD_A)
    back = next(d for d in data if d.endswith(":back"))
    press = await world.press(HEAD_A, back, message_id=message_id)
    state = world.draft_of(VILLAGE_A).state
    await world.feed(press.to_dict())
    figures.fault("redelivered update")
    assert world.draft_of(VILLAGE_A).state == state


async def test_double_tap_on_send_files_one_submission(world: BotClient, figures: Figures) -> None:
    """The confirm button pressed twice (two updates) and redelivered: one submission, the second tap told."""
    await world.open_report(HEAD_A)
    await world.answer_until(HEAD_A)
    acknowledged = world.draft_of(VILLAGE_A).state["answers"]
    message_id, data = world.last_keyboard(HEAD_A)
    confirm = next(d for d in data if d.endswith(":confirm"))
    first = await world.press(HEAD_A, confirm, message_id=message_id)
    await world.press(HEAD_A, confirm, message_id=message_id)
    await world.feed(first.to_dict())
    figures.fault("double tap", 2)
    subs = world.submissions()
    figures.duplicate(len(subs) - 1, "double tap on send")
    assert len(subs) == 1 and sum("Mã biên nhận" in t for t in world.texts(HEAD_A)) == 1
    assert world.texts(HEAD_A)[-1] != render("common/error.html")
    found = [k for k, v in acknowledged.items() if subs[0].answers.get(k) == v]
    figures.answers(len(acknowledged), len(found), "double tap on send")
    assert len(found) == len(acknowledged)


async def test_an_old_button_after_a_newer_answer_is_stale_and_changes_nothing(
    world: BotClient, figures: Figures
) -> None:
    """Question 1's buttons pressed after question 2 was answered: the stale message, state unchanged."""
    await world.open_report(HEAD_A)
    old_message, old_data = world.last_keyboard(HEAD_A)
    await world.send(HEAD_A, "5")
    await world.send(HEAD_A, "9")
    before = world.draft_of(VILLAGE_A).state
    for data in old_data:
        await world.press(HEAD_A, data, message_id=old_message)
        figures.fault("stale button")
        assert STALE in "\n".join(world.texts(HEAD_A)[-3:]), world.texts(HEAD_A)[-2:]
        after = world.draft_of(VILLAGE_A).state
        # only the button generation (seq) moves on, so that the buttons shown again are the valid ones
        assert {**after, "seq": None} == {**before, "seq": None}, data
    figures.answers(2, len(after["answers"]), "stale buttons")
    assert "Câu 3/" in world.texts(HEAD_A)[-1]  # and shown where the report stands


async def test_an_old_button_from_a_submitted_report_is_stale(world: BotClient, figures: Figures) -> None:
    """After sending, every button of the form is answered with a refusal or stale text; one submission."""
    await world.open_report(HEAD_A)
    old_message, old_data = world.last_keyboard(HEAD_A)
    await world.answer_until(HEAD_A)
    await world.press_token(HEAD_A, "confirm")
    for data in old_data:
        await world.press(HEAD_A, data, message_id=old_message)
        figures.fault("stale button")
    figures.duplicate(len(world.submissions()) - 1, "old buttons after sending")
    assert len(world.submissions()) == 1 and world.drafts() == []


async def test_two_reporters_answer_at_once_through_the_bot(world: BotClient, figures: Figures) -> None:
    """Head and deputy answer question 2 in the same instant: the draft stays consistent and each is told
    either that the answer was taken (next question) or that the other reporter moved the draft on."""
    await world.open_report(HEAD_A)
    await world.send(HEAD_A, "7")
    await world.send(DEPUTY_A, "/baocao")
    await world.press_token(DEPUTY_A, world.last_keyboard(DEPUTY_A)[1][0])
    await asyncio.gather(world.send(HEAD_A, "40"), world.send(DEPUTY_A, "41"))
    figures.fault("concurrent answers")
    answers = _answers(world)
    value = answers.get("so_luot_nguoi_du")
    assert answers["so_buoi_tuyen_truyen"] == 7 and value in (None, 40, 41)
    acknowledged = 0
    for user, typed in ((HEAD_A, 40), (DEPUTY_A, 41)):
        last = world.texts(user)[-2:]
        if MOVED_ON in last[0]:
            assert "Câu 2/" in last[1] if value is None else "Câu 3/" in last[1], last
        else:
            assert "Câu 3/" in last[1] and value == typed, (user.first_name, last, answers)
            acknowledged += 1
    figures.answers(acknowledged, acknowledged, "two reporters at once")


async def test_a_reporter_who_only_looks_does_not_void_the_others_answer(
    world: BotClient, figures: Figures
) -> None:
    """The deputy opens the shared draft without answering; the head's next answer must still count."""
    await world.open_report(HEAD_A)
    await world.send(HEAD_A, "7")
    await world.send(DEPUTY_A, "/baocao")
    await world.press_token(DEPUTY_A, world.last_keyboard(DEPUTY_A)[1][0])
    figures.fault("concurrent view")
    await world.send(HEAD_A, "40")
    assert MOVED_ON not in world.texts(HEAD_A)[-2]
    assert _answers(world).get("so_luot_nguoi_du") == 40


async def test_two_villages_at_once_do_not_mix(world: BotClient, figures: Figures) -> None:
    """A and B answering at the same time each keep their own answers."""
    await world.open_report(HEAD_A)
    await world.open_report(HEAD_B)
    for a, b in ((3, 8), (30, 80), ("có", "không")):  # the third is the yes/no opening an optional part
        await asyncio.gather(world.send(HEAD_A, str(a)), world.send(HEAD_B, str(b)))
        figures.fault("concurrent answers")
    a_answers, b_answers = _answers(world), _answers(world, "Thôn Bản Duồm")
    assert list(a_answers.values()) == [3, 30, True] and list(b_answers.values()) == [8, 80, False]
    figures.answers(6, len(a_answers) + len(b_answers), "two villages at once")


async def test_two_processes_racing_on_one_draft_lose_no_acknowledged_answer(
    world: BotClient, figures: Figures, monkeypatch: pytest.MonkeyPatch, engine: Engine, db_backend: str
) -> None:
    """Two workers (two processes, or a webhook served concurrently) apply two quick messages of the head to
    the same draft, both reading before either writes: each answer either reaches the database or its sender
    is not told it was taken — never acknowledged and then overwritten."""
    await world.open_report(HEAD_A)
    await world.send(HEAD_A, "7")
    draft_id = world.draft_of(VILLAGE_A).id
    barrier = threading.Barrier(2, timeout=10)
    original = reports._save

    def save_after_both_read(*args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        original(*args, **kwargs)

    monkeypatch.setattr(reports, "_save", save_after_both_read)
    outcomes: dict[int, str] = {}

    def worker(key: int, user_id: int, text: str) -> None:
        try:
            with session_scope(engine) as s:
                actor = load_actor(s, user_id)
                person = s.get(Person, actor.person.id)
                out = reports.feed(
                    s, person, set(actor.villages), draft_id, inputs.Text(text), now=NOW, sent_at=NOW
                )
                told_moved = any(notice_template(n)[0] == "report/moved_on.html" for n in out.notices)
                # applied second, the message answers the next question (a yes/no): refused, and said so
                refused = any(getattr(e, "error", None) for e in out.events)
            outcomes[key] = "moved_on" if told_moved else "refused" if refused else "acknowledged"
        except Exception as err:  # a conflict surfaces as an error: the sender is told to try again
            outcomes[key] = f"error: {type(err).__name__}"

    threads = [
        threading.Thread(target=worker, args=(40, HEAD_A.id, "40")),
        threading.Thread(target=worker, args=(41, HEAD_A.id, "41")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    figures.fault("racing workers")
    value = _answers(world).get("so_luot_nguoi_du")
    stored = _answers(world)
    acknowledged = [v for v in (40, 41) if outcomes.get(v) == "acknowledged"]
    lost = [v for v in acknowledged if v not in stored.values()]
    if lost:
        figures.known_hole(f"racing workers ({db_backend}): {len(lost)} acknowledged answer(s) overwritten")
    else:
        figures.answers(len(acknowledged), len(acknowledged), f"racing workers ({db_backend})")
    assert not lost, f"acknowledged but overwritten: {lost}; outcomes {outcomes}; stored {stored}"
    assert value in (40, 41) or not acknowledged
