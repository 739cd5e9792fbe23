"""The Bot API emulator, driven by PTB's real Bot/Application and by plain HTTP clients."""

from __future__ import annotations

import asyncio
import contextlib
import html
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    ChatFullInfo,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Update,
    User,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.emulator import EmulatorClient, EmulatorServer, FaultPlan, FloodLimits, sample_png
from bot.emulator.limits import FaultInjector
from bot.emulator.tghtml import EntityParseError, parse_html, render_plain, strip_html, trim_text

# PTB 22 itself warns about RetryAfter.retry_after becoming a timedelta whenever one is raised.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abc-def"
ALICE, BOB = 1001, 1002


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    """An emulator listening in the test's loop, with Alice and Bob known."""
    srv = EmulatorServer(token=TOKEN)
    await srv.start()
    srv.add_user(ALICE, "Nguyễn Văn An", username="an_nguyen")
    srv.add_user(BOB, "Trần Thị Bình")
    yield srv
    await srv.stop()


@pytest.fixture
async def bot(server: EmulatorServer) -> AsyncIterator[Bot]:
    """PTB's Bot pointed at the emulator."""
    async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as b:
        yield b


@pytest.fixture
def threaded() -> Iterator[EmulatorServer]:
    """An emulator running in its own thread (for synchronous clients)."""
    srv = EmulatorServer(token=TOKEN)
    srv.start_in_thread()
    yield srv
    srv.stop_thread()


@contextlib.asynccontextmanager
async def running_app(server: EmulatorServer, *handlers: BaseHandler) -> AsyncIterator[Application]:
    """A minimal PTB Application polling the emulator."""
    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=5)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


def started(server: EmulatorServer, user_id: int = ALICE) -> None:
    """Let the user start the bot and drop that update."""
    server.send_text(user_id, "/start")
    server.drop_pending_updates()


# ---------------------------------------------------------------------- basics


async def test_get_me(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456 and me.is_bot and me.username == "baocao_demo_bot"
    assert me.first_name == "Báo cáo thôn (demo)"


async def test_method_names_are_case_insensitive_and_every_body_format_works(server: EmulatorServer) -> None:
    started(server)
    api = f"{server.url}/bot{TOKEN}"
    async with httpx.AsyncClient() as http:
        as_json = await http.post(f"{api}/SENDMESSAGE", json={"chat_id": ALICE, "text": "json"})
        as_form = await http.post(f"{api}/sendmessage", data={"chat_id": str(ALICE), "text": "form"})
        as_query = await http.get(f"{api}/sendMessage", params={"chat_id": ALICE, "text": "query"})
        as_multipart = await http.post(
            f"{api}/sendDocument",
            data={"chat_id": str(ALICE), "caption": "tệp"},
            files={"document": ("a.txt", b"abc", "text/plain")},
        )
    for response in (as_json, as_form, as_query, as_multipart):
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
    assert [m["plain"] for m in server.bot_messages(ALICE)] == ["json", "form", "query", "tệp"]
    assert [r.method for r in server.requests][-4:] == [
        "sendMessage",
        "sendMessage",
        "sendMessage",
        "sendDocument",
    ]


async def test_unknown_method_is_404_like_telegram(server: EmulatorServer, bot: Bot) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.url}/bot{TOKEN}/sendTelepathy", json={})
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy")


