"""/summary (/tonghop): a period's summary for the commune police, and the roll-up for a province.

Thin adapter over `bot.services.summaries`: pick the scope (one commune's period, or a period code
across the supervisor's province), render it with `templates/summary/` (autoescaped), cut long texts at
line boundaries (`bot.forms.view.split_html`) and queue the messages. Buttons are `sm:<action>:<ids>`
with small integer ids only; every id is checked again against what the sender may see.

Button actions: p (a commune's period), r (province roll-up anchored at a period), l / L (other periods
of the commune / province), f / g (the commune's forms / one of them), F / G (the province's forms / one
of them), v (villages of a period, paged), s (one village's report), t (one long answer in full),
c (communes of a roll-up, paged).
"""

from __future__ import annotations

import html
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, select

from bot.auth import Actor, Need
from bot.forms.model import QType
from bot.forms.view import split_html, vn_date, vn_number
from bot.handlers.registry import REGISTRY, Button, Ctx
from bot.services import summaries
from bot.services.completeness import Scope, VillageState, completeness, province_scope
from bot.services.forms import (
    PeriodChoiceError,
    default_period,
    form_periods,
    get_form,
    periodic_forms,
    resolve_args,
)
from bot.services.reminders import commune_zone
from bot.views.templates import render
from storage import audit
from storage.models import Commune, CommuneForm, FormVersion, Period, Role, Village

log = logging.getLogger(__name__)

CB = "sm"
MAX_CALLBACK_BYTES = 64
NAMES_SHOWN = 40  # village names per list in a summary before "và N thôn khác"
NO_SHOWN = 20  # villages named under a yes/no question
COMMUNES_SHOWN = 40  # lines of the per-commune table in a roll-up message
PAGE = 90  # list buttons per message (Telegram allows 100 in all)
PERIODS_SHOWN = 24
DEFAULT_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

Buttons = tuple[tuple[Button, ...], ...]
Message = tuple[str, Buttons]


# ---------------------------------------------------------------------------------------------- access


def police_commune_ids(actor: Actor) -> list[int]:
    """Communes the actor is police of."""
    return sorted({m.commune_id for m in actor.memberships if m.role == Role.POLICE and m.commune_id})


def supervised_provinces(actor: Actor) -> list[str]:
    """Provinces the actor supervises."""
    return sorted({m.province for m in actor.memberships if m.role == Role.SUPERVISOR and m.province})


def supervises(actor: Actor, commune: Commune) -> bool:
    """Whether the actor is a supervisor of the commune's province."""
    return bool(commune.province) and commune.province in supervised_provinces(actor)


# ---------------------------------------------------------------------------------------------- small helpers


def _button(role: str, data: str, value: Any = "", **extra: Any) -> Button:
    if len(data.encode()) > MAX_CALLBACK_BYTES:  # pragma: no cover - ids are small integers
        raise ValueError(f"callback data too long: {data!r}")
    context = {"selected": False, "detail": "", "state": "", **extra}
    text = render("summary/button.html", role=role, value=value, **context)
    return Button(html.unescape(" ".join(text.split()))[:120], data)


