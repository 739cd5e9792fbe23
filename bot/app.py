"""Building the python-telegram-bot Application against any Bot API server, and running it."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from telegram import Bot, Update
from telegram.constants import ParseMode
from telegram.ext import Application, ContextTypes, Defaults, ExtBot
from telegram.request import BaseRequest, HTTPXRequest

from bot.clock import Clock, system_clock
from bot.config import Settings
from bot.delivery.paid_broadcast import PAID_CONCURRENCY
from bot.delivery.ratelimit import RateLimiter, SendLimits
from bot.deps import Deps
from bot.handlers import Registry, load_all
from bot.handlers.menu import set_default_menu
from bot.metrics import observe_scheduler
from bot.reminders.scheduler import LIMITER_KEY, start_reminders, stop_reminders
from bot.telegram_request import AiohttpRequest, tls_context
from bot.texts.templates import Renderer, render, use_renderer
from bot.update_order import DEFAULT_CONCURRENCY, ChatOrderedProcessor
from bot.updates.replies import count_replies_with
from storage.db import make_engine

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0005  # seconds a thread keeps the GIL while another waits (Python's default: 0.005)
OWN_REMINDER_POOL_KEY = "own_reminder_pool"  # bot_data: give the reminders their own connection pool
REMINDER_BOT_KEY = "reminder_bot"  # bot_data: the bot the dispatcher sends with, shut down in post_stop


def build_application(
    settings: Settings,
    *,
    deps: Deps | None = None,
    clock: Clock = system_clock,
    request: BaseRequest | None = None,
    registry: Registry | None = None,
    polling: bool = True,
) -> Application:
    """The bot: every handler from the registry, talking to `settings.api_url`.

    With `request` (tests), that request object carries every call and no updater is built;
    `polling=False` (webhook mode: updates arrive through `application.update_queue`) builds none either.
    Without `request` (`baocao run`, `baocao serve`) the interpreter's switch interval is shortened
    (`shorten_switch_interval`).
    """
    if request is None:
        shorten_switch_interval()
    use_renderer(Renderer(settings.templates_dir))  # BAOCAO_TEMPLATES_DIR, from the environment or .env
    if deps is None:
        deps = Deps(
            engine=make_engine(settings.database_url, **settings.db_options), clock=clock, settings=settings
        )
    builder = (
        Application.builder()
        .token(settings.require_token())
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .post_init(_post_init)
        .post_stop(_post_stop)
        # other chats' updates at once, a chat's own strictly in order (bot/update_order.py)
        .concurrent_updates(ChatOrderedProcessor(DEFAULT_CONCURRENCY))
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request).updater(None)
    else:
        builder = builder.request(bot_api_request(settings))
        if polling:
            builder = builder.get_updates_request(bot_api_request(settings, long_poll=True))
        else:
            builder = builder.updater(None)
    application = builder.build()
    application.bot_data[OWN_REMINDER_POOL_KEY] = request is None  # see bot_api_request
    application.bot_data["deps"] = deps
    # shared by everything sent in bulk; replies are counted in it and given headroom (BAOCAO_REPLY_RESERVE)
    try:
        limits = SendLimits.from_env(os.environ)
    except ValueError as err:  # a wrong knob must not keep the bot down: the default reserve
        log.error("%s; using the default reply reserve", err)
        limits = SendLimits()
    limiter = RateLimiter(limits)
    application.bot_data[LIMITER_KEY] = limiter
    count_replies_with(limiter.note_reply if limiter.limits.reserving else None)
    (registry or load_all()).install(application, deps)
    application.add_error_handler(_on_error)
    return application


def shorten_switch_interval(seconds: float = SWITCH_INTERVAL) -> None:
    """Let a thread waiting for the GIL get it after `seconds` instead of Python's 5 ms.

    Every update's transaction runs in a database thread (bot/updates/pipeline.py), which gives the GIL
    up during each call into sqlite3 or psycopg; coming back, it waits until the event loop's thread (parsing
    updates, sending replies) lets go, up to the switch interval, several times a turn. On SQLite the one
    writer thread does every turn's transaction, so those waits add up for every chat.
    """
    sys.setswitchinterval(seconds)


def bot_api_request(settings: Settings, *, long_poll: bool = False, connections: int = 8) -> BaseRequest:
    """A Bot API connection pool: `connections` (8), a send waits up to 5 s for a free one; for getUpdates
    (`long_poll`) one connection whose reads may last the whole poll.

    aiohttp by default (`bot/telegram_request.py`: about a quarter of httpx's CPU a call), httpx with
    `BAOCAO_HTTP_CLIENT=httpx` — there httpcore checks every pooled connection's socket on each request
    (py-spy: 11.8 % of the bot's CPU with 16 connections under 500 heads, 5 % with 8). Eight carry
    Telegram's 30 messages a second at round trips up to ~250 ms. The reminder dispatcher (8 sends at
    once) has a pool of its own, so a wave never makes a head wait for a connection.
    """
    if long_poll:
        size, timeouts = 1, {"connect_timeout": 10, "read_timeout": 40}
    else:
        size = connections
        timeouts = {"pool_timeout": 5, "connect_timeout": 10, "read_timeout": 20, "write_timeout": 20}
    tls = tls_context(settings.ca_file, settings.ca_dir)  # SSL_CERT_FILE / SSL_CERT_DIR, else certifi's
    if settings.http_client == "httpx":
        return HTTPXRequest(connection_pool_size=size, httpx_kwargs={"verify": tls}, **timeouts)
    return AiohttpRequest(size, tls=tls, **timeouts)


def command_bot(settings: Settings) -> Bot:
    """A plain Bot on the configured Bot API server, client and CA, for one-off commands (`async with`)."""
    return Bot(
        settings.require_token(),
        base_url=settings.base_url,
        base_file_url=settings.base_file_url,
        request=bot_api_request(settings),
    )


async def _reminder_bot(application: Application) -> ExtBot[Any]:
    """The bot the reminder dispatcher sends with: the application's, or one on the reminders' own pool."""
    settings = application.bot_data["deps"].settings
    if not application.bot_data.get(OWN_REMINDER_POOL_KEY) or settings.tick_seconds <= 0:
        return application.bot  # tests' recording request, or no reminders at all
    # paid broadcasts keep PAID_CONCURRENCY sends in flight (hundreds a second at Telegram's round trips)
    request = bot_api_request(settings, connections=PAID_CONCURRENCY if settings.paid_broadcast else 8)
    bot: ExtBot[Any] = ExtBot(
        settings.require_token(),
        base_url=settings.base_url,
        base_file_url=settings.base_file_url,
        request=request,
        get_updates_request=request,
        defaults=application.bot.defaults,
    )
    await bot.initialize()
    application.bot_data[REMINDER_BOT_KEY] = bot
    return bot


async def _post_init(application: Application) -> None:
    try:
        await set_default_menu(application.bot)
    except Exception:  # the menu is a nicety; never block start-up on it
        log.warning("could not set the default command menu", exc_info=True)
    try:
        scheduler = start_reminders(application, await _reminder_bot(application))  # plan() + dispatch_due()
        if scheduler is not None:
            observe_scheduler(scheduler)  # one log line and metrics per reminder cycle
    except Exception:  # reports keep working; the log says reminders are off
        log.exception("could not start the reminder scheduler: no reminders will be sent")


async def _post_stop(application: Application) -> None:
    await stop_reminders(application)  # finish the send in flight, hand back unsent claims
    reminder_bot = application.bot_data.pop(REMINDER_BOT_KEY, None)
    if reminder_bot is not None:
        await reminder_bot.shutdown()


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("error while handling an update", exc_info=context.error)
    # never into a channel the bot may post in: only people's chats and groups are told to try again
    if (
        isinstance(update, Update)
        and update.effective_chat is not None
        and update.effective_chat.type != "channel"
    ):
        try:
            await context.bot.send_message(update.effective_chat.id, render("common/error.html"))
        except Exception:
            log.warning("could not tell the user about the error", exc_info=True)
