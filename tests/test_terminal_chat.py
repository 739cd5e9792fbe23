"""The terminal chat, scripted, against a tiny echo/button bot running on the emulator."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import httpx
import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.emulator import BotMessage, EmulatorClient, EmulatorServer, run_terminal_chat, sample_png
from bot.emulator.terminal import WorldChat, format_message, run_world_chat

TOKEN = "654321:terminal_chat_token_abcdef"
USER = 3001


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet with two buttons."""
    assert update.message is not None and update.effective_user is not None
    markup = InlineKeyboardMarkup(
        [[InlineKeyboardButton("Có", callback_data="yes"), InlineKeyboardButton("Không", callback_data="no")]]
    )
    name = html.escape(update.effective_user.first_name)
    await update.message.reply_html(f"Xin chào <b>{name}</b>! Bạn có khoẻ không?", reply_markup=markup)


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the button and replace the question by the choice."""
    query = update.callback_query
    assert query is not None
    await query.answer("Đã ghi nhận")
    await query.edit_message_text(
        f"Bạn chọn: <b>{'Có' if query.data == 'yes' else 'Không'}</b>", parse_mode="HTML"
    )


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Download the photo and report its size."""
    assert update.message is not None
    biggest = update.message.photo[-1]
    data = await (await biggest.get_file()).download_as_bytearray()
    kind = "PNG" if bytes(data).startswith(b"\x89PNG") else "?"
    await update.message.reply_text(f"Đã nhận ảnh {kind} {biggest.width}×{biggest.height}")


async def location(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo the location."""
    assert update.message is not None and update.message.location is not None
    where = update.message.location
    await update.message.reply_text(f"Vị trí: {where.latitude}, {where.longitude}")


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo text in italics (escaped)."""
    assert update.message is not None and update.message.text is not None
    await update.message.reply_html(f"Bạn nói: <i>{html.escape(update.message.text)}</i>")


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    """The emulator and the echo bot, both in the test's loop."""
    server = EmulatorServer(token=TOKEN)
    await server.start()
    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    app.add_handler(MessageHandler(filters.PHOTO, photo))
    app.add_handler(MessageHandler(filters.LOCATION, location))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=5)
        yield server
        await app.updater.stop()
        await app.stop()
    await server.stop()


def scripted(lines: Iterable[str]) -> tuple[Callable[[str], str], list[str]]:
    """An input function that types ``lines`` then hits Ctrl-D, and the prompts it was shown."""
    pending = list(lines)
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        if not pending:
            raise EOFError
        return pending.pop(0)

    return read, prompts


async def chat(server: EmulatorServer, lines: Iterable[str], **kwargs: object) -> tuple[list[str], list[str]]:
    """Run the terminal chat in a worker thread (it blocks on HTTP long polls)."""
    read, prompts = scripted(lines)
    output: list[str] = []
    with EmulatorClient(server.url) as client:
        await asyncio.to_thread(
            run_terminal_chat,
            client,
            USER,
            "An",
            input_fn=read,
            output_fn=output.append,
            reply_timeout=5.0,
            settle=0.15,
            **kwargs,  # type: ignore[arg-type]
        )
    return output, prompts


async def test_text_buttons_photo_location_and_quit(emulator: EmulatorServer) -> None:
    output, prompts = await chat(
        emulator,
        [
            "Xin chào & tạm biệt <3",
            "#1",
            "/anh",
            "/vitri 21.59 105.84",
            "/vitri ở đâu",
            "#9",
            "/thoat",
            "không bao giờ được đọc",
        ],
        start_text="/start",
    )
    text = "\n".join(output)
    assert "\x1b" not in text  # no ANSI codes when the output is not a terminal
    assert output[0] == "Trò chuyện với bot — bạn là An (mã 3001)."
    expected_in_order = [
        "Bạn: /start",
        "🤖 Bot: Xin chào An! Bạn có khoẻ không?",
        "   [1] Có  [2] Không",
        "🤖 Bot: Bạn nói: Xin chào & tạm biệt <3",
        "(Bạn bấm: Có)",
        "🔔 Đã ghi nhận",
        "🤖 Bot (đã sửa): Bạn chọn: Có",
        "(Đã gửi một ảnh mẫu.)",
        "🤖 Bot: Đã nhận ảnh PNG 8×8",
        "(Đã gửi vị trí 21.59, 105.84.)",
        "🤖 Bot: Vị trí: 21.59, 105.84",
        "Cách dùng: /vitri 21.59 105.84 (vĩ độ rồi kinh độ).",
        "Không có nút số 9.",
        "Tạm biệt!",
    ]
    positions = [output.index(line) for line in expected_in_order]
    assert positions == sorted(positions)
    assert len(prompts) == 7 and set(prompts) == {"Bạn: "}  # nothing read after /thoat
    sent = [m["text"] for m in emulator.bot_messages(USER)]
    assert "Bạn nói: <i>Xin chào &amp; tạm biệt &lt;3</i>" in sent  # the raw HTML the bot sent


