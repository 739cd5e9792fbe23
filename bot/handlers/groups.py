"""Commands sent in group chats: registered police groups and unknown groups."""

from __future__ import annotations

from sqlmodel import select

from bot.updates.context import Ctx
from storage.models import Commune, PoliceChat


async def answer_group(ctx: Ctx) -> None:
    """Tell a group whether it is registered, and its chat id if not."""
    rows = ctx.session.exec(
        select(PoliceChat, Commune)
        .join(Commune, Commune.id == PoliceChat.commune_id)
        .where(PoliceChat.chat_id == ctx.chat_id, PoliceChat.active, Commune.active)
    ).all()
    if rows:
        ctx.reply(
            "group/registered.html",
            title=ctx.update.effective_chat.title or "",
            communes=[commune.name for _chat, commune in rows],
        )
    else:
        ctx.reply("group/unregistered.html", chat_id=ctx.chat_id)
