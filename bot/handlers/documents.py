"""The police get a report's file again: `hs:` buttons under the list of files in a village's report
(`files_button`); the file is sent back by its Telegram file id to the officer who pressed."""

from __future__ import annotations

from typing import Any

from telegram.constants import ParseMode

from bot.auth import Need
from bot.handlers.registry import REGISTRY
from bot.services import documents
from bot.updates.context import Ctx
from bot.views.documents import CB_FILES, file_caption, files_message
from storage import audit

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
