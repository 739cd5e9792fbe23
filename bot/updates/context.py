"""What a handler works with: `Ctx` (the update, its session, the actor, the reply queue) and the replies it
queues (`OutgoingReply`, with `ReplyButton` inline buttons or a `ReplyKeyboard`). Handlers import it from here; the pipeline
(bot.updates.pipeline) builds one per update and sends its replies after the commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telegram import Update

from bot.auth import Actor
from bot.deps import Deps
from bot.texts.templates import render
from bot.views.buttons import ButtonRows, ReplyKeyboard
from storage import audit


@dataclass
class OutgoingReply:
    """A message queued by a handler, sent after the transaction commits."""

    text: str
    buttons: ButtonRows = ()
    chat_id: int | None = None  # default: the chat the update came from
    edit_message_id: int | None = None
    photo: str | None = None  # file_id: sent as a photo with `text` as caption
    location: tuple[float, float] | None = None  # sent as a map pin after `text`
    unsent_note: str = ""  # added below `text` when one of the update's `urgent` outbox rows did not go out
    # a reply keyboard (e.g. "📍 Gửi vị trí hiện tại") or its removal; only on a new message without inline
    # buttons, and never to a group (bot.updates.replies drops it there)
    keyboard: ReplyKeyboard | None = None


@dataclass
class Ctx:
    """What a handler gets: the update, its session, the actor and a reply queue (built by the pipeline)."""

    update: Update
    session: Any  # sqlmodel.Session
    actor: Actor
    deps: Deps
    now: datetime
    args: tuple[str, ...] = ()
    replies: list[OutgoingReply] = field(default_factory=list)
    callback_answer: str | None = None
    after_commit: list[Callable[[Any], Awaitable[None]]] = field(default_factory=list)
    # outbox rows written by this update (alerts, notices to others), sent at once after the commit and before
    # the replies, which then say whether they went out (bot.updates.urgent)
    urgent: list[int] = field(default_factory=list)
    # after the commit too, started once the first reply is out and run at the same time as the rest: calls
    # whose order against the chat's new messages does not matter (removing an old message's buttons, setting
    # the chat's command menu)
    alongside: list[Callable[[Any], Awaitable[None]]] = field(default_factory=list)

    @property
    def chat_id(self) -> int:
        """The chat the update came from."""
        return self.update.effective_chat.id  # type: ignore[union-attr]

    @property
    def sent_at(self) -> datetime:
        """When the person sent the message (Telegram's date), else now."""
        message = self.update.effective_message
        return message.date if message is not None and message.date is not None else self.now

    def reply(
        self,
        template: str,
        /,
        *,
        buttons: ButtonRows = (),
        to_chat: int | None = None,
        **context: Any,
    ) -> None:
        """Queue a message rendered from `template` (to this chat unless `to_chat`)."""
        self.replies.append(OutgoingReply(render(template, **context), buttons, to_chat))

    def reply_html(
        self,
        text: str,
        buttons: ButtonRows = (),
        *,
        to_chat: int | None = None,
        keyboard: ReplyKeyboard | None = None,
    ) -> None:
        """Queue an already rendered message (e.g. a form screen from bot.views.form)."""
        self.replies.append(OutgoingReply(text, buttons, to_chat, keyboard=keyboard))

    def answer_callback(self, template: str, /, **context: Any) -> None:
        """Set the short toast shown when a button is pressed."""
        self.callback_answer = render(template, **context)

    def refuse_button(self, template: str, handler: str, data: str) -> None:
        """A button the sender may not press: `template` in the chat, a short toast, and an audit row."""
        self.reply(template)
        self.answer_callback("auth/refused_short.html")
        audit.record(
            self.session,
            at=self.now,
            actor=f"telegram:{self.actor.telegram_user_id}",
            action="auth.refused",
            entity="handler",
            entity_id=f"callback:{handler}",
            data=data[:64],
        )
