"""The report conversation in Telegram: /baocao, the incident form (`start_incident`, called by /suco in
bot/handlers/incidents.py), answers, buttons, the police alerts, and police /molai
(`report_list`, `pick_report`, `start_incident`, `press`, `on_message`, `reopen_command`).

Design notes: docs/design-notes.md#bothandlersreportpy
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.auth import Need
from bot.forms import inputs
from bot.forms.events import Submitted
from bot.handlers.registry import REGISTRY
from bot.services import directory, incidents, reports
from bot.services.addressees import period_addressee
from bot.services.outbox_messages import BY_NAME_SLOT
from bot.texts.templates import render
from bot.texts.values import MAX_TITLE_SHOWN, cut
from bot.updates.context import Ctx
from bot.updates.replies import remove_buttons
from bot.views.buttons import ReplyButton
from bot.views.form import render_events
from bot.views.notices import notice_template
from storage.models import Commune, Draft, Village

CB_FORM = "f"
CB_PICK = "rp"
MAX_CALLBACK_BYTES = 64


def _tz(ctx: Ctx, commune: Commune | None) -> ZoneInfo:
    if commune is not None and commune.timezone:
        try:
            return ZoneInfo(commune.timezone)
        except Exception:
            pass
    return ctx.deps.settings.timezone


def _village(ctx: Ctx) -> Village | None:
    membership = ctx.actor.village_membership()
    return ctx.actor.villages.get(membership.village_id) if membership and membership.village_id else None


def _local(ctx: Ctx, at: datetime | None, commune: Commune | None = None) -> datetime | None:
    return at.astimezone(_tz(ctx, commune)) if at is not None else None


@REGISTRY.command("baocao", "report", need=Need.VILLAGE_HEAD)
async def report_list(ctx: Ctx) -> None:
    """List the village's open reports with their deadlines and state, one button each."""
    village = _village(ctx)
    if village is None:
        ctx.reply("report/no_village.html")
        return
    commune = ctx.session.get(Commune, village.commune_id)
    items = reports.open_reports(ctx.session, village, ctx.now)
    if not items:
        incident = reports.incident_form_id(ctx.session, village.commune_id) is not None
        ctx.reply("report/none_open.html", village=village.name, incident=incident)
        return
    rows = []
    for r in items:
        sub = r.submission
        rows.append(
            {
                "form_title": cut(r.form_title, MAX_TITLE_SHOWN),
                "label": r.period.label,
                "due": _local(ctx, r.due_at, commune),
                "status": str(r.status),
                "progress": r.progress,
                "sent_at": _local(ctx, sub.sent_at, commune) if sub else None,
                "receipt": sub.receipt if sub else None,
                "version": sub.version_no if sub else 0,
                "can_amend": r.can_amend,
                "amend_until": _local(ctx, r.amend_until, commune),
            }
        )
    buttons = tuple(
        (
            ReplyButton(
                render(
                    "report/list_button.html",
                    index=i,
                    label=row["label"],
                    status=row["status"],
                    progress=row["progress"],
                ),
                f"{CB_PICK}:{r.period.id}",
            ),
        )
        for i, (r, row) in enumerate(zip(items, rows, strict=True), start=1)
        if r.status != reports.Status.SUBMITTED or r.can_amend
    )
    ctx.reply("report/list.html", village=village.name, reports=rows, buttons=buttons)


@REGISTRY.callback(CB_PICK, need=Need.VILLAGE_HEAD)
async def pick_report(ctx: Ctx) -> None:
    """Start, resume or amend the picked period's report."""
    village = _village(ctx)
    try:
        period_id = int(ctx.update.callback_query.data.split(":", 1)[1])
    except (ValueError, IndexError):
        ctx.answer_callback("common/stale_button.html")
        return
    if village is not None:
        _hide_keyboard(ctx)
    _begin(
        ctx, village, lambda v: reports.begin_periodic(ctx.session, ctx.actor.person, v, period_id, ctx.now)
    )


def start_incident(ctx: Ctx) -> None:
    """Start (or resume) the sender's ad hoc incident report (a village head in a private chat)."""
    village = _village(ctx)
    form_id = reports.incident_form_id(ctx.session, village.commune_id) if village else None
    if village is not None and form_id is None:
        ctx.reply("report/form_missing.html")
        return
    _begin(ctx, village, lambda v: reports.begin_incident(ctx.session, ctx.actor.person, v, form_id, ctx.now))


