"""/suco (/incident) for everyone: a village head reports an incident (the form, bot/handlers/report.py), the
police see their communes' incidents with the state of their alerts, open one (details, photo, map pin, the
files of its document questions) and
export them as Excel (`incident_command`, `incident_button`, `new_incident_button`).

Button data: `in:p:<page>` a page of the list, `in:o:<receipt>` one incident, `in:x` the Excel file;
`inn` (village heads) starts a new incident from the list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from telegram.constants import ChatType, ParseMode

from bot.auth import Need, police_commune_ids, supervised_provinces
from bot.handlers import report
from bot.handlers.export import document_sender
from bot.handlers.groups import answer_group
from bot.handlers.registry import REGISTRY
from bot.services import directory, incidents
from bot.texts.templates import render
from bot.texts.values import cut
from bot.updates.context import Ctx, OutgoingReply
from bot.views.buttons import ReplyButton
from storage import audit
from storage.models import Commune

CB_INCIDENTS = "in"
CB_NEW = "inn"
RECEIPT_RE = re.compile(r"BC-[0-9A-Z]{1,12}\Z")
MAX_CHARS = 1200  # one phone screen
MAX_VALUE = 1000  # a single answer shown in the details
BUTTONS_PER_ROW = 4


def _private(ctx: Ctx) -> bool:
    chat = ctx.update.effective_chat
    return chat is None or chat.type == ChatType.PRIVATE


def _police_communes(ctx: Ctx) -> list[Commune] | None:
    """The communes whose incidents the sender may see here: as police or supervisor, and in a group chat only
    those the group is the registered police chat of (None: this group is not such a chat)."""
    visible = directory.communes_visible(
        ctx.session, police_commune_ids(ctx.actor), supervised_provinces(ctx.actor)
    )
    if _private(ctx):
        return visible
    here = {c.id for c in directory.communes_of_police_chat(ctx.session, ctx.chat_id)}
    mine = [c for c in visible if c.id in here]
    return mine or None


def _tz(ctx: Ctx, communes: Sequence[Commune]) -> ZoneInfo:
    zone = next((c.timezone for c in communes if c.timezone), None)
    try:
        return ZoneInfo(zone) if zone else ctx.deps.settings.timezone
    except Exception:
        return ctx.deps.settings.timezone


def _local(ctx: Ctx, at: datetime | None, communes: Sequence[Commune]) -> datetime | None:
    return at.astimezone(_tz(ctx, communes)) if at is not None else None


@REGISTRY.command("suco", "incident", need=Need.MEMBER, in_groups=True)
async def incident_command(ctx: Ctx) -> None:
    """A village head: report an incident. Police (or a supervisor): the list of their communes' incidents."""
    head = ctx.actor.satisfies(Need.VILLAGE_HEAD)
    if ctx.actor.satisfies(Need.POLICE):
        communes = _police_communes(ctx)
        if communes is None:  # police in a group that is not their police chat: tell nothing
            await answer_group(ctx)
            return
        _show_list(ctx, communes, 0, offer_new=head and _private(ctx))
        return
    if not _private(ctx):
        await answer_group(ctx)
        return
    if not head:  # pragma: no cover - every member is a head, police or supervisor
        ctx.reply("auth/refused.html", need=str(Need.VILLAGE_HEAD), stranger=False)
        return
    report.start_incident(ctx)


@REGISTRY.callback(CB_NEW, need=Need.VILLAGE_HEAD)
async def new_incident_button(ctx: Ctx) -> None:
    """ "Báo sự việc mới" under the list, for someone who is police and village head: the incident form."""
    if not _private(ctx):
        ctx.answer_callback("common/stale_button.html")
        return
    report.start_incident(ctx)


