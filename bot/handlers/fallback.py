"""What the bot says to messages no other handler claims."""

from __future__ import annotations

from bot.auth import Need
from bot.handlers import report, report_notes, requests
from bot.handlers.registry import REGISTRY
from bot.handlers.start import redeem
from bot.services.accounts import looks_like_code
from bot.updates.context import Ctx


@REGISTRY.message("text", need=Need.ANYONE)
async def any_message(ctx: Ctx) -> None:
    """Answers go to the open draft; a stranger's bare invite code registers them, other strangers learn
    how to join; others are pointed at /help."""
    message = ctx.update.effective_message
    if report.has_active_draft(ctx):
        await report.on_message(ctx)
    elif requests.has_pending(ctx):  # police making a /yeucau: a typed deadline
        await requests.on_text(ctx)
    elif report_notes.has_pending(ctx):  # police writing the report's assessment or direction
        await report_notes.on_text(ctx)
    elif ctx.actor.is_stranger and message is not None and message.text and looks_like_code(message.text):
        redeem(ctx, message.text)  # a bare invite code in a private chat is taken as `/start CODE`
    elif ctx.actor.is_stranger:
        ctx.reply("start/no_code.html")
    elif message is not None and message.text is None:
        ctx.reply("common/non_text.html")
    else:
        ctx.reply("common/not_understood.html")


@REGISTRY.message("unknown_command", need=Need.ANYONE, on="command")
async def unknown_command(ctx: Ctx) -> None:
    """A command the bot does not have."""
    text = ctx.update.effective_message.text or ""
    ctx.reply("common/unknown_command.html", command=text.split()[0][:64] if text else "")


@REGISTRY.message("edited", need=Need.ANYONE, on="edited")
async def edited_message(ctx: Ctx) -> None:
    """Edits are not answers: ask for a new message instead."""
    ctx.reply("common/edited.html")


@REGISTRY.stale_button(need=Need.ANYONE)
async def stale_button(ctx: Ctx) -> None:
    """A button from an old keyboard nobody handles any more."""
    ctx.answer_callback("common/stale_button.html")


@REGISTRY.unhandled(need=Need.ANYONE)
async def unhandled_update(ctx: Ctx) -> None:
    """An update no handler takes (text in a group, the bot added or blocked): `_run` logs and counts it
    without calling this — declared so that the registry, the matrix and the log name it."""