def _begin(ctx: Ctx, village: Village | None, begin: Any) -> None:
    """Run a begin_* service call for the sender's village and show its outcome or refusal."""
    if village is None:
        ctx.reply("report/no_village.html")
        return
    try:
        outcome = begin(village)
    except reports.ReportRefused as refusal:
        template, context = notice_template(refusal.notice)
        ctx.reply(template, **context)
        return
    show(ctx, outcome, village)


@REGISTRY.callback(CB_FORM, need=Need.VILLAGE_HEAD)
async def press(ctx: Ctx) -> None:
    """A button of a form screen: `f:<draft_id>:<seq>:<token>`."""
    parts = (ctx.update.callback_query.data or "").split(":", 3)
    try:
        draft_id, seq, token = int(parts[1]), int(parts[2]), parts[3]
    except (ValueError, IndexError):
        ctx.answer_callback("common/stale_button.html")
        return
    if inputs.parse_token(token) is None:
        ctx.answer_callback("common/stale_button.html")
        return
    _hide_keyboard(ctx)
    await _feed(ctx, draft_id, inputs.Action(token, seq))


def has_active_draft(ctx: Ctx) -> bool:
    """Whether the sender is a village head in the middle of a report."""
    person = ctx.actor.person
    return (
        person is not None
        and person.active_draft_id is not None
        and ctx.actor.village_membership() is not None
    )


async def on_message(ctx: Ctx) -> None:
    """A message from a village head with an open draft: text, photo, document or location become answers."""
    message = ctx.update.effective_message
    person = ctx.actor.person
    # From here to the commit the draft row is locked (FOR UPDATE on PostgreSQL) and the DB work runs on
    # the event loop's thread: nothing in between may await I/O, or another update of the same village
    # would block the loop inside its own FOR UPDATE while this one waits to resume.
    draft = reports.active_draft(ctx.session, person, set(ctx.actor.villages))
    if draft is None:  # submitted meanwhile (by the other reporter) or removed: explain, once
        await _feed(ctx, -abs(person.active_draft_id or 0), inputs.Resume())
        return
    inp: Any
    if message.text is not None:
        inp = inputs.Text(message.text)
    elif message.photo:
        largest = message.photo[-1]
        inp = inputs.Photo(largest.file_id, largest.file_unique_id)
    elif message.document is not None:
        doc = message.document
        inp = inputs.Document(doc.file_id, doc.file_unique_id, doc.file_name, doc.mime_type, doc.file_size)
    elif message.location is not None:
        inp = inputs.Location(message.location.latitude, message.location.longitude)
    else:
        ctx.reply("report/need_text.html")
        inp = inputs.Resume()
    await _feed(ctx, draft.id, inp, draft)


async def _feed(ctx: Ctx, draft_id: int, inp: Any, draft: Draft | None = None) -> None:
    village = _village(ctx)
    if village is None:
        ctx.reply("report/no_village.html")
        return
    try:
        outcome = reports.feed(
            ctx.session,
            ctx.actor.person,
            set(ctx.actor.villages),
            draft_id,
            inp,
            now=ctx.now,
            sent_at=ctx.sent_at if ctx.update.callback_query is None else ctx.now,
            draft=draft,
        )
    except reports.ReportRefused as refusal:
        template, context = notice_template(refusal.notice)
        ctx.reply(template, **context)
        return
    show(ctx, outcome, village)


def _hide_keyboard(ctx: Ctx) -> None:
    """Remove the buttons of the message that was pressed, so old buttons cannot be pressed again."""
    query = ctx.update.callback_query
    if query is None or query.message is None:
        return
    chat_id, message_id = query.message.chat.id, query.message.message_id

    async def apply(bot: Any) -> None:
        await remove_buttons(bot, chat_id, message_id)

    ctx.alongside.append(apply)  # an edit: no new message, so its order against the replies does not matter


