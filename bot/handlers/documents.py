"""The police get a report's file again: `hs:` buttons under the list of files in a village's report
(`files_button`), the file sent back by its Telegram file id to the officer who pressed; and `hz:` (the
/xuat offer) the period's files in one zip, downloaded through the Bot API after the commit (`zip_button`)."""

from __future__ import annotations

from typing import Any

from telegram import InputFile
from telegram.constants import ParseMode

from bot.auth import Need
from bot.exports.documents import ZipEntry, build_zip, zip_plan
from bot.handlers.registry import REGISTRY
from bot.services import documents
from bot.services.forms import get_form
from bot.texts.templates import render
from bot.updates.context import Ctx
from bot.views.documents import CB_FILES, CB_ZIP, file_caption, files_message
from storage import audit
from storage.models import Commune, Period

MAX_ID = 2**62


def show_files(ctx: Ctx, submission_id: int, page: int = 0) -> None:
    """Queue the list of a submission's files (nothing when it has none); the caller checked the commune."""
    found = documents.submission_files(ctx.session, submission_id)
    message = files_message(submission_id, found.village.name, found.files, page) if found else None
    if message is not None:
        ctx.reply_html(*message)


@REGISTRY.callback(CB_FILES, need=Need.POLICE)
async def files_button(ctx: Ctx) -> None:
    """`hs:f:<submission>:<n>` sends file n again; `hs:l:<submission>:<page>` shows a page of the list.
    Only police of the report's commune (or its province's supervisor) are served."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    try:
        action, submission_id, number = parts[1], int(parts[2]), int(parts[3])
    except (IndexError, ValueError):
        action, submission_id, number = "", -1, -1
    if (
        len(parts) != 4
        or action not in ("f", "l")
        or not (0 <= submission_id < MAX_ID and 0 <= number < MAX_ID)
    ):
        ctx.answer_callback("common/stale_button.html")
        return
    found = documents.submission_files(ctx.session, submission_id)
    if found is None:
        ctx.answer_callback("common/stale_button.html")
        return
    if not ctx.actor.can_see_commune(found.commune):
        ctx.refuse_button("documents/refused.html", CB_FILES, data)
        return
    if action == "l":
        show_files(ctx, submission_id, number)
        return
    if number >= len(found.files):
        ctx.answer_callback("common/stale_button.html")
        return
    item = found.files[number]
    audit.record(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        action="document.sent",
        entity="submission",
        entity_id=submission_id,
        file=item.file_unique_id or item.file_id[:64],
    )
    ctx.answer_callback("documents/sending.html")
    ctx.after_commit.append(_sender(ctx.chat_id, item.file_id, file_caption(found.village.name, item)))


def _sender(chat_id: int, file_id: str, caption: str) -> Any:
    """An after-commit action that sends a stored file again by its file id."""

    async def send(bot: Any) -> None:
        await bot.send_document(chat_id, file_id, caption=caption[:1024], parse_mode=ParseMode.HTML)

    return send


@REGISTRY.callback(CB_ZIP, need=Need.POLICE)
async def zip_button(ctx: Ctx) -> None:
    """`hz:<period>`: the period's files in one zip, for police of the period's commune (or its province)."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    try:
        period_id = int(parts[1])
    except (IndexError, ValueError):
        period_id = -1
    period = ctx.session.get(Period, period_id) if len(parts) == 2 and 0 <= period_id < MAX_ID else None
    commune = ctx.session.get(Commune, period.commune_id) if period is not None else None
    form = get_form(ctx.session, period.form_id) if period is not None else None
    if period is None or commune is None or form is None:
        ctx.answer_callback("common/stale_button.html")
        return
    if not ctx.actor.can_see_commune(commune):
        ctx.refuse_button("documents/refused.html", CB_ZIP, data)
        return
    entries = zip_plan(ctx.session, period, form)
    if not entries:
        ctx.reply("documents/zip_empty.html", period_label=period.label)
        return
    audit.record(
        ctx.session,
        at=ctx.now,
        actor=f"telegram:{ctx.actor.telegram_user_id}",
        action="document.zip",
        entity="period",
        entity_id=period.id,
        files=len(entries),
    )
    ctx.answer_callback("documents/sending.html")
    ctx.reply("documents/zip_preparing.html", count=len(entries), period_label=period.label)
    context = {"commune": commune.name, "period_label": period.label}
    ctx.after_commit.append(_zipper(ctx.chat_id, entries, f"ho-so-{period.code}.zip", context))


def _zipper(chat_id: int, entries: list[ZipEntry], filename: str, context: dict[str, Any]) -> Any:
    """An after-commit action: download the files (getFile), zip them and send the zip to the officer."""

    async def send(bot: Any) -> None:
        async def fetch(file_id: str) -> bytes:
            file = await bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())

        result = await build_zip(entries, fetch)
        if not result.included:
            await bot.send_message(
                chat_id, render("documents/zip_failed.html", **context), parse_mode=ParseMode.HTML
            )
            return
        caption = render(
            "documents/zip_caption.html", included=result.included, missing=result.missing, **context
        )
        await bot.send_document(
            chat_id,
            InputFile(result.content, filename=filename),
            caption=caption[:1024],
            parse_mode=ParseMode.HTML,
        )

    return send