async def test_wrong_token_is_401(server: EmulatorServer) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server.url}/bot999:WRONGWRONGWRONGWRONGWRONG/getMe")
        malformed = await http.get(f"{server.url}/botnot-a-token/getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert malformed.status_code == 404  # what Telegram answers for a malformed token
    with pytest.raises(InvalidToken):
        async with Bot("999:WRONGWRONGWRONGWRONGWRONG", base_url=server.base_url):
            pass


async def test_any_wellformed_token_is_accepted_without_a_configured_one() -> None:
    async with EmulatorServer() as srv, Bot("777:" + "x" * 25, base_url=srv.base_url) as b:
        assert (await b.get_me()).id == 777


# ---------------------------------------------------------------------- updates


async def test_long_polling_delivers_a_message_as_soon_as_it_is_sent(
    server: EmulatorServer, bot: Bot
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    assert await server.wait_for(lambda: server.waiting_polls == 1, 5)
    assert not poll.done()
    began = time.monotonic()
    sent_at = datetime(2026, 5, 15, 1, 30, tzinfo=UTC)
    server.send_text(ALICE, "Xin chào", date=sent_at)
    updates = await asyncio.wait_for(poll, 5)
    assert time.monotonic() - began < 5
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None and message.text == "Xin chào"
    assert message.from_user is not None and message.from_user.id == ALICE
    assert message.chat.type == "private" and message.chat.id == ALICE
    assert message.date == sent_at  # the user-side date, e.g. a message delivered late


async def test_offset_limit_and_negative_offset(server: EmulatorServer, bot: Bot) -> None:
    ids = [server.send_text(ALICE, f"tin {i}").update_id for i in range(4)]
    assert [u.update_id for u in await bot.get_updates()] == ids
    assert [u.update_id for u in await bot.get_updates()] == ids  # nothing confirmed yet
    assert [u.update_id for u in await bot.get_updates(limit=2)] == ids[:2]
    assert [u.update_id for u in await bot.get_updates(offset=ids[2])] == ids[2:]  # confirms 0 and 1
    assert [u.update_id for u in await bot.get_updates()] == ids[2:]
    assert [u.update_id for u in await bot.get_updates(offset=-1)] == ids[3:]  # forgets all but the last
    assert await bot.get_updates(offset=ids[3] + 1) == ()
    assert server.pending_updates() == []


async def test_commands_get_a_bot_command_entity(server: EmulatorServer, bot: Bot) -> None:
    server.add_group(-100, "Thôn Đông", [ALICE])
    server.send_text(ALICE, "/start ABCD")
    server.send_text(ALICE, "/baocao@baocao_demo_bot tuần", chat_id=-100)
    server.send_text(ALICE, "không phải lệnh")
    first, second, third = await bot.get_updates()
    assert first.message and first.message.parse_entities() == {first.message.entities[0]: "/start"}
    assert second.message and second.message.chat.type == "group" and second.message.chat.title == "Thôn Đông"
    assert [e.type for e in second.message.entities] == ["bot_command"]
    assert second.message.entities[0].length == len("/baocao@baocao_demo_bot")
    assert third.message and third.message.entities == ()


async def test_user_media_location_contact_and_edit_updates(server: EmulatorServer, bot: Bot) -> None:
    png = sample_png(12, 7)
    photo = server.send_photo(ALICE, png, caption="Ảnh hiện trường")
    server.send_location(ALICE, 21.59, 105.84)
    server.send_contact(ALICE, "+84901234567")
    server.send_document(ALICE, b"%PDF-1.4", "bao_cao.pdf")
    server.send_sticker(ALICE)
    server.send_voice(ALICE, duration=3)
    text = server.send_text(ALICE, "Báo cáo số 1")
    server.edit_text(ALICE, text.message_id or 0, "Báo cáo số 2")
    updates = await bot.get_updates()
    kinds = [
        u.effective_message.effective_attachment.__class__.__name__
        for u in updates[:6]
        if u.effective_message
    ]
    assert kinds == ["tuple", "Location", "Contact", "Document", "Sticker", "Voice"]
    photo_msg = updates[0].message
    assert photo_msg is not None and photo_msg.caption == "Ảnh hiện trường"
    assert (photo_msg.photo[-1].width, photo_msg.photo[-1].height) == (12, 7)
    assert photo_msg.message_id == photo.message_id
    downloaded = await (await bot.get_file(photo_msg.photo[-1].file_id)).download_as_bytearray()
    assert bytes(downloaded) == png
    assert updates[2].message and updates[2].message.contact and updates[2].message.contact.user_id == ALICE
    edited = updates[-1].edited_message
    assert edited is not None and edited.text == "Báo cáo số 2" and edited.edit_date is not None


async def test_redelivery_sends_the_same_update_id_to_the_application(server: EmulatorServer) -> None:
    seen: list[int] = []
    got_two = asyncio.Event()

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)
        if len(seen) == 2:
            got_two.set()

    async with running_app(server, MessageHandler(filters.TEXT, record)):
        delivery = server.send_text(ALICE, "một lần thôi")
        assert await server.wait_for(lambda: not server.pending_updates() and seen, 5)
        server.redeliver(delivery.update_id)
        await asyncio.wait_for(got_two.wait(), 5)
    assert seen == [delivery.update_id, delivery.update_id]


async def test_webhook_blocks_get_updates_with_409(bot: Bot) -> None:
    assert await bot.set_webhook("https://example.org/hook")
    assert (await bot.get_webhook_info()).url == "https://example.org/hook"
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.get_updates() == ()


@contextlib.asynccontextmanager
async def webhook_receiver(status: int = 200) -> AsyncIterator[tuple[str, list[tuple[dict, dict]]]]:
    """A local HTTP endpoint recording (headers, JSON body) of every POST; answers `status`."""
    from aiohttp import web

    received: list[tuple[dict, dict]] = []
    answer = {"status": status}

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.json()))
        return web.Response(status=answer["status"])

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


async def test_a_loopback_webhook_gets_each_update_posted_in_order_with_the_secret(
    server: EmulatorServer, bot: Bot
) -> None:
    async with webhook_receiver() as (url, received):
        assert await bot.set_webhook(url, secret_token="s3cr3t_Token-x", allowed_updates=["message"])
        first = server.send_text(ALICE, "một")
        second = server.send_text(BOB, "hai")
        assert await server.wait_for(lambda: len(received) == 2, 5)
        assert [body["update_id"] for _, body in received] == [first.update_id, second.update_id]
        assert [body["message"]["text"] for _, body in received] == ["một", "hai"]
        assert all(h["X-Telegram-Bot-Api-Secret-Token"] == "s3cr3t_Token-x" for h, _ in received)
        assert await server.wait_for(lambda: not server.pending_updates(), 5)
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0 and info.last_error_message is None
        assert server.counters["webhook_delivered"] == 2


