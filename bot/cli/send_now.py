"""`baocao remind --now`: plan the due reminders, digests and pushes once and send them through the outbox."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session
from telegram.error import TelegramError

from bot.app import command_bot
from bot.cli.common import CliError
from bot.cli.parser import EXIT_USAGE
from bot.clock import Clock, system_clock
from bot.config import Settings
from bot.delivery.dispatcher import dispatch_due, plan_now
from bot.delivery.outbox import DispatchReport, RenderFn, default_worker_id
from bot.delivery.ratelimit import RateLimiter
from bot.reminders.scheduler import load_default_plan, load_default_render, summary_push_planner
from storage.db import make_engine, upgrade


def run_once(
    settings: Settings,
    *,
    plan: Callable[[Session, datetime], Any] | None = None,
    render: RenderFn | None = None,
    clock: Clock | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Plan (default: the reminders, then the summary pushes), send everything due, print one line per
    message and a summary."""
    now_clock = clock or system_clock
    tz = str(settings.timezone)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        planned = plan_now(engine, now_clock(), plan or load_default_plan(tz))
        if plan is None:
            plan_now(engine, now_clock(), summary_push_planner(tz))
        if planned is not None:
            out(f"Lập lịch: {planned}")

        async def main() -> DispatchReport:
            async with command_bot(settings) as bot:
                return await dispatch_due(
                    engine,
                    bot,
                    now_clock(),
                    render=render or load_default_render(tz),
                    limiter=RateLimiter(),
                    worker_id=default_worker_id(),
                    lease=timedelta(seconds=settings.send_lease_seconds),
                    clock=clock,
                )

        report = asyncio.run(main())
    finally:
        engine.dispose()
    for result in report.results:
        out(result.line())
    out(report.summary())
    return 0


def cmd_remind_now(args: argparse.Namespace, settings: Settings) -> int:
    """Plan and send every message that is due; the dispatcher's exit code."""
    if args.at is not None or args.commune is not None:
        raise CliError("--at và --commune chỉ dùng với --dry-run.", EXIT_USAGE)
    try:
        result = run_once(settings)  # looked up at call time: tests replace it
    except TelegramError as err:  # unreachable server, refused certificate, bad token …
        raise CliError(
            f"Không gửi được qua máy chủ Bot API ({settings.api_url}): {type(err).__name__}. "
            "Kiểm tra TELEGRAM_API_URL, TELEGRAM_BOT_TOKEN và chứng chỉ (SSL_CERT_FILE).",
            1,
        ) from None
    return result if isinstance(result, int) else 0
