"""Police: /xuat (/export) sends a period's compiled report as Excel, Word or CSV
(`export_command`, and the `pick_commune` / `pick_format` buttons).

Design notes: docs/design-notes.md#bothandlersexportpy
"""

from __future__ import annotations

import contextlib
from typing import Any

from telegram import InputFile
from telegram.constants import ParseMode

from bot.auth import Need, police_commune_ids, supervised_provinces
from bot.exports import (
    FORMATS,
    ExportError,
    ExportFile,
    build_export,
    normalise_format,
    periodic_forms,
    record_export,
    resolve_words,
)
from bot.exports.rollup import resolve_rollup
from bot.exports.rollup_export import build_rollup_export
from bot.handlers.registry import REGISTRY
from bot.services import directory, police_focus
from bot.services.accounts import normalize_name
from bot.services.completeness import completeness
from bot.services.zones import commune_zone
from bot.texts.templates import render
from bot.updates.context import Ctx
from bot.views.buttons import ReplyButton
from bot.views.documents import zip_rows
from storage import audit
from storage.models import Commune, Period

CB_EXPORT = "xe"
CB_COMMUNE = "xc"
CB_PERIOD = "xp"
CB_NOTES = "xn"  # the report's own assessment and direction (bot.handlers.report_notes)
CB_ROLLUP = (
    "xr"  # the province roll-up: `xr:<anchor period id>:<format>`, or `xr:p<province index>` to offer it
)
PROVINCE_WORDS = {"tinh", "tỉnh", "province"}  # `/xuat tinh …`: the province roll-up
MAX_COMMUNE_BUTTONS = 30
MAX_OTHER_PERIODS = 7  # "another period" buttons under the offer (3 formats, incidents, notes: ≤ 12 in all)
INCIDENTS_EXCEL = (
    "in:x"  # the incidents' Excel file, answered by bot.handlers.incidents (which imports this one)
)


def visible_communes(ctx: Ctx) -> list[Commune]:
    """Active communes the sender may export: their own as police, their province's as supervisor."""
    ids, provinces = police_commune_ids(ctx.actor), supervised_provinces(ctx.actor)
    return directory.communes_visible(ctx.session, ids, provinces)


def _match_commune(communes: list[Commune], text: str) -> Commune | None:
    key = normalize_name(text)
    return next((c for c in communes if c.code.casefold() == key or normalize_name(c.name) == key), None)


def _usage(
    ctx: Ctx,
    problem: str = "",
    *,
    code: str = "",
    name: str = "",
    commune: Commune | None = None,
    **lists: Any,
) -> None:
    """The usage text, with what went wrong (`problem` from the export service, or a `code`); with the
    commune, its periods in play as buttons."""
    menu = police_focus.period_menu(ctx.session, commune.id, ctx.now) if commune is not None else []
    ctx.reply(
        "export/usage.html",
        buttons=_period_rows(menu),
        problem=problem,
        code=code,
        name=name,
        communes=lists.get("communes", []),
        forms=lists.get("forms", []),
        periods=lists.get("periods", [])[:12],
    )


@REGISTRY.command("xuat", "export", need=Need.POLICE)
async def export_command(ctx: Ctx) -> None:
    """Offer (or send) the compiled report of a period: /xuat [XÃ] [BIỂU-MẪU] [KỲ] [excel|word|csv]."""
    args = list(ctx.args)
    fmt = normalise_format(args[-1]) if args else None
    if fmt is not None:
        args.pop()
    if args and normalize_name(args[0]) in PROVINCE_WORDS:
        _province_command(ctx, args[1:], fmt)
        return
    communes = visible_communes(ctx)
    if not communes:
        ctx.reply("export/refused.html")
        return
    commune = _match_commune(communes, args[0]) if args else None
    if commune is not None:
        args.pop(0)
    elif len(communes) == 1:
        commune = communes[0]
    elif args:
        _usage(ctx, code="unknown_commune", name=args[0], communes=[c.code for c in communes])
        return
    else:
        _pick_commune(ctx, communes)
        return
    if len(args) > 2:
        _usage(ctx, code="too_many")
        return
    try:
        form, period = resolve_words(ctx.session, commune, args, ctx.now)
    except ExportError as problem:
        _usage(ctx, problem.message, commune=commune, forms=problem.forms, periods=problem.periods)
        return
    if fmt is not None:
        _send_export(ctx, commune, period, fmt)
    else:
        _offer(ctx, commune, form, period)


def _pick_commune(ctx: Ctx, communes: list[Commune]) -> None:
    if len(communes) > MAX_COMMUNE_BUTTONS:
        _usage(ctx, communes=[c.code for c in communes])
        return
    provinces = tuple(
        (ReplyButton(render("export/rollup_province_button.html", province=p), f"{CB_ROLLUP}:p{i}"),)
        for i, p in enumerate(supervised_provinces(ctx.actor))
    )
    buttons = tuple((ReplyButton(c.name, f"{CB_COMMUNE}:{c.id}"),) for c in communes)
    ctx.reply("export/pick_commune.html", buttons=provinces + buttons)


