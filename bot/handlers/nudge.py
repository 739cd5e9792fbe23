"""Police nudges: `/nhacnho [TÊN THÔN] [MÃ KỲ]` and the digest's buttons queue a reminder now
(`nudge_command`, `nudge_button`, `nudge_button_data`).

Design notes: docs/design-notes.md#bothandlersnudgepy
"""

from __future__ import annotations

from bot.auth import Need
from bot.handlers.registry import REGISTRY
from bot.services import directory, police_focus, reminders
from bot.services.reports import reopened_until
from bot.texts.templates import render
from bot.updates.context import Ctx
from bot.views.buttons import ButtonRows, ReplyButton
from storage.models import Commune, Period, Role, Village

CB_NUDGE = "nudge"
MAX_OTHER_PERIODS = 6  # "nudge another period" buttons under a result
MAX_VILLAGE_BUTTONS = 10  # candidates offered for an unknown or ambiguous village name


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
    return bool(police_focus.nudgeable(ctx.session, [period], ctx.now))  # a village reopened


def _others(ctx: Ctx, commune: Commune, period: Period) -> ButtonRows:
    """Buttons to nudge another period still taking reports (any form), so no code is typed from memory."""
    menu = police_focus.period_menu(ctx.session, commune.id, ctx.now, exclude=period.id)
    periods = police_focus.nudgeable(ctx.session, menu, ctx.now)[:MAX_OTHER_PERIODS]
    return tuple(
        (
            ReplyButton(
                render("remind/nudge_period_button.html", label=p.label, code=p.code), nudge_button_data(p.id)
            ),
        )
        for p in periods
    )


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
    ids = {v.name: v.id for v in directory.active_villages(ctx.session, [commune.id])}
    with_head = police_focus.registered_heads(ctx.session, [ids[n] for n in result.unreachable if n in ids])
    no_head = [n for n in result.unreachable if ids.get(n) not in with_head]
    blocked = [n for n in result.unreachable if ids.get(n) in with_head]
    owing = len(result.queued) + len(result.recent) + len(result.unreachable) + len(result.closed)
    ctx.reply(
        "remind/nudge_result.html",
        buttons=_others(ctx, commune, period) if village_ids is None else (),
        period=period.label,
        commune=commune.name,
        due=period.due_at.astimezone(tz),
        owing=owing,
        one_village=village_ids is not None,
        queued=result.queued,
        recent=[(name, at.astimezone(tz)) for name, at in result.recent],
        submitted=result.submitted,
        closed=result.closed,
        no_head=no_head,
        blocked=blocked,
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
        codes = {
            c.casefold(): c for c in directory.active_period_codes(ctx.session, [c.id for c in communes])
        }
        if args[-1].casefold() in codes:
            code, args = codes[args[-1].casefold()], args[:-1]
    name = " ".join(args).strip()
    village = None
    villages = directory.active_villages(ctx.session, [c.id for c in communes], by_name=True)
    if name:
        found = police_focus.find_villages(villages, name)
        if len(found) != 1:
            _which_village(ctx, name, found or villages, communes, code, ambiguous=bool(found))
            return
        village = found[0]
    targets = [c for c in communes if village is None or c.id == village.commune_id]
    for commune in targets:
        period = _period(ctx, commune, code)
        if period is None:
            ctx.reply("remind/nudge_no_period.html", commune=commune.name, code=code)
            continue
        if not _open(ctx, period, village.id if village else None):
            ctx.reply("remind/nudge_closed.html", period=period.label, buttons=_others(ctx, commune, period))
            continue
        _queue(ctx, commune, period, [village.id] if village else None)


def _period(ctx: Ctx, commune: Commune, code: str | None) -> Period | None:
    """The period named by its code (the one still taking reports first), else the police's default."""
    if code is None:
        return police_focus.focus_period(ctx.session, commune.id, ctx.now, opened_only=True)
    named = [
        p for p in police_focus.period_menu(ctx.session, commune.id, ctx.now, size=10_000) if p.code == code
    ]
    live = police_focus.nudgeable(ctx.session, named, ctx.now)
    return (live or named or [None])[0]


def _which_village(
    ctx: Ctx,
    name: str,
    villages: list[Village],
    communes: list[Commune],
    code: str | None,
    *,
    ambiguous: bool,
) -> None:
    """Unknown or ambiguous name: the candidates (or the villages) as buttons for the default period."""
    buttons: list[tuple[ReplyButton, ...]] = []
    for v in villages[:MAX_VILLAGE_BUTTONS]:
        commune = next(c for c in communes if c.id == v.commune_id)
        period = _period(ctx, commune, code)
        if period is not None:
            buttons.append((ReplyButton(v.name, nudge_button_data(period.id, v.id)),))
    ctx.reply(
        "remind/nudge_usage.html",
        buttons=tuple(buttons),
        problem=name[:64],
        ambiguous=ambiguous,
        more=max(len(villages) - MAX_VILLAGE_BUTTONS, 0),
    )


def _refuse(ctx: Ctx, data: str) -> None:
    ctx.refuse_button("remind/nudge_not_yours.html", "nudge", data)


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
