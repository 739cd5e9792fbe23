"""The location keyboard against the Bot API emulator (bot/emulator): the markup bot.updates.replies builds is
accepted, shows a "📍" key asking for the location, the user's shared location arrives as a location update
and hides the one-time keyboard, and the removal clears it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.emulator import EmulatorServer
from bot.updates.replies import reply_keyboard
from bot.views.buttons import REMOVE_KEYBOARD, KeyButton, ReplyKeyboard

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abc-def"
HEAD = 1001
KEYS = ReplyKeyboard(((KeyButton("📍 Gửi vị trí hiện tại", request_location=True),), (KeyButton("Bỏ qua"),)))


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    """An emulator in the test's loop, with one village head who has started the bot."""
    srv = EmulatorServer(token=TOKEN)
    await srv.start()
    srv.add_user(HEAD, "Hoàng Văn An")
    srv.send_text(HEAD, "/start")
    srv.drop_pending_updates()
    yield srv
    await srv.stop()


async def test_the_location_key_round_trip(server: EmulatorServer) -> None:
    async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as bot:
        await bot.send_message(HEAD, "Vị trí?", reply_markup=reply_keyboard(KEYS, HEAD))
        shown = server.chat_info(HEAD)["reply_keyboard"]
        assert shown["keyboard"][0] == [{"text": "📍 Gửi vị trí hiện tại", "request_location": True}]
        assert shown["keyboard"][1] == [{"text": "Bỏ qua"}] and shown["one_time_keyboard"] is True
        server.send_location(HEAD, 21.6, 105.8)  # what pressing the 📍 key does
        (update,) = server.pending_updates()
        assert update["message"]["location"] == {"latitude": 21.6, "longitude": 105.8}
        assert server.chat_info(HEAD)["reply_keyboard"] is None  # a one-time keyboard hides once used
        await bot.send_message(HEAD, "Vị trí?", reply_markup=reply_keyboard(KEYS, HEAD))
        assert server.chat_info(HEAD)["reply_keyboard"] is not None
        await bot.send_message(
            HEAD, "✔ Vị trí: 📍 21.60000, 105.80000", reply_markup=reply_keyboard(REMOVE_KEYBOARD, HEAD)
        )
        assert server.chat_info(HEAD)["reply_keyboard"] is None