@REGISTRY.callback(CB_INCIDENTS, need=Need.POLICE, in_groups=True)
async def incident_button(ctx: Ctx) -> None:
    """A button of the list: another page, one incident, or the Excel file."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    communes = _police_communes(ctx)
    if communes is None:
        _refuse(ctx, data)
        return
    action = parts[1] if len(parts) > 1 else ""
    if action == "p" and len(parts) == 3 and parts[2].isdigit() and len(parts[2]) <= 4:
        head = ctx.actor.satisfies(Need.VILLAGE_HEAD) and _private(ctx)
        _show_list(ctx, communes, int(parts[2]), offer_new=head)
    elif action == "o" and len(parts) == 3 and RECEIPT_RE.match(parts[2]):
        found = incidents.find_incident(ctx.session, [c.id for c in communes], parts[2])
        if found is None:  # not one of the sender's communes (or no such incident): nothing is said about it
            _refuse(ctx, data)
            return
        _show_incident(ctx, found, communes)
    elif action == "x" and len(parts) == 2:
        _send_export(ctx, communes)
    else:
        ctx.answer_callback("common/stale_button.html")


def _refuse(ctx: Ctx, data: str) -> None:
    ctx.refuse_button("incidents/not_found.html", CB_INCIDENTS, data)


def _names(communes: Sequence[Commune]) -> str:
    return cut(", ".join(c.name for c in communes), 80)


def _show_list(ctx: Ctx, communes: Sequence[Commune], page: int, *, offer_new: bool) -> None:
    """One page of the incidents, newest first, with a button per incident, arrows, export and "new"."""
    found = incidents.recent_incidents(ctx.session, [c.id for c in communes], page)
    first = found.page * incidents.PAGE_SIZE
    items = [
        {
            "n": first + i,
            "at": _local(ctx, item.at, communes),
            "village": cut(item.village.name, 30),
            "summary": cut(item.summary, 40),
            "level": str(item.headline.level),
            "status": str(item.status),
            "complete": item.complete,
        }
        for i, item in enumerate(found.items, start=1)
    ]
    rows: list[tuple[ReplyButton, ...]] = []
    opens = [
        ReplyButton(render("incidents/open_button.html", n=first + i), f"{CB_INCIDENTS}:o:{item.receipt}")
        for i, item in enumerate(found.items, start=1)
    ]
    rows += [tuple(opens[i : i + BUTTONS_PER_ROW]) for i in range(0, len(opens), BUTTONS_PER_ROW)]
    arrows = []
    if found.page > 0:
        arrows.append(ReplyButton(render("incidents/prev_button.html"), f"{CB_INCIDENTS}:p:{found.page - 1}"))
    if found.page + 1 < found.pages:
        arrows.append(ReplyButton(render("incidents/next_button.html"), f"{CB_INCIDENTS}:p:{found.page + 1}"))
    if arrows:
        rows.append(tuple(arrows))
    if found.total:
        rows.append((ReplyButton(render("incidents/export_button.html"), f"{CB_INCIDENTS}:x"),))
    if offer_new:
        rows.append((ReplyButton(render("incidents/new_button.html"), CB_NEW),))
    ctx.reply(
        "incidents/list.html",
        buttons=tuple(rows),
        communes=_names(communes),
        items=items,
        page=found.page + 1,
        pages=found.pages,
        total=found.total,
    )


def _show_incident(ctx: Ctx, item: incidents.Incident, communes: Sequence[Commune]) -> None:
    """Its details under short labels (more than a screen goes on in another message), its photos, its pins,
    then its files (sent again by their file ids after the commit)."""
    lines = item.lines()
    early, full = item.early, item.full
    context = {
        "headline": item.headline,
        "village": item.village.name,
        "receipt": item.receipt,
        "reporter": Markup(incidents.reporter_link(item.reporter)),
        "at": _local(ctx, item.at, communes),
        "complete": item.complete,
        "early": str(early.status) if early else None,
        "early_sent": _local(ctx, early.sent_at, communes) if early else None,
        "full": str(full.status) if full else None,
        "full_sent": _local(ctx, full.sent_at, communes) if full else None,
    }
    back = ((ReplyButton(render("incidents/back_button.html"), f"{CB_INCIDENTS}:p:0"),),)
    pages: list[list[incidents.Line]] = [[]]
    head = render("incidents/detail.html", rows=[], **context)
    size = len(head)
    for line in lines.rows:
        line = incidents.Line(line.label, cut(line.value, MAX_VALUE))
        extra = len(render("incidents/detail_rows.html", rows=[line]))
        if pages[-1] and size + extra > MAX_CHARS:
            pages.append([])
            size = len(render("incidents/detail_more.html", rows=[], receipt=item.receipt))
        pages[-1].append(line)
        size += extra
    for n, rows in enumerate(pages):
        last = n == len(pages) - 1
        if n == 0:
            text = render("incidents/detail.html", rows=rows, **context)
        else:
            text = render("incidents/detail_more.html", rows=rows, receipt=item.receipt)
        ctx.reply_html(text, back if last else ())
    for label, file_id in lines.photos:
        caption = render("report/photo_caption.html", label=label, village=item.village.name)
        ctx.replies.append(OutgoingReply(caption, photo=file_id))
    for label, point in lines.pins:
        caption = render("report/location_caption.html", label=label, village=item.village.name)
        ctx.replies.append(OutgoingReply(caption, location=point))
    for label, file in lines.files:
        caption = incidents.file_caption(label, item.village.name, file)
        ctx.after_commit.append(_file_sender(ctx.chat_id, str(file["file_id"]), caption))


def _file_sender(chat_id: int, file_id: str, caption: str) -> Any:
    """An after-commit action that sends an incident's file again by its Telegram file id."""

    async def send(bot: Any) -> None:
        await bot.send_document(chat_id, file_id, caption=caption, parse_mode=ParseMode.HTML)

    return send


def _send_export(ctx: Ctx, communes: Sequence[Commune]) -> None:
    """The communes' incidents as an Excel file, sent after the commit."""
    every = incidents.all_incidents(ctx.session, [c.id for c in communes])
    if not every:
        ctx.reply("incidents/empty.html", communes=_names(communes))
        return
    from bot.exports.incidents import incidents_xlsx  # openpyxl only when someone asks (idle memory)

    file = incidents_xlsx(every, communes, ctx.now, _tz(ctx, communes))
    audit.record(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        action="export.incidents",
        entity="commune",
        entity_id=",".join(str(c.id) for c in communes),
        rows=len(every),
    )
    ctx.answer_callback("export/preparing.html")
    caption = render("incidents/export_caption.html", communes=_names(communes), total=len(every))
    ctx.after_commit.append(document_sender(ctx.chat_id, file, caption))
