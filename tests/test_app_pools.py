"""The production application's Bot API connection pools: one for replies, one for the reminder dispatcher.

Built without a test request (as `baocao run`/`serve` build it) against the emulator on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from telegram.request import HTTPXRequest

from bot.app import REMINDER_BOT_KEY, build_application
from bot.clock import FixedClock
from bot.config import settings_from
from bot.deps import Deps
from bot.emulator.server import EmulatorServer
from bot.reminders.scheduler import SCHEDULER_KEY
from bot.telegram_request import AiohttpRequest
from bot.web.app import run_application

TOKEN = "515151:PoolsTokenPoolsTokenPoolsToken000"


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """The Bot API emulator in a thread of this process."""
    server = EmulatorServer(token=TOKEN, bot_username="baocao_pools_bot")
    server.start_in_thread()
    yield server
    server.stop_thread()


def _settings(emulator: EmulatorServer, database_url: str, tick: str, client: str = "aiohttp"):
    return settings_from(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": emulator.url,
            "DATABASE_URL": database_url,
            "BAOCAO_TICK_SECONDS": tick,
            "BAOCAO_HTTP_CLIENT": client,
        }
    )


CLIENTS = {"aiohttp": AiohttpRequest, "httpx": HTTPXRequest}


@pytest.mark.parametrize("client", sorted(CLIENTS))
async def test_reminders_send_through_a_pool_of_their_own(
    emulator: EmulatorServer, engine: Engine, database_url: str, clock: FixedClock, client: str
) -> None:
    settings = _settings(emulator, database_url, "3600", client)
    application = build_application(settings, deps=Deps(engine, clock, settings), polling=False)
    replies = application.bot.request
    kind = CLIENTS[client]
    assert isinstance(replies, kind)
    async with run_application(application):
        scheduler = application.bot_data[SCHEDULER_KEY]
        reminders = application.bot_data[REMINDER_BOT_KEY]
        assert scheduler.bot is reminders and reminders is not application.bot
        assert reminders.request is not replies and isinstance(reminders.request, kind)
        assert reminders.base_url == application.bot.base_url  # same Bot API server and token
        assert reminders.defaults == application.bot.defaults  # HTML by default, like replies
        sent = await reminders.get_me()  # it really talks to the server
        assert sent.username == "baocao_pools_bot"
    assert REMINDER_BOT_KEY not in application.bot_data  # shut down with the application


async def test_without_reminders_no_second_pool_is_opened(
    emulator: EmulatorServer, engine: Engine, database_url: str, clock: FixedClock
) -> None:
    settings = _settings(emulator, database_url, "0")
    application = build_application(settings, deps=Deps(engine, clock, settings), polling=False)
    async with run_application(application):
        assert REMINDER_BOT_KEY not in application.bot_data
        assert SCHEDULER_KEY not in application.bot_data
    assert len(emulator.requests_for("getMe")) == 1  # the application's own, nothing more
