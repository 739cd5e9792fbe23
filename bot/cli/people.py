"""`baocao people`: who is bound to which village or commune; `remove ID`; `forget ID --yes`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.cli.common import open_engine
from bot.clock import system_clock
from bot.config import Settings
from bot.services.accounts import forget_person, list_people, remove_person
from bot.texts.templates import render
from bot.texts.units import head_title, unit_noun
from storage import audit
from storage.db import session_scope


def cmd_people(args: argparse.Namespace, settings: Settings) -> int:
    """List who is bound to what, or remove someone."""
    engine = open_engine(settings)
    with session_scope(engine) as session:
        if args.people_action == "remove":
            ended = remove_person(
                session, args.person_id, now=system_clock(), actor=audit.cli_actor(), village=args.village
            )
            print(f"Đã gỡ {len(ended)} vai trò của người mang mã số {args.person_id}.")
            return 0
        rows = list_people(session, args.commune, include_ended=args.all)
    if args.json:
        print(json.dumps([_person_json(r) for r in rows], ensure_ascii=False))
        return 0
    if not rows:
        print("Chưa có ai đăng ký.")
    for r in rows:
        role = {
            "village_head": f"phó/2 {unit_noun(r.village_kind)}"
            if r.is_deputy
            else head_title(r.village_kind),
            "police": "công an",
            "supervisor": "cấp trên",
        }
        place = r.village or "" if r.role == "village_head" else ""
        print(
            f"{r.person_id:>5}  {role.get(r.role, r.role):<12} {r.full_name[:30]:<30} {place[:28]:<28} {r.commune or '':<24}"
            f"{'' if r.active else ' (đã gỡ)'}"
        )
    return 0


def _person_json(r: Any) -> dict[str, Any]:
    return {
        "person_id": r.person_id,
        "telegram_user_id": r.telegram_user_id,
        "name": r.full_name,
        "role": r.role,
        "deputy": r.is_deputy,
        "village": r.village,
        "commune": r.commune,
        "active": r.active,
    }


def cmd_people_forget(args: argparse.Namespace, settings: Settings) -> int:
    """Erase name, username and Telegram ids of a person, end their roles, audit it; print what was done."""
    if not getattr(args, "yes", False):
        print(render("people/forget_confirm.txt", person_id=args.person_id))
        return 1
    engine = open_engine(settings)
    with session_scope(engine) as session:
        result = forget_person(session, args.person_id, system_clock(), audit.cli_actor())
    print(render("people/forgotten.txt", r=result))
    return 0
