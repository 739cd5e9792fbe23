"""Police requests for an ad hoc report: `/yeucau` walks through commune, form, deadline, units and a
confirmation (`request_command`, `request_button`, `on_text`); the request in progress lives in the database
(bot.services.requests), so a restart loses nothing. `/huy` cancels it.

Design notes: docs/design-notes.md#botservicesrequestspy
"""

from __future__ import annotations

from datetime import date

from bot.auth import Need, police_commune_ids, supervised_provinces
from bot.handlers.registry import REGISTRY
from bot.services import report_notes, requests
from bot.services.zones import commune_zone
from bot.texts.templates import render
from bot.texts.values import MAX_TITLE_SHOWN, cut
from bot.updates.context import Ctx, OutgoingReply
from bot.views.buttons import ButtonRows, ReplyButton
from bot.views.requests import request_notice
from storage.models import Commune, PendingRequest

CB = "yc"
PAGE = 7  # villages per page: with "all", two page buttons, "done" and "cancel", 12 buttons in all
MAX_CHOICES = 11  # communes or forms on one screen, with "cancel"
NAMES_BUDGET = 500  # characters of village names spelled out on one screen (the rest: "và N thôn khác")


def _fitting(names: list[str], budget: int = NAMES_BUDGET) -> tuple[list[str], int]:
    """The first names that fit in `budget` characters, and how many are left out."""
    shown: list[str] = []
    used = 0
    for name in names:
        name = cut(name, 50)
        if shown and used + len(name) + 2 > budget:
            break
        shown.append(name)
        used += len(name) + 2
    return shown, len(names) - len(shown)


def _button(name: str, data: str, **context: object) -> ReplyButton:
    return ReplyButton(render("request/button.html", name=name, **context), f"{CB}:{data}")


def _cancel_row() -> tuple[ReplyButton, ...]:
    return (_button("cancel", "x"),)


def _due_buttons() -> tuple[tuple[ReplyButton, ...], ...]:
    """The quick deadlines ("Hết hôm nay", "3 ngày", "Thứ sáu này", "7 ngày") and "Hủy"."""
    return (
        (_button("today", "d:today"), _button("3d", "d:3d")),
        (_button("fri", "d:fri"), _button("7d", "d:7d")),
        _cancel_row(),
    )


def _communes(ctx: Ctx) -> list[Commune]:
    """Active communes the sender may ask: where they are police (not merely a village head), and every
    commune of a province they supervise (the roll-up role)."""
    ids = set(police_commune_ids(ctx.actor))
    found = {c.id: c for c in ctx.actor.communes.values() if c.id in ids and c.active}
    for province in supervised_provinces(ctx.actor):
        found |= {c.id: c for c in requests.province_communes(ctx.session, province)}
    return sorted(found.values(), key=lambda c: c.name)


def _tz_name(ctx: Ctx) -> str:
    return str(ctx.deps.settings.timezone)


def _today(ctx: Ctx, commune: Commune) -> date:
    return requests.local_today(commune, ctx.now, _tz_name(ctx))


def _commune_of(ctx: Ctx, row: PendingRequest) -> Commune | None:
    """The request's commune, if the sender is (still) its police."""
    return next((c for c in _communes(ctx) if c.id == row.commune_id), None)


def _form_title(ctx: Ctx, commune: Commune, form_id: str | None) -> str | None:
    form = next((f for f in requests.request_forms(ctx.session, commune.id) if f.id == form_id), None)
    return cut(form.title, MAX_TITLE_SHOWN) if form is not None else None


def _edit_or_reply(ctx: Ctx, text: str, buttons: ButtonRows) -> None:
    """Redraw the pressed message in place (a toggle, a page), else send a new one."""
    query = ctx.update.callback_query
    if query is not None and query.message is not None:
        ctx.replies.append(OutgoingReply(text, buttons, edit_message_id=query.message.message_id))
    else:
        ctx.reply_html(text, buttons)


# ---------------------------------------------------------------------------------------------- screens


