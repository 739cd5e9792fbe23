"""A chat with the bot in the terminal, acting as one or more users of the emulator.

Type a message and press Enter; ``#N`` presses button N of the latest inline keyboard (a bare number is
an answer, sent as text); ``/anh`` sends a sample photo, ``/vitri 21.59 105.84`` a location, ``/giup``
(or ``:help``) shows help and ``/thoat`` (or Ctrl-D) leaves. With several chats (``run_world_chat``),
``:head``, ``:police``, ``:group``… switch between them; what arrives in another chat is announced on one
line. Every prompt and help line is in Vietnamese.
"""

from __future__ import annotations

import mimetypes
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.emulator.client import BotMessage, EmulatorClient, EmulatorError, UserSession, sample_png

__all__ = ["HELP_TEXT", "WorldChat", "format_message", "run_terminal_chat", "run_world_chat"]

PROMPT = "Bạn: "
HELP_TEXT = (
    "Gõ tin nhắn rồi nhấn Enter để gửi cho bot; gõ một số (ví dụ 12) là trả lời bằng số đó.\n"
    "Gõ #số (ví dụ #1) để bấm nút tương ứng của bàn phím mới nhất.\n"
    "/anh — gửi một ảnh mẫu; /tep [đường dẫn] — gửi một tệp (mặc định: một tệp PDF mẫu);\n"
    "/vitri 21.59 105.84 — gửi vị trí (vĩ độ, kinh độ);\n"
    "/giup — xem lại hướng dẫn này; /thoat hoặc Ctrl-D — thoát."
)
BUTTON_RE = re.compile(r"#\s*(\d{1,3})")
SAMPLE_LOCATION = (21.59, 105.84)  # where a typed "📍 …" key sends the user (Hiệp Lực, Thái Nguyên)
WATCH_EVERY = 0.7  # seconds between two looks at the chats while waiting for the keyboard


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


@dataclass
class WorldChat:
    """One chat of the terminal world: a key for the switch command (``:head``), a label, the session."""

    key: str
    label: str
    session: UserSession
    start_text: str | None = None  # sent when the chat starts (e.g. "/start CODE")


def _first_line(event: dict) -> str:
    """A one-line gist of a bot event, for the marker of a chat one is not in."""
    if event["type"] == "answer":
        return (event.get("answer") or {}).get("text") or "(trả lời nút bấm)"
    message = BotMessage.from_json(event["message"])
    text = (message.plain or "").strip()
    line = text.splitlines()[0] if text else f"({message.kind})"
    return line if len(line) <= 90 else line[:89] + "…"


def _save_name(message: BotMessage, data: bytes) -> str:
    """A file name for a photo or document the bot sent."""
    if message.kind == "document" and message.document and message.document.get("file_name"):
        name = re.sub(r"[^\w.\-]+", "_", str(message.document["file_name"]))
    else:
        ext = ".png" if data.startswith(b"\x89PNG") else ".jpg" if data.startswith(b"\xff\xd8") else ".bin"
        name = f"anh{ext}" if message.kind == "photo" else f"tep{ext}"
    return f"{abs(message.chat_id)}-{message.message_id}-{name}"


class _Chat:
    """State of one terminal chat."""

    def __init__(
        self,
        spec: WorldChat,
        output_fn: Callable[[str], object],
        ansi: bool,
        reply_timeout: float,
        settle: float,
        files_dir: Path | None = None,
    ) -> None:
        self.spec = spec
        self.session = spec.session
        self.out = output_fn
        self.ansi = ansi
        self.reply_timeout = reply_timeout
        self.settle = settle
        self.files_dir = files_dir
        self.keyboard: BotMessage | None = None
        self.pending: list[dict] = []  # events that arrived while one was in another chat

    def _save(self, message: BotMessage) -> None:
        """Save a photo or document the bot sent into `files_dir` and print where."""
        info = message.photo if message.kind == "photo" else message.document
        if self.files_dir is None or not info or not info.get("file_id"):
            return
        try:
            data = self.session.client.file_bytes(str(info["file_id"]))
        except (EmulatorError, httpx.HTTPError) as err:
            self.out(f"   (Không tải được tệp: {err})")
            return
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / _save_name(message, data)
        path.write_bytes(data)
        self.out(f"   💾 Đã lưu: {path}")

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
            if event["type"] == "sent" and message.kind in ("photo", "document"):
                self._save(message)
            if message.keyboard and event["type"] != "deleted":
                self.keyboard = message
            elif self.keyboard is not None and message.message_id == self.keyboard.message_id:
                self.keyboard = None  # its keyboard was removed or the message deleted

    def show_pending(self) -> None:
        """Print what arrived while one was elsewhere."""
        events, self.pending = self.pending, []
        self.show(events)

    def await_bot(self) -> None:
        """Wait (bounded, long-polling) for the bot's answer and print it."""
        events = self.session.wait_events(self.reply_timeout, settle=self.settle)
        if not any(e["type"] in ("sent", "edited", "deleted", "answer") for e in events):
            self.out(f"(Bot chưa trả lời sau {self.reply_timeout:g} giây.)")
        self.show(events)

    def new_events(self) -> list[dict]:
        """Whatever the bot sent in this chat since the last read (no waiting)."""
        return self.session.wait_events(0.0, settle=0.0)

    def press(self, number: int) -> bool:
        """Press button ``number`` (1-based) of the latest keyboard."""
        buttons = self.keyboard.flat_buttons if self.keyboard else []
        if not 1 <= number <= len(buttons):
            self.out(f"Không có nút số {number}." + (f" Chọn từ #1 đến #{len(buttons)}." if buttons else ""))
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