async def test_eof_leaves_and_ansi_bold_is_optional(emulator: EmulatorServer) -> None:
    output, prompts = await chat(emulator, ["/giup"], start_text="/start", ansi=True)
    assert any("\x1b[1mAn\x1b[0m" in line for line in output)  # <b>An</b> shown in bold
    assert output.count(output[1]) == 2  # /giup printed the help again
    assert output[-1] == "Tạm biệt!" and len(prompts) == 2  # EOF after /giup


async def test_silence_is_reported_and_messages_sent_meanwhile_are_shown(emulator: EmulatorServer) -> None:
    calls = 0

    def read(prompt: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            return "/lenh_khong_co"  # the bot has no handler for it
        if calls == 2:  # while the user is "typing", the bot sends a reminder on its own
            response = httpx.post(
                f"{emulator.url}/bot{TOKEN}/sendMessage",
                json={"chat_id": USER, "text": "<b>Nhắc</b>: nộp báo cáo tuần", "parse_mode": "HTML"},
            )
            assert response.status_code == 200, response.text
            return "/giup"
        raise EOFError

    output: list[str] = []
    with EmulatorClient(emulator.url) as client:
        await asyncio.to_thread(
            run_terminal_chat,
            client,
            USER,
            "An",
            input_fn=read,
            output_fn=output.append,
            reply_timeout=0.3,
            settle=0.1,
        )
    silence = output.index("(Bot chưa trả lời sau 0.3 giây.)")
    assert output.index("🤖 Bot: Nhắc: nộp báo cáo tuần") > silence
    assert output[-1] == "Tạm biệt!"


def test_unreachable_emulator_is_reported_in_vietnamese() -> None:
    output: list[str] = []
    with EmulatorClient("http://127.0.0.1:9", timeout=2) as client:
        run_terminal_chat(client, USER, "An", input_fn=scripted([])[0], output_fn=output.append)
    assert output and output[0].startswith("Không kết nối được trình giả lập tại http://127.0.0.1:9")


def test_format_message_shapes() -> None:
    def message(**overrides: object) -> BotMessage:
        data: dict[str, object] = {
            "chat_id": USER,
            "message_id": 4,
            "kind": "text",
            "text": "<b>Câu 1</b>",
            "plain": "Câu 1",
            "entities": [{"type": "bold", "offset": 0, "length": 5}],
            "buttons": [],
            "original": {"plain": "Câu 1", "entities": [{"type": "bold", "offset": 0, "length": 5}]},
            "edits": [{"plain": "Câu 1", "entities": [{"type": "bold", "offset": 0, "length": 5}]}],
        }
        data.update(overrides)
        return BotMessage.from_json(data)

    assert format_message(message(), "edited") == ["🤖 (bot đã gỡ các nút của tin nhắn #4)"]
    rebuttoned = message(buttons=[[{"text": "Tiếp", "callback_data": "n"}]])
    assert format_message(rebuttoned, "edited") == ["🤖 (bot đổi các nút của tin nhắn #4)", "   [1] Tiếp"]
    assert format_message(message(), "deleted") == ["🤖 (bot đã xoá tin nhắn #4)"]
    assert format_message(message(), "sent", ansi=True) == ["\x1b[1m🤖 Bot\x1b[0m: \x1b[1mCâu 1\x1b[0m"]
    document = message(
        kind="document",
        plain=None,
        entities=[],
        document={"file_name": "bao_cao.xlsx", "mime_type": "application/vnd.ms-excel", "file_size": 10},
    )
    assert format_message(document) == ["🤖 Bot: 📎 Tệp: bao_cao.xlsx (application/vnd.ms-excel, 10 byte)"]
    keyboard = message(reply_markup={"keyboard": [["Có"]]}, reply_keyboard=[["Có", "Không"]], edits=[])
    assert format_message(keyboard)[-1] == "   ⌨  Bàn phím: Có | Không (gõ đúng chữ trên nút để chọn)"


GROUP = -100555


async def world(
    server: EmulatorServer, lines: Iterable[str], *, files_dir: object = None, typing: Callable | None = None
) -> tuple[list[str], list[str]]:
    """Run a two-chat world (An's private chat and a group with An) in a worker thread."""
    read, prompts = scripted(lines)
    output: list[str] = []

    def read_and_act(prompt: str) -> str:
        line = read(prompt)
        if typing is not None:
            typing(len(prompts))
        return line

    def run() -> None:  # blocking HTTP calls: off the loop that serves the emulator
        with EmulatorClient(server.url) as client:
            session = client.user(USER, "An")
            client.add_group(GROUP, "Nhóm thử", [USER])
            chats = [
                WorldChat("head", "riêng", session, "/start"),
                WorldChat("group", "nhóm", session.in_group(GROUP)),
            ]
            run_world_chat(
                chats,
                input_fn=read_and_act,
                output_fn=output.append,
                reply_timeout=5.0,
                settle=0.15,
                files_dir=files_dir,  # type: ignore[arg-type]
            )

    await asyncio.to_thread(run)
    return output, prompts


def _bot_send(server: EmulatorServer, method: str, **fields: object) -> None:
    response = httpx.post(f"{server.url}/bot{TOKEN}/{method}", data={k: str(v) for k, v in fields.items()})
    assert response.status_code == 200, response.text


async def test_switching_chats_announces_news_elsewhere_and_shows_it_on_arrival(
    emulator: EmulatorServer,
) -> None:
    def typing(n: int) -> None:
        if n == 2:  # while An reads the private chat, the bot writes in the group
            _bot_send(emulator, "sendMessage", chat_id=GROUP, text="🚨 Báo cáo đột xuất — Thôn A\nchi tiết")

    output, prompts = await world(
        emulator, [":help", "12", ":nhom", ":group", "#1", ":head", "#1", "/thoat"], typing=typing
    )
    text = "\n".join(output)
    assert "Đổi cuộc trò chuyện: :head — riêng; :group — nhóm; :help — xem lại hướng dẫn." in text
    assert "🤖 Bot: Bạn nói: 12" in output  # a bare number is an answer, not a button
    marker = "🔔 Tin mới ở [nhóm]: 🚨 Báo cáo đột xuất — Thôn A — gõ :group để xem"
    assert marker in output and "chi tiết" not in text.split(marker)[0]  # one line, not the message
    assert any(line.startswith("Không có lệnh :nhom.") for line in output)
    switched = output.index("— Bây giờ bạn là An trong [nhóm] —")
    assert output.index("🤖 Bot: 🚨 Báo cáo đột xuất — Thôn A") == switched + 1  # shown on arrival
    assert "Không có nút số 1." in output[switched:]  # the group's message has no keyboard
    back = output.index("— Bây giờ bạn là An trong [riêng] —")
    assert output[back + 1 :].count("(Bạn bấm: Có)") == 1  # the private keyboard was kept
    assert prompts[:3] == ["[riêng] Bạn: "] * 3 and "[nhóm] Bạn: " in prompts


async def test_files_the_bot_sends_are_saved_and_their_path_printed(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    def typing(n: int) -> None:
        if n == 1:
            files = {"document": ("bao-cao.xlsx", b"PK\x03\x04 excel bytes", "application/octet-stream")}
            response = httpx.post(
                f"{emulator.url}/bot{TOKEN}/sendDocument", data={"chat_id": USER}, files=files
            )
            assert response.status_code == 200, response.text
            photo = {"photo": ("a.png", sample_png(), "image/png")}
            response = httpx.post(
                f"{emulator.url}/bot{TOKEN}/sendPhoto", data={"chat_id": GROUP}, files=photo
            )
            assert response.status_code == 200, response.text

    output, _ = await world(emulator, ["", ":group", "/thoat"], files_dir=tmp_path / "tep", typing=typing)
    saved = [line.split("💾 Đã lưu: ", 1)[1] for line in output if "💾 Đã lưu: " in line]
    assert len(saved) == 2
    document, photo = (Path(p) for p in saved)
    assert document.name.endswith("bao-cao.xlsx") and document.read_bytes() == b"PK\x03\x04 excel bytes"
    assert photo.suffix == ".png" and photo.read_bytes().startswith(b"\x89PNG")
    assert document.parent == photo.parent == tmp_path / "tep"


async def test_typing_the_location_key_shares_a_sample_location_never_its_label(
    emulator: EmulatorServer,
) -> None:
    """In Telegram the "📍 Gửi vị trí hiện tại" key sends a location; typed in the terminal it does the same."""
    output, _ = await world(emulator, ["📍 Gửi vị trí hiện tại", "/thoat"])
    assert "(Đã gửi vị trí 21.59, 105.84.)" in output
    assert not any("Bạn nói: 📍" in line for line in output)