def _show(
    ctx: Ctx, row: PendingRequest, *, edit: bool = False, problem: str | None = None, typed: str = ""
) -> None:
    """The screen of the request's current step (`problem`: why the typed deadline `typed` was refused)."""
    if row.step == requests.STEP_COMMUNE:
        provinces = supervised_provinces(ctx.actor)
        rows = [
            (_button("province", f"t:{i}", label=p, count=len(requests.province_communes(ctx.session, p))),)
            for i, p in enumerate(provinces)
        ]
        communes = _communes(ctx)
        if len(communes) + len(rows) > MAX_CHOICES:  # a province's communes do not fit: its own ones only
            own = set(police_commune_ids(ctx.actor))
            communes = [c for c in communes if c.id in own]
        rows += [(_button("label", f"c:{c.id}", label=c.name),) for c in communes[: MAX_CHOICES - len(rows)]]
        ctx.reply("request/pick_commune.html", buttons=(*rows, _cancel_row()))
        return
    if row.province is not None:
        _show_province(ctx, row, problem=problem, typed=typed)
        return
    commune = _commune_of(ctx, row)
    if commune is None:  # no longer police there: start again
        requests.drop_pending(ctx.session, ctx.actor.person)
        ctx.reply("request/refused.html")
        return
    if row.step == requests.STEP_FORM:
        forms = requests.request_forms(ctx.session, commune.id)[:MAX_CHOICES]
        if not forms:
            requests.drop_pending(ctx.session, ctx.actor.person)
            ctx.reply("request/no_form.html", commune=commune.name)
            return
        buttons = (
            *tuple((_button("label", f"f:{i}", label=cut(f.title, 60)),) for i, f in enumerate(forms)),
            _cancel_row(),
        )
        ctx.reply("request/pick_form.html", commune=commune.name, buttons=buttons)
        return
    title = _form_title(ctx, commune, row.form_id) or str(row.form_id)
    if row.step == requests.STEP_DUE:
        today = _today(ctx, commune)
        buttons = _due_buttons()
        ctx.reply(
            "request/pick_due.html",
            form_title=title,
            commune=commune.name,
            today=today,
            latest=today + requests.MAX_AHEAD,
            buttons=buttons,
            problem=problem,
            typed=typed,
        )
        return
    villages = requests.commune_villages(ctx.session, commune.id)
    if row.step == requests.STEP_UNITS:
        chosen = set(row.village_ids or ())
        pages = max(1, -(-len(villages) // PAGE))
        page = min(max(row.page, 0), pages - 1)
        shown = villages[page * PAGE : (page + 1) * PAGE]
        rows: list[tuple[ReplyButton, ...]] = [(_button("all", "a", count=len(villages)),)]
        rows += [
            (_button("village", f"v:{v.id}", label=cut(v.name, 50), chosen=v.id in chosen),) for v in shown
        ]
        nav = []
        if page > 0:
            nav.append(_button("prev", f"p:{page - 1}"))
        if page < pages - 1:
            nav.append(_button("next", f"p:{page + 1}"))
        if nav:
            rows.append(tuple(nav))
        rows.append((_button("done", "n", count=len(chosen)), _button("cancel", "x")))
        text = render(
            "request/pick_units.html",
            form_title=title,
            due=row.due_on,
            chosen=len(chosen),
            total=len(villages),
            page=page,
            pages=pages,
        )
        if edit:
            _edit_or_reply(ctx, text, tuple(rows))
        else:
            ctx.reply_html(text, tuple(rows))
        return
    names = [v.name for v in villages if row.village_ids is None or v.id in set(row.village_ids)]
    shown, more = _fitting(names)
    ctx.reply(
        "request/confirm.html",
        commune=commune.name,
        form_title=title,
        due=row.due_on,
        all=row.village_ids is None,
        count=len(names),
        names=shown,
        more=more,
        buttons=((_button("send", "ok"), _button("cancel", "x")),),
    )


# ---------------------------------------------------------------------------------------------- entry points


@REGISTRY.command("yeucau", need=Need.POLICE)
async def request_command(ctx: Ctx) -> None:
    """Police: ask the commune's units for an ad hoc report of one of its forms, by a deadline."""
    communes = _communes(ctx)
    if not communes or ctx.actor.person is None:
        ctx.reply("request/no_commune.html")
        return
    alone = len(communes) == 1 and not supervised_provinces(ctx.actor)
    commune_id = communes[0].id if alone else None
    row = requests.start_pending(ctx.session, ctx.actor.person, ctx.now, commune_id)
    _show(ctx, row)


@REGISTRY.command("huy", need=Need.MEMBER, in_menu=False)
async def cancel_command(ctx: Ctx) -> None:
    """Cancel the request being made, or the part of a report being typed."""
    if requests.drop_pending(ctx.session, ctx.actor.person):
        ctx.reply("request/cancelled.html")
    elif report_notes.drop_pending_note(ctx.session, ctx.actor.person):
        ctx.reply("export/notes_cancelled.html")
    else:
        ctx.reply("request/nothing_to_cancel.html")


def has_pending(ctx: Ctx) -> bool:
    """Whether the sender is police with a request in progress (their typed text belongs to it)."""
    return ctx.actor.satisfies(Need.POLICE) and requests.pending(ctx.session, ctx.actor.person) is not None


async def on_text(ctx: Ctx) -> None:
    """A typed message during a request: the deadline at that step, else a pointer to the buttons."""
    row = requests.pending(ctx.session, ctx.actor.person)
    message = ctx.update.effective_message
    if row is None:  # pragma: no cover - has_pending was checked just before
        return
    text = (message.text or "") if message is not None else ""
    if row.province is not None:
        communes = _province_of(ctx, row)
        commune = communes[0] if communes else None
    else:
        commune = _commune_of(ctx, row) if row.commune_id is not None else None
    if row.step != requests.STEP_DUE or commune is None or not text.strip():
        ctx.reply("request/use_buttons.html")
        _show(ctx, row)
        return
    try:
        day = requests.read_deadline(text, _today(ctx, commune))
    except requests.DeadlineError as exc:
        _show(ctx, row, problem=exc.reason, typed=text.strip()[:40])
        return
    step = requests.STEP_CONFIRM if row.province is not None else requests.STEP_UNITS
    requests.save_pending(ctx.session, row, ctx.now, due_on=day, step=step, page=0)
    _show(ctx, row)


def _refuse(ctx: Ctx, data: str) -> None:
    ctx.refuse_button("request/refused.html", CB, data)


@REGISTRY.callback(CB, need=Need.POLICE)
async def request_button(ctx: Ctx) -> None:
    """A button of the request screens: `yc:c:<commune>`, `yc:t:<province>`, `yc:f:<i>`, `yc:d:<quick>`, `yc:a`, `yc:v:<village>`,
    `yc:p:<page>`, `yc:n`, `yc:ok`, `yc:x`."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    action, arg = (parts[1] if len(parts) > 1 else ""), (parts[2] if len(parts) > 2 else "")
    row = requests.pending(ctx.session, ctx.actor.person)
    if row is None:
        ctx.reply("request/gone.html")
        ctx.answer_callback("common/stale_button.html")
        return
    if action == "x":
        requests.drop_pending(ctx.session, ctx.actor.person)
        ctx.reply("request/cancelled.html")
        return
    if action == "c":
        commune = next((c for c in _communes(ctx) if str(c.id) == arg), None)
        if commune is None:
            _refuse(ctx, data)
            return
        requests.save_pending(
            ctx.session, row, ctx.now, commune_id=commune.id, province=None, step=requests.STEP_FORM
        )
        _show(ctx, row)
        return
    if action == "t":
        provinces = supervised_provinces(ctx.actor)
        if not arg.isdigit() or int(arg) >= len(provinces):
            _refuse(ctx, data)
            return
        requests.save_pending(
            ctx.session, row, ctx.now, commune_id=None, province=provinces[int(arg)], step=requests.STEP_FORM
        )
        _show(ctx, row)
        return
    if row.province is not None:
        _province_step(ctx, row, action, arg, data)
        return
    commune = _commune_of(ctx, row) if row.commune_id is not None else None
    if commune is None:
        _refuse(ctx, data)
        return
    _step(ctx, row, commune, action, arg, data)


def _step(ctx: Ctx, row: PendingRequest, commune: Commune, action: str, arg: str, data: str) -> None:
    """A button of a step after the commune is chosen."""
    now, session = ctx.now, ctx.session
    if action == "f":
        forms = requests.request_forms(session, commune.id)
        if not arg.isdigit() or int(arg) >= len(forms):
            ctx.answer_callback("common/stale_button.html")
            _show(ctx, row)
            return
        requests.save_pending(session, row, now, form_id=forms[int(arg)].id, step=requests.STEP_DUE)
    elif row.form_id is None:  # a later step's button before a form was chosen: an old keyboard
        ctx.answer_callback("common/stale_button.html")
        _show(ctx, row)
        return
    elif action == "d" and arg in requests.QUICK:
        day = requests.quick_deadline(arg, _today(ctx, commune))
        requests.save_pending(session, row, now, due_on=day, step=requests.STEP_UNITS, page=0)
    elif row.due_on is None:
        ctx.answer_callback("common/stale_button.html")
        _show(ctx, row)
        return
    elif action == "a":
        requests.save_pending(session, row, now, village_ids=None, step=requests.STEP_CONFIRM)
    elif action in ("v", "p", "n"):
        _units(ctx, row, commune, action, arg, data)
        return
    elif action == "ok" and row.step == requests.STEP_CONFIRM:
        _send(ctx, row, commune)
        return
    else:
        ctx.answer_callback("common/stale_button.html")
        _show(ctx, row)
        return
    _show(ctx, row)


def _units(ctx: Ctx, row: PendingRequest, commune: Commune, action: str, arg: str, data: str) -> None:
    """Toggle a village, turn a page, or finish choosing."""
    if action == "n":
        if not row.village_ids:
            ctx.answer_callback("request/none_chosen.html")
            return
        requests.save_pending(ctx.session, row, ctx.now, step=requests.STEP_CONFIRM)
        _show(ctx, row)
        return
    if not arg.isdigit():
        ctx.answer_callback("common/stale_button.html")
        return
    if action == "p":
        requests.save_pending(ctx.session, row, ctx.now, page=int(arg), step=requests.STEP_UNITS)
        _show(ctx, row, edit=True)
        return
    ids = {v.id for v in requests.commune_villages(ctx.session, commune.id)}
    village_id = int(arg)
    if village_id not in ids:
        _refuse(ctx, data)
        return
    chosen = [i for i in (row.village_ids or []) if i in ids]
    chosen = [i for i in chosen if i != village_id] if village_id in chosen else [*chosen, village_id]
    requests.save_pending(ctx.session, row, ctx.now, village_ids=chosen, step=requests.STEP_UNITS)
    _show(ctx, row, edit=True)


def _send(ctx: Ctx, row: PendingRequest, commune: Commune) -> None:
    """Create the request, tell the heads at once, and tell the officer what really went out."""
    today = _today(ctx, commune)
    assert row.due_on is not None and row.form_id is not None
    due_on = row.due_on
    try:
        requests.check_deadline(due_on, today)
    except requests.DeadlineError as exc:  # the request waited past its own deadline
        requests.save_pending(ctx.session, row, ctx.now, step=requests.STEP_DUE, due_on=None)
        _show(ctx, row, problem=exc.reason, typed=f"{due_on:%d/%m/%Y}")
        return
    person = ctx.actor.person
    try:
        made = requests.create_request(
            ctx.session,
            commune=commune,
            form_id=row.form_id,
            due_on=due_on,
            village_ids=row.village_ids,
            now=ctx.now,
            by=person,
            by_name="",  # the person is named by id: erased with them when they are forgotten
            notice=request_notice(commune, commune_zone(commune, _tz_name(ctx))),
            default_tz=_tz_name(ctx),
        )
    except requests.RequestError:  # a village stopped or the form was removed meanwhile: choose again
        requests.save_pending(ctx.session, row, ctx.now, step=requests.STEP_FORM, village_ids=None)
        ctx.reply("request/refused.html")
        _show(ctx, row)
        return
    ctx.urgent.extend(made.outbox_ids)
    requests.drop_pending(ctx.session, person)
    ctx.reply(
        "request/sent.html",
        form_title=made.form_title,
        code=made.period.code,
        due=due_on,
        told=len(made.told),
        no_head=_fitting(made.no_head)[0],
        no_head_count=len(made.no_head),
    )


# ---------------------------------------------------------------------------------------------- the roll-up role


def _province_of(ctx: Ctx, row: PendingRequest) -> list[Commune]:
    """The active communes of the request's province, if the sender (still) supervises it."""
    if row.province is None or row.province not in supervised_provinces(ctx.actor):
        return []
    return requests.province_communes(ctx.session, row.province)


def _show_province(ctx: Ctx, row: PendingRequest, *, problem: str | None, typed: str) -> None:
    """The screens of a request to every commune of a province: form, deadline, confirmation."""
    communes = _province_of(ctx, row)
    if not communes:
        requests.drop_pending(ctx.session, ctx.actor.person)
        ctx.reply("request/refused.html")
        return
    place = render("request/province_place.html", province=row.province, count=len(communes))
    forms = requests.province_forms(ctx.session, communes)
    if row.step == requests.STEP_FORM:
        if not forms:
            requests.drop_pending(ctx.session, ctx.actor.person)
            ctx.reply("request/no_form.html", commune=place)
            return
        buttons = (
            *tuple(
                (_button("label", f"f:{i}", label=cut(f.title, 60)),)
                for i, f in enumerate(forms[:MAX_CHOICES])
            ),
            _cancel_row(),
        )
        ctx.reply("request/pick_form.html", commune=place, buttons=buttons)
        return
    title = next((cut(f.title, MAX_TITLE_SHOWN) for f in forms if f.id == row.form_id), str(row.form_id))
    if row.step == requests.STEP_DUE:
        today = _today(ctx, communes[0])
        buttons = _due_buttons()
        ctx.reply(
            "request/pick_due.html",
            form_title=title,
            commune=place,
            today=today,
            latest=today + requests.MAX_AHEAD,
            buttons=buttons,
            problem=problem,
            typed=typed,
        )
        return
    ctx.reply(
        "request/confirm.html",
        commune=place,
        form_title=title,
        due=row.due_on,
        all=True,
        count=sum(len(requests.commune_villages(ctx.session, c.id)) for c in communes),
        names=[],
        more=0,
        buttons=((_button("send", "ok"), _button("cancel", "x")),),
    )


def _province_step(ctx: Ctx, row: PendingRequest, action: str, arg: str, data: str) -> None:
    """A button of a province-wide request: a form, a quick deadline, or sending it."""
    communes = _province_of(ctx, row)
    if not communes:
        requests.drop_pending(ctx.session, ctx.actor.person)
        _refuse(ctx, data)
        return
    forms = requests.province_forms(ctx.session, communes)
    if action == "f" and arg.isdigit() and int(arg) < len(forms):
        requests.save_pending(ctx.session, row, ctx.now, form_id=forms[int(arg)].id, step=requests.STEP_DUE)
    elif action == "d" and arg in requests.QUICK and row.form_id is not None:
        day = requests.quick_deadline(arg, _today(ctx, communes[0]))
        requests.save_pending(ctx.session, row, ctx.now, due_on=day, step=requests.STEP_CONFIRM)
    elif action == "ok" and row.step == requests.STEP_CONFIRM and row.due_on and row.form_id:
        _send_province(ctx, row, communes)
        return
    else:
        ctx.answer_callback("common/stale_button.html")
    _show(ctx, row)


def _send_province(ctx: Ctx, row: PendingRequest, communes: list[Commune]) -> None:
    """One period per commune of the province (one code), every head told at once."""
    assert row.due_on is not None and row.form_id is not None and row.province is not None
    due_on, person, tz = row.due_on, ctx.actor.person, _tz_name(ctx)
    try:
        requests.check_deadline(due_on, _today(ctx, communes[0]))
        made = requests.create_province_request(
            ctx.session,
            province=row.province,
            form_id=row.form_id,
            due_on=due_on,
            now=ctx.now,
            by=person,
            by_name="",  # the person is named by id: erased with them when they are forgotten
            notice=lambda commune: request_notice(commune, commune_zone(commune, tz)),
            default_tz=tz,
        )
    except requests.DeadlineError as exc:
        requests.save_pending(ctx.session, row, ctx.now, step=requests.STEP_DUE, due_on=None)
        _show(ctx, row, problem=exc.reason, typed=f"{due_on:%d/%m/%Y}")
        return
    except requests.RequestError:
        requests.save_pending(ctx.session, row, ctx.now, step=requests.STEP_FORM, form_id=None)
        ctx.reply("request/refused.html")
        _show(ctx, row)
        return
    for one in made:
        ctx.urgent.extend(one.outbox_ids)
    requests.drop_pending(ctx.session, person)
    ctx.reply(
        "request/sent_province.html",
        form_title=made[0].form_title,
        code=made[0].period.code,
        due=due_on,
        province=row.province,
        communes=[(m.commune.name, len(m.told), len(m.no_head)) for m in made],
    )