def _rows(buttons: Sequence[Button], per_row: int) -> list[tuple[Button, ...]]:
    return [tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def _messages(text: str, buttons: Buttons = ()) -> list[Message]:
    """A text cut at line boundaries into messages of at most 4096 characters; buttons on the last."""
    parts = split_html(text)
    return [(part, buttons if i == len(parts) - 1 else ()) for i, part in enumerate(parts)]


def _tz(commune: Commune | None, default: ZoneInfo | None = None) -> ZoneInfo:
    return commune_zone(commune, (default or DEFAULT_TZ).key)


def _delay(td: timedelta | None) -> dict[str, int] | None:
    if td is None:
        return None
    minutes = max(int(td.total_seconds() // 60), 0)
    return {"days": minutes // 1440, "hours": minutes % 1440 // 60, "minutes": minutes % 60}


def _capped(items: Sequence[str], limit: int) -> tuple[list[str], int]:
    return list(items[:limit]), max(len(items) - limit, 0)


# ---------------------------------------------------------------------------------------------- rendering


def _indicator(i: summaries.IndicatorSummary, *, roll_up: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": i.kind,
        "label": i.question.label.rstrip(" ?.:"),
        "answered": i.answered,
        "reports": i.reports,
        "has_previous": i.previous is not None,
        "other": i.other,
        "yes": i.yes,
        "no": i.no,
        "with_items": i.with_items,
    }
    if i.kind in ("number", "items"):
        out["total"] = vn_number(i.total if i.total is not None else 0)
        change = i.change
        if change is not None:
            out["change"] = {
                "dir": "up" if change > 0 else "down" if change < 0 else "same",
                "value": vn_number(abs(Decimal(change))),
            }
    if i.kind in ("choice", "multi"):
        out["counts"] = [{"label": c.label, "count": c.count} for c in i.counts]
    if i.kind == "yes_no":
        names = [f"{v.name} ({v.commune})" if roll_up else v.name for v in i.no_villages]
        out["no_villages"], out["no_more"] = _capped(names, NO_SHOWN)
    if i.kind == "date":
        out["first"] = vn_date(i.first) if i.first else None
        out["last"] = vn_date(i.last) if i.last else None
    return out


def _sections(indicators: Sequence[summaries.IndicatorSummary], *, roll_up: bool) -> list[dict[str, Any]]:
    sections: list[dict[str, Any]] = []
    for i in indicators:
        if i.kind in ("choice", "multi", "yes_no", "date") and i.answered == 0 and i.reports == 0:
            continue
        if not sections or sections[-1]["title"] != i.question.section:
            sections.append({"title": i.question.section, "rows": []})
        sections[-1]["rows"].append(_indicator(i, roll_up=roll_up))
    return sections


def _nav_commune(session: Session, period: Period, *, province_button: bool) -> Buttons:
    rows: list[tuple[Button, ...]] = [(_button("villages", f"{CB}:v:{period.id}:0"),)]
    second = [_button("periods", f"{CB}:l:{period.id}")]
    if len(periodic_forms(session, period.commune_id)) > 1:
        second.append(_button("forms", f"{CB}:f:{period.commune_id}"))
    rows.append(tuple(second))
    if province_button:
        rows.append((_button("province", f"{CB}:r:{period.id}"),))
    return tuple(rows)


def _nav_province(session: Session, scope: Scope) -> Buttons:
    anchor = scope.period.id
    second = [_button("periods", f"{CB}:L:{anchor}")]
    if len(_province_forms(session, scope.province or "")) > 1:
        second.append(_button("forms", f"{CB}:F:{anchor}"))
    return ((_button("communes", f"{CB}:c:{anchor}:0"),), tuple(second))


def _free_text_messages(summary: summaries.Summary) -> list[Message]:
    groups: list[dict[str, Any]] = []
    buttons: list[Button] = []
    not_numbered = 0
    for t in summary.free_texts:
        if not groups or groups[-1]["qid"] != t.question.id:
            groups.append({"qid": t.question.id, "label": t.question.label, "rows": []})
        number = None
        if t.truncated:
            if len(buttons) < PAGE:
                number = len(buttons) + 1
                data = f"{CB}:t:{t.period_id}:{t.village_id}:{t.question_index}"
                buttons.append(_button("full_text", data, number))
            else:
                not_numbered += 1
        groups[-1]["rows"].append({"village": t.village, "text": t.text, "number": number})
    text = render(
        "summary/free_texts.html",
        period_label=summary.scope.label,
        groups=groups,
        shortened=bool(buttons),
        not_numbered=not_numbered,
    )
    return _messages(text, tuple(_rows(buttons, 5)))


def _commune_messages(
    session: Session, summary: summaries.Summary, commune: Commune, tz: ZoneInfo, *, province_button: bool
) -> list[Message]:
    comp = summary.completeness
    assert comp is not None
    period = summary.scope.period
    on_time, on_time_more = _capped([v.name for v in comp.on_time], NAMES_SHOWN)
    not_started, not_started_more = _capped([v.name for v in comp.not_started], NAMES_SHOWN)
    c = {
        "total": comp.total,
        "submitted": comp.submitted,
        "missing": comp.missing,
        "on_time_count": len(comp.on_time),
        "on_time": on_time,
        "on_time_more": on_time_more,
        "late_count": len(comp.late),
        "late": [{"name": v.name, "delay": _delay(v.late_by)} for v in comp.late[:NAMES_SHOWN]],
        "late_more": max(len(comp.late) - NAMES_SHOWN, 0),
        "draft_count": len(comp.draft),
        "draft": [{"name": v.name, "progress": v.progress} for v in comp.draft[:NAMES_SHOWN]],
        "draft_more": max(len(comp.draft) - NAMES_SHOWN, 0),
        "not_started_count": len(comp.not_started),
        "not_started": not_started,
        "not_started_more": not_started_more,
    }
    text = render(
        "summary/summary.html",
        commune=commune.name,
        title=summary.form.title,
        period_label=period.label,
        code=period.code,
        due=period.due_at.astimezone(tz),
        overdue=comp.overdue,
        c=c,
        sections=_sections(summary.indicators, roll_up=False),
        prev_label=summary.previous.label if summary.previous else None,
        free_texts=bool(summary.free_texts),
    )
    messages = _messages(text, _nav_commune(session, period, province_button=province_button))
    if summary.free_texts:
        messages += _free_text_messages(summary)
    return messages


def commune_summary_messages(
    session: Session, summary: summaries.Summary, commune: Commune, tz: ZoneInfo
) -> list[Message]:
    """A built commune summary as /tonghop messages, without the supervisor's roll-up button (for pushes)."""
    return _commune_messages(session, summary, commune, tz, province_button=False)


def _province_messages(session: Session, summary: summaries.Summary, now: datetime) -> list[Message]:
    rows = summary.communes
    totals = {
        "total": sum(r.total for r in rows),
        "submitted": sum(r.submitted for r in rows),
        "on_time": sum(r.on_time for r in rows),
        "late": sum(r.late for r in rows),
        "draft": sum(r.draft for r in rows),
        "not_started": sum(r.not_started for r in rows),
    }
    ordered = sorted(rows, key=lambda r: (-r.missing, r.name))
    lines = [
        {
            "name": r.name,
            "submitted": r.submitted,
            "total": r.total,
            "late": r.late,
            "missing": r.missing,
            "overdue": now >= r.due_at,
        }
        for r in ordered[:COMMUNES_SHOWN]
    ]
    text = render(
        "summary/province.html",
        province=summary.scope.province,
        title=summary.form.title,
        period_label=summary.scope.label,
        code=summary.scope.code,
        communes_count=len(rows),
        t=totals,
        communes=lines,
        communes_more=max(len(rows) - COMMUNES_SHOWN, 0),
        sections=_sections(summary.indicators, roll_up=True),
        prev_label=summary.previous.label if summary.previous else None,
        free_text_count=summary.free_text_count,
    )
    return _messages(text, _nav_province(session, summary.scope))


def render_summary_messages(
    session: Session,
    period: Period,
    actor_or_scope: Actor | Scope | str | None,
    now: datetime,
    *,
    tz: ZoneInfo | None = None,
) -> list[Message]:
    """The /summary messages for a period: [(Telegram HTML ≤ 4096 characters, button rows)].

    `actor_or_scope`: an Actor (checked with `can_see_commune`, PermissionError if not allowed; a
    supervisor also gets the "Toàn tỉnh" button), a Scope, a province name (the roll-up of the period's
    code across that province) or None (the period's commune, no check: e.g. for the police chat after
    the deadline digest). Buttons are `bot.handlers.registry.Button(label, data)` with `sm:` data.
    """
    commune = session.get(Commune, period.commune_id)
    if commune is None:
        return []
    province_button = False
    if isinstance(actor_or_scope, Actor):
        if not actor_or_scope.can_see_commune(commune):
            raise PermissionError("this actor may not see the period's commune")
        scope = Scope(period)
        province_button = supervises(actor_or_scope, commune)
    elif isinstance(actor_or_scope, Scope):
        scope = actor_or_scope
    elif isinstance(actor_or_scope, str):
        scope = province_scope(period, actor_or_scope)
    else:
        scope = Scope(period)
    summary = summaries.build_summary(session, scope, now)
    if summary is None:
        return []
    if scope.is_province:
        return _province_messages(session, summary, now)
    return _commune_messages(session, summary, commune, _tz(commune, tz), province_button=province_button)


# ---------------------------------------------------------------------------------------------- provinces


def _province_forms(session: Session, province: str) -> list[tuple[str, str, int]]:
    """Periodic forms used in the province: (form id, title, a representative commune_form id), main first."""
    rows = session.exec(
        select(CommuneForm.id, CommuneForm.commune_id, CommuneForm.form_id)
        .join(Commune, Commune.id == CommuneForm.commune_id)
        .where(Commune.province == province, Commune.active, CommuneForm.active)
        .order_by(CommuneForm.commune_id, CommuneForm.position, CommuneForm.id)
    ).all()
    kinds: dict[str, tuple[str, str]] = {}
    for form_id in {r[2] for r in rows}:
        newest = session.exec(
            select(FormVersion).where(FormVersion.form_id == form_id).order_by(FormVersion.version.desc())  # type: ignore[attr-defined]
        ).first()
        if newest is not None:
            kinds[form_id] = (newest.kind, newest.title)
    periodic = [r for r in rows if kinds.get(r[2], ("",))[0] == "periodic"]
    mains: Counter[str] = Counter()
    seen: set[int] = set()
    representative: dict[str, int] = {}
    for cf_id, commune_id, form_id in periodic:
        representative.setdefault(form_id, cf_id)
        if commune_id not in seen:
            seen.add(commune_id)
            mains[form_id] += 1
    order = sorted(representative, key=lambda f: (-mains[f], list(representative).index(f)))
    return [(f, kinds[f][1], representative[f]) for f in order]


def _province_codes(session: Session, province: str, form_id: str) -> list[tuple[str, str, int, datetime]]:
    """(code, label, anchor period id, first opening) of the form's periods in the province, newest first."""
    rows = session.exec(
        select(Period.code, func.min(Period.label), func.min(Period.id), func.min(Period.opens_at))
        .join(Commune, Commune.id == Period.commune_id)
        .where(Commune.province == province, Commune.active, Period.form_id == form_id, Period.active)
        .group_by(Period.code)
    ).all()
    return sorted(rows, key=lambda r: (r[3], r[0]), reverse=True)


def _province_default(session: Session, province: str, form_id: str, now: datetime) -> Period | None:
    codes = _province_codes(session, province, form_id)
    opened = [r for r in codes if r[3] <= now]
    pick = opened[0] if opened else (codes[-1] if codes else None)
    return session.get(Period, pick[2]) if pick else None


# ---------------------------------------------------------------------------------------------- /summary


def _unknown(
    ctx: Ctx, *, commune: Commune | None, province: str | None, form_arg: str | None, code_arg: str
) -> None:
    forms: list[dict[str, Any]] = []
    if commune is not None:
        for f in periodic_forms(ctx.session, commune.id):
            periods = form_periods(ctx.session, commune.id, f.id)
            forms.append({"id": f.id, "title": f.title, "codes": [p.code for p in periods][:PERIODS_SHOWN]})
    elif province is not None:
        for form_id, title, _ in _province_forms(ctx.session, province):
            codes = [r[0] for r in _province_codes(ctx.session, province, form_id)]
            forms.append({"id": form_id, "title": title, "codes": codes[:PERIODS_SHOWN]})
    ctx.reply(
        "summary/unknown.html",
        commune=commune.name if commune else "",
        province=province,
        form_arg=(form_arg or "")[:64],
        code_arg=code_arg[:64],
        forms=forms,
    )


def _send(ctx: Ctx, messages: Sequence[Message]) -> None:
    for text, buttons in messages:
        ctx.reply_html(text, buttons)


def _show_commune(ctx: Ctx, period: Period) -> None:
    commune = ctx.session.get(Commune, period.commune_id)
    tz = _tz(commune, ctx.deps.settings.timezone)
    messages = render_summary_messages(ctx.session, period, ctx.actor, ctx.now, tz=tz)
    if not messages:  # the form's definition is missing from the database
        ctx.reply("summary/no_form.html", commune=commune.name if commune else "")
    _send(ctx, messages)


def _show_province(ctx: Ctx, period: Period, province: str) -> None:
    messages = render_summary_messages(ctx.session, period, province, ctx.now)
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
        choice = resolve_args(ctx.session, commune.id, args, ctx.now)
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
    forms = _province_forms(ctx.session, province)
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
        period = _province_default(ctx.session, province, form_id, ctx.now)
        if period is None:
            ctx.reply("summary/no_period.html", title=titles[form_id], commune="", province=province)
            return
        _show_province(ctx, period, province)
        return
    search = [form_id] if form_arg is not None else form_ids
    for fid in search:
        for code, _, anchor, _ in _province_codes(ctx.session, province, fid):
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


async def _on_period(ctx: Ctx, period_id: int) -> None:
    found = _visible_period(ctx, period_id)
    if found is not None:
        _show_commune(ctx, found[0])


async def _on_rollup(ctx: Ctx, period_id: int) -> None:
    found = _supervised_period(ctx, period_id)
    if found is not None:
        _show_province(ctx, *found)


async def _on_periods(ctx: Ctx, period_id: int) -> None:
    found = _visible_period(ctx, period_id)
    if found is None:
        return
    period, commune = found
    periods = form_periods(ctx.session, commune.id, period.form_id)[:PERIODS_SHOWN]
    buttons = [
        _button("period", f"{CB}:p:{p.id}", p.code, detail=p.label, selected=p.id == period.id)
        for p in periods
    ]
    form = get_form(ctx.session, period.form_id)
    ctx.reply(
        "summary/periods.html",
        buttons=tuple(_rows(buttons, 1)),
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
    codes = _province_codes(ctx.session, province, period.form_id)[:PERIODS_SHOWN]
    buttons = [
        _button("period", f"{CB}:r:{anchor}", code, detail=label, selected=code == period.code)
        for code, label, anchor, _ in codes
    ]
    form = get_form(ctx.session, period.form_id)
    ctx.reply(
        "summary/periods.html",
        buttons=tuple(_rows(buttons, 1)),
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
    buttons = [_button("form", f"{CB}:g:{f.commune_form.id}", f.title) for f in forms]
    ctx.reply(
        "summary/forms.html",
        buttons=tuple(_rows(buttons, 1)),
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
    period = default_period(form_periods(ctx.session, commune.id, cf.form_id), ctx.now)
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
    forms = _province_forms(ctx.session, province)
    buttons = [_button("form", f"{CB}:G:{cf_id}", title) for _, title, cf_id in forms]
    ctx.reply(
        "summary/forms.html",
        buttons=tuple(_rows(buttons, 1)),
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
    period = _province_default(ctx.session, province, cf.form_id, ctx.now)
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
    pages = max((comp.total + PAGE - 1) // PAGE, 1)
    page = min(max(page, 0), pages - 1)
    chunk = comp.villages[page * PAGE : (page + 1) * PAGE]
    buttons = [
        _button("village", f"{CB}:s:{period.id}:{v.village_id}", v.name, state=str(v.state)) for v in chunk
    ]
    rows = _rows(buttons, 2)
    nav = [_button("back_summary", f"{CB}:p:{period.id}")]
    if page + 1 < pages:
        nav.append(_button("next_page", f"{CB}:v:{period.id}:{page + 1}"))
    rows.append(tuple(nav))
    text = render(
        "summary/villages.html", commune=commune.name, period_label=period.label, page=page + 1, pages=pages
    )
    ctx.reply_html(text, tuple(rows))


def _village_of(ctx: Ctx, period: Period, village_id: int) -> Village | None:
    village = ctx.session.get(Village, village_id)
    if village is None or village.commune_id != period.commune_id:
        _refuse(ctx, "village", [period.id, village_id])
        return None
    return village


async def _on_village(ctx: Ctx, period_id: int, village_id: int) -> None:
    found = _visible_period(ctx, period_id)
    if found is None:
        return
    period, commune = found
    village = _village_of(ctx, period, village_id)
    if village is None:
        return
    back = (
        (_button("back_villages", f"{CB}:v:{period.id}:0"), _button("back_summary", f"{CB}:p:{period.id}")),
    )
    report = summaries.village_submission(ctx.session, village, period)
    tz = _tz(commune, ctx.deps.settings.timezone)
    if report is None:
        status = next(
            (v for v in completeness(ctx.session, period, ctx.now).villages if v.village_id == village.id),
            None,
        )
        text = render(
            "summary/village_missing.html",
            village=village.name,
            period_label=period.label,
            code=period.code,
            state=str(status.state) if status else str(VillageState.NOT_STARTED),
            progress=status.progress if status else None,
            overdue=ctx.now >= period.due_at,
        )
        _send(ctx, _messages(text, back))
        return
    text = render(
        "summary/village.html",
        village=village.name,
        commune=commune.name,
        title=report.form.title,
        period_label=period.label,
        sent_at=report.submission.sent_at.astimezone(tz),
        first_sent_at=report.first_sent_at.astimezone(tz),
        receipt=report.submission.receipt,
        version=report.submission.version_no,
        late=_delay(report.late_by),
        rows=report.rows,
    )
    _send(ctx, _messages(text, back))


async def _on_full_text(ctx: Ctx, period_id: int, village_id: int, index: int) -> None:
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
        if question is not None and question.type == QType.LONG_TEXT
        else None
    )
    if question is None or text is None:
        ctx.answer_callback("common/stale_button.html")
        return
    body = render(
        "summary/full_text.html",
        village=village.name,
        period_label=period.label,
        label=question.label,
        text=text,
    )
    _send(ctx, _messages(body))


async def _on_communes(ctx: Ctx, period_id: int, page: int = 0) -> None:
    found = _supervised_period(ctx, period_id)
    if found is None:
        return
    period, province = found
    rows = sorted(
        summaries.commune_completeness(ctx.session, province_scope(period, province)), key=lambda r: r.name
    )
    pages = max((len(rows) + PAGE - 1) // PAGE, 1)
    page = min(max(page, 0), pages - 1)
    chunk = rows[page * PAGE : (page + 1) * PAGE]
    buttons = [
        _button("commune", f"{CB}:p:{r.period_id}", r.name, detail=f"{r.submitted}/{r.total}") for r in chunk
    ]
    out = _rows(buttons, 2)
    nav = [_button("back_summary", f"{CB}:r:{period.id}")]
    if page + 1 < pages:
        nav.append(_button("next_page", f"{CB}:c:{period.id}:{page + 1}"))
    out.append(tuple(nav))
    text = render(
        "summary/communes.html", province=province, period_label=period.label, page=page + 1, pages=pages
    )
    ctx.reply_html(text, tuple(out))


_ACTIONS: dict[str, tuple[Callable[..., Awaitable[None]], tuple[int, ...]]] = {
    "p": (_on_period, (1,)),
    "r": (_on_rollup, (1,)),
    "l": (_on_periods, (1,)),
    "L": (_on_province_periods, (1,)),
    "f": (_on_forms, (1,)),
    "g": (_on_form, (1,)),
    "F": (_on_province_forms, (1,)),
    "G": (_on_province_form, (1,)),
    "v": (_on_villages, (1, 2)),
    "s": (_on_village, (2,)),
    "t": (_on_full_text, (3,)),
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


__all__ = [
    "CB",
    "commune_summary_messages",
    "police_commune_ids",
    "render_summary_messages",
    "summary_button",
    "summary_command",
    "supervised_provinces",
    "supervises",
]
