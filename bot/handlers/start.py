"""/start (with or without an invite code; `redeem` also takes a bare code typed by a stranger) and /help."""

from __future__ import annotations

from bot.auth import Need, load_actor
from bot.handlers.menu import chat_menu_setter, help_commands
from bot.handlers.places import places_of
from bot.handlers.registry import REGISTRY
from bot.services.accounts import RedeemOutcome, TelegramUser, format_code, normalize_code, redeem_invite
from bot.services.wording import actor_wording, collector_of, village_wording
from bot.texts.units import speaking_for, wording
from bot.updates.context import Ctx


@REGISTRY.command("start", need=Need.ANYONE, in_menu=True)
async def start(ctx: Ctx) -> None:
    """Bind the sender with an invite code, or explain how to get one."""
    if not ctx.args:
        if ctx.actor.is_stranger:
            ctx.reply("start/no_code.html")
        else:
            _welcome(ctx, again=True)
        return
    redeem(ctx, "".join(ctx.args))


def redeem(ctx: Ctx, typed: str) -> None:
    """Bind the sender with the invite code `typed` (as `/start CODE` does) and say how it went."""
    user = ctx.update.effective_user
    code = typed[:64]
    result = redeem_invite(
        ctx.session,
        code,
        TelegramUser(user.id, ctx.chat_id, user.full_name or "", user.username),
        now=ctx.now,
    )
    if result.outcome in (RedeemOutcome.OK, RedeemOutcome.ALREADY):
        ctx.actor = load_actor(ctx.session, user.id)
        with speaking_for(actor_wording(ctx.session, ctx.actor)):  # the new head's unit, not a stranger's
            _welcome(ctx, again=result.outcome == RedeemOutcome.ALREADY)
            ctx.alongside.append(chat_menu_setter(ctx.chat_id, ctx.actor))
        return
    current = ""
    if result.outcome == RedeemOutcome.HAS_OTHER_ROLE and result.membership is not None:
        actor = load_actor(ctx.session, user.id)
        place = places_of(actor)[0] if actor.memberships else {}
        current = place.get("village") or place.get("commune") or place.get("province") or ""
    place_wording = None  # the code's own unit and commune, when known
    if result.village is not None:
        place_wording = village_wording(result.village, result.commune)
    elif result.commune is not None:
        place_wording = wording(None, collector_of(result.commune))
    with speaking_for(place_wording):
        _refused(ctx, code, result.outcome, result.village.name if result.village else "", current)


def _refused(ctx: Ctx, code: str, outcome: RedeemOutcome, village: str, current: str) -> None:
    ctx.reply(
        "start/refused.html",
        outcome=str(outcome),
        code=format_code(normalize_code(code))[:40],
        village=village,
        current=current,
    )


def _welcome(ctx: Ctx, *, again: bool) -> None:
    ctx.reply(
        "start/welcome.html",
        again=again,
        name=ctx.update.effective_user.full_name or "",
        places=places_of(ctx.actor),
        commands=help_commands(ctx.actor),
    )


@REGISTRY.command("help", "trogiup", need=Need.ANYONE)
async def help_command(ctx: Ctx) -> None:
    """List the commands the sender's role may use."""
    ctx.reply(
        "help/help.html",
        stranger=ctx.actor.is_stranger,
        places=places_of(ctx.actor),
        commands=help_commands(ctx.actor),
    )
