"""Police write the Word report's "Đánh giá chung" and "Phương hướng" themselves, from `/xuat`'s
"✏️ Đánh giá, phương hướng" button (`xn:<period>`, `xn:<period>:a|d|c`); the next text message is the part."""

from __future__ import annotations

from bot.auth import Need
from bot.handlers.export import CB_EXPORT, CB_NOTES, visible_communes
from bot.handlers.registry import REGISTRY
from bot.services import report_notes
from bot.texts.templates import render
from bot.texts.values import cut
from bot.updates.context import Ctx
from bot.views.buttons import ReplyButton
from storage.models import Period

SHOWN = 400  # characters of each written part on the screen (the whole part goes into the report)
PART_OF = {"a": "assessment", "d": "direction"}


def _period(ctx: Ctx, period_id: int) -> Period | None:
    """The period when the sender may export it (a commune they police or supervise)."""
    period = ctx.session.get(Period, period_id)
    if period is None or period.commune_id not in {c.id for c in visible_communes(ctx)}:
        return None
    return period


def _show(ctx: Ctx, period: Period) -> None:
    notes = report_notes.notes_of(ctx.session, period.id)
    rows = [
        (ReplyButton(render("export/notes_edit_assessment.html"), f"{CB_NOTES}:{period.id}:a"),),
        (ReplyButton(render("export/notes_edit_direction.html"), f"{CB_NOTES}:{period.id}:d"),),
    ]
    if notes:
        rows.append((ReplyButton(render("export/notes_clear_button.html"), f"{CB_NOTES}:{period.id}:c"),))
    rows.append((ReplyButton(render("export/notes_word_button.html"), f"{CB_EXPORT}:{period.id}:docx"),))
    ctx.reply(
        "export/notes.html",
        buttons=tuple(rows),
        period_label=period.label,
        assessment=cut(notes.get("assessment", ""), SHOWN),
        direction=cut(notes.get("direction", ""), SHOWN),
    )


@REGISTRY.callback(CB_NOTES, need=Need.POLICE)
async def notes_button(ctx: Ctx) -> None:
    """`xn:<period>` shows the two parts; `:a` / `:d` asks for one; `:c` goes back to the bot's drafts."""
    data = ctx.update.callback_query.data or ""
    parts = data.split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit() or len(parts[1]) > 12:
        ctx.answer_callback("common/stale_button.html")
        return
    if ctx.session.get(Period, int(parts[1])) is None or ctx.actor.person is None:
        ctx.answer_callback("common/stale_button.html")  # no such period: an old or made-up button
        return
    period = _period(ctx, int(parts[1]))
    if period is None:  # another commune's period
        ctx.refuse_button("export/refused.html", CB_NOTES, data)
        return
    action = parts[2] if len(parts) == 3 else ""
    if action in PART_OF:
        report_notes.start_note(ctx.session, ctx.actor.person, period, PART_OF[action], ctx.now)
        ctx.reply(
            "export/notes_prompt.html",
            part=PART_OF[action],
            period_label=period.label,
            limit=f"{report_notes.MAX_NOTE:,}".replace(",", "."),
        )
    elif action == "c":
        report_notes.clear_notes(ctx.session, ctx.actor.person, period, ctx.now)
        ctx.reply("export/notes_cleared.html", period_label=period.label)
    elif action == "":
        _show(ctx, period)
    else:
        ctx.answer_callback("common/stale_button.html")


def has_pending(ctx: Ctx) -> bool:
    """Whether the sender is police about to type a part of a report (their text belongs to it)."""
    return (
        ctx.actor.satisfies(Need.POLICE)
        and report_notes.pending_note(ctx.session, ctx.actor.person) is not None
    )


async def on_text(ctx: Ctx) -> None:
    """The typed part: kept (then the screen again), or refused with the reason (still waiting for it)."""
    message = ctx.update.effective_message
    text = (message.text or "") if message is not None else ""
    row = report_notes.pending_note(ctx.session, ctx.actor.person)
    if row is None or ctx.actor.person is None:  # pragma: no cover - has_pending was checked just before
        return
    if _period(ctx, row.period_id) is None:  # no longer theirs (moved to another commune): drop it
        report_notes.drop_pending_note(ctx.session, ctx.actor.person)
        ctx.reply("export/refused.html")
        return
    try:
        period, part = report_notes.save_note(ctx.session, ctx.actor.person, text, ctx.now)
    except report_notes.NoteRefused as refused:
        ctx.reply(
            "export/notes_refused.html",
            reason=refused.reason,
            length=f"{refused.length:,}".replace(",", "."),
            limit=f"{report_notes.MAX_NOTE:,}".replace(",", "."),
        )
        return
    ctx.reply("export/notes_saved.html", part=part, period_label=period.label)
    _show(ctx, period)
