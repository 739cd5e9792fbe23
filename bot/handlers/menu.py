"""The command menu shown by Telegram, per role, via setMyCommands; the command list of /help and the welcome."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import yaml
from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from bot.auth import Actor
from bot.handlers.registry import REGISTRY
from bot.texts.templates import templates_dir
from bot.texts.units import current_wording

MENU_ALIASES_KEY = "menu_aliases"
NOT_IN_HELP_KEY = "not_in_help"
_LIST_KEYS = (MENU_ALIASES_KEY, NOT_IN_HELP_KEY)


@lru_cache(maxsize=1)
def _commands_file() -> dict[str, Any]:
    with (templates_dir() / "commands.yaml").open(encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh) or {})


def descriptions() -> dict[str, str]:
    """Command descriptions from templates/commands.yaml, with {units} and {collector} in the words of the
    units being rendered for ("các thôn", "các phòng, ban"; "Công an xã", "Văn phòng")."""
    who = current_wording()
    out = {}
    for key, value in _commands_file().items():
        if key in _LIST_KEYS:
            continue
        out[str(key)] = who.fill(str(value))  # the units' kinds are asked only when a text names them
    return out


def menu_aliases() -> frozenset[str]:
    """Aliases shown in the menu next to their main name (`menu_aliases` in templates/commands.yaml)."""
    return frozenset(str(name) for name in _commands_file().get(MENU_ALIASES_KEY) or ())


def commands_for(actor: Actor) -> list[dict[str, str]]:
    """(name, description) of each command the actor may use: its main name and its menu aliases, in the
    order of templates/commands.yaml (commands it does not list come last)."""
    texts, aliases = descriptions(), menu_aliases()
    order = {name: i for i, name in enumerate(texts)}
    specs = sorted(REGISTRY.commands_for(actor), key=lambda spec: order.get(spec.names[0], len(order)))
    return [
        {"name": name, "description": texts.get(name, name)}
        for spec in specs
        for name in spec.names
        if name == spec.names[0] or name in aliases
    ]


def not_in_help() -> frozenset[str]:
    """Names /help does not list though they keep working (`not_in_help` in templates/commands.yaml)."""
    return frozenset(str(name) for name in _commands_file().get(NOT_IN_HELP_KEY) or ())


def help_commands(actor: Actor) -> list[dict[str, str]]:
    """The commands of `commands_for` without the names of `not_in_help` (the English aliases): one name per
    command at least, the first listed name for a command whose every shown name is hidden."""
    texts, aliases, hidden = descriptions(), menu_aliases(), not_in_help()
    order = {name: i for i, name in enumerate(texts)}
    specs = sorted(REGISTRY.commands_for(actor), key=lambda spec: order.get(spec.names[0], len(order)))
    out: list[dict[str, str]] = []
    for spec in specs:
        names = [n for n in spec.names if (n == spec.names[0] or n in aliases) and n not in hidden]
        names = names or [n for n in spec.names if n not in hidden][:1] or [spec.names[0]]
        out += [{"name": name, "description": texts.get(name, name)} for name in names]
    return out


def _bot_commands(items: list[dict[str, str]]) -> list[BotCommand]:
    return [BotCommand(item["name"], item["description"]) for item in items]


async def set_default_menu(bot: Any) -> None:
    """The menu strangers see: /start and /help."""
    await bot.set_my_commands(_bot_commands(commands_for(Actor(None))), scope=BotCommandScopeDefault())


def chat_menu_setter(chat_id: int, actor: Actor):
    """An after-commit action that sets one person's menu to their role's commands."""
    items = commands_for(actor)

    async def apply(bot: Any) -> None:
        await bot.set_my_commands(_bot_commands(items), scope=BotCommandScopeChat(chat_id))

    return apply