async def test_a_failing_webhook_keeps_the_update_reports_the_error_and_retries(
    server: EmulatorServer, bot: Bot
) -> None:
    async with webhook_receiver(status=403) as (url, received):
        assert await bot.set_webhook(url, secret_token="s3cr3t_Token-x")
        delivery = server.send_text(ALICE, "một")
        assert await server.wait_for(lambda: len(received) >= 2, 5)  # retried
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 1
        assert info.last_error_message is not None and "403" in info.last_error_message
        assert info.last_error_date is not None
        log = server.webhook_log
        assert log[0]["update_id"] == delivery.update_id and log[0]["status"] == 403
        # once deleted, the update is still there for getUpdates
        assert await bot.delete_webhook()
        updates = await bot.get_updates()
        assert [u.update_id for u in updates] == [delivery.update_id]


async def test_webhook_url_rules_and_remote_webhooks_are_never_called(
    server: EmulatorServer, bot: Bot
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)https url must be provided"):
        await bot.set_webhook("http://example.org/hook")
    with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
        await bot.set_webhook("https://example.org/hook", secret_token="not allowed!")
    assert await bot.set_webhook("https://example.org/hook")
    server.send_text(ALICE, "một")
    await asyncio.sleep(0.2)
    assert server.webhook_log == [] and len(server.pending_updates()) == 1


async def test_a_long_poll_waiting_when_the_webhook_is_set_gets_409(server: EmulatorServer, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    assert await server.wait_for(lambda: server.waiting_polls == 1, 5)
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{server.url}/bot{TOKEN}/setWebhook", json={"url": "https://example.org/h"})
    assert answer.json()["result"] is True
    with pytest.raises(Conflict, match="webhook is active"):
        await asyncio.wait_for(poll, 5)


def test_the_control_api_shows_the_webhook_without_its_secret(threaded: EmulatorServer) -> None:
    with httpx.Client(timeout=10) as http:
        http.post(
            f"{threaded.url}/bot{TOKEN}/setWebhook",
            json={"url": "https://example.org/h", "secret_token": "abcdefghijklmnop"},
        )
    with EmulatorClient(threaded.url) as client:
        shown = client.webhook()
    assert shown["webhook"]["url"] == "https://example.org/h"
    assert shown["webhook"]["has_secret_token"] is True and "secret_token" not in shown["webhook"]
    assert "abcdefghijklmnop" not in str(shown)


async def test_a_second_get_updates_terminates_the_first_with_409(server: EmulatorServer, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=20))
    assert await server.wait_for(lambda: server.waiting_polls == 1, 5)
    # a second bot instance (PTB keeps a single connection for get_updates per Bot)
    async with httpx.AsyncClient(timeout=10) as http:
        second = asyncio.create_task(http.post(f"{server.url}/bot{TOKEN}/getUpdates", json={"timeout": 20}))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(first, 5)
        server.send_text(ALICE, "hi")
        response = await asyncio.wait_for(second, 5)
    assert [u["message"]["text"] for u in response.json()["result"]] == ["hi"]


# ---------------------------------------------------------------------- sending and validation


async def test_send_message_html_good(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    text = (
        "<b>Đậm</b> <strong>s</strong> <i>n</i> <em>e</em> <u>g</u> <ins>i</ins> <s>x</s> <strike>y</strike> "
        '<del>z</del> <span class="tg-spoiler">bí</span> <tg-spoiler>mật</tg-spoiler> '
        '<a href="https://example.org/?a=1&amp;b=2">liên kết</a> <code>mã</code> '
        '<pre><code class="language-python">print(1)</code></pre> <blockquote>trích</blockquote> '
        '<blockquote expandable>dài</blockquote> <tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> '
        "&lt;3 &amp; &quot;ngoặc&quot; &#65;&#x42;"
    )
    message = await bot.send_message(ALICE, text, parse_mode="HTML")
    assert message.text is not None and message.text.endswith('<3 & "ngoặc" AB')
    types = [e.type for e in message.entities]
    assert types == [
        "bold", "bold", "italic", "italic", "underline", "underline", "strikethrough", "strikethrough",
        "strikethrough", "spoiler", "spoiler", "text_link", "code", "pre", "blockquote",
        "expandable_blockquote", "custom_emoji",
    ]  # fmt: skip
    parsed = message.parse_entities()
    pre = next(e for e in message.entities if e.type == "pre")
    assert pre.language == "python" and parsed[pre] == "print(1)"
    link = next(e for e in message.entities if e.type == "text_link")
    assert link.url == "https://example.org/?a=1&b=2" and parsed[link] == "liên kết"
    stored = server.bot_messages(ALICE)[-1]
    assert stored["text"] == text and stored["parse_mode"] == "HTML"  # kept exactly as sent
    assert stored["plain"] == message.text


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<br>xuống dòng", 'Unsupported start tag "br" at byte offset 0'),
        ("<b>đậm", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ('<a href="https://x.org>x</a>', "Unclosed start tag at byte offset 0"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("Tôm & cá", 'Character "&" must be escaped as "&amp;" at byte offset 5'),  # bytes, not chars,
    ],
)
async def test_send_message_html_errors(server: EmulatorServer, text: str, description: str) -> None:
    started(server)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/bot{TOKEN}/sendMessage",
            json={"chat_id": ALICE, "text": text, "parse_mode": "HTML"},
        )
    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "error_code": 400,
        "description": f"Bad Request: can't parse entities: {description}",
    }
    async with Bot(TOKEN, base_url=server.base_url) as b:
        with pytest.raises(BadRequest, match="parse entities"):
            await b.send_message(ALICE, text, parse_mode="HTML")
        # the same text without parse_mode is fine
        assert (await b.send_message(ALICE, text)).text == text.strip()


