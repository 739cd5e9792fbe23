"""`baocao request`: ask a commune's units for an ad hoc report from the command line (as /yeucau does);
the heads' notices wait in the outbox for the running bot, which sends them at once."""

from __future__ import annotations

import argparse

from bot.cli.common import CliError, open_engine
from bot.cli.parser import EXIT_USAGE
from bot.clock import system_clock
from bot.config import Settings
from bot.services import requests
from bot.services.accounts import find_commune, normalize_name
from bot.services.wording import commune_kinds
from bot.services.zones import commune_zone
from bot.texts.units import words_for
from bot.views.requests import request_notice
from storage.db import session_scope

DEADLINE_WORDS = {
    "unreadable": 'không đọc được; ví dụ --due "20/12", "20/12/2026", "thứ sáu", "3 ngày"',
    "past": "đã qua",
    "too_far": "xa quá một năm",
}


def cmd_request(args: argparse.Namespace, settings: Settings) -> int:
    """Create an ad hoc request for a commune's units and queue the heads' notices."""
    tz = str(settings.timezone)
    engine = open_engine(settings)
    now = system_clock()
    with session_scope(engine) as session:
        commune = find_commune(session, args.commune)
        forms = requests.request_forms(session, commune.id)
        form = next(
            (f for f in forms if f.id == args.form or normalize_name(f.title) == normalize_name(args.form)),
            None,
        )
        if form is None:
            names = ", ".join(f.id for f in forms) or "không có"
            raise CliError(
                f"Xã {commune.name} không có biểu mẫu định kỳ '{args.form}' (có: {names}).", EXIT_USAGE
            )
        today = requests.local_today(commune, now, tz)
        try:
            due_on = requests.read_deadline(args.due, today)
        except requests.DeadlineError as exc:
            raise CliError(f'--due "{args.due}" {DEADLINE_WORDS[exc.reason]}.', EXIT_USAGE) from None
        unit = words_for(commune_kinds(session, [commune.id or 0]))  # "thôn", "tổ dân phố", "đơn vị"…
        village_ids = None
        if args.villages is not None:
            villages = {normalize_name(v.name): v for v in requests.commune_villages(session, commune.id)}
            wanted = [name.strip() for name in args.villages.split(",") if name.strip()]
            unknown = [name for name in wanted if normalize_name(name) not in villages]
            if not wanted or unknown:
                raise CliError(
                    f"Không có {unit.unit} {', '.join(repr(n) for n in unknown) or '(trống)'} ở {commune.name}.",
                    EXIT_USAGE,
                )
            village_ids = sorted({villages[normalize_name(name)].id for name in wanted})
        try:
            made = requests.create_request(
                session,
                commune=commune,
                form_id=form.id,
                due_on=due_on,
                village_ids=village_ids,
                now=now,
                by=None,
                by_name=args.by or "",
                notice=request_notice(commune, commune_zone(commune, tz)),
                default_tz=tz,
            )
        except requests.RequestError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        code, title = made.period.code, made.form_title
        told, no_head = len(made.told), made.no_head
    print(f"Đã tạo yêu cầu {code}: {title}, {commune.name}, hạn hết ngày {due_on:%d/%m/%Y}.")
    print(f"Đã xếp gửi tới {told} {unit.unit} (bot đang chạy gửi ngay).")
    if no_head:
        print(f"{len(no_head)} {unit.unit} chưa có {unit.head} đăng ký: {', '.join(no_head)}.")
    return 0
