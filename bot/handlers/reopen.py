"""Police: /molai reopens a village's report after the deadline (`reopen_command`, `reopen_button`).

`/molai` alone offers the commune's villages as buttons (paged); `/molai na lang` finds "Thôn Nà Làng" by a
loose name (no diacritics, no "Thôn"), an ambiguous one offers the candidates; the period is the police's
default (bot/services/police_focus.py) when it is past due, else the recent past-due periods as buttons.
Buttons: `mo:v:<village>` (a village), `mo:r:<village>:<period>` (reopen), `mo:p:<page>` (villages page).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.auth import Need, police_commune_ids
from bot.handlers.registry import REGISTRY
from bot.services import directory, police_focus, reports
from bot.services.outbox_messages import KIND_NOTICE, queue_message
from bot.texts.templates import render
from bot.updates.context import Ctx
from bot.views.buttons import ButtonRows, ReplyButton
from storage.models import Commune, Period, Village

CB_REOPEN = "mo"
PAGE = 10  # village buttons a page (two a row), leaving a row for "previous / next"
MAX_PERIODS = 6  # period buttons offered


def _tz(ctx: Ctx, commune: Commune | None) -> ZoneInfo:
    if commune is not None and commune.timezone:
        try:
            return ZoneInfo(commune.timezone)
        except Exception:
            pass
    return ctx.deps.settings.timezone


def _local(ctx: Ctx, at: datetime | None, commune: Commune | None = None) -> datetime | None:
    return at.astimezone(_tz(ctx, commune)) if at is not None else None


def _communes(ctx: Ctx) -> list[Commune]:
    """Only communes where the sender is police: a village head of commune X who is also police of commune
    Y must not reopen X's villages (ctx.actor.communes holds the communes of every role)."""
    police_of = set(police_commune_ids(ctx.actor))
    return [c for c in ctx.actor.communes.values() if c.id in police_of and c.active]


def _villages(ctx: Ctx) -> list[Village]:
    return directory.active_villages(ctx.session, [c.id for c in _communes(ctx)], by_name=True)


@REGISTRY.command("molai", need=Need.POLICE)
async def reopen_command(ctx: Ctx) -> None:
    """Police: reopen a village's report after the deadline: /molai [TÊN THÔN] [MÃ KỲ]; bare: village buttons."""
    villages = _villages(ctx)
    if not villages:
        ctx.reply("report/reopen_usage.html", empty=True, missing="", ambiguous=False, page=1, pages=1)
        return
    args = list(ctx.args)
    code = None
    if args:
        codes = {
            c.casefold(): c
            for c in directory.active_period_codes(ctx.session, {v.commune_id for v in villages})
        }
        if args[-1].casefold() in codes:
            code, args = codes[args[-1].casefold()], args[:-1]
    name = " ".join(args).strip()
    if not name:
        _village_page(ctx, villages, 0, missing="")
        return
    found = police_focus.find_villages(villages, name)
    if not found:
        _village_page(ctx, villages, 0, missing=name[:64])
        return
    if len(found) > 1:
        _village_page(ctx, found, 0, missing=name[:64], ambiguous=True)
        return
    _for_village(ctx, found[0], code)


