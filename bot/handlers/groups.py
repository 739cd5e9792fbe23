"""Commands sent in group chats: registered police groups and unknown groups."""

from __future__ import annotations

from bot.services import directory
from bot.updates.context import Ctx


async def answer_group(ctx: Ctx) -> None:
    """Tell a group whether it is registered, and its chat id if not."""
    communes = directory.communes_of_police_chat(ctx.session, ctx.chat_id)
    if communes:
        ctx.reply(
            "group/registered.html",
            title=ctx.update.effective_chat.title or "",
            communes=[commune.name for commune in communes],
        )
    else:
        ctx.reply("group/unregistered.html", chat_id=ctx.chat_id)
