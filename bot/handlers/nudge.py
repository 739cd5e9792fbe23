"""Police nudges: `/nhacnho [TÊN THÔN] [MÃ KỲ]` and the digest's buttons queue a reminder now
(`nudge_command`, `nudge_button`, `nudge_button_data`).

Design notes: docs/design-notes.md#bothandlersnudgepy
"""

from __future__ import annotations

from bot.auth import Need
from bot.handlers.registry import REGISTRY
from bot.services import directory, reminders
from bot.services.reports import reopened_until
from bot.setup_file import name_key
from bot.updates.context import Ctx
from storage import audit
from storage.models import Commune, Period, Role, Village

CB_NUDGE = "nudge"


def _police_communes(ctx: Ctx) -> list[Commune]:
    """Communes where the sender is police (a supervisor uses the digest's buttons instead)."""
    ids = {m.commune_id for m in ctx.actor.memberships if m.role == Role.POLICE and m.commune_id is not None}
    return [c for c in ctx.actor.communes.values() if c.id in ids and c.active]


def _tz(ctx: Ctx, commune: Commune):
    return reminders.commune_zone(commune, str(ctx.deps.settings.timezone))


def _open(ctx: Ctx, period: Period, village_id: int | None = None) -> bool:
    """Still taking reports (or reopened for the village / some village)."""
    if ctx.now < period.closes_at:
        return True
    if village_id is not None:
        until = reopened_until(ctx.session, village_id, period.id)
        return until is not None and ctx.now < until
    return False


def _queue(ctx: Ctx, commune: Commune, period: Period, village_ids: list[int] | None) -> int:
    """Queue the nudges and tell the officer what was queued and what was skipped; returns villages queued."""
    result = reminders.queue_nudges(
        ctx.session,
        by=ctx.actor.person,
        period=period,
        village_ids=village_ids,
        now=ctx.now,
        default_tz=str(ctx.deps.settings.timezone),
    )
    tz = _tz(ctx, commune)
    ctx.reply(
        "remind/nudge_result.html",
        period=period.label,
        commune=commune.name,
        due=period.due_at.astimezone(tz),
        queued=result.queued,
        recent=[(name, at.astimezone(tz)) for name, at in result.recent],
        submitted=result.submitted,
        closed=result.closed,
        unreachable=result.unreachable,
    )
    return len(result.queued)


@REGISTRY.command("nhacnho", need=Need.POLICE, in_groups=True)
async def nudge_command(ctx: Ctx) -> None:
    """Police: nudge every village that has not reported (or one: /nhacnho TÊN THÔN [MÃ KỲ])."""
    communes = _police_communes(ctx)
    if not communes:
        ctx.reply("remind/nudge_no_commune.html")
        return
    args = list(ctx.args)
    code = None
    if args:
        codes = directory.active_period_codes(ctx.session, [c.id for c in communes])
        if args[-1] in codes:
            code, args = args[-1], args[:-1]
    name = " ".join(args).strip()
    village = None
    villages = directory.active_villages(ctx.session, [c.id for c in communes], by_name=True)
    if name:
        village = next((v for v in villages if name_key(v.name) == name_key(name)), None)
        if village is None:
            ctx.reply("remind/nudge_usage.html", problem=name, villages=[v.name for v in villages][:40])
            return
    targets = [c for c in communes if village is None or c.id == village.commune_id]
    for commune in targets:
        period = reminders.nudge_period(ctx.session, commune.id, ctx.now, code)
        if period is None:
            ctx.reply("remind/nudge_no_period.html", commune=commune.name, code=code)
            continue
        if not _open(ctx, period, village.id if village else None):
            ctx.reply("remind/nudge_closed.html", period=period.label)
            continue
        _queue(ctx, commune, period, [village.id] if village else None)


def _refuse(ctx: Ctx, data: str) -> None:
    ctx.reply("remind/nudge_not_yours.html")
    ctx.answer_callback("auth/refused_short.html")
    audit.record(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        action="auth.refused",
        entity="handler",
        entity_id="callback:nudge",
        data=data[:64],
    )


@REGISTRY.callback(CB_NUDGE, need=Need.POLICE, in_groups=True)
async def nudge_button(ctx: Ctx) -> None:
    """The digest's "Nhắc các thôn chưa nộp" (`nudge:all:{period}`) or one village (`nudge:v:{village}:{period}`)."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    try:
        if len(parts) == 3 and parts[1] == "all":
            village_id, period_id = None, int(parts[2])
        elif len(parts) == 4 and parts[1] == "v":
            village_id, period_id = int(parts[2]), int(parts[3])
        else:
            raise ValueError(data)
    except ValueError:
        ctx.answer_callback("common/stale_button.html")
        return
    period = ctx.session.get(Period, period_id)
    commune = ctx.session.get(Commune, period.commune_id) if period is not None else None
    if period is None or commune is None or not ctx.actor.can_see_commune(commune):
        _refuse(ctx, data)
        return
    village = ctx.session.get(Village, village_id) if village_id is not None else None
    if village_id is not None and (village is None or village.commune_id != commune.id):
        _refuse(ctx, data)
        return
    if not period.active or not commune.active or (village is not None and not village.active):
        ctx.reply("remind/nudge_no_period.html", commune=commune.name, code=period.code)
        ctx.answer_callback("common/stale_button.html")
        return
    if period.opens_at > ctx.now or not _open(ctx, period, village_id):
        ctx.reply("remind/nudge_closed.html", period=period.label)
        ctx.answer_callback("remind/nudge_toast.html", count=0)
        return
    count = _queue(ctx, commune, period, [village_id] if village_id is not None else None)
    ctx.answer_callback("remind/nudge_toast.html", count=count)


def nudge_button_data(period_id: int, village_id: int | None = None) -> str:
    """Callback data for a nudge button (all villages, or one)."""
    return f"{CB_NUDGE}:all:{period_id}" if village_id is None else f"{CB_NUDGE}:v:{village_id}:{period_id}"
