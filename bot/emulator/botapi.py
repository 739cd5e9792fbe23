"""Bot API methods implemented by the emulator (everything but getUpdates, which the server owns)."""

# Each handler runs with the state lock held and returns the JSON ``result`` or raises ApiError with
# Telegram's own status code and description.

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from telegram import AcceptedGiftTypes, ChatFullInfo, File, User, WebhookInfo

from bot.emulator.state import (
    CHAT_ACTIONS,
    ApiError,
    EmulatorState,
    Params,
    StoredMessage,
    bad_request,
    scope_key,
)

__all__ = ["METHODS", "canonical_method", "is_loopback_url"]

SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what Telegram accepts as secret_token

Handler = Callable[[EmulatorState, Params], Any]

#: lower-case method name -> (canonical name, handler); getUpdates has no handler here.
METHODS: dict[str, tuple[str, Handler | None]] = {"getupdates": ("getUpdates", None)}

_QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


def canonical_method(name: str) -> str | None:
    """Telegram's spelling of a method name (matching is case-insensitive), None when unknown."""
    entry = METHODS.get(name.lower())
    return entry[0] if entry else None


def _method(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        METHODS[name.lower()] = (name, func)
        return func

    return register


# ---------------------------------------------------------------------- bot and webhook


@_method("getMe")
def get_me(s: EmulatorState, p: Params) -> dict[str, Any]:
    """The bot's own User."""
    return User(
        id=s.bot_id,
        first_name=s.bot_name,
        is_bot=True,
        username=s.bot_username,
        can_join_groups=True,
        can_read_all_group_messages=True,
        supports_inline_queries=False,
        can_connect_to_business=False,
        has_main_web_app=False,
    ).to_dict()


@_method("logOut")
def log_out(s: EmulatorState, p: Params) -> bool:
    """Always succeeds."""
    return True


@_method("close")
def close(s: EmulatorState, p: Params) -> bool:
    """Always succeeds."""
    return True


@_method("setWebhook")
def set_webhook(s: EmulatorState, p: Params) -> bool:
    """Store the webhook; getUpdates answers 409 while it is set.

    Updates are POSTed to it (with the secret header) only when it is on this machine (a loopback
    address or localhost, where plain http is accepted too); any other URL is stored, never called.
    """
    url = p.string("url") or ""
    if not url:
        return delete_webhook(s, p)
    loopback = is_loopback_url(url)
    if not url.startswith("https://") and not (loopback and url.startswith("http://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.string("secret_token")
    if secret is not None and not SECRET_TOKEN_RE.match(secret):
        raise bad_request("secret token contains unallowed characters")
    if p.flag("drop_pending_updates"):
        s._updates.clear()
    allowed = p.obj("allowed_updates")
    if isinstance(allowed, list):
        s.allowed_updates = [str(a) for a in allowed]
    s.webhook = {
        "url": url,
        "max_connections": p.integer("max_connections", 40),
        "secret_token": secret,
        "ip_address": p.string("ip_address"),
        "push": loopback,
        "last_error_date": None,
        "last_error_message": None,
    }
    s._changed()
    return True


def is_loopback_url(url: str) -> bool:
    """Whether the URL's host is this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@_method("deleteWebhook")
def delete_webhook(s: EmulatorState, p: Params) -> bool:
    """Forget the webhook (optionally dropping pending updates)."""
    s.webhook = None
    if p.flag("drop_pending_updates"):
        s._updates.clear()
    s._changed()
    return True


@_method("getWebhookInfo")
def get_webhook_info(s: EmulatorState, p: Params) -> dict[str, Any]:
    """WebhookInfo for the stored webhook, with the last delivery error if any."""
    hook = s.webhook or {}
    error_date = hook.get("last_error_date")
    return WebhookInfo(
        url=hook.get("url", ""),
        has_custom_certificate=False,
        pending_update_count=len(s._updates),
        max_connections=hook.get("max_connections") if hook else None,
        ip_address=hook.get("ip_address"),
        allowed_updates=s.allowed_updates if hook else None,
        last_error_date=datetime.fromtimestamp(error_date, UTC) if error_date else None,
        last_error_message=hook.get("last_error_message"),
    ).to_dict()


# ---------------------------------------------------------------------- sending


def _common_send(s: EmulatorState, p: Params) -> dict[str, Any]:
    markup = s.validate_markup(p.obj("reply_markup", "can't parse reply keyboard markup JSON object"))
    return {
        "reply_markup": markup,
        "disable_notification": p.flag("disable_notification"),
    }


@_method("sendMessage")
def send_message(s: EmulatorState, p: Params) -> dict[str, Any]:
    """Send a text message (HTML parsed and validated like Telegram)."""
    chat = s.resolve_chat(p)
    text = p.string("text")
    parse_mode = p.string("parse_mode")
    plain, entities = s.format_text(text, parse_mode, p.obj("entities"))
    common = _common_send(s, p)
    reply_to = s.reply_target(p, chat)
    preview = p.obj("link_preview_options")
    message = s.bot_message(
        chat,
        "text",
        text=text,
        parse_mode=parse_mode,
        plain=plain,
        entities=entities,
        reply_to_message_id=reply_to,
        link_preview_options=preview if isinstance(preview, dict) else None,
        **common,
    )
    return s.message_dict(message)


def _caption(s: EmulatorState, p: Params) -> tuple[str | None, str | None, str | None, list[dict[str, Any]]]:
    caption = p.string("caption")
    parse_mode = p.string("parse_mode")
    if not caption:
        return None, parse_mode, None, []
    plain, entities = s.format_text(caption, parse_mode, p.obj("caption_entities"), caption=True)
    return caption, parse_mode, plain or None, entities


def _send_media(s: EmulatorState, p: Params, kind: str) -> dict[str, Any]:
    chat = s.resolve_chat(p)
    caption, parse_mode, plain, entities = _caption(s, p)
    common = _common_send(s, p)
    reply_to = s.reply_target(p, chat)
    files = s.file_input(p, kind, kind, filename_param="filename" if kind == "document" else None)
    message = s.bot_message(
        chat,
        kind,
        text=caption,
        parse_mode=parse_mode,
        plain=plain,
        entities=entities,
        files=files,
        reply_to_message_id=reply_to,
        **common,
    )
    return s.message_dict(message)


@_method("sendDocument")
def send_document(s: EmulatorState, p: Params) -> dict[str, Any]:
    """Send a file (uploaded bytes are stored and downloadable)."""
    return _send_media(s, p, "document")


@_method("sendPhoto")
def send_photo(s: EmulatorState, p: Params) -> dict[str, Any]:
    """Send a photo (PNG/JPEG/GIF bytes or an existing photo file_id)."""
    return _send_media(s, p, "photo")


@_method("sendLocation")
def send_location(s: EmulatorState, p: Params) -> dict[str, Any]:
    """Send a location."""
    chat = s.resolve_chat(p)
    latitude = p.number("latitude")
    longitude = p.number("longitude")
    if latitude is None or not -90 <= latitude <= 90:
        raise bad_request("wrong latitude specified")
    if longitude is None or not -180 <= longitude <= 180:
        raise bad_request("wrong longitude specified")
    common = _common_send(s, p)
    reply_to = s.reply_target(p, chat)
    message = s.bot_message(
        chat,
        "location",
        location={"latitude": latitude, "longitude": longitude},
        reply_to_message_id=reply_to,
        **common,
    )
    return s.message_dict(message)


@_method("sendChatAction")
def send_chat_action(s: EmulatorState, p: Params) -> bool:
    """Accept a valid chat action."""
    chat = s.resolve_chat(p)
    action = p.string("action") or ""
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    s._event("action", chat.id, action=action)
    return True


# ---------------------------------------------------------------------- editing and deleting


def _editable(s: EmulatorState, p: Params) -> StoredMessage:
    if p.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    chat = s.resolve_chat(p)
    message_id = p.integer("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    message = chat.messages.get(message_id)
    if message is None or message.deleted:
        raise bad_request("message to edit not found")
    if not message.from_bot:
        raise bad_request("message can't be edited")
    return message


def _inline_only(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    if markup and "inline_keyboard" not in markup:
        raise bad_request("inline keyboard expected")
    return markup


def _apply_edit(
    s: EmulatorState,
    message: StoredMessage,
    *,
    text: str | None,
    parse_mode: str | None,
    plain: str | None,
    entities: list[dict[str, Any]],
    markup: dict[str, Any] | None,
) -> dict[str, Any]:
    same = (
        plain == message.plain
        and entities == message.entities
        and (markup or None)
        == (
            message.reply_markup
            if message.reply_markup and "inline_keyboard" in message.reply_markup
            else None
        )
    )
    if same:
        raise bad_request(_NOT_MODIFIED)
    if message.original is None:
        message.original = message.version()
    message.text, message.parse_mode, message.plain, message.entities = text, parse_mode, plain, entities
    message.reply_markup = markup
    message.edit_date = int(s.clock())
    message.edits.append(message.version())
    s._event("edited", message.chat_id, message)
    return s.message_dict(message)


@_method("editMessageText")
def edit_message_text(s: EmulatorState, p: Params) -> dict[str, Any]:
    """Edit a bot text message (no reply_markup means the inline keyboard is removed)."""
    message = _editable(s, p)
    if message.kind != "text":
        raise bad_request("there is no text in the message to edit")
    text = p.string("text")
    parse_mode = p.string("parse_mode")
    plain, entities = s.format_text(text, parse_mode, p.obj("entities"))
    markup = _inline_only(s.validate_markup(p.obj("reply_markup")))
    return _apply_edit(
        s, message, text=text, parse_mode=parse_mode, plain=plain, entities=entities, markup=markup
    )


@_method("editMessageCaption")
def edit_message_caption(s: EmulatorState, p: Params) -> dict[str, Any]:
    """Edit the caption of a bot media message."""
    message = _editable(s, p)
    if message.kind == "text":
        raise bad_request("there is no caption in the message to edit")
    caption, parse_mode, plain, entities = _caption(s, p)
    markup = _inline_only(s.validate_markup(p.obj("reply_markup")))
    return _apply_edit(
        s, message, text=caption, parse_mode=parse_mode, plain=plain, entities=entities, markup=markup
    )


@_method("editMessageReplyMarkup")
def edit_message_reply_markup(s: EmulatorState, p: Params) -> dict[str, Any]:
    """Replace (or, without reply_markup, remove) the inline keyboard of a bot message."""
    message = _editable(s, p)
    markup = _inline_only(s.validate_markup(p.obj("reply_markup")))
    return _apply_edit(
        s,
        message,
        text=message.text,
        parse_mode=message.parse_mode,
        plain=message.plain,
        entities=message.entities,
        markup=markup,
    )


@_method("deleteMessage")
def delete_message(s: EmulatorState, p: Params) -> bool:
    """Delete a message (the bot's own or, in private chats, the user's)."""
    chat = s.resolve_chat(p, for_send=False)
    message_id = p.integer("message_id")
    message = chat.messages.get(message_id) if message_id is not None else None
    if message is None or message.deleted:
        raise bad_request("message to delete not found")
    if not message.from_bot and chat.is_group:
        raise bad_request("message can't be deleted")
    message.deleted = True
    s._event("deleted", chat.id, message)
    return True


@_method("answerCallbackQuery")
def answer_callback_query(s: EmulatorState, p: Params) -> bool:
    """Answer a pressed button once, before it expires."""
    query_id = p.string("callback_query_id") or ""
    record = s.callbacks.get(query_id)
    if record is None or record.answered:
        raise bad_request(_QUERY_TOO_OLD)
    if s.callback_ttl is not None and time.monotonic() - record.created > s.callback_ttl:
        raise bad_request(_QUERY_TOO_OLD)
    text = p.string("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    record.answered = True
    record.answer = {"text": text, "show_alert": p.flag("show_alert"), "url": p.string("url")}
    s._event(
        "answer", record.chat_id, None, query_id=query_id, answer=record.answer, message_id=record.message_id
    )
    return True


# ---------------------------------------------------------------------- files and chats


@_method("getFile")
def get_file(s: EmulatorState, p: Params) -> dict[str, Any]:
    """File info with a file_path served under /file/bot<token>/."""
    file_id = p.string("file_id") or ""
    stored = s.files.get(file_id)
    if stored is None:
        raise bad_request("invalid file_id")
    if len(stored.data) > 20 * 1024 * 1024:
        raise bad_request("file is too big")
    return File(
        file_id=stored.file_id,
        file_unique_id=stored.file_unique_id,
        file_size=len(stored.data),
        file_path=stored.file_path,
    ).to_dict()


@_method("getChat")
def get_chat(s: EmulatorState, p: Params) -> dict[str, Any]:
    """ChatFullInfo of a known chat."""
    chat = s.resolve_chat(p, for_send=False)
    base = s._chat_obj(chat)
    return ChatFullInfo(
        id=chat.id,
        type=chat.type,
        title=base.title,
        first_name=base.first_name,
        last_name=base.last_name,
        username=base.username,
        accent_color_id=0,
        max_reaction_count=11,
        accepted_gift_types=AcceptedGiftTypes(False, False, False, False, False),
    ).to_dict()


# ---------------------------------------------------------------------- commands and settings


def _command_key(s: EmulatorState, p: Params) -> tuple[tuple[Any, ...], str]:
    key = scope_key(p.obj("scope", "can't parse BotCommandScope JSON object"))
    if len(key) >= 2 and key[1] not in s.chats:
        raise bad_request("chat not found")
    language = p.string("language_code") or ""
    if language and (len(language) != 2 or not language.isalpha()):
        raise bad_request("invalid language code specified")
    return key, language


@_method("setMyCommands")
def set_my_commands(s: EmulatorState, p: Params) -> bool:
    """Store the command list for a scope + language (an empty list deletes it)."""
    commands = p.obj("commands", "can't parse commands JSON object")
    if not isinstance(commands, list):
        raise bad_request("commands must be an array")
    if len(commands) > 100:
        raise bad_request("too many commands specified")
    cleaned: list[dict[str, str]] = []
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("can't parse BotCommand JSON object")
        name = str(command.get("command", "")).removeprefix("/")
        description = str(command.get("description", ""))
        if not (1 <= len(name) <= 32 and all(c.isascii() and (c.isalnum() or c == "_") for c in name)):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        cleaned.append({"command": name.lower(), "description": description})
    key = _command_key(s, p)
    if cleaned:
        s.commands[key] = cleaned
    else:
        s.commands.pop(key, None)
    s._changed()
    return True


@_method("getMyCommands")
def get_my_commands(s: EmulatorState, p: Params) -> list[dict[str, str]]:
    """The command list stored for exactly this scope + language."""
    return [dict(c) for c in s.commands.get(_command_key(s, p), [])]


@_method("deleteMyCommands")
def delete_my_commands(s: EmulatorState, p: Params) -> bool:
    """Forget the command list of a scope + language."""
    s.commands.pop(_command_key(s, p), None)
    s._changed()
    return True


def _setting(name: str, field: str, limit: int) -> None:
    def setter(s: EmulatorState, p: Params) -> bool:
        value = p.string(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field} is too long")
        s.bot_settings[(field, p.string("language_code") or "")] = value
        return True

    def getter(s: EmulatorState, p: Params) -> dict[str, str]:
        return {field: s.bot_settings.get((field, p.string("language_code") or ""), "")}

    setter.__doc__ = f"Store the bot's {field}."
    getter.__doc__ = f"The stored {field}."
    METHODS[f"setmy{name}".lower()] = (f"setMy{name}", setter)
    METHODS[f"getmy{name}".lower()] = (f"getMy{name}", getter)


_setting("Description", "description", 512)
_setting("ShortDescription", "short_description", 120)
_setting("Name", "name", 64)


@_method("setChatMenuButton")
def set_chat_menu_button(s: EmulatorState, p: Params) -> bool:
    """Store the menu button."""
    s.bot_settings[("menu_button", p.string("chat_id") or "")] = p.obj("menu_button") or {"type": "default"}
    return True


@_method("getChatMenuButton")
def get_chat_menu_button(s: EmulatorState, p: Params) -> dict[str, Any]:
    """The stored menu button."""
    return s.bot_settings.get(("menu_button", p.string("chat_id") or ""), {"type": "commands"})


def check_api_error(err: Exception) -> ApiError:
    """Map unexpected handler exceptions to a 500 like Telegram's internal errors."""
    if isinstance(err, ApiError):
        return err
    return ApiError(500, f"Internal Server Error: {type(err).__name__}: {err}")
