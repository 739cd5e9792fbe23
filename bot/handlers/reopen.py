"""Police: /molai reopens a village's report after the deadline (`reopen_command`).

Moved out of bot/handlers/report.py (the head's report conversation).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.auth import Need, police_commune_ids
from bot.handlers.registry import REGISTRY
from bot.services import directory, reports
from bot.services.accounts import normalize_name, village_reporters
from bot.services.outbox_messages import KIND_NOTICE, queue_message
from bot.texts.templates import render
from bot.updates.context import Ctx
from storage.models import Commune


def _tz(ctx: Ctx, commune: Commune | None) -> ZoneInfo:
    if commune is not None and commune.timezone:
        try:
            return ZoneInfo(commune.timezone)
        except Exception:
            pass
    return ctx.deps.settings.timezone


def _local(ctx: Ctx, at: datetime | None, commune: Commune | None = None) -> datetime | None:
    return at.astimezone(_tz(ctx, commune)) if at is not None else None


@REGISTRY.command("molai", need=Need.POLICE)
async def reopen_command(ctx: Ctx) -> None:
    """Police: reopen a village's report after the deadline: /molai TÊN THÔN [MÃ KỲ]."""
    # Only communes where the sender is police: a village head of commune X who is also police of
    # commune Y must not reopen X's villages (ctx.actor.communes holds the communes of every role).
    police_of = set(police_commune_ids(ctx.actor))
    communes = [c for c in ctx.actor.communes.values() if c.id in police_of]
    villages = directory.active_villages(ctx.session, [c.id for c in communes])
    periods = directory.opened_periods(ctx.session, [c.id for c in communes], ctx.now)
    args = list(ctx.args)
    period = None
    if args and any(p.code == args[-1] for p in periods):
        period = next(p for p in periods if p.code == args[-1])
        args = args[:-1]
    elif periods:
        past_due = [p for p in periods if p.due_at <= ctx.now]
        period = past_due[0] if past_due else periods[0]
    name = " ".join(args).strip()
    village = (
        next((v for v in villages if normalize_name(v.name) == normalize_name(name)), None) if name else None
    )
    if village is None or period is None:
        ctx.reply(
            "report/reopen_usage.html",
            example_period=period.code if period else "2026-6T",
            missing=name,
            villages=[v.name for v in villages][:40],
            periods=sorted({p.code for p in periods})[:12],
        )
        return
    row = reports.reopen(ctx.session, police=ctx.actor.person, village=village, period=period, now=ctx.now)
    commune = ctx.session.get(Commune, village.commune_id)
    until = _local(ctx, row.until, commune)
    ctx.reply("report/reopened.html", period=period.label, village=village.name, until=until)
    notice = render("report/reopened_notice.html", period=period.label, until=until)
    for person in village_reporters(ctx.session, village.id):
        if person.chat_id is not None:
            row_id = queue_message(
                ctx.session,
                key=f"reopen:{row.id}:{person.id}",
                kind=KIND_NOTICE,
                chat_id=person.chat_id,
                text=notice,
                now=ctx.now,
                person_id=person.id,
                village_id=village.id,
                period_id=period.id,
            )
            if row_id is not None:
                ctx.urgent.append(row_id)
                ctx.replies[-1].unsent_note = render("report/reopened_notice_pending.html")