class _World:
    """The chats of one terminal, the one being typed in, and the lock the watcher shares."""

    def __init__(self, chats: list[_Chat], output_fn: Callable[[str], object]) -> None:
        self.chats = chats
        self.current = chats[0]
        self.out = output_fn
        self.lock = threading.Lock()
        self.idle = False  # True while the main thread waits for a line

    @property
    def prompt(self) -> str:
        """ "Bạn: " alone; with several chats, the chat one is in comes first."""
        return PROMPT if len(self.chats) == 1 else f"[{self.current.spec.label}] {PROMPT}"

    def help(self) -> str:
        """The help text, with the switch commands when there are several chats."""
        if len(self.chats) == 1:
            return HELP_TEXT
        switches = "; ".join(f":{c.spec.key} — {c.spec.label}" for c in self.chats)
        return (
            f"{HELP_TEXT}\nĐổi cuộc trò chuyện: {switches}; :help — xem lại hướng dẫn.\n"
            "Tin tới ở cuộc trò chuyện khác được báo bằng một dòng 🔔; đổi sang đó để xem đủ."
        )

    def find(self, key: str) -> _Chat | None:
        """The chat switched to by `:key`."""
        return next((c for c in self.chats if c.spec.key == key), None)

    def switch(self, chat: _Chat) -> None:
        """Make `chat` the current one and show what it missed."""
        self.current = chat
        spec = chat.spec
        self.out(f"— Bây giờ bạn là {spec.session.name} trong [{spec.label}] —")
        chat.show_pending()

    def drain(self, out: Callable[[str], object] | None = None) -> None:
        """Show what arrived in the current chat; announce, one line each, what arrived elsewhere.

        `out` (default: the terminal) receives the lines, so the watcher can print them in one go.
        """
        if out is not None:
            for chat in self.chats:
                chat.out = out
        try:
            self._drain(out or self.out)
        finally:
            for chat in self.chats:
                chat.out = self.out

    def _drain(self, out: Callable[[str], object]) -> None:
        for chat in self.chats:
            events = chat.new_events()
            if not events:
                continue
            if chat is self.current:
                chat.show(events)
                continue
            chat.pending.extend(events)
            news = [e for e in events if e["type"] in ("sent", "edited")] or events
            more = f" (+{len(news) - 1} tin)" if len(news) > 1 else ""
            label, key = chat.spec.label, chat.spec.key
            out(f"🔔 Tin mới ở [{label}]: {_first_line(news[0])}{more} — gõ :{key} để xem")


def _watch(world: _World, stop: threading.Event, reprompt: Callable[[str], object]) -> None:
    """While the keyboard is awaited, show what the bot sends on its own (reminders, alerts)."""
    while not stop.wait(WATCH_EVERY):
        with world.lock:
            if not world.idle:
                continue
            lines: list[str] = []
            try:
                world.drain(lines.append)
            except (httpx.HTTPError, EmulatorError):
                continue
            if lines:
                for line in ["", *lines]:
                    world.out(line)
                reprompt(world.prompt)


def _reprompt(prompt: str) -> None:
    sys.stdout.write(prompt)
    sys.stdout.flush()


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
    try:
        session = client.user(user_id, name)
    except (httpx.HTTPError, EmulatorError) as err:
        output_fn(f"Không kết nối được trình giả lập tại {client.base_url}: {err}")
        return
    output_fn(f"Trò chuyện với bot — bạn là {name} (mã {user_id}).")
    run_world_chat(
        [WorldChat("chat", name, session, start_text)],
        input_fn=input_fn,
        output_fn=output_fn,
        ansi=ansi,
        reply_timeout=reply_timeout,
        settle=settle,
        watch=False,
    )


SAMPLE_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _document(path: str) -> tuple[str, bytes | None, str | None]:
    """What `/tep [PATH]` sends: the file at PATH (name, bytes, MIME type), or a small sample PDF."""
    if not path:
        return "ho-so-mau.pdf", SAMPLE_PDF, "application/pdf"
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError:
        return path, None, None
    return file.name, data, mimetypes.guess_type(file.name)[0] or "application/octet-stream"


