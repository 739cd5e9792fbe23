"""`baocao serve` (webhook mode) and `baocao webhook set|delete|info`.

`add_serve_parsers(sub)` adds both to the `baocao` parser; `python -m bot.web.cli serve|webhook …`
runs them on their own (same options as `baocao`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from bot.config import ConfigError, Settings, load_settings
from bot.logging_setup import configure_logging, redact

EXIT_USAGE = 2


class WebhookError(Exception):
    """A webhook command failed; the message is one Vietnamese line."""


def _configure(args: argparse.Namespace, settings: Settings) -> None:
    configure_logging(
        settings.log_format,
        verbose=bool(getattr(args, "verbose", False)),
        secrets=(settings.token, settings.webhook_secret),
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Webhook mode: the ASGI app on BAOCAO_LISTEN until SIGTERM/SIGINT."""
    from bot.cli import _engine

    settings.require_token()
    settings.require_webhook_secret()
    _configure(args, settings)
    _engine(settings)  # migrate first, with a clear error if the database is unreachable
    from bot.web.app import serve

    serve(settings)
    return 0


async def _webhook_call(settings: Settings, action: str, args: argparse.Namespace) -> Any:
    from telegram import Update
    from telegram.error import TelegramError

    from bot.app import command_bot

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
    _configure(args, settings)
    action = args.webhook_action
    try:
        info = asyncio.run(_webhook_call(settings, action, args))
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


def add_serve_parsers(sub: Any) -> None:
    """Add the `serve` and `webhook` sub-commands to the `baocao` sub-parsers."""
    serve = sub.add_parser(
        "serve",
        help="chạy bot ở chế độ webhook (máy chủ HTTP: webhook, /healthz, /readyz, /metrics)",
    )
    serve.set_defaults(func=cmd_serve)

    webhook = sub.add_parser("webhook", help="webhook với Telegram: set | delete | info")
    actions = webhook.add_subparsers(dest="webhook_action", required=True, metavar="set|delete|info")
    set_ = actions.add_parser("set", help="đăng ký BAOCAO_WEBHOOK_URL với mã bí mật BAOCAO_WEBHOOK_SECRET")
    set_.add_argument("--drop-pending", action="store_true", help="bỏ các cập nhật đang chờ")
    set_.add_argument(
        "--max-connections", type=int, default=40, help="số kết nối Telegram mở cùng lúc (1-100, mặc định 40)"
    )
    delete = actions.add_parser("delete", help="xoá webhook (để quay về long polling: baocao run)")
    delete.add_argument("--drop-pending", action="store_true", help="bỏ các cập nhật đang chờ")
    actions.add_parser("info", help="xem webhook đang đăng ký, số cập nhật chờ, lỗi gần nhất")
    for parser in (set_, delete, actions.choices["info"]):
        parser.add_argument("--json", action="store_true", help="in WebhookInfo dạng JSON")
    webhook.set_defaults(func=cmd_webhook)


def build_parser() -> argparse.ArgumentParser:
    """A parser with only `serve` and `webhook` (and the global options of `baocao`)."""
    parser = argparse.ArgumentParser(prog="baocao", description="Báo cáo thôn — chế độ webhook.")
    parser.add_argument("--env-file", default=".env", help="tệp .env để đọc cấu hình (mặc định .env)")
    parser.add_argument("-v", "--verbose", action="store_true", help="ghi nhật ký chi tiết")
    sub = parser.add_subparsers(dest="command", required=True, metavar="LỆNH")
    add_serve_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `serve` or `webhook` without going through `baocao` (python -m bot.web.cli …)."""
    from bot.cli import CliError

    args = build_parser().parse_args(argv)
    configure_logging("text", verbose=args.verbose)
    try:
        settings = load_settings(args.env_file)
        return args.func(args, settings)
    except ConfigError as exc:
        print(f"Lỗi cấu hình: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
