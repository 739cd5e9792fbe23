"""The handler registry: every command, button and message handler declares the role it needs
(`Spec`); `Registry.install` turns the declarations into python-telegram-bot handlers.

Design notes: docs/design-notes.md#bothandlersregistrypy
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.auth import Actor, Need
from bot.deps import Deps
from bot.handlers.groups import answer_group
from bot.updates.pipeline import Handler, wrap


@dataclass(frozen=True)
class Spec:
    """A declared handler."""

    kind: str  # "command" | "callback" | "message"
    on: str  # for messages: "text" (non-command), "command" (unknown command), "edited"
    names: tuple[str, ...]  # command names, or the callback prefix
    need: Need
    handler: Handler = field(compare=False)
    in_menu: bool = True
    in_groups: bool = False


class Registry:
    """All handlers of the bot with their declared needs."""

    def __init__(self) -> None:
        self.specs: list[Spec] = []

    def command(
        self, *names: str, need: Need, in_menu: bool = True, in_groups: bool = False
    ) -> Callable[[Handler], Handler]:
        """Declare a command handler (first name is the main one, others are aliases)."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(Spec("command", "text", names, need, fn, in_menu, in_groups))
            return fn

        return decorate

    def callback(self, prefix: str, *, need: Need, in_groups: bool = False) -> Callable[[Handler], Handler]:
        """Declare a button handler for callback data `prefix:…` (in_groups: also in group chats)."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(
                Spec("callback", "text", (prefix,), need, fn, in_menu=False, in_groups=in_groups)
            )
            return fn

        return decorate

    def message(self, name: str, *, need: Need, on: str = "text") -> Callable[[Handler], Handler]:
        """Declare a private-chat fallback: `on` is "text" (any non-command), "command" or "edited"."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(Spec("message", on, (name,), need, fn, in_menu=False))
            return fn

        return decorate

    def commands_for(self, actor: Actor) -> list[Spec]:
        """Menu commands this actor may use."""
        return [s for s in self.specs if s.kind == "command" and s.in_menu and actor.satisfies(s.need)]

    def install(self, application: Application, deps: Deps) -> None:
        """Register every spec with python-telegram-bot, each run through the update pipeline."""
        private = filters.ChatType.PRIVATE
        for spec in self.specs:
            callback = _wrap(spec, deps)
            if spec.kind == "command":
                application.add_handler(
                    CommandHandler(list(spec.names), callback, filters=filters.UpdateType.MESSAGE)
                )
            elif spec.kind == "callback":
                application.add_handler(CallbackQueryHandler(callback, pattern=rf"^{spec.names[0]}(:|$)"))
        chosen = {
            "text": private & filters.UpdateType.MESSAGE & ~filters.COMMAND,
            "command": filters.UpdateType.MESSAGE & filters.COMMAND,
            "edited": private & filters.UpdateType.EDITED_MESSAGE,
        }
        for spec in self.specs:
            if spec.kind == "message":
                application.add_handler(MessageHandler(chosen[spec.on], _wrap(spec, deps)))
        for spec in self.specs:
            if spec.kind == "stale_button":
                application.add_handler(CallbackQueryHandler(_wrap(spec, deps)))
        for spec in self.specs:  # last of all: whatever no handler above took
            if spec.kind == "unhandled":
                application.add_handler(TypeHandler(Update, _wrap(spec, deps)))

    def unhandled(self, *, need: Need) -> Callable[[Handler], Handler]:
        """Declare the handler for updates nothing else takes (a group's chatter, a member change, a channel
        post), so that each of them too gets its log line and its count. The pipeline does only that for them: no
        database work (an outage must not make the bot answer chatter with an error), no reply."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(
                Spec("unhandled", "update", ("update",), need, fn, in_menu=False, in_groups=True)
            )
            return fn

        return decorate

    def stale_button(self, *, need: Need) -> Callable[[Handler], Handler]:
        """Declare the handler for button presses no other handler claims (old keyboards)."""

        def decorate(fn: Handler) -> Handler:
            self.specs.append(Spec("stale_button", "text", ("stale",), need, fn, in_menu=False))
            return fn

        return decorate


def _wrap(spec: Spec, deps: Deps) -> Callable[..., object]:
    """The pipeline's callback for one declared handler (group chats answered by `answer_group`)."""
    return wrap(spec, deps, answer_group)


REGISTRY = Registry()
