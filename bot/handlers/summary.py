"""/summary (/tonghop) for the commune police and the province roll-up: commands and `sm:` buttons.

Thin adapter: every id from a button is checked against what the sender may see; bot/views/summary.py
builds the screens."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.auth import Need, police_commune_ids, supervised_provinces, supervises
from bot.forms.types import type_of
from bot.handlers.documents import show_files
from bot.handlers.registry import REGISTRY
from bot.services import police_focus, summaries
from bot.services.completeness import completeness, province_scope
from bot.services.forms import (
    PeriodChoiceError,
    form_periods,
    get_form,
    periodic_forms,
)
from bot.services.province_forms import province_codes, province_default, province_forms
from bot.updates.context import Ctx
from bot.views.summary import (
    CB,
    PERIODS_SHOWN,
    Buttons,
    Message,
    communes_page,
    form_buttons,
    full_text_messages,
    period_buttons,
    province_form_buttons,
    province_period_buttons,
    render_summary_messages,
    village_messages,
    village_missing_messages,
    villages_page,
    zone,
)
from storage import audit
from storage.models import Commune, CommuneForm, Period, Village

log = logging.getLogger(__name__)

CODES_SHOWN = 8  # period codes listed per form after a wrong one (the periods in play are also buttons)


# ---------------------------------------------------------------------------------------------- /summary


def _unknown(
    ctx: Ctx, *, commune: Commune | None, province: str | None, form_arg: str | None, code_arg: str
) -> None:
    forms: list[dict[str, Any]] = []
    buttons: Buttons = ()
    if commune is not None:
        for f in periodic_forms(ctx.session, commune.id):
            periods = form_periods(ctx.session, commune.id, f.id)
            forms.append({"id": f.id, "title": f.title, "codes": [p.code for p in periods][:CODES_SHOWN]})
        buttons = period_buttons(police_focus.period_menu(ctx.session, commune.id, ctx.now), -1)
    elif province is not None:
        for form_id, title, _ in province_forms(ctx.session, province):
            codes = [r[0] for r in province_codes(ctx.session, province, form_id)]
            forms.append({"id": form_id, "title": title, "codes": codes[:CODES_SHOWN]})
    ctx.reply(
        "summary/unknown.html",
        buttons=buttons,
        commune=commune.name if commune else "",
        province=province,
        form_arg=(form_arg or "")[:64],
        code_arg=code_arg[:64],
        forms=forms,
    )


def _send(ctx: Ctx, messages: Sequence[Message]) -> None:
    for text, buttons in messages:
        ctx.reply_html(text, buttons)


def _show_commune(ctx: Ctx, period: Period, page: int = 0) -> None:
    commune = ctx.session.get(Commune, period.commune_id)
    tz = zone(commune, ctx.deps.settings.timezone)
    messages = render_summary_messages(ctx.session, period, ctx.actor, ctx.now, tz=tz, page=page)
    if not messages:  # the form's definition is missing from the database
        ctx.reply("summary/no_form.html", commune=commune.name if commune else "")
    _send(ctx, messages)


def _show_province(ctx: Ctx, period: Period, province: str, page: int = 0) -> None:
    messages = render_summary_messages(ctx.session, period, province, ctx.now, page=page)
    if not messages:
        ctx.reply("summary/no_form.html", commune=province)
    _send(ctx, messages)


@REGISTRY.command("summary", "tonghop", need=Need.POLICE)
async def summary_command(ctx: Ctx) -> None:
    """The summary of the current (or just-closed) period; `/tonghop [MÃ-BIỂU-MẪU] [MÃ-KỲ]` picks one."""
    args = [a.strip() for a in ctx.args if a.strip()]
    if len(args) > 2:
        ctx.reply("summary/usage.html", args=" ".join(args)[:200])
        return
    commune_ids = police_commune_ids(ctx.actor)
    if commune_ids:
        commune = ctx.session.get(Commune, commune_ids[0])
        if commune is None or not ctx.actor.can_see_commune(commune):
            ctx.reply("summary/no_commune.html", province=None)
            return
        _commune_command(ctx, commune, args)
        return
    provinces = supervised_provinces(ctx.actor)
    if not provinces:
        ctx.reply("summary/no_commune.html", province=None)
        return
    _province_command(ctx, provinces[0], args)


def _commune_command(ctx: Ctx, commune: Commune, args: list[str]) -> None:
    try:
        choice = police_focus.choose(ctx.session, commune.id, args, ctx.now)
    except PeriodChoiceError as wrong:
        if wrong.code == "no_form":
            ctx.reply("summary/no_form.html", commune=commune.name)
        elif wrong.code == "no_period" and wrong.form is not None:
            ctx.reply("summary/no_period.html", title=wrong.form.title, commune=commune.name, province=None)
        else:
            _unknown(
                ctx, commune=commune, province=None, form_arg=wrong.form_arg, code_arg=wrong.period_arg or ""
            )
        return
    _show_commune(ctx, choice.period)


def _province_command(ctx: Ctx, province: str, args: list[str]) -> None:
    forms = province_forms(ctx.session, province)
    if not forms:
        ctx.reply("summary/no_commune.html", province=province)
        return
    form_ids = [f for f, _, _ in forms]
    titles = {f: t for f, t, _ in forms}
    form_id: str | None = form_ids[0]
    code_arg: str | None = None
    form_arg: str | None = None
    if args:
        form_arg, code_arg = (args[0], args[1]) if len(args) == 2 else (None, args[0])
        if form_arg is None and code_arg.lower() in {f.lower() for f in form_ids}:
            form_id, code_arg = next(f for f in form_ids if f.lower() == code_arg.lower()), None
        elif form_arg is not None:
            form_id = next((f for f in form_ids if f.lower() == form_arg.lower()), None)
    if form_id is None:
        _unknown(ctx, commune=None, province=province, form_arg=form_arg, code_arg=code_arg or "")
        return
    if code_arg is None:
        period = province_default(ctx.session, province, form_id, ctx.now)
        if period is None:
            ctx.reply("summary/no_period.html", title=titles[form_id], commune="", province=province)
            return
        _show_province(ctx, period, province)
        return
    search = [form_id] if form_arg is not None else form_ids
    for fid in search:
        for code, _, anchor, _ in province_codes(ctx.session, province, fid):
            if code.lower() == code_arg.lower():
                period = ctx.session.get(Period, anchor)
                if period is not None:
                    _show_province(ctx, period, province)
                    return
    _unknown(ctx, commune=None, province=province, form_arg=form_arg, code_arg=code_arg)


# ---------------------------------------------------------------------------------------------- buttons


def _refuse(ctx: Ctx, what: str, ids: Sequence[int]) -> None:
    """A button for something the sender may not see (or that does not exist): one polite refusal."""
    ctx.reply("summary/forbidden.html")
    ctx.answer_callback("summary/forbidden_short.html")
    audit.record(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        action="summary.refused",
        entity=what,
        entity_id=":".join(str(i) for i in ids)[:64],
    )


def _visible_period(ctx: Ctx, period_id: int) -> tuple[Period, Commune] | None:
    period = ctx.session.get(Period, period_id)
    commune = ctx.session.get(Commune, period.commune_id) if period is not None else None
    if period is None or commune is None or not commune.active or not ctx.actor.can_see_commune(commune):
        _refuse(ctx, "period", [period_id])
        return None
    return period, commune


def _supervised_period(ctx: Ctx, period_id: int) -> tuple[Period, str] | None:
    period = ctx.session.get(Period, period_id)
    commune = ctx.session.get(Commune, period.commune_id) if period is not None else None
    if period is None or commune is None or not commune.active or not supervises(ctx.actor, commune):
        _refuse(ctx, "province", [period_id])
        return None
    return period, commune.province or ""


async def _on_period(ctx: Ctx, period_id: int, page: int = 0) -> None:
    found = _visible_period(ctx, period_id)
    if found is not None:
        _show_commune(ctx, found[0], page)


async def _on_rollup(ctx: Ctx, period_id: int, page: int = 0) -> None:
    found = _supervised_period(ctx, period_id)
    if found is not None:
        _show_province(ctx, *found, page)


async def _on_periods(ctx: Ctx, period_id: int) -> None:
    found = _visible_period(ctx, period_id)
    if found is None:
        return
    period, commune = found
    periods = form_periods(ctx.session, commune.id, period.form_id)[:PERIODS_SHOWN]
    form = get_form(ctx.session, period.form_id)
    ctx.reply(
        "summary/periods.html",
        buttons=period_buttons(periods, period.id),
        title=form.title if form else period.form_id,
        commune=commune.name,
        province=None,
        periods=[p.code for p in periods],
    )


async def _on_province_periods(ctx: Ctx, period_id: int) -> None:
    found = _supervised_period(ctx, period_id)
    if found is None:
        return
    period, province = found
    codes = province_codes(ctx.session, province, period.form_id)[:PERIODS_SHOWN]
    form = get_form(ctx.session, period.form_id)
    ctx.reply(
        "summary/periods.html",
        buttons=province_period_buttons(codes, period.code),
        title=form.title if form else period.form_id,
        commune="",
        province=province,
        periods=[c[0] for c in codes],
    )


async def _on_forms(ctx: Ctx, commune_id: int) -> None:
    commune = ctx.session.get(Commune, commune_id)
    if commune is None or not commune.active or not ctx.actor.can_see_commune(commune):
        _refuse(ctx, "commune", [commune_id])
        return
    forms = periodic_forms(ctx.session, commune.id)
    ctx.reply(
        "summary/forms.html",
        buttons=form_buttons(forms),
        commune=commune.name,
        province=None,
        forms=[f.id for f in forms],
    )


async def _on_form(ctx: Ctx, commune_form_id: int) -> None:
    cf = ctx.session.get(CommuneForm, commune_form_id)
    commune = ctx.session.get(Commune, cf.commune_id) if cf is not None else None
    if cf is None or commune is None or not commune.active or not ctx.actor.can_see_commune(commune):
        _refuse(ctx, "commune_form", [commune_form_id])
        return
    period = police_focus.focus_period(ctx.session, commune.id, ctx.now, form_id=cf.form_id)
    if period is None:
        form = get_form(ctx.session, cf.form_id)
        ctx.reply(
            "summary/no_period.html",
            title=form.title if form else cf.form_id,
            commune=commune.name,
            province=None,
        )
        return
    _show_commune(ctx, period)


async def _on_province_forms(ctx: Ctx, period_id: int) -> None:
    found = _supervised_period(ctx, period_id)
    if found is None:
        return
    _, province = found
    forms = province_forms(ctx.session, province)
    ctx.reply(
        "summary/forms.html",
        buttons=province_form_buttons(forms),
        commune="",
        province=province,
        forms=[f for f, _, _ in forms],
    )


async def _on_province_form(ctx: Ctx, commune_form_id: int) -> None:
    cf = ctx.session.get(CommuneForm, commune_form_id)
    commune = ctx.session.get(Commune, cf.commune_id) if cf is not None else None
    if cf is None or commune is None or not commune.active or not supervises(ctx.actor, commune):
        _refuse(ctx, "province_form", [commune_form_id])
        return
    province = commune.province or ""
    period = province_default(ctx.session, province, cf.form_id, ctx.now)
    if period is None:
        form = get_form(ctx.session, cf.form_id)
        ctx.reply(
            "summary/no_period.html", title=form.title if form else cf.form_id, commune="", province=province
        )
        return
    _show_province(ctx, period, province)


async def _on_villages(ctx: Ctx, period_id: int, page: int = 0) -> None:
    found = _visible_period(ctx, period_id)
    if found is None:
        return
    period, commune = found
    comp = completeness(ctx.session, period, ctx.now, progress=False)
    ctx.reply_html(*villages_page(period, commune, comp, page))


def _village_of(ctx: Ctx, period: Period, village_id: int) -> Village | None:
    village = ctx.session.get(Village, village_id)
    if village is None or village.commune_id != period.commune_id:
        _refuse(ctx, "village", [period.id, village_id])
        return None
    return village


async def _on_village(ctx: Ctx, period_id: int, village_id: int, page: int = 0) -> None:
    found = _visible_period(ctx, period_id)
    if found is None:
        return
    period, commune = found
    village = _village_of(ctx, period, village_id)
    if village is None:
        return
    report = summaries.village_submission(ctx.session, village, period)
    tz = zone(commune, ctx.deps.settings.timezone)
    if report is None:
        status = next(
            (v for v in completeness(ctx.session, period, ctx.now).villages if v.village_id == village.id),
            None,
        )
        _send(ctx, village_missing_messages(village, period, status, overdue=ctx.now >= period.due_at))
        return
    _send(ctx, village_messages(village, commune, period, report, tz, page))
    if page == 0 and report.submission.id is not None:
        show_files(ctx, report.submission.id)  # the report's files, a button each to get one again


async def _on_full_text(ctx: Ctx, period_id: int, village_id: int, index: int, page: int = 0) -> None:
    found = _visible_period(ctx, period_id)
    if found is None:
        return
    period, _ = found
    village = _village_of(ctx, period, village_id)
    if village is None:
        return
    form = get_form(ctx.session, period.form_id)
    question = form.questions[index] if form is not None and 0 <= index < len(form.questions) else None
    text = (
        summaries.full_text(ctx.session, period, village.id, question.id)
        if question is not None and type_of(question).free_text
        else None
    )
    if question is None or text is None:
        ctx.answer_callback("common/stale_button.html")
        return
    _send(ctx, full_text_messages(village, period, question, text, index, page))


async def _on_communes(ctx: Ctx, period_id: int, page: int = 0) -> None:
    found = _supervised_period(ctx, period_id)
    if found is None:
        return
    period, province = found
    rows = sorted(
        summaries.commune_completeness(ctx.session, province_scope(period, province)), key=lambda r: r.name
    )
    ctx.reply_html(*communes_page(period, province, rows, page))


# p (a commune's period), r (province roll-up anchored at a period), l / L (other periods of the commune /
# province), f / g (the commune's forms / one of them), F / G (the province's forms / one of them),
# v (villages of a period, paged), s (one village's report), t (one long answer in full),
# c (communes of a roll-up, paged); p, r, s and t take a page number as their last id (default: the first);
# the value: the handler and the numbers of ids it takes
_ACTIONS: dict[str, tuple[Callable[..., Awaitable[None]], tuple[int, ...]]] = {
    "p": (_on_period, (1, 2)),
    "r": (_on_rollup, (1, 2)),
    "l": (_on_periods, (1,)),
    "L": (_on_province_periods, (1,)),
    "f": (_on_forms, (1,)),
    "g": (_on_form, (1,)),
    "F": (_on_province_forms, (1,)),
    "G": (_on_province_form, (1,)),
    "v": (_on_villages, (1, 2)),
    "s": (_on_village, (2, 3)),
    "t": (_on_full_text, (3, 4)),
    "c": (_on_communes, (1, 2)),
}


@REGISTRY.callback(CB, need=Need.POLICE)
async def summary_button(ctx: Ctx) -> None:
    """A summary button: `sm:<action>:<id>[:<id>…]`, every id checked again before use."""
    parts = (ctx.update.callback_query.data or "").split(":")
    entry = _ACTIONS.get(parts[1]) if len(parts) > 1 else None
    try:
        ids = [int(x) for x in parts[2:]]
    except ValueError:
        ids = []
    if entry is None or len(ids) not in entry[1] or any(i < 0 or i > 2**62 for i in ids):
        ctx.answer_callback("common/stale_button.html")
        return
    await entry[0](ctx, *ids)


__all__ = ["CB", "render_summary_messages", "summary_button", "summary_command"]