def _village_page(
    ctx: Ctx, villages: list[Village], page: int, *, missing: str, ambiguous: bool = False
) -> None:
    """A page of village buttons (`mo:v`), with "previous / next" (`mo:p`) when there are more."""
    pages = max((len(villages) + PAGE - 1) // PAGE, 1)
    page = min(max(page, 0), pages - 1)
    chunk = villages[page * PAGE : (page + 1) * PAGE]
    rows: list[tuple[ReplyButton, ...]] = [
        tuple(ReplyButton(v.name, f"{CB_REOPEN}:v:{v.id}") for v in chunk[i : i + 2])
        for i in range(0, len(chunk), 2)
    ]
    nav = []
    if not ambiguous and page > 0:
        nav.append(ReplyButton(render("report/reopen_nav.html", to="prev"), f"{CB_REOPEN}:p:{page - 1}"))
    if not ambiguous and page + 1 < pages:
        nav.append(ReplyButton(render("report/reopen_nav.html", to="next"), f"{CB_REOPEN}:p:{page + 1}"))
    if nav:
        rows.append(tuple(nav))
    ctx.reply(
        "report/reopen_usage.html",
        buttons=tuple(rows),
        empty=False,
        missing=missing,
        ambiguous=ambiguous,
        page=page + 1,
        pages=pages,
    )


def _past_due(ctx: Ctx, commune_id: int) -> list[Period]:
    """The periods past their deadline that still take late reports (newest first): a reopening of a period
    no longer taken would not show in the head's /baocao."""
    periods = directory.opened_periods(ctx.session, [commune_id], ctx.now)  # latest deadline first
    return [p for p in periods if p.due_at <= ctx.now < p.closes_at][:MAX_PERIODS]


def _for_village(ctx: Ctx, village: Village, code: str | None) -> None:
    """Reopen the period named, or the police's default if past due; else offer the periods as buttons."""
    opened = directory.opened_periods(ctx.session, [village.commune_id], ctx.now)
    if code is not None:
        period = next((p for p in opened if p.code == code), None)
        if period is not None:
            _reopen(ctx, village, period)
            return
    focus = police_focus.focus_period(ctx.session, village.commune_id, ctx.now, opened_only=True)
    if code is None and focus is not None and focus.due_at <= ctx.now < focus.closes_at:
        _reopen(ctx, village, focus)
        return
    choices = _past_due(ctx, village.commune_id)
    if len(choices) == 1 and code is None:
        _reopen(ctx, village, choices[0])
        return
    buttons: ButtonRows = tuple(
        (
            ReplyButton(
                render("report/reopen_period_button.html", label=p.label, code=p.code),
                f"{CB_REOPEN}:r:{village.id}:{p.id}",
            ),
        )
        for p in choices
    )
    ctx.reply(
        "report/reopen_periods.html",
        buttons=buttons,
        village=village.name,
        unknown_code=code or "",
        any=bool(choices),
    )


def _reopen(ctx: Ctx, village: Village, period: Period) -> None:
    """Reopen, tell the officer (truly: who can be told), and owe the head a notice through the outbox."""
    row = reports.reopen(ctx.session, police=ctx.actor.person, village=village, period=period, now=ctx.now)
    commune = ctx.session.get(Commune, village.commune_id)
    until = _local(ctx, row.until, commune)
    reach = police_focus.reporters_reach(ctx.session, village.id)
    ctx.reply(
        "report/reopened.html",
        period=period.label,
        village=village.name,
        until=until,
        reachable=len(reach.reachable),
        blocked=reach.blocked,
        registered=reach.registered,
    )
    notice = render("report/reopened_notice.html", period=period.label, until=until)
    for person in reach.reachable:
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


def _refuse(ctx: Ctx, data: str) -> None:
    ctx.refuse_button("report/reopen_refused.html", "reopen", data)


@REGISTRY.callback(CB_REOPEN, need=Need.POLICE)
async def reopen_button(ctx: Ctx) -> None:
    """`mo:v:<village>`, `mo:r:<village>:<period>` or `mo:p:<page>`, every id checked again."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    try:
        action, ids = parts[1], [int(x) for x in parts[2:]]
    except (IndexError, ValueError):
        action, ids = "", []
    if (action, len(ids)) not in {("v", 1), ("r", 2), ("p", 1)} or any(i < 0 or i > 2**62 for i in ids):
        ctx.answer_callback("common/stale_button.html")
        return
    villages = _villages(ctx)
    if action == "p":
        _village_page(ctx, villages, ids[0], missing="")
        return
    village = next((v for v in villages if v.id == ids[0]), None)
    if village is None:
        _refuse(ctx, data)
        return
    if action == "v":
        _for_village(ctx, village, None)
        return
    period = ctx.session.get(Period, ids[1])
    if period is None or period.commune_id != village.commune_id:
        _refuse(ctx, data)
        return
    if not period.active or period.opens_at > ctx.now:
        ctx.answer_callback("common/stale_button.html")
        return
    _reopen(ctx, village, period)


__all__ = ["CB_REOPEN", "reopen_button", "reopen_command"]