def _offer(ctx: Ctx, commune: Commune, form: Any, period: Period) -> None:
    done = completeness(ctx.session, period, ctx.now, progress=False)
    files = zip_rows(form, period.id)  # "🗂 Hồ sơ (zip)" when the form asks for files (bot.handlers.documents)
    menu = police_focus.period_menu(
        ctx.session, commune.id, ctx.now, exclude=period.id, size=MAX_OTHER_PERIODS - len(files)
    )
    buttons = (
        tuple(
            ReplyButton(render("export/button.html", fmt=f), f"{CB_EXPORT}:{period.id}:{f}") for f in FORMATS
        ),
        (ReplyButton(render("export/notes_button.html"), f"{CB_NOTES}:{period.id}"),),
        (ReplyButton(render("export/incidents_button.html"), INCIDENTS_EXCEL),),
        *files,
        *_period_rows(menu),
    )
    ctx.reply(
        "export/choose.html",
        buttons=buttons,
        commune=commune.name,
        form_id=form.id,
        form_title=form.title,
        period_label=period.label,
        period_code=period.code,
        due=period.due_at.astimezone(commune_zone(commune, ctx.deps.settings.timezone.key)),
        submitted=done.submitted,
        total=done.total,
        other_periods=[p.code for p in menu],
    )


def _period_rows(periods: list[Period]) -> tuple[tuple[ReplyButton, ...], ...]:
    """One "🗓 period" button a row (`xp:<period>`)."""
    return tuple(
        (ReplyButton(render("export/period_button.html", label=p.label, code=p.code), f"{CB_PERIOD}:{p.id}"),)
        for p in periods
    )


def _refuse(ctx: Ctx, data: str) -> None:
    ctx.reply("export/refused.html")
    ctx.answer_callback("export/refused.html")
    _record_refusal(ctx, "callback", data[:64])


def _record_refusal(ctx: Ctx, entity: str, entity_id: str) -> None:
    audit.record(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        action="export.refused",
        entity=entity,
        entity_id=entity_id,
    )


@REGISTRY.callback(CB_COMMUNE, need=Need.POLICE)
async def pick_commune(ctx: Ctx) -> None:
    """A supervisor picked a commune: offer its current period."""
    data = ctx.update.callback_query.data or ""
    try:
        commune_id = int(data.split(":")[1])
    except (ValueError, IndexError):
        ctx.answer_callback("common/stale_button.html")
        return
    commune = next((c for c in visible_communes(ctx) if c.id == commune_id), None)
    if commune is None:
        _refuse(ctx, data)
        return
    try:
        form, period = resolve_words(ctx.session, commune, [], ctx.now)
    except ExportError as problem:
        _usage(ctx, problem.message, forms=problem.forms, periods=problem.periods)
        return
    _offer(ctx, commune, form, period)


@REGISTRY.callback(CB_PERIOD, need=Need.POLICE)
async def pick_period(ctx: Ctx) -> None:
    """Another period (any form) of a commune the sender may export: `xp:<period_id>` offers it."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    try:
        period_id = int(parts[1])
    except (ValueError, IndexError):
        ctx.answer_callback("common/stale_button.html")
        return
    period = ctx.session.get(Period, period_id)
    commune = next((c for c in visible_communes(ctx) if period and c.id == period.commune_id), None)
    if period is None or commune is None or len(parts) != 2:
        _refuse(ctx, data)
        return
    form = next((f for f in periodic_forms(ctx.session, commune) if f.id == period.form_id), None)
    if form is None or not period.active or period.opens_at > ctx.now:
        ctx.answer_callback("common/stale_button.html")
        return
    _offer(ctx, commune, form, period)


@REGISTRY.callback(CB_EXPORT, need=Need.POLICE)
async def pick_format(ctx: Ctx) -> None:
    """A format button: `xe:<period_id>:<format>`, checked against what the sender may export."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    try:
        period_id, fmt = int(parts[1]), parts[2]
    except (ValueError, IndexError):
        ctx.answer_callback("common/stale_button.html")
        return
    period = ctx.session.get(Period, period_id)
    commune = ctx.session.get(Commune, period.commune_id) if period is not None else None
    allowed = {c.id for c in visible_communes(ctx)}
    if (
        period is None
        or commune is None
        or commune.id not in allowed
        or not period.active
        or period.opens_at > ctx.now
        or fmt not in FORMATS
        or len(parts) != 3
    ):
        _refuse(ctx, data)
        return
    ctx.answer_callback("export/preparing.html")
    _send_export(ctx, commune, period, fmt)