def _start_chats(world: _World) -> None:
    """Send each chat's start text: the current chat shows the answer, the others keep it for later."""
    for chat in world.chats:
        text = chat.spec.start_text
        if not text:
            continue
        if chat is world.current:
            world.out(f"{world.prompt}{text}")
            chat.session.send(text)
            chat.await_bot()
            continue
        chat.session.send(text)
        chat.pending.extend(chat.session.wait_events(chat.reply_timeout, settle=chat.settle))
        world.out(
            f"({chat.spec.session.name} đã gửi “{text}” ở [{chat.spec.label}] — gõ :{chat.spec.key} để xem.)"
        )


def _handle(world: _World, text: str) -> bool:
    """Act on one typed line; False when the chat should end."""
    chat, out = world.current, world.out
    session = chat.session
    command, *args = text.split()
    command = command.lower()
    if command in ("/thoat", "/thoát", ":q", ":quit"):
        return False
    if command in ("/giup", "/giúp", ":help", ":giup"):
        out(world.help())
        return True
    if command.startswith(":"):
        target = world.find(command[1:])
        if target is None:
            out(f"Không có lệnh {command}. " + world.help().splitlines()[-2 if len(world.chats) > 1 else -1])
        else:
            world.switch(target)
        return True
    button = BUTTON_RE.fullmatch(text)
    if button:
        if chat.press(int(button.group(1))):
            chat.await_bot()
        return True
    if command in ("/anh", "/ảnh"):
        session.send_photo(sample_png())
        out("(Đã gửi một ảnh mẫu.)")
        chat.await_bot()
        return True
    if command in ("/tep", "/tệp"):
        name, data, mime = _document(" ".join(args))
        if data is None:
            out(f"Không đọc được tệp {name}.")
            return True
        session.send_document(data, name, mime)
        out(f"(Đã gửi tệp {name}, {len(data)} byte.)")
        chat.await_bot()
        return True
    if command in ("/vitri", "/vịtrí", "/vị_trí"):
        location = _parse_location(args)
        if location is None:
            out("Cách dùng: /vitri 21.59 105.84 (vĩ độ rồi kinh độ).")
            return True
        session.send_location(*location)
        out(f"(Đã gửi vị trí {location[0]}, {location[1]}.)")
        chat.await_bot()
        return True
    if text.strip().startswith("📍"):  # the "📍 Gửi vị trí hiện tại" key shares a location, never its label
        session.send_location(*SAMPLE_LOCATION)
        out(f"(Đã gửi vị trí {SAMPLE_LOCATION[0]}, {SAMPLE_LOCATION[1]}.)")
        chat.await_bot()
        return True
    session.send(text)
    chat.await_bot()
    return True


def run_world_chat(
    chats: Sequence[WorldChat],
    *,
    input_fn: Callable[[str], str] = input,
    output_fn: Callable[[str], object] = print,
    ansi: bool | None = None,
    reply_timeout: float = 10.0,
    settle: float = 0.3,
    files_dir: Path | None = None,
    watch: bool | None = None,
    on_started: Callable[[], object] | None = None,
) -> None:
    """Chat with the bot in one or more chats (switching with `:key`) until /thoat or EOF.

    `files_dir`: where photos and documents the bot sends are saved. `watch` (default: on a terminal)
    shows messages the bot sends on its own while the keyboard is awaited. `on_started` runs once the
    chats' start texts are answered (the demo opens its period then).
    """
    if ansi is None:
        ansi = output_fn is print and sys.stdout.isatty()
    if watch is None:
        watch = input_fn is input and output_fn is print and sys.stdin.isatty()
    world = _World([_Chat(c, output_fn, ansi, reply_timeout, settle, files_dir) for c in chats], output_fn)
    output_fn(world.help())
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(world, stop, _reprompt), daemon=True) if watch else None
    try:
        with world.lock:
            _start_chats(world)
            if on_started is not None:
                on_started()
        if watcher is not None:
            watcher.start()
        while True:
            with world.lock:
                try:
                    world.drain()
                except httpx.HTTPError as err:
                    output_fn(f"Mất kết nối với trình giả lập: {err}")
                    break
                world.idle = True
            try:
                line = input_fn(world.prompt)
            except (EOFError, KeyboardInterrupt):
                output_fn("")
                break
            finally:
                with world.lock:
                    world.idle = False
            text = line.strip()
            if not text:
                continue
            with world.lock:
                try:
                    if not _handle(world, text):
                        break
                except EmulatorError as err:
                    output_fn(f"Lỗi trình giả lập: {err}")
                except httpx.HTTPError as err:
                    output_fn(f"Mất kết nối với trình giả lập: {err}")
                    break
    except (httpx.HTTPError, EmulatorError) as err:
        output_fn(f"Mất kết nối với trình giả lập: {err}")
    finally:
        stop.set()
    output_fn("Tạm biệt!")
