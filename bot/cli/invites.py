"""`baocao invite`: issue an invite code and its deep link, revoke one, or list them."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

import httpx

from bot.cli.common import CliError, open_engine
from bot.cli.parser import EXIT_USAGE
from bot.clock import system_clock
from bot.config import Settings
from bot.services.accounts import create_invite, format_code, list_invites, revoke_invite
from bot.telegram_request import tls_context
from storage import audit
from storage.db import session_scope
from storage.models import Role


def bot_username(settings: Settings) -> str:
    """The bot's @username for deep links: from TELEGRAM_BOT_USERNAME, else asked with getMe."""
    if settings.bot_username:
        return settings.bot_username
    if not settings.token:
        raise CliError(
            "Cần tên bot để tạo đường link: đặt TELEGRAM_BOT_USERNAME (ví dụ baocao_thon_bot) "
            "hoặc TELEGRAM_BOT_TOKEN để hỏi Telegram.",
            EXIT_USAGE,
        )
    try:
        response = httpx.get(
            f"{settings.base_url}{settings.token}/getMe",
            timeout=10,
            verify=tls_context(settings.ca_file, settings.ca_dir),
        )
        return response.json()["result"]["username"]
    except Exception:
        raise CliError(
            f"Không hỏi được tên bot từ {settings.api_url}: đặt TELEGRAM_BOT_USERNAME để tạo link.",
            EXIT_USAGE,
        ) from None


def check_invite_args(args: argparse.Namespace) -> None:
    """Derive `--role` from the place given and check `--days`; CliError (exit 2) when neither works."""
    if args.invite_action:
        return
    if args.role is None:
        args.role = (
            "village_head"
            if args.village
            else "police"
            if args.commune
            else "supervisor"
            if args.province
            else None
        )
    if args.role is None:
        raise CliError(
            "Cần --village TÊN (người đứng đầu đơn vị), --commune XÃ --role police, hoặc --province TỈNH.",
            EXIT_USAGE,
        )
    if args.days < 1 or args.days > 90:
        raise CliError("--days phải từ 1 đến 90.", EXIT_USAGE)


def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    """Issue, revoke or list invite codes."""
    check_invite_args(args)
    engine = open_engine(settings)
    now = system_clock()
    if args.invite_action == "revoke":
        with session_scope(engine) as session:
            revoke_invite(session, args.code, now=now, actor=audit.cli_actor())
        print("Đã huỷ mã mời.")
        return 0
    if args.invite_action == "list":
        with session_scope(engine) as session:
            for inv in list_invites(session):
                state = (
                    "đã dùng"
                    if inv.used_at
                    else "đã huỷ"
                    if inv.revoked_at
                    else "hết hạn"
                    if inv.expires_at <= now
                    else "còn hạn"
                )
                print(
                    f"{inv.id:>5}  {inv.code_hint}…  {inv.role:<12}  {state:<8}  hạn {inv.expires_at.astimezone(settings.timezone):%d/%m/%Y %H:%M}"
                )
        return 0
    role = Role(args.role)
    username = bot_username(settings)
    with session_scope(engine) as session:
        issued = create_invite(
            session,
            role=role,
            now=now,
            actor=audit.cli_actor(),
            village=args.village,
            commune=args.commune,
            province=args.province,
            deputy=args.deputy,
            ttl=timedelta(days=args.days),
        )
    link = f"https://t.me/{username}?start={issued.code}"
    if args.json:
        print(
            json.dumps(
                {"code": issued.code, "link": link, "expires_at": issued.invite.expires_at.isoformat()}
            )
        )
    else:
        print(f"Mã mời cho {issued.place}: {format_code(issued.code)}")
        print(f"Đường link: {link}")
        print(
            f"Hết hạn: {issued.invite.expires_at.astimezone(settings.timezone):%H:%M ngày %d/%m/%Y}; dùng một lần."
        )
    return 0