def _send_export(ctx: Ctx, commune: Commune, period: Period, fmt: str) -> None:
    """Build the file now (inside the transaction) and send it after the commit."""
    form = next((f for f in periodic_forms(ctx.session, commune) if f.id == period.form_id), None)
    if form is None:
        ctx.reply("export/failed.html", form_gone=period.form_id, commune=commune.name, problem="")
        return
    try:
        file = build_export(
            ctx.session, commune, form, period, fmt, ctx.now, default_tz=ctx.deps.settings.timezone
        )
    except ExportError as problem:
        ctx.reply("export/failed.html", form_gone="", commune=commune.name, problem=problem.message)
        return
    record_export(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        commune=commune,
        period=period,
        fmt=fmt,
        file=file,
    )
    caption = render(
        "export/caption.html",
        form_title=form.title,
        commune=commune.name,
        period_label=period.label,
        at=ctx.now.astimezone(commune_zone(commune, ctx.deps.settings.timezone.key)),
    )
    ctx.after_commit.append(document_sender(ctx.chat_id, file, caption))


def document_sender(chat_id: int, file: ExportFile, caption: str) -> Any:
    """An after-commit action that sends `file` as a document with its Vietnamese file name."""

    async def send(bot: Any) -> None:
        await bot.send_document(
            chat_id,
            InputFile(file.content, filename=file.filename),
            caption=caption,
            parse_mode=ParseMode.HTML,
        )

    return send


# ---------------------------------------------------------------------------------------------- roll-up


def _province_command(ctx: Ctx, args: list[str], fmt: str | None) -> None:
    """`/xuat tinh [BIỂU-MẪU] [KỲ] [excel|word|csv]`: the roll-up of the province the sender supervises."""
    provinces = supervised_provinces(ctx.actor)
    if not provinces:
        ctx.reply("export/rollup_refused.html")
        _record_refusal(ctx, "province", "")
        return
    if len(args) > 2:
        _usage(ctx, code="too_many")
        return
    form_arg, period_arg = (args[0], args[1]) if len(args) == 2 else (None, args[0] if args else None)
    _province_offer(ctx, provinces[0], form_arg, period_arg, fmt)


def _province_offer(
    ctx: Ctx, province: str, form_arg: str | None, period_arg: str | None, fmt: str | None
) -> None:
    try:
        communes, form, period = resolve_rollup(ctx.session, province, form_arg, period_arg, ctx.now)
    except ExportError as problem:
        found = None
        if form_arg is None and period_arg is not None:  # one word: a form id rather than a period code
            with contextlib.suppress(ExportError):
                found = resolve_rollup(ctx.session, province, period_arg, None, ctx.now)
        if found is None:
            ctx.reply("export/failed.html", form_gone="", commune=province, problem=problem.message)
            return
        communes, form, period = found
    if fmt is not None:
        _send_rollup(ctx, province, period, fmt)
        return
    buttons = (
        tuple(
            ReplyButton(render("export/button.html", fmt=f), f"{CB_ROLLUP}:{period.id}:{f}") for f in FORMATS
        ),
    )
    ctx.reply(
        "export/rollup_choose.html",
        buttons=buttons,
        province=province,
        communes=len(communes),
        form_title=form.title,
        period_label=period.label,
        period_code=period.code,
    )


@REGISTRY.callback(CB_ROLLUP, need=Need.POLICE)
async def pick_rollup(ctx: Ctx) -> None:
    """`xr:p<i>` offers the roll-up of the sender's i-th province; `xr:<period>:<format>` sends it."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    provinces = supervised_provinces(ctx.actor)
    if len(parts) == 2 and parts[1].startswith("p"):
        try:
            province = provinces[int(parts[1][1:])]
        except (ValueError, IndexError):
            _refuse(ctx, data)
            return
        ctx.answer_callback("export/preparing.html")
        _province_offer(ctx, province, None, None, None)
        return
    try:
        period_id, fmt = int(parts[1]), parts[2]
    except (ValueError, IndexError):
        ctx.answer_callback("common/stale_button.html")
        return
    period = ctx.session.get(Period, period_id)
    if period is None:
        ctx.answer_callback("common/stale_button.html")
        return
    commune = ctx.session.get(Commune, period.commune_id)
    province = commune.province if commune is not None else None
    if province not in provinces or fmt not in FORMATS or len(parts) != 3:
        _refuse(ctx, data)
        return
    ctx.answer_callback("export/preparing.html")
    _send_rollup(ctx, province, period, fmt)


def _send_rollup(ctx: Ctx, province: str, period: Period, fmt: str) -> None:
    """Build the province's roll-up of `period`'s form and code now; send it after the commit."""
    try:
        communes, form, anchor = resolve_rollup(ctx.session, province, period.form_id, period.code, ctx.now)
        file = build_rollup_export(
            ctx.session, province, communes, form, anchor, fmt, ctx.now, default_tz=ctx.deps.settings.timezone
        )
    except ExportError as problem:
        ctx.reply("export/failed.html", form_gone="", commune=province, problem=problem.message)
        return
    audit.record(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        action="export.province",
        entity="period",
        entity_id=anchor.id,
        format=fmt,
        province=province,
        bytes=len(file.content),
    )
    caption = render(
        "export/caption.html",
        form_title=form.title,
        commune=province,
        period_label=anchor.label,
        at=ctx.now.astimezone(ctx.deps.settings.timezone),
    )
    ctx.after_commit.append(document_sender(ctx.chat_id, file, caption))
