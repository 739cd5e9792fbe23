"""A chat with the bot in the terminal, acting as one user of the emulator."""

# Type a message and press Enter; a bare number presses that button of the latest inline keyboard;
# ``/anh`` sends a sample photo, ``/vitri 21.59 105.84`` a location, ``/giup`` shows help and
# ``/thoat`` (or Ctrl-D) leaves. Every prompt and help line is in Vietnamese.

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import httpx

from bot.emulator.client import BotMessage, EmulatorClient, EmulatorError, UserSession, sample_png

__all__ = ["HELP_TEXT", "format_message", "run_terminal_chat"]

PROMPT = "Bạn: "
HELP_TEXT = (
    "Gõ tin nhắn rồi nhấn Enter để gửi cho bot.\n"
    "Gõ một số (ví dụ 1) để bấm nút tương ứng của bàn phím mới nhất.\n"
    "/anh — gửi một ảnh mẫu; /vitri 21.59 105.84 — gửi vị trí (vĩ độ, kinh độ);\n"
    "/giup — xem lại hướng dẫn này; /thoat hoặc Ctrl-D — thoát."
)


def _bold(text: str, ansi: bool) -> str:
    return f"\x1b[1m{text}\x1b[0m" if ansi else text


def _only_markup_changed(message: BotMessage) -> bool:
    """True when the latest edit kept the text and changed only the inline keyboard."""
    versions: list[dict[str, Any] | None] = [message.raw.get("original"), *message.edits]
    before, after = (versions[-2], versions[-1]) if len(versions) >= 2 else (None, None)
    if before is None or after is None:
        return False
    return before.get("plain") == after.get("plain") and before.get("entities") == after.get("entities")


def format_message(message: BotMessage, event_type: str = "sent", *, ansi: bool = False) -> list[str]:
    """Lines that show one bot message (new, edited or deleted) in the terminal."""
    if event_type == "deleted":
        return [f"🤖 (bot đã xoá tin nhắn #{message.message_id})"]
    if event_type == "edited" and _only_markup_changed(message):
        if not message.keyboard:
            return [f"🤖 (bot đã gỡ các nút của tin nhắn #{message.message_id})"]
        numbered = "  ".join(f"[{i}] {b.text}" for i, b in enumerate(message.flat_buttons, start=1))
        return [f"🤖 (bot đổi các nút của tin nhắn #{message.message_id})", f"   {numbered}"]
    label = "🤖 Bot (đã sửa)" if event_type == "edited" else "🤖 Bot"
    lines: list[str] = []
    body = message.render(ansi=ansi)
    if message.kind == "photo" and message.photo:
        lines.append(f"🖼  Ảnh {message.photo.get('width')}×{message.photo.get('height')}")
    elif message.kind == "document" and message.document:
        doc = message.document
        lines.append(
            f"📎 Tệp: {doc.get('file_name') or 'không tên'} ({doc.get('mime_type')}, {doc.get('file_size')} byte)"
        )
    elif message.kind == "location" and message.location:
        lines.append(f"📍 Vị trí: {message.location['latitude']}, {message.location['longitude']}")
    if body:
        lines.extend(body.splitlines() or [""])
    if not lines:
        lines.append(f"({message.kind})")
    out = [f"{_bold(label, ansi)}: {lines[0]}"] + [f"   {line}" for line in lines[1:]]
    buttons = message.flat_buttons
    if buttons:
        out.append("   " + "  ".join(f"[{i}] {b.text}" for i, b in enumerate(buttons, start=1)))
    if message.reply_keyboard:
        keys = " | ".join(key for row in message.reply_keyboard for key in row)
        out.append(f"   ⌨  Bàn phím: {keys} (gõ đúng chữ trên nút để chọn)")
    return out


