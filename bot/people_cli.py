"""`baocao people forget ID [--yes]`: erase a person's personal data while keeping the village's reports."""

from __future__ import annotations

import argparse
from typing import Any

from bot.clock import system_clock
from bot.config import Settings


def add_forget_parser(people_sub: Any) -> argparse.ArgumentParser:
    """Add `forget` under `baocao people` (its own handler: `cmd_people_forget`)."""
    forget = people_sub.add_parser("forget", help="xoá thông tin cá nhân của một người (giữ báo cáo đã nộp)")
    forget.add_argument("person_id", type=int, help="mã số trong cột đầu của baocao people --all")
    forget.add_argument("--yes", action="store_true", help="xác nhận xoá (không thể hoàn tác)")
    forget.set_defaults(func=cmd_people_forget)
    return forget


def cmd_people_forget(args: argparse.Namespace, settings: Settings) -> int:
    """Erase name, username and Telegram ids of a person, end their roles, audit it; print what was done."""
    from bot.cli import _engine
    from bot.services.accounts import forget_person
    from bot.views.templates import render
    from storage import audit
    from storage.db import session_scope

    if not getattr(args, "yes", False):
        print(render("people/forget_confirm.txt", person_id=args.person_id))
        return 1
    engine = _engine(settings)
    with session_scope(engine) as session:
        result = forget_person(session, args.person_id, system_clock(), audit.cli_actor())
    print(render("people/forgotten.txt", r=result))
    return 0
