"""The reply path's own Bot API calls (bot.updates.replies: send_text, edit_text, remove_buttons): the same
requests as python-telegram-bot's send_message / edit_message_text / edit_message_reply_markup, the same
errors, the sent message's id, and Vietnamese texts, keyboards and parse_mode intact at the emulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import Defaults, ExtBot
from telegram.request import BaseRequest, RequestData

from bot.emulator.server import EmulatorServer
from bot.telegram_request import AiohttpRequest
from bot.updates import replies
from bot.updates.context import OutgoingReply
from bot.views.buttons import KeyButton, ReplyButton, ReplyKeyboard
from tests.support.telegram import OfflineRequest

TOKEN = "626262:RequestTokenRequestTokenRequest00"
USER = 7001
QUESTION = "<b>Câu 3/20</b>: Số buổi tuyên truyền, phổ biến pháp luật &amp; hoà giải ở cơ sở?"
BUTTONS = (
    (ReplyButton("Có", "f:12:3:y"), ReplyButton("Không", "f:12:3:n")),
    (ReplyButton("⬅️ Quay lại", "f:12:3:back"),),
)
LOCATION_KEYS = ReplyKeyboard(rows=((KeyButton("📍 Gửi vị trí hiện tại", request_location=True),),))

# what the reply path sends: every kind of text reply, as queued by handlers
REPLIES = [
    OutgoingReply(text=QUESTION),
    OutgoingReply(text=QUESTION, buttons=BUTTONS),
    OutgoingReply(text="Gửi vị trí của thôn Nà Làng", keyboard=LOCATION_KEYS),
    OutgoingReply(text="Đã nhận vị trí.", keyboard=ReplyKeyboard(remove=True)),
    OutgoingReply(text=QUESTION, buttons=BUTTONS, edit_message_id=55),
    OutgoingReply(text="Đã lưu <i>nháp</i>.", edit_message_id=56),
    OutgoingReply(text="Thông báo cho nhóm", keyboard=LOCATION_KEYS, chat_id=-100123),
]


class Capture(OfflineRequest):
    """Records each call's endpoint and form fields exactly as they would be sent; answers `status`/`body`
    (by default a sent message)."""

    def __init__(self, status: int = 200, body: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.status, self.body = status, body
        self.next_id = 700

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None, **_: Any):
        """Keep the fields (strings, as encoded on the wire) and answer."""
        endpoint = url.rsplit("/", 1)[-1]
        fields = dict(request_data.json_parameters) if request_data else {}
        self.calls.append((endpoint, fields))
        if self.body is not None:
            return self.status, json.dumps(self.body).encode()
        self.next_id += 1
        message = {
            "message_id": int(fields.get("message_id") or self.next_id),
            "date": 1_780_000_000,
            "chat": {"id": int(fields["chat_id"]), "type": "private"},
            "text": fields.get("text", ""),
        }
        return 200, json.dumps({"ok": True, "result": message}).encode()


APP_DEFAULTS = Defaults(parse_mode=ParseMode.HTML)  # as bot.app sets them
MORE_DEFAULTS = Defaults(
    parse_mode=ParseMode.HTML,
    disable_notification=True,
    protect_content=True,
    link_preview_options=LinkPreviewOptions(is_disabled=True),
)


def app_bot(request: BaseRequest, defaults: Defaults = APP_DEFAULTS) -> ExtBot[Any]:
    """A bot as bot.app builds the application's: ExtBot with HTML as the default parse mode."""
    return ExtBot(TOKEN, request=request, defaults=defaults)


async def ptb_reply(bot: Any, reply: OutgoingReply, chat_id: int) -> None:
    """The reply as the reply path sent it before (python-telegram-bot's methods, each making a Message)."""
    markup: Any = replies.keyboard(reply.buttons)
    if markup is None and reply.edit_message_id is None:
        markup = replies.reply_keyboard(reply.keyboard, chat_id)
    if reply.edit_message_id is not None:
        await bot.edit_message_text(
            reply.text,
            chat_id=chat_id,
            message_id=reply.edit_message_id,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
        )
        return
    await bot.send_message(chat_id, reply.text, parse_mode=ParseMode.HTML, reply_markup=markup)


@pytest.mark.parametrize("defaults", [APP_DEFAULTS, MORE_DEFAULTS], ids=["app", "more"])
@pytest.mark.parametrize("reply", REPLIES, ids=range(len(REPLIES)))
async def test_a_reply_is_the_request_ptb_makes(reply: OutgoingReply, defaults: Defaults) -> None:
    before, after = Capture(), Capture()
    chat = reply.chat_id or USER
    await ptb_reply(app_bot(before, defaults), reply, chat)
    await replies.send_reply(app_bot(after, defaults), reply, chat)
    assert after.calls == before.calls
    assert after.calls[0][1]["parse_mode"] == "HTML"
    assert ("protect_content" in after.calls[0][1]) == (defaults is MORE_DEFAULTS)


