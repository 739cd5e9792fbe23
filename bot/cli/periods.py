"""`baocao periods`: the periods open at a moment, with counts submitted / draft / not started, and the next ones."""

from __future__ import annotations

import argparse
from typing import Any

from bot.calendar.periods import REPORTER_POLICE, days_left
from bot.cli.common import commune_id, open_engine, parse_at
from bot.clock import system_clock as wall_clock
from bot.config import Settings
from bot.services.periods_ahead import extend_periods
from bot.services.reminders import periods_overview
from bot.services.wording import commune_kinds
from bot.services.zones import commune_zone
from bot.texts.filters import vn_due
from bot.texts.units import words_for
from storage.db import session_scope
from storage.models import Period


def cmd_periods(args: argparse.Namespace, settings: Settings) -> int:
    """Periods open at a moment (with counts submitted / draft / not started) and the next ones."""
    now = parse_at(args.at, settings)
    engine = open_engine(settings)
    with session_scope(engine) as session:
        # what the running bot does each hour: the coming periods of the stored schedules (up to `now`)
        extend_periods(session, wall_clock(), until=now, default_tz=str(settings.timezone))
        overview = periods_overview(
            session, now, commune_id=commune_id(session, args.commune), default_tz=str(settings.timezone)
        )
        # "14 tổ dân phố", "6 phòng, ban": each commune's units by their kind
        units = {c.id: words_for(commune_kinds(session, [c.id or 0])) for c, _ in overview}
    if not overview:
        print("Chưa có xã nào (chạy baocao setup TỆP trước).")
        return 0
    for commune, lines in overview:
        tz = commune_zone(commune, str(settings.timezone))
        unit = units[commune.id]
        print(f"{commune.name} ({commune.code}) — lúc {now.astimezone(tz):%H:%M ngày %d/%m/%Y}")
        opened = [line for line in lines if line.is_open]
        coming = sorted((line for line in lines if not line.is_open), key=lambda line: line.period.opens_at)
        print("  Đang mở:" if opened else "  Không có kỳ nào đang mở.")
        for line in opened:
            p = line.period
            due = p.due_at.astimezone(tz)
            if now < p.due_at:
                left = days_left(p.due_at, now, tz)
                state = "hôm nay là ngày cuối" if left <= 0 else f"còn {left} ngày"
            else:
                state = f"đã quá hạn, nhận muộn đến {vn_due(p.closes_at.astimezone(tz))}"
            print(f"    {p.code:<10} {p.label} — {line.form_title}")
            if p.reporter == REPORTER_POLICE:  # the police's own report: no unit deadline, no unit counted
                print(f"               mở {p.opens_at.astimezone(tz):%d/%m/%Y} · {_upward(p, tz)} ({state})")
                continue
            print(f"               mở {p.opens_at.astimezone(tz):%d/%m/%Y} · hạn {vn_due(due)} ({state})")
            if p.upward_due_at is not None:
                print(f"               {_upward(p, tz)}")
            if line.addressee:
                print(f"               các {unit.units} gửi {line.addressee}")
            late = f" ({line.late} muộn)" if line.late else ""
            print(
                f"               {line.total} {unit.unit}: đã nộp {line.submitted}{late} · đang làm {line.drafts}"
                f" · chưa bắt đầu {line.not_started}"
            )
        if coming:
            print("  Kỳ tới:")
        for line in coming:
            p = line.period
            if p.reporter == REPORTER_POLICE:
                print(
                    f"    {p.code:<10} {p.label} — {line.form_title}: mở {p.opens_at.astimezone(tz):%d/%m/%Y}"
                    f" · {_upward(p, tz)}"
                )
                continue
            print(
                f"    {p.code:<10} {p.label} — {line.form_title}: mở {p.opens_at.astimezone(tz):%d/%m/%Y}"
                f" · hạn {vn_due(p.due_at.astimezone(tz))}"
                + (f" · {_upward(p, tz)}" if p.upward_due_at is not None else "")
            )
    return 0


def _upward(period: Period, tz: Any) -> str:
    """The commune's own deadline upward: "xã gửi lên Công an tỉnh, UBND tỉnh: hạn hết ngày 14/06/2026", or for
    a report the police write themselves "Công an xã tự báo cáo, gửi Công an tỉnh: hạn …"."""
    to = f" {', '.join(period.upward_to)}" if period.upward_to else ""
    if period.reporter == REPORTER_POLICE:
        sent = f", gửi{to}" if to else ""
        return f"Công an xã tự báo cáo{sent}: hạn {vn_due(period.upward_due_at.astimezone(tz))}"  # type: ignore[union-attr]
    return f"xã gửi lên{to}: hạn {vn_due(period.upward_due_at.astimezone(tz))}"  # type: ignore[union-attr]