class _Chat:
    """State of one terminal chat."""

    def __init__(
        self,
        session: UserSession,
        output_fn: Callable[[str], object],
        ansi: bool,
        reply_timeout: float,
        settle: float,
    ) -> None:
        self.session = session
        self.out = output_fn
        self.ansi = ansi
        self.reply_timeout = reply_timeout
        self.settle = settle
        self.keyboard: BotMessage | None = None

    def show(self, events: list[dict]) -> None:
        """Print bot events and remember the latest inline keyboard."""
        for event in events:
            if event["type"] == "answer":
                text = (event.get("answer") or {}).get("text")
                if text:
                    self.out(f"🔔 {text}")
                continue
            message = BotMessage.from_json(event["message"])
            for line in format_message(message, event["type"], ansi=self.ansi):
                self.out(line)
            if message.keyboard and event["type"] != "deleted":
                self.keyboard = message
            elif self.keyboard is not None and message.message_id == self.keyboard.message_id:
                self.keyboard = None  # its keyboard was removed or the message deleted

    def await_bot(self) -> None:
        """Wait (bounded, long-polling) for the bot's answer and print it."""
        events = self.session.wait_events(self.reply_timeout, settle=self.settle)
        if not any(e["type"] in ("sent", "edited", "deleted", "answer") for e in events):
            self.out(f"(Bot chưa trả lời sau {self.reply_timeout:g} giây.)")
        self.show(events)

    def drain(self) -> None:
        """Print whatever the bot sent on its own since the last read."""
        self.show(self.session.wait_events(0.0, settle=0.0))

    def press(self, number: int) -> bool:
        """Press button ``number`` (1-based) of the latest keyboard."""
        buttons = self.keyboard.flat_buttons if self.keyboard else []
        if not 1 <= number <= len(buttons):
            self.out(f"Không có nút số {number}." + (f" Chọn từ 1 đến {len(buttons)}." if buttons else ""))
            return False
        assert self.keyboard is not None
        button = buttons[number - 1]
        if button.callback_data is None:
            self.out(f"Nút “{button.text}” là đường liên kết: {button.url}")
            return False
        self.out(f"(Bạn bấm: {button.text})")
        self.session.press(data=button.callback_data, message_id=self.keyboard.message_id)
        return True


def _parse_location(args: list[str]) -> tuple[float, float] | None:
    if len(args) != 2:
        return None
    try:
        latitude, longitude = (float(a.replace(",", ".")) for a in args)
    except ValueError:
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return latitude, longitude


def run_terminal_chat(
    client: EmulatorClient,
    user_id: int,
    name: str,
    *,
    input_fn: Callable[[str], str] = input,
    output_fn: Callable[[str], object] = print,
    start_text: str | None = None,
    ansi: bool | None = None,
    reply_timeout: float = 10.0,
    settle: float = 0.3,
) -> None:
    """Chat with the bot as user ``user_id`` until /thoat or EOF; prints the bot's messages."""
    if ansi is None:
        ansi = output_fn is print and sys.stdout.isatty()
    try:
        session = client.user(user_id, name)
    except (httpx.HTTPError, EmulatorError) as err:
        output_fn(f"Không kết nối được trình giả lập tại {client.base_url}: {err}")
        return
    chat = _Chat(session, output_fn, ansi, reply_timeout, settle)
    output_fn(f"Trò chuyện với bot — bạn là {name} (mã {user_id}).")
    output_fn(HELP_TEXT)
    if start_text:
        output_fn(f"{PROMPT}{start_text}")
        session.send(start_text)
        chat.await_bot()
    while True:
        try:
            chat.drain()
        except httpx.HTTPError as err:
            output_fn(f"Mất kết nối với trình giả lập: {err}")
            break
        try:
            line = input_fn(PROMPT)
        except (EOFError, KeyboardInterrupt):
            output_fn("")
            break
        text = line.strip()
        if not text:
            continue
        command, *args = text.split()
        command = command.lower()
        try:
            if command in ("/thoat", "/thoát"):
                break
            if command in ("/giup", "/giúp"):
                output_fn(HELP_TEXT)
                continue
            if text.isdigit():
                if chat.press(int(text)):
                    chat.await_bot()
                continue
            if command in ("/anh", "/ảnh"):
                session.send_photo(sample_png())
                output_fn("(Đã gửi một ảnh mẫu.)")
                chat.await_bot()
                continue
            if command in ("/vitri", "/vịtrí", "/vị_trí"):
                location = _parse_location(args)
                if location is None:
                    output_fn("Cách dùng: /vitri 21.59 105.84 (vĩ độ rồi kinh độ).")
                    continue
                session.send_location(*location)
                output_fn(f"(Đã gửi vị trí {location[0]}, {location[1]}.)")
                chat.await_bot()
                continue
            session.send(text)
            chat.await_bot()
        except EmulatorError as err:
            output_fn(f"Lỗi trình giả lập: {err}")
        except httpx.HTTPError as err:
            output_fn(f"Mất kết nối với trình giả lập: {err}")
            break
    output_fn("Tạm biệt!")
