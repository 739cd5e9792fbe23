"""Delivering a turn's Bot API calls after the commit: the chat's messages one after the other, the button's
answer at the same time as them, the pressed message's edit once the first of them is out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram.error import BadRequest

from tests.support.client import BotClient
from tests.support.telegram import RecordingRequest
from tests.test_report_conversation import AN, STRANGER, heads_bot

BUTTON_TURN = {"answerCallbackQuery", "sendMessage", "editMessageReplyMarkup"}


class SlowRequest(RecordingRequest):
    """RecordingRequest whose every call takes a few turns of the event loop, like a round trip; keeps
    when each call started and ended, and can fail chosen methods once armed."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []  # ("start" | "end", method)
        self.fail: dict[str, Exception] = {}

    async def do_request(self, url: str, method: str, request_data: Any = None, **kwargs: Any) -> Any:
        name = url.rsplit("/", 1)[-1]
        self.events.append(("start", name))
        for _ in range(3):
            await asyncio.sleep(0)
        self.events.append(("end", name))
        if name in self.fail:
            raise self.fail[name]
        return await super().do_request(url, method, request_data, **kwargs)


def overlapping(events: list[tuple[str, str]]) -> set[str]:
    """The methods that were in flight while another call was."""
    live: list[str] = []
    together: set[str] = set()
    for edge, name in events:
        if edge == "start":
            live.append(name)
            if len(live) > 1:
                together.update(live)
        else:
            live.remove(name)
    return together


@pytest.fixture
async def slow(engine, database_url, clock):
    request = SlowRequest()
    async with heads_bot(engine, database_url, clock, request) as bot:
        yield bot, request


async def to_a_choice(bot: BotClient) -> str:
    """Answer with "3" until a question offers a choice button; that button's token."""
    for _ in range(30):
        tokens = bot.tokens(AN)
        for choice in ("c:0", "n", "d:yday", "ok:0"):
            if choice in tokens:
                return choice
        await bot.send(AN, "3")
    raise AssertionError("no question with a choice")


def ends_before_starts(events: list[tuple[str, str]], first: str, then: str) -> bool:
    """`first` ended before `then` started."""
    return events.index(("end", first)) < events.index(("start", then))


async def test_a_button_answer_overlaps_the_press_answer_with_the_question(slow) -> None:
    bot, request = slow
    await bot.open_report(AN)
    choice = await to_a_choice(bot)
    before = bot.texts(AN)[-1]
    request.events.clear()
    await bot.press_token(AN, choice)
    assert {name for _, name in request.events} == BUTTON_TURN
    assert overlapping(request.events) == {"answerCallbackQuery", "sendMessage"}
    # the old buttons go once the question is out: a cosmetic edit never holds the question back
    assert ends_before_starts(request.events, "sendMessage", "editMessageReplyMarkup")
    assert bot.texts(AN)[-1] != before


async def test_a_turns_messages_are_sent_one_after_the_other(slow) -> None:
    bot, request = slow
    await bot.open_report(AN)
    request.events.clear()
    sticker = {"file_id": "s", "file_unique_id": "s", "width": 1, "height": 1, "is_animated": False,
               "is_video": False, "type": "regular"}  # fmt: skip
    await bot.send_raw(AN, sticker=sticker)  # "cannot answer with that", then the question again
    assert request.events == [("start", "sendMessage"), ("end", "sendMessage")] * 2
    assert "không dùng được để trả lời" in bot.texts(AN)[-2] and "Câu 1/" in bot.texts(AN)[-1]


async def test_a_text_answer_is_one_call(slow) -> None:
    bot, request = slow
    await bot.open_report(AN)
    request.events.clear()
    await bot.send(AN, "3")
    assert request.events == [("start", "sendMessage"), ("end", "sendMessage")]


async def test_an_expired_button_answer_does_not_stop_the_replies(slow, caplog) -> None:
    bot, request = slow
    await bot.open_report(AN)
    choice = await to_a_choice(bot)
    before = bot.texts(AN)[-1]
    request.fail["answerCallbackQuery"] = BadRequest("Query is too old and response timeout expired")
    await bot.press_token(AN, choice)
    assert bot.texts(AN)[-1] != before
    assert "editMessageReplyMarkup" in [c.method for c in request.calls[-2:]]
    assert "could not answer callback query" in caplog.text


async def test_a_failed_reply_still_answers_the_button_and_reports_the_error(slow, caplog) -> None:
    bot, request = slow
    await bot.open_report(AN)
    choice = await to_a_choice(bot)
    asked = bot.texts(AN)[-1].split("\n")[0]  # "Câu N/M …"
    request.fail["sendMessage"] = BadRequest("Bad Request: message text is empty")
    request.events.clear()
    await bot.press_token(AN, choice)
    ended = [name for edge, name in request.events if edge == "end"]
    assert {"answerCallbackQuery", "editMessageReplyMarkup"} <= set(ended)  # not cut short by the failure
    assert ends_before_starts(request.events, "sendMessage", "editMessageReplyMarkup")
    assert "error while handling an update" in caplog.text  # raised to the error handler, as before
    request.fail.clear()
    await bot.send(AN, "/baocao")  # the answer was saved before the send failed: resuming goes past it
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    assert asked not in bot.texts(AN)[-1]


async def test_a_stranger_pressing_a_button_gets_the_refusal_and_the_answer(slow) -> None:
    bot, request = slow
    request.events.clear()
    await bot.press(STRANGER, "f:1:1:skip")
    assert {name for _, name in request.events} == {"answerCallbackQuery", "sendMessage"}
    assert overlapping(request.events) == {"answerCallbackQuery", "sendMessage"}
    assert "chưa đăng ký" in bot.texts(STRANGER)[-1]
    answer = next(c for c in request.calls if c.method == "answerCallbackQuery")
    assert answer.params.get("text")


async def test_a_cancelled_delivery_waits_for_its_alongside_calls_to_stop() -> None:
    """Shutdown cancels a turn mid-delivery: the edit started alongside is cancelled and awaited, not left
    running (or pending) after the turn is gone."""

    from bot.updates.context import OutgoingReply
    from bot.updates.replies import send_replies

    stopped: list[str] = []
    second_reply = asyncio.Event()

    async def edit(_: Any) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # its own clean-up takes a turn of the loop
            stopped.append("edit")

    class Hanging:
        async def send_message(self, chat_id: int, text: str, **_: Any) -> None:
            if text == "2":
                second_reply.set()
                await asyncio.sleep(3600)

    replies = [OutgoingReply("1"), OutgoingReply("2")]
    turn = asyncio.create_task(send_replies(Hanging(), replies, chat_id=AN, alongside=[edit]))
    await second_reply.wait()  # the first reply is out, the edit started
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
    assert stopped == ["edit"]