def show(ctx: Ctx, outcome: reports.Outcome, village: Village) -> None:
    """Queue the notices, the engine's screens and, after a submission, the receipt and alerts."""
    commune = ctx.session.get(Commune, village.commune_id)
    for notice in outcome.notices:
        template, context = notice_template(notice)
        context = {k: _local(ctx, v, commune) if isinstance(v, datetime) else v for k, v in context.items()}
        ctx.reply(template, **context)
    if outcome.early_alert is not None and outcome.form is not None:
        alerted = _alert_police(ctx, outcome, village, commune)
        ctx.reply("report/incident_early_sent.html", receipt=outcome.early_alert.receipt, alerted=alerted)
        if alerted:
            ctx.replies[-1].unsent_note = render("report/alert_pending.html")
    if outcome.form is not None and outcome.state is not None and outcome.events:
        draft_id = outcome.draft.id if outcome.draft is not None else 0
        events = [e for e in outcome.events if not isinstance(e, Submitted)]  # the receipt says it
        for screen in render_events(outcome.form, outcome.state, events):
            buttons = tuple(
                tuple(ReplyButton(b.label, _callback(draft_id, outcome.state.seq, b.action)) for b in row)
                for row in screen.buttons
            )
            ctx.reply_html(
                screen.text, buttons if outcome.draft is not None else (), keyboard=screen.keyboard
            )
    submission = outcome.submission
    if submission is None:
        return
    period = outcome.period
    until = None
    if period is not None and reports.can_change(ctx.session, village.id, period, ctx.now):
        until = reports.change_deadline(ctx.session, village.id, period)
    ctx.reply(
        "report/receipt.html",
        form_title=cut(outcome.form.title if outcome.form else submission.form_id, MAX_TITLE_SHOWN),
        period=period.label if period else None,
        sent_at=_local(ctx, submission.sent_at, commune),
        on_time=submission.on_time,
        receipt=submission.receipt,
        version=1 if submission.period_id is None else submission.version_no,  # incidents: never "bản sửa"
        can_amend_until=_local(ctx, until, commune),
        village=village.name,
        addressee=period_addressee(ctx.session, period),
    )
    incident = outcome.form is not None and outcome.form.kind == "incident"
    if incident and _alert_police(ctx, outcome, village, commune):
        ctx.replies[-1].unsent_note = render("report/alert_pending.html")  # the receipt, if not out yet


def _callback(draft_id: int, seq: int, action: str) -> str:
    data = f"{CB_FORM}:{draft_id}:{seq}:{action}"
    if len(data.encode()) > MAX_CALLBACK_BYTES:  # pragma: no cover - tokens are ≤ 20 bytes
        raise ValueError(f"callback data too long: {data!r}")
    return data


def _alert_police(ctx: Ctx, outcome: reports.Outcome, village: Village, commune: Commune | None) -> bool:
    """Owe an incident alert to every police chat of the commune, with its photos and map pins (outbox rows
    sent right after the commit): the early one (`outcome.early_alert`) or the full one with the submission,
    which says it completes an early one; True when the commune has a police chat."""
    form = outcome.form
    early = outcome.early_alert
    if early is not None:
        stage, receipt, answers, at, submission_id = (
            incidents.STAGE_EARLY,
            early.receipt,
            early.answers,
            early.at,
            None,
        )
    else:
        submission = outcome.submission
        stage, receipt, answers = incidents.STAGE_FULL, submission.receipt, submission.answers
        at, submission_id = submission.sent_at, submission.id
    lines = incidents.answer_lines(form, answers)
    chats = directory.police_chats(ctx.session, village.commune_id)
    text = render(
        "report/incident_alert.html",
        headline=incidents.headline(form, answers),
        stage=stage,
        village=village.name,
        reporter=BY_NAME_SLOT,  # the linked name is put in when sent (and erased if the person is forgotten)
        sent_at=_local(ctx, at, commune),
        early_at=_local(ctx, outcome.alerted_early.at, commune) if outcome.alerted_early else None,
        receipt=receipt,
        rows=lines.rows,
    )
    captioned = [
        (render("report/photo_caption.html", label=label, village=village.name), file_id)
        for label, file_id in lines.photos
    ]
    pins = [
        (render("report/location_caption.html", label=label, village=village.name), point)
        for label, point in lines.pins
    ]
    ctx.urgent.extend(
        incidents.queue_alert(
            ctx.session,
            stage=stage,
            receipt=receipt,
            submission_id=submission_id,
            village=village,
            form=form,
            answers=answers,
            text=text,
            photos=captioned,
            pins=pins,
            by=ctx.actor.person,
            now=ctx.now,
            chat_ids=[chat.chat_id for chat in chats],
        )
    )
    return bool(chats)