@pytest.mark.parametrize("defaults", [APP_DEFAULTS, MORE_DEFAULTS], ids=["app", "more"])
async def test_removing_the_pressed_buttons_is_the_request_ptb_makes(defaults: Defaults) -> None:
    before, after = Capture(), Capture()
    await app_bot(before, defaults).edit_message_reply_markup(chat_id=USER, message_id=41, reply_markup=None)
    await replies.remove_buttons(app_bot(after, defaults), USER, 41)
    assert after.calls == before.calls
    assert after.calls[0][0] == "editMessageReplyMarkup" and "reply_markup" not in after.calls[0][1]


async def test_a_reply_returns_the_sent_message_id() -> None:
    request = Capture()
    bot = app_bot(request)
    assert await replies.send_reply(bot, OutgoingReply(text=QUESTION, buttons=BUTTONS), USER) == 701
    assert await replies.send_reply(bot, OutgoingReply(text="Đã lưu", edit_message_id=9), USER) == 9
    assert await replies.send_text(bot, USER, "Xin chào") == 703


def error(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    """A Bot API error answer."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


ERRORS = [
    (429, error(429, "Too Many Requests: retry after 7", retry_after=7), RetryAfter),
    (403, error(403, "Forbidden: bot was blocked by the user"), Forbidden),
    (400, error(400, "Bad Request: message is not modified"), BadRequest),
    (400, error(400, "Bad Request: chat not found"), BadRequest),
]


@pytest.mark.parametrize(("status", "body", "kind"), ERRORS, ids=[e[1]["description"][:20] for e in ERRORS])
async def test_errors_are_the_ones_ptb_raises(status: int, body: dict[str, Any], kind: type) -> None:
    calls: list[tuple[Callable[[Bot], Awaitable[Any]], Callable[[Bot], Awaitable[Any]]]] = [
        (
            lambda b: b.send_message(USER, QUESTION, parse_mode=ParseMode.HTML),
            lambda b: replies.send_text(b, USER, QUESTION),
        ),
        (
            lambda b: b.edit_message_text(QUESTION, chat_id=USER, message_id=5, parse_mode=ParseMode.HTML),
            lambda b: replies.edit_text(b, USER, 5, QUESTION),
        ),
        (
            lambda b: b.edit_message_reply_markup(chat_id=USER, message_id=5, reply_markup=None),
            lambda b: replies.remove_buttons(b, USER, 5),
        ),
    ]
    for ptb, ours in calls:
        with pytest.raises(kind) as theirs:
            await ptb(app_bot(Capture(status, body)))
        with pytest.raises(kind) as mine:
            await ours(app_bot(Capture(status, body)))
        assert type(mine.value) is type(theirs.value)
        assert str(mine.value) == str(theirs.value)
        if kind is RetryAfter:
            assert mine.value.retry_after == theirs.value.retry_after


async def test_a_reply_waits_out_flood_control_and_goes_once() -> None:
    class FloodOnce(Capture):
        async def do_request(self, url: str, method: str, request_data: RequestData | None = None, **kw: Any):
            if not self.calls:
                self.calls.append(("flood", {}))
                return 429, json.dumps(error(429, "Too Many Requests: retry after 0", retry_after=0)).encode()
            return await super().do_request(url, method, request_data, **kw)

    request = FloodOnce()
    assert await replies.send_reply(app_bot(request), OutgoingReply(text=QUESTION), USER) == 701
    assert [endpoint for endpoint, _ in request.calls] == ["flood", "sendMessage"]


async def test_a_stand_in_bot_gets_its_own_methods() -> None:
    """Tests' fake bots (not a telegram.Bot) are called through send_message / edit_message_text."""
    seen: list[tuple[str, Any]] = []

    class Fake:
        async def send_message(self, chat_id: int, text: str, **kw: Any) -> None:
            seen.append(("send", (chat_id, text, kw["parse_mode"])))

        async def edit_message_text(self, text: str, **kw: Any) -> None:
            seen.append(("edit", (kw["chat_id"], kw["message_id"], text)))

        async def edit_message_reply_markup(self, **kw: Any) -> None:
            seen.append(("markup", (kw["chat_id"], kw["message_id"], kw["reply_markup"])))

    fake = Fake()
    assert await replies.send_reply(fake, OutgoingReply(text="một"), USER) is None
    await replies.send_reply(fake, OutgoingReply(text="hai", edit_message_id=3), USER)
    await replies.remove_buttons(fake, USER, 3)
    assert seen == [
        ("send", (USER, "một", ParseMode.HTML)),
        ("edit", (USER, 3, "hai")),
        ("markup", (USER, 3, None)),
    ]


# ------------------------------------------------------------------------------------- at the emulator


def as_json(value: Any) -> Any:
    """A field as the emulator keeps it (parsed, or the JSON text)."""
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """The Bot API emulator in a thread of this process, with one user who has started the bot."""
    server = EmulatorServer(token=TOKEN, bot_username="baocao_request_bot")
    server.start_in_thread()
    server.add_user(USER, "An")
    server.send_text(USER, "/start")
    server.drop_pending_updates()
    yield server
    server.stop_thread()


@pytest.fixture
async def http_bot(emulator: EmulatorServer) -> AsyncIterator[ExtBot[Any]]:
    request = AiohttpRequest(4)
    bot: ExtBot[Any] = ExtBot(
        TOKEN,
        base_url=f"{emulator.url}/bot",
        request=request,
        get_updates_request=request,
        defaults=Defaults(parse_mode=ParseMode.HTML),
    )
    async with bot:
        yield bot


async def test_replies_arrive_intact_at_the_emulator(http_bot: ExtBot[Any], emulator: EmulatorServer) -> None:
    private = [r for r in REPLIES if r.chat_id is None and r.edit_message_id is None]
    for reply in private:
        await ptb_reply(http_bot, reply, USER)
    ids = [await replies.send_reply(http_bot, reply, USER) for reply in private]
    sent = emulator.requests_for("sendMessage")
    assert [r.status for r in sent] == [200] * 2 * len(private)
    theirs, ours = sent[: len(private)], sent[len(private) :]
    assert [r.params for r in ours] == [r.params for r in theirs]
    assert ours[1].params["text"] == QUESTION and ours[1].params["parse_mode"] == "HTML"
    assert as_json(ours[1].params["reply_markup"])["inline_keyboard"][0][0] == {
        "text": "Có",
        "callback_data": "f:12:3:y",
    }
    keys = as_json(ours[2].params["reply_markup"])
    assert keys["keyboard"][0][0] == {"text": "📍 Gửi vị trí hiện tại", "request_location": True}
    messages = {m["message_id"]: m for m in emulator.bot_messages(USER)}
    assert all(i in messages for i in ids)
    shown = messages[ids[1]]
    assert shown["text"] == QUESTION  # the emulator keeps the HTML as sent
    assert shown["reply_markup"]["inline_keyboard"][1][0]["text"] == "⬅️ Quay lại"
    edited = await replies.send_reply(
        http_bot, OutgoingReply(text="Đã lưu <b>câu 3</b>.", edit_message_id=ids[1]), USER
    )
    assert edited == ids[1]
    assert {m["message_id"]: m for m in emulator.bot_messages(USER)}[ids[1]]["text"] == "Đã lưu <b>câu 3</b>."
    pressed = await replies.send_reply(http_bot, OutgoingReply(text=QUESTION, buttons=BUTTONS), USER)
    assert pressed is not None
    await replies.remove_buttons(http_bot, USER, pressed)
    assert emulator.requests_for("editMessageReplyMarkup")[-1].status == 200
    assert not {m["message_id"]: m for m in emulator.bot_messages(USER)}[pressed].get("reply_markup")
    with pytest.raises(BadRequest, match="not modified"):  # as PTB's edit_message_reply_markup raises it
        await replies.remove_buttons(http_bot, USER, pressed)


@pytest.mark.parametrize(
    "keys",
    [
        None,
        ReplyKeyboard(),
        ReplyKeyboard(remove=True),
        LOCATION_KEYS,
        ReplyKeyboard(rows=((KeyButton("Có"),),)),
    ],
    ids=["none", "empty", "remove", "location", "plain"],
)
@pytest.mark.parametrize("chat", [USER, -100123])
def test_markups_as_json_are_ptbs(keys: ReplyKeyboard | None, chat: int) -> None:
    markup = replies.reply_keyboard(keys, chat)
    assert replies.reply_keyboard_json(keys, chat) == (markup.to_dict() if markup is not None else None)
    for buttons in ((), BUTTONS):
        inline = replies.keyboard(buttons)
        assert replies.keyboard_json(buttons) == (inline.to_dict() if inline is not None else None)