async def test_text_length_and_emptiness(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    assert await bot.send_message(ALICE, "ệ" * 4096)
    assert await bot.send_message(
        ALICE, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML"
    )  # counted after parsing
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ALICE, "a" * 4097)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ALICE, "😀" * 2049)  # UTF-16 code units, like Telegram
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(ALICE, "  \n ")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(ALICE, "<b> </b>", parse_mode="HTML")
    trimmed = await bot.send_message(ALICE, "\n  <b>chào</b>  \n", parse_mode="HTML")
    assert trimmed.text == "chào" and trimmed.entities[0].offset == 0


async def test_callback_data_limit_is_64_bytes(server: EmulatorServer, bot: Bot) -> None:
    started(server)

    def markup(data: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton("Nút", callback_data=data)]])

    assert await bot.send_message(ALICE, "ok", reply_markup=markup("x" * 64))
    assert await bot.send_message(ALICE, "ok", reply_markup=markup("ệ" * 21))  # 63 bytes
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(ALICE, "quá dài", reply_markup=markup("x" * 65))
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(ALICE, "quá dài", reply_markup=markup("ệ" * 22))  # 22 chars, 66 bytes


async def test_reply_keyboards_reply_parameters_and_chat_lookup(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    question = await bot.send_message(
        ALICE,
        "Chọn thôn",
        reply_markup=ReplyKeyboardMarkup([["Thôn Đông", "Thôn Tây"]], one_time_keyboard=True),
    )
    shown = server.chat_info(ALICE)["reply_keyboard"]["keyboard"]
    assert [[button["text"] for button in row] for row in shown] == [["Thôn Đông", "Thôn Tây"]]
    answer = server.send_text(ALICE, "Thôn Đông")
    assert server.chat_info(ALICE)["reply_keyboard"] is None  # one-time keyboard hides after use
    reply = await bot.send_message(
        ALICE,
        "Đã chọn",
        reply_parameters=ReplyParameters(answer.message_id or 0),
        reply_markup=ReplyKeyboardRemove(),
    )
    assert reply.reply_to_message is not None and reply.reply_to_message.text == "Thôn Đông"
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(ALICE, "x", reply_parameters=ReplyParameters(9999))
    assert question.message_id < reply.message_id
    info = await bot.get_chat(ALICE)
    assert (
        isinstance(info, ChatFullInfo) and info.first_name == "Nguyễn Văn An" and info.username == "an_nguyen"
    )
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(424242, "ai đó?")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(BOB, "Bob never started the bot")


async def test_user_seen_in_a_group_but_not_started_gets_403(server: EmulatorServer, bot: Bot) -> None:
    server.add_group(-200, "Ban công an xã", [BOB])
    server.send_text(BOB, "xin chào nhóm", chat_id=-200)
    assert (await bot.send_message(-200, "Chào cả nhóm")).chat.type == "group"
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(BOB, "riêng")


async def test_blocked_user_gets_403_and_my_chat_member_updates(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    server.block(ALICE)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ALICE, "nhắc báo cáo")
    (update,) = await bot.get_updates()
    member = update.my_chat_member
    assert isinstance(member, ChatMemberUpdated)
    assert (member.old_chat_member.status, member.new_chat_member.status) == ("member", "kicked")
    server.unblock(ALICE)
    assert await bot.send_message(ALICE, "chào lại")


async def test_chat_action_location_and_bad_values(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    assert await bot.send_chat_action(ALICE, "typing")
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(ALICE, "dancing")
    location = await bot.send_location(ALICE, latitude=21.59, longitude=105.84)
    assert location.location is not None and location.location.latitude == 21.59


# ---------------------------------------------------------------------- edits, buttons, files


async def test_edits_and_deletes(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Có", callback_data="yes")]])
    sent = await bot.send_message(ALICE, "<b>Câu hỏi</b>", parse_mode="HTML", reply_markup=keyboard)
    edited = await bot.edit_message_text("Câu hỏi đã sửa", ALICE, sent.message_id, reply_markup=keyboard)
    assert isinstance(edited, Message) and edited.text == "Câu hỏi đã sửa" and edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Câu hỏi đã sửa", ALICE, sent.message_id, reply_markup=keyboard)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", ALICE, 9999)
    await bot.edit_message_text("Không có nút", ALICE, sent.message_id)  # no markup: keyboard removed
    snapshot = server.bot_messages(ALICE)[-1]
    assert snapshot["buttons"] == [] and snapshot["original"]["text"] == "<b>Câu hỏi</b>"
    assert [e["plain"] for e in snapshot["edits"]] == ["Câu hỏi đã sửa", "Không có nút"]
    await bot.edit_message_reply_markup(ALICE, sent.message_id, reply_markup=keyboard)
    assert server.bot_messages(ALICE)[-1]["buttons"] == [[{"text": "Có", "callback_data": "yes"}]]
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(ALICE, sent.message_id, reply_markup=keyboard)
    user_message = server.send_text(ALICE, "tin của An")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("hack", ALICE, user_message.message_id)
    assert await bot.delete_message(ALICE, sent.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("muộn", ALICE, sent.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(ALICE, sent.message_id)
    types = [e["type"] for e in server.events(ALICE)]
    assert types == ["sent", "edited", "edited", "edited", "deleted"]


async def test_events_after_a_cursor_per_chat_and_type(server: EmulatorServer, bot: Bot) -> None:
    """`events(chat, after, kinds)` (found by bisection) gives exactly the events a full scan gives, for every
    cursor from before the first event to past the last, per chat and per type."""
    started(server)
    started(server, BOB)
    sent = {}
    for n, chat in enumerate((ALICE, BOB, ALICE, BOB, ALICE)):
        sent[chat] = await bot.send_message(chat, f"Câu {n}")
        if n % 2 == 0:
            await bot.edit_message_text(f"Câu {n} đã sửa", chat, sent[chat].message_id)
    await bot.delete_message(BOB, sent[BOB].message_id)
    every = server.events()
    assert [e["seq"] for e in every] == list(range(1, len(every) + 1)) and len(every) == 9
    for after in range(-1, len(every) + 2):
        for chat in (None, ALICE, BOB):
            for kinds in (None, ["sent"], ["edited", "deleted"]):
                expected = [
                    e
                    for e in every
                    if e["seq"] > after
                    and (chat is None or e["chat_id"] == chat)
                    and (kinds is None or e["type"] in kinds)
                ]
                assert server.events(chat, after, kinds) == expected, (after, chat, kinds)
    assert [e["type"] for e in server.events(BOB, 5)] == ["sent", "deleted"]


async def test_button_press_callback_query_and_answer(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Quay lại", callback_data="back")]])
    sent = await bot.send_message(ALICE, "Menu", reply_markup=keyboard)
    press = server.press(ALICE, sent.message_id, text="Quay lại")
    (update,) = await bot.get_updates()
    query = update.callback_query
    assert query is not None and query.id == press.callback_query_id and query.data == "back"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert query.from_user.id == ALICE
    assert await bot.answer_callback_query(query.id, text="Đã quay lại")
    record = server.callback_answer(query.id)
    assert (
        record is not None
        and record.answered
        and record.answer
        == {
            "text": "Đã quay lại",
            "show_alert": False,
            "url": None,
        }
    )
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query.id)  # answered already
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("123")
    with pytest.raises(ValueError, match="no button"):
        server.press(ALICE, sent.message_id, "not-on-the-keyboard")


async def test_expired_callback_query() -> None:
    async with EmulatorServer(token=TOKEN, callback_ttl=0.0) as srv:
        srv.add_user(ALICE, "An")
        started(srv)
        async with Bot(TOKEN, base_url=srv.base_url) as b:
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("Có", callback_data="y")]])
            sent = await b.send_message(ALICE, "?", reply_markup=markup)
            query_id = srv.press(ALICE, sent.message_id, "y").callback_query_id
            with pytest.raises(BadRequest, match="Query is too old"):
                await b.answer_callback_query(query_id or "")


async def test_document_and_photo_upload_then_download(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    payload = "Báo cáo tháng 5\n".encode() * 100
    doc_message = await bot.send_document(
        ALICE, payload, filename="bao_cao.txt", caption="<b>Tháng 5</b>", parse_mode="HTML"
    )
    document = doc_message.document
    assert document is not None and document.file_name == "bao_cao.txt" and document.file_size == len(payload)
    assert doc_message.caption == "Tháng 5"
    tg_file = await bot.get_file(document.file_id)
    assert tg_file.file_path and tg_file.file_path.startswith(f"{server.url}/file/bot{TOKEN}/documents/")
    assert bytes(await tg_file.download_as_bytearray()) == payload
    again = await bot.send_document(ALICE, document.file_id)  # resend by file_id
    assert again.document is not None and again.document.file_id == document.file_id
    png = sample_png(30, 20)
    photo_message = await bot.send_photo(ALICE, png)
    assert [(p.width, p.height) for p in photo_message.photo][-1] == (30, 20)
    assert bytes(await (await bot.get_file(photo_message.photo[-1].file_id)).download_as_bytearray()) == png
    stored = server.bot_messages(ALICE)
    assert (
        stored[0]["document"]["file_name"] == "bao_cao.txt" and server.file_bytes(document.file_id) == payload
    )
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("nope")
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_document(ALICE, "nope")


async def test_set_my_commands_per_scope_and_language(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    server.add_group(-300, "Nhóm", [BOB])
    default = [BotCommand("start", "Bắt đầu"), BotCommand("help", "Trợ giúp")]
    for_alice = [BotCommand("baocao", "Gửi báo cáo")]
    assert await bot.set_my_commands(default)
    assert await bot.set_my_commands(for_alice, scope=BotCommandScopeChat(ALICE))
    assert await bot.set_my_commands([BotCommand("start", "Start")], language_code="en")
    assert await bot.set_my_commands([BotCommand("nhom", "Nhóm")], scope=BotCommandScopeAllGroupChats())
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c.command for c in await bot.get_my_commands(scope=BotCommandScopeChat(ALICE))] == ["baocao"]
    assert [c.description for c in await bot.get_my_commands(language_code="en")] == ["Start"]
    assert [c.command for c in await bot.get_my_commands(scope=BotCommandScopeAllGroupChats())] == ["nhom"]
    assert await bot.get_my_commands(scope=BotCommandScopeChat(-300)) == ()
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.set_my_commands(for_alice, scope=BotCommandScopeChat(555))
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Báo-cáo", "x")])
    assert await bot.delete_my_commands(scope=BotCommandScopeChat(ALICE))
    assert await bot.get_my_commands(scope=BotCommandScopeChat(ALICE)) == ()
    scopes = {(c["scope"]["type"], c["language_code"]) for c in server.stored_commands()}
    assert scopes == {("default", ""), ("default", "en"), ("all_group_chats", "")}


# ---------------------------------------------------------------------- flood control and faults


async def test_flood_control_answers_429_with_retry_after(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    server.set_flood_control(
        FloodLimits(global_per_second=30, per_chat_per_second=1, per_group_per_minute=20)
    )
    assert await bot.send_message(ALICE, "một")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ALICE, "hai")
    assert caught.value.retry_after == 1
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/bot{TOKEN}/sendMessage", json={"chat_id": ALICE, "text": "ba"}
        )
    assert response.status_code == 429
    assert response.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert server.counters["flood_429"] == 2
    server.set_flood_control(None)
    assert await bot.send_message(ALICE, "bốn")


async def test_flood_control_per_group_per_minute(server: EmulatorServer, bot: Bot) -> None:
    server.add_group(-400, "Nhóm", [ALICE])
    server.set_flood_control(
        FloodLimits(global_per_second=None, per_chat_per_second=None, per_group_per_minute=3)
    )
    for i in range(3):
        await bot.send_message(-400, f"tin {i}")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(-400, "quá nhiều")
    assert caught.value.retry_after in range(1, 61)


def test_fault_plan_rates_are_deterministic_and_honoured() -> None:
    plan = FaultPlan(seed=7, rates={"sendMessage": {"429": 0.1, "500": 0.05, "502": 0.05, "timeout": 0.02}})
    outcomes = plan.outcomes("sendMessage", 5000)
    assert outcomes == FaultPlan(seed=7, rates=plan.rates).outcomes("SENDMESSAGE", 5000)
    assert outcomes != FaultPlan(seed=8, rates=plan.rates).outcomes("sendMessage", 5000)
    share = {kind: outcomes.count(kind) / len(outcomes) for kind in ("429", "500", "502", "timeout")}
    assert share["429"] == pytest.approx(0.1, abs=0.02)
    assert share["500"] == pytest.approx(0.05, abs=0.015)
    assert share["502"] == pytest.approx(0.05, abs=0.015)
    assert share["timeout"] == pytest.approx(0.02, abs=0.01)
    assert FaultInjector(plan).decide("getMe") is None  # methods without rates are untouched
    with pytest.raises(ValueError, match="sum to at most 1"):
        FaultPlan(rates={"sendMessage": {"500": 0.7, "502": 0.7}})


async def test_server_applies_the_fault_plan_deterministically(server: EmulatorServer, bot: Bot) -> None:
    started(server)
    plan = FaultPlan(seed=3, rates={"sendMessage": {"429": 0.2, "500": 0.1, "502": 0.1}}, retry_after=2)
    server.set_faults(plan)
    observed: list[str | None] = []
    for i in range(40):
        try:
            await bot.send_message(ALICE, f"tin {i}")
            observed.append(None)
        except RetryAfter as err:
            assert err.retry_after == 2
            observed.append("429")
        except NetworkError as err:
            observed.append(
                "500" if "Internal Server Error" in str(err) else "502" if "Bad Gateway" in str(err) else "?"
            )
    assert observed == plan.outcomes("sendMessage", 40)
    assert {"429", "500", "502", None} <= set(observed)
    assert server.counters["fault:429"] == observed.count("429")
    assert len(server.bot_messages(ALICE)) == observed.count(None)  # failed sends did not happen
    assert await bot.get_me()  # other methods are unaffected


async def test_timeout_faults_drop_the_connection(server: EmulatorServer) -> None:
    started(server)
    server.set_faults(FaultPlan(script={"sendMessage": ["timeout", "timeout_after"]}, hold_seconds=0.05))
    async with Bot(TOKEN, base_url=server.base_url, request=HTTPXRequest(read_timeout=5)) as b:
        with pytest.raises(NetworkError):
            await b.send_message(ALICE, "mất")  # never executed
        with pytest.raises(NetworkError):
            await b.send_message(ALICE, "đã gửi nhưng mất trả lời")  # executed, answer lost
        assert await b.send_message(ALICE, "bình thường")
    assert [m["plain"] for m in server.bot_messages(ALICE)] == ["đã gửi nhưng mất trả lời", "bình thường"]
    assert [r.fault for r in server.requests_for("sendMessage")] == ["timeout", "timeout_after", None]


# ---------------------------------------------------------------------- a real Application


async def test_application_round_trip_with_buttons(server: EmulatorServer) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.effective_user is not None
        name = html.escape(update.effective_user.first_name)
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Có", callback_data="yes")]])
        await update.message.reply_html(f"Chào <b>{name}</b>, mã {context.args}", reply_markup=markup)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("OK")
        await query.edit_message_text(f"Bạn chọn {query.data}")

    async with running_app(server, CommandHandler("start", start), CallbackQueryHandler(pressed)):
        server.send_text(ALICE, "/start ABCD")
        (sent,) = await server.wait_events(ALICE, 0, count=1, timeout=5)
        assert sent["message"]["plain"] == "Chào Nguyễn Văn An, mã ['ABCD']"
        query_id = server.press(ALICE, sent["message_id"], "yes").callback_query_id
        events = await server.wait_events(ALICE, sent["seq"], count=2, timeout=5)
    assert {e["type"] for e in events} == {"answer", "edited"}
    edited = next(e for e in events if e["type"] == "edited")
    assert edited["message"]["plain"] == "Bạn chọn yes" and edited["message"]["buttons"] == []
    record = server.callback_answer(query_id or "")
    assert record is not None and record.answered


# ---------------------------------------------------------------------- HTTP control API and sync client


def test_http_control_api_with_plain_httpx(threaded: EmulatorServer) -> None:
    base = f"{threaded.url}/_emu"
    api = f"{threaded.url}/bot{TOKEN}"
    with httpx.Client(timeout=10) as http:
        user = http.post(f"{base}/users", json={"user_id": 2001, "first_name": "Lê Văn Cường"}).json()
        assert user["ok"] and user["result"]["id"] == 2001
        sent = http.post(f"{base}/users/2001/send", json={"text": "/start"}).json()["result"]
        assert sent["update"]["message"]["entities"][0]["type"] == "bot_command"
        updates = http.post(f"{api}/getUpdates", json={"timeout": 1}).json()["result"]
        assert [u["update_id"] for u in updates] == [sent["update_id"]]
        empty = http.get(f"{base}/chats/2001/messages", params={"after": 0, "wait": 0}).json()["result"]
        assert empty["messages"] == []
        markup = {"inline_keyboard": [[{"text": "Có", "callback_data": "y"}]]}
        http.post(f"{api}/sendMessage", json={"chat_id": 2001, "text": "<i>Hỏi</i>", "parse_mode": "HTML",
                                              "reply_markup": markup})  # fmt: skip
        got = http.get(f"{base}/chats/2001/messages", params={"after": 0, "wait": 5, "count": 1}).json()[
            "result"
        ]
        (message,) = got["messages"]
        assert message["text"] == "<i>Hỏi</i>" and message["plain"] == "Hỏi"
        pressed = http.post(
            f"{base}/users/2001/press", json={"message_id": message["message_id"], "text": "Có"}
        )
        query_id = pressed.json()["result"]["callback_query_id"]
        http.post(f"{api}/answerCallbackQuery", json={"callback_query_id": query_id, "text": "ừ"})
        answer = http.get(f"{base}/callbacks/{query_id}", params={"wait": 5}).json()["result"]
        assert answer["answered"] and answer["answer"]["text"] == "ừ"
        http.post(
            f"{api}/editMessageText",
            json={"chat_id": 2001, "message_id": message["message_id"], "text": "Xong"},
        )
        edits = http.get(
            f"{base}/chats/2001/messages",
            params={"after": message["message_id"], "since": got["cursor"], "wait": 5},
        ).json()["result"]
        assert [m["plain"] for m in edits["messages"]] == ["Xong"]
        events = http.get(f"{base}/chats/2001/events", params={"after": 0, "types": "sent,edited"}).json()[
            "result"
        ]
        assert [e["type"] for e in events["events"]] == ["sent", "edited"]
        assert http.post(f"{base}/block/2001").json()["result"]["blocked"] is True
        blocked = http.post(f"{api}/sendMessage", json={"chat_id": 2001, "text": "x"})
        assert (
            blocked.status_code == 403
            and blocked.json()["description"] == "Forbidden: bot was blocked by the user"
        )
        http.delete(f"{base}/block/2001")
        assert http.post(f"{base}/flood", json={"per_chat_per_second": 1}).json()["result"]["enabled"] is True
        assert http.post(f"{base}/flood", json={"enabled": False}).json()["result"] == {"enabled": False}
        faults = http.post(f"{base}/faults", json={"seed": 1, "rates": {"getMe": {"500": 1.0}}}).json()[
            "result"
        ]
        assert faults["enabled"] and http.get(f"{api}/getMe").status_code == 500
        http.post(f"{base}/faults", json={"enabled": False})
        http.post(f"{api}/setMyCommands", json={"commands": [{"command": "start", "description": "Bắt đầu"}]})
        commands = http.get(f"{base}/commands").json()["result"]
        assert commands == [{"scope": {"type": "default"}, "language_code": "",
                             "commands": [{"command": "start", "description": "Bắt đầu"}]}]  # fmt: skip
        log = http.get(f"{base}/requests", params={"method": "sendmessage"}).json()["result"]
        assert [r["status"] for r in log] == [200, 403]
        stats = http.get(f"{base}/stats").json()["result"]
        assert stats["counters"]["status:500"] == 1
        redelivered = http.post(f"{base}/updates/{sent['update_id']}/redeliver").json()["result"]
        assert redelivered["update_id"] == sent["update_id"]
        again = http.post(f"{api}/getUpdates", json={"offset": sent["update_id"] + 1}).json()["result"]
        assert sent["update_id"] in [u["update_id"] for u in again]
        bad = http.post(f"{base}/users/9999/send", json={"text": "ai?"})
        assert bad.status_code == 400 and "unknown user" in bad.json()["error"]


def test_in_process_api_is_thread_safe(threaded: EmulatorServer) -> None:
    threaded.add_user(ALICE, "An")
    polled: list[tuple[Update, ...]] = []

    async def poll() -> None:
        async with Bot(TOKEN, base_url=threaded.base_url) as b:
            polled.append(await b.get_updates(timeout=10))

    poller = threading.Thread(target=asyncio.run, args=(poll(),))
    poller.start()
    assert threaded.wait_for_sync(lambda: threaded.waiting_polls == 1, 5)
    threaded.send_text(ALICE, "từ luồng khác")  # from this thread into the server's loop
    poller.join(5)
    assert [u.message.text for u in polled[0] if u.message] == ["từ luồng khác"]
    sender = threading.Thread(
        target=httpx.post,
        args=(f"{threaded.url}/bot{TOKEN}/sendMessage",),
        kwargs={"json": {"chat_id": ALICE, "text": "đáp"}},
    )
    sender.start()
    (event,) = threaded.wait_events_sync(ALICE, 0, count=1, timeout=5)
    sender.join(5)
    assert event["message"]["plain"] == "đáp"


def test_user_session_wait_reply_and_press_against_a_threaded_bot(threaded: EmulatorServer) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Tiếp", callback_data="next"),
                    InlineKeyboardButton("Quay lại", callback_data="back"),
                ]
            ]
        )
        await update.message.reply_html("<b>Bước 1</b> &amp; hơn thế", reply_markup=markup)
        await update.message.reply_text("Gửi thêm một tin")

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        await update.callback_query.answer()
        await update.callback_query.edit_message_text(f"Đã bấm {update.callback_query.data}")

    async def run_bot(stop: asyncio.Event) -> None:
        async with running_app(threaded, CommandHandler("start", start), CallbackQueryHandler(pressed)):
            await stop.wait()

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    bot_task = loop.create_task(run_bot(stop))
    runner = threading.Thread(target=loop.run_until_complete, args=(bot_task,), daemon=True)
    runner.start()
    try:
        with EmulatorClient(threaded.url) as client:
            alice = client.user(ALICE, "Nguyễn Văn An")
            alice.send("/start ABCD")
            reply = alice.wait_reply()
            assert len(reply) == 2  # both messages collected in one read
            assert reply[0].text == "<b>Bước 1</b> &amp; hơn thế" and reply[0].plain == "Bước 1 & hơn thế"
            assert reply.buttons == ["Tiếp", "Quay lại"] and alice.buttons() == ["Tiếp", "Quay lại"]
            alice.press("Quay lại")
            edited = alice.wait_reply()
            assert edited.last.plain == "Đã bấm back" and edited.last.edited and edited.last.keyboard == []
            assert alice.answers == [{"text": None, "show_alert": False, "url": None}]
            with pytest.raises(AssertionError, match="no bot message with an inline keyboard"):
                alice.press(0)
            bob = client.user(BOB, "Bình")
            bob.send("không phải lệnh")  # the bot has no handler for it
            with pytest.raises(AssertionError) as silent:
                bob.wait_reply(timeout=0.3)
            assert "expected 1 bot message(s) within 0.3s, got 0" in str(silent.value)
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(10)
        loop.close()


