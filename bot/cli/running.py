"""`baocao run` (long polling), `baocao serve` (webhook mode) and `baocao webhook set|delete|info`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from telegram import Update, WebhookInfo
from telegram.error import TelegramError

from bot.app import build_application, command_bot
from bot.cli.common import open_engine
from bot.clock import system_clock
from bot.config import Settings
from bot.deps import Deps
from bot.logging_setup import redact
from bot.web.app import serve
from bot.web.status import attach_status_server, check_port_free
from storage.db import make_engine, upgrade


class WebhookError(Exception):
    """A webhook command failed; the message is one Vietnamese line."""


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Long polling against the configured Bot API server."""
    settings.require_token()
    if settings.status_listen is not None:
        check_port_free(*settings.status_listen)
    open_engine(settings)  # migrate first, with a clear error if the database is unreachable
    logging.getLogger(__name__).info("starting long polling against %s", settings.api_url)
    run_polling(settings)
    return 0


def run_polling(settings: Settings, **kwargs: Any) -> None:
    """Migrate the database, then long-poll until interrupted (with the status server if configured)."""
    engine = make_engine(settings.database_url, **settings.db_options)
    upgrade(engine)
    application = build_application(settings, deps=Deps(engine=engine, clock=system_clock, settings=settings))
    if settings.status_listen is not None:
        attach_status_server(application, settings, engine)
    application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False, **kwargs)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Webhook mode: the ASGI app on BAOCAO_LISTEN until SIGTERM/SIGINT."""
    settings.require_token()
    settings.require_webhook_secret()
    engine = open_engine(settings)  # migrate first, with a clear error if the database is unreachable
    deps = Deps(engine=engine, clock=system_clock, settings=settings)
    serve(settings, application=build_application(settings, deps=deps, polling=False), engine=engine)
    return 0


async def webhook_call(settings: Settings, action: str, args: argparse.Namespace) -> WebhookInfo:
    """Do `action` (set, delete or info) with the Bot API server; the webhook info afterwards."""
    try:
        async with command_bot(settings) as bot:
            if action == "set":
                await bot.set_webhook(
                    url=settings.require_webhook_url(),
                    secret_token=settings.require_webhook_secret(),
                    allowed_updates=Update.ALL_TYPES,
                    drop_pending_updates=args.drop_pending,
                    max_connections=args.max_connections,
                )
            elif action == "delete":
                await bot.delete_webhook(drop_pending_updates=args.drop_pending)
            return await bot.get_webhook_info()
    except TelegramError as err:
        reason = redact(err.message, [settings.token or "", settings.webhook_secret or ""])
        raise WebhookError(f"Máy chủ Bot API ({settings.api_url}) từ chối: {reason}") from None


def _info_lines(info: Any) -> list[str]:
    if not info.url:
        lines = ["Chưa đăng ký webhook (bot nhận tin bằng long polling: baocao run)."]
    else:
        lines = [f"Webhook: {info.url}"]
        if info.allowed_updates:
            lines.append(f"Loại cập nhật: {', '.join(info.allowed_updates)}")
        if info.max_connections:
            lines.append(f"Số kết nối tối đa: {info.max_connections}")
    lines.append(f"Cập nhật đang chờ: {info.pending_update_count}")
    if info.last_error_message:
        when = info.last_error_date.isoformat() if info.last_error_date else "?"
        lines.append(f"Lỗi gần nhất ({when}): {info.last_error_message}")
    return lines


def cmd_webhook(args: argparse.Namespace, settings: Settings) -> int:
    """Register, delete or show the webhook with the configured Bot API server."""
    action = args.webhook_action
    try:
        info = asyncio.run(webhook_call(settings, action, args))
    except WebhookError as err:
        print(f"Lỗi: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info.to_dict(), ensure_ascii=False, default=str))
        return 0
    if action == "set":
        print(f"Đã đăng ký webhook với {settings.api_url}.")
    elif action == "delete":
        print(f"Đã xoá webhook với {settings.api_url}.")
    for line in _info_lines(info):
        print(line)
    return 0
