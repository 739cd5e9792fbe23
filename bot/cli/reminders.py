"""`baocao remind --dry-run`: what would be sent to whom at a moment, and what is coming; nothing written."""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from bot.calendar.periods import REPORTER_POLICE
from bot.calendar.reminder_planner import KIND_DIGEST, upcoming
from bot.cli.common import commune_id, open_engine, parse_at
from bot.config import Settings
from bot.services.reminders import dry_run
from bot.services.upward_times import upward_slots
from bot.texts.filters import vn_due
from bot.texts.units import head_title, words_for
from storage.db import session_scope


def _short(at: datetime) -> str:
    return f"{at:%H:%M %d/%m}"


def cmd_remind_dry_run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the reminders and digests due at `--at` (or now) and those coming in `--days`; write nothing."""
    now = parse_at(args.at, settings)
    engine = open_engine(settings)
    with session_scope(engine) as session:
        wanted = commune_id(session, args.commune)
        inputs, planned, existing = dry_run(
            session, now, default_tz=str(settings.timezone), commune_id=wanted
        )
        upward = [
            (
                slot.at,
                slot.period.code,
                slot.period.upward_due_at,
                slot.rule_id,
                slot.commune.name,
                slot.period.reporter == REPORTER_POLICE,
            )
            for slot in upward_slots(
                session, now, now + timedelta(days=args.days), default_tz=str(settings.timezone)
            )
            if wanted is None or slot.commune.id == wanted
        ]
    tz_name = str(settings.timezone)
    print(
        f"Chạy thử lúc {now.astimezone(settings.timezone):%H:%M ngày %d/%m/%Y} ({tz_name}) — "
        "không gửi, không ghi gì."
    )
    by_period: defaultdict[Any, list[Any]] = defaultdict(list)
    for p in planned:
        by_period[p.period_id].append(p)
    people = {r.person_id: (r, v) for period in inputs for v in period.villages for r in v.reporters}
    reminders_count = digests = queued = 0
    for period in inputs:
        rows = by_period.get(period.period_id)
        if not rows:
            continue
        tz = period.zone
        print(
            f"{period.commune_name} — {period.label} ({period.code}), hạn {vn_due(period.due_at.astimezone(tz))}:"
        )
        for p in rows:
            mark = (
                "   [đã có trong hàng đợi]"
                if p.key in existing
                else "   [gửi bù]"
                if now - p.due_at > timedelta(hours=1)
                else ""
            )
            queued += p.key in existing
            when = _short(p.due_at.astimezone(tz))
            if p.kind == KIND_DIGEST:
                digests += 1
                print(f"  {when}  tổng hợp   → nhóm/cán bộ công an {p.chat_id}{mark}")
                continue
            reminders_count += 1
            reporter, village = people[p.person_id]
            role = "phó" if reporter.is_deputy else head_title(village.kind)  # "trưởng thôn", "tổ trưởng"…
            state = (
                f"bản nháp câu {village.progress[0]}/{village.progress[1]}"
                if village.progress
                else "đang làm dở"
                if village.has_draft
                else "chưa bắt đầu"
            )
            print(
                f"  {when}  {p.rule:<10} → {reporter.name or '#' + str(p.person_id)} ({role}, {village.name}) — {state}{mark}"
            )
    print(
        f"Đến hạn: {reminders_count} tin nhắc, {digests} tin tổng hợp"
        + (f" ({queued} đã có trong hàng đợi)." if queued else ".")
    )
    if upward:
        print("Nhắc Công an xã hạn gửi báo cáo lên cấp trên:")
    for at, code, due, rule, commune, own in upward:
        state = "đến hạn" if at <= now else "sắp tới"
        what = "báo cáo Công an xã tự viết, hạn" if own else "hạn gửi lên"
        print(
            f"  {_short(at.astimezone(settings.timezone))}  {rule:<10} → nhóm công an {commune} — {code}, "
            f"{what} {vn_due(due.astimezone(settings.timezone))} ({state})"
        )
    ahead = upcoming(inputs, now, now + timedelta(days=args.days))
    if ahead:
        print(f"Sắp tới trong {args.days} ngày:")
        grouped: defaultdict[Any, list[Any]] = defaultdict(list)
        for u in ahead:
            grouped[(u.at, u.period.period_id, u.slot.rule_id)].append(u)
        for (at, _pid, rule), items in sorted(grouped.items(), key=lambda kv: kv[0]):
            period = items[0].period
            names = sorted({u.village.name for u in items})
            unit = words_for(u.village.kind for u in items).unit  # "thôn", "tổ dân phố", "đơn vị"…
            shown = ", ".join(names[:5]) + (f" và {len(names) - 5} {unit} khác" if len(names) > 5 else "")
            print(
                f"  {_short(at.astimezone(period.zone))}  {rule:<10} → {len(items)} người ({shown}) — {period.code}"
            )
    return 0