# ---------------------------------------------------------------------- the HTML parser itself


def test_html_parser_units() -> None:
    assert parse_html("😀<b>x</b>") == ("😀x", [{"type": "bold", "offset": 2, "length": 1}])
    assert parse_html("<B>hoa</B>")[1][0]["type"] == "bold"
    assert parse_html("<a href='tg://user?id=1'>u</a>")[1][0]["url"] == "tg://user?id=1"
    assert parse_html('<code class="language-x">c</code>')[1] == [{"type": "code", "offset": 0, "length": 1}]
    assert parse_html("AT&T", strict_ampersand=False)[0] == "AT&T"  # Telegram itself keeps a bare "&"
    with pytest.raises(EntityParseError):
        parse_html("AT&T")
    assert trim_text("  ab ", [{"type": "bold", "offset": 0, "length": 5}]) == (
        "ab",
        [{"type": "bold", "offset": 0, "length": 2}],
    )
    assert strip_html("<b>Đậm</b> &lt;tag&gt; a < b") == "Đậm <tag> a < b"
    assert render_plain("ab", [{"type": "bold", "offset": 0, "length": 1}], ansi=True) == "\x1b[1ma\x1b[0mb"
    assert User.de_json({"id": 1, "is_bot": False, "first_name": "x"}, None) is not None
