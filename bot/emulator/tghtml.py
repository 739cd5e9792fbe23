"""Telegram's HTML subset: parse like the Bot API does, and render the result back as plain text."""

# ``parse_html`` follows the rules of the real server (tdlib's ``parse_html``): supported tags are
# b, strong, i, em, u, ins, s, strike, del, span class="tg-spoiler", tg-spoiler, a href, code,
# pre (optionally wrapping <code class="language-x">), blockquote (optionally ``expandable``) and
# tg-emoji emoji-id; entities are &lt; &gt; &amp; &quot; and numeric ones. Errors carry Telegram's
# own wording ("Unsupported start tag "x" at byte offset 3", "Can't find end tag corresponding to
# start tag "b"", ...). One deliberate difference: with ``strict_ampersand`` (the emulator's
# default) a bare "&" that does not start an entity is rejected, although Telegram keeps it, because
# it nearly always means the bot forgot to escape user input.
#
# Entity offsets and lengths are in UTF-16 code units, as in the Bot API.

from __future__ import annotations

import html as _stdhtml
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EntityParseError",
    "parse_html",
    "render_plain",
    "strip_html",
    "trim_text",
    "utf16_len",
    "utf16_to_index",
]

SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)

_SIMPLE_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([a-zA-Z]{1,10}));")
_NAME_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_URL_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_KNOWN_TAG_RE = re.compile(
    r"</?(?:b|strong|i|em|u|ins|s|strike|del|span|tg-spoiler|tg-emoji|a|code|pre|blockquote)\b[^<>]*>",
    re.IGNORECASE,
)
_DOMAIN_RE = re.compile(r"^[\w-]+(\.[\w-]+)+([:/?#].*)?$")


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; ``str(err)`` is Telegram's description tail."""


@dataclass
class _Open:
    tag: str
    argument: str | None
    offset: int  # UTF-16 offset in the result text
    source_pos: int  # index in the source just after "<tag ...>"


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (the unit of Telegram entity offsets)."""
    return len(text.encode("utf-16-le")) // 2


def utf16_to_index(text: str, offset: int) -> int:
    """Convert a UTF-16 offset into a Python string index of ``text``."""
    units = 0
    for index, char in enumerate(text):
        if units >= offset:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the HTML entity starting at ``text[pos] == '&'``; None when it is not one."""
    match = _ENTITY_RE.match(text, pos)
    if match is None:
        return None
    dec, hexa, name = match.groups()
    if name is not None:
        value = _NAMED_ENTITIES.get(name)
        if value is None:
            return None
        return value, match.end()
    code = int(dec) if dec is not None else int(hexa, 16)
    if code <= 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


def _normalize_url(url: str) -> str | None:
    url = url.strip()
    if not url:
        return None
    if _URL_SCHEME_RE.match(url):
        return url
    if _DOMAIN_RE.match(url):
        return "http://" + url
    return None


def parse_html(text: str, *, strict_ampersand: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-HTML ``text`` into (plain text, entity dicts); raise EntityParseError."""
    out: list[str] = []
    out_units = 0
    entities: list[dict[str, Any]] = []
    stack: list[_Open] = []
    i = 0
    n = len(text)

    def emit(chunk: str) -> None:
        nonlocal out_units
        out.append(chunk)
        out_units += utf16_len(chunk)

    while i < n:
        char = text[i]
        if char == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                emit(decoded[0])
                i = decoded[1]
                continue
            if strict_ampersand:
                raise EntityParseError(
                    f'Character "&" must be escaped as "&amp;" at byte offset {_byte_offset(text, i)}'
                )
            emit(char)
            i += 1
            continue
        if char != "<":
            emit(char)
            i += 1
            continue

        begin = i
        i += 1
        if i < n and text[i] == "/":
            # An end tag.
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
            i += 1
            name_start = i
            while i < n and not text[i].isspace() and text[i] != ">":
                i += 1
            end_name = text[name_start:i].lower()
            while i < n and text[i].isspace():
                i += 1
            if i >= n or text[i] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
            i += 1
            opened = stack.pop()
            if end_name and end_name != opened.tag:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{opened.tag}>", found "</{end_name}>"'
                )
            _close_entity(opened, out_units, text[opened.source_pos : begin], entities)
            continue

        # A start tag.
        name_start = i
        while i < n and not text[i].isspace() and text[i] != ">":
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        tag = text[name_start:i].lower()
        if tag not in SUPPORTED_TAGS:
            raise EntityParseError(
                f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
            )
        argument: str | None = None
        while True:
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            if text[i] == ">":
                i += 1
                break
            attr_start = i
            while i < n and not text[i].isspace() and text[i] not in "=>/\"'":
                i += 1
            attr = text[attr_start:i].lower()
            if not attr:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                )
            while i < n and text[i].isspace():
                i += 1
            if i >= n or text[i] != "=":
                if tag == "blockquote" and attr == "expandable":
                    argument = "expandable"
                continue
            i += 1
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            if text[i] in "\"'":
                quote = text[i]
                i += 1
                value_chars: list[str] = []
                while i < n and text[i] != quote:
                    if text[i] == "&":
                        decoded = _decode_entity(text, i)
                        if decoded is not None:
                            value_chars.append(decoded[0])
                            i = decoded[1]
                            continue
                    value_chars.append(text[i])
                    i += 1
                if i >= n:
                    raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                i += 1
                value = "".join(value_chars)
            else:
                token_start = i
                while i < n and text[i] in _NAME_TOKEN_CHARS:
                    i += 1
                if i >= n:
                    raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                if not text[i].isspace() and text[i] != ">":
                    raise EntityParseError(
                        f"Unexpected end of name token at byte offset {_byte_offset(text, token_start)}"
                    )
                value = text[token_start:i].lower()
            if tag == "a" and attr == "href":
                argument = value
            elif tag == "code" and attr == "class" and value.startswith("language-"):
                argument = value.removeprefix("language-")
            elif tag == "span" and attr == "class" and value.startswith("tg-"):
                argument = value.removeprefix("tg-")
            elif tag == "tg-emoji" and attr == "emoji-id":
                argument = value
        if tag == "span" and argument != "spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
            )
        stack.append(_Open(tag=tag, argument=argument, offset=out_units, source_pos=i))

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), [_finish(e) for e in entities]


def _close_entity(opened: _Open, end_units: int, inner_source: str, entities: list[dict[str, Any]]) -> None:
    length = end_units - opened.offset
    if length <= 0:
        return
    base = {"offset": opened.offset, "length": length}
    tag = opened.tag
    if tag in _SIMPLE_TYPES:
        entities.append({"type": _SIMPLE_TYPES[tag], **base})
    elif tag == "a":
        url = _normalize_url(
            opened.argument if opened.argument is not None else _stdhtml.unescape(inner_source)
        )
        if url is not None:
            entities.append({"type": "text_link", **base, "url": url})
    elif tag == "tg-emoji":
        if not (opened.argument or "").isdigit():
            raise EntityParseError("Invalid custom emoji identifier specified")
        entities.append({"type": "custom_emoji", **base, "custom_emoji_id": opened.argument})
    elif tag == "code":
        entity: dict[str, Any] = {"type": "code", **base}
        if opened.argument:
            entity["language"] = opened.argument
        entities.append(entity)
    elif tag == "pre":
        last = entities[-1] if entities else None
        if last and last["type"] == "code" and last["offset"] == base["offset"] and last["length"] == length:
            last["type"] = "pre"
        else:
            entities.append({"type": "pre", **base})
    elif tag == "blockquote":
        kind = "expandable_blockquote" if opened.argument == "expandable" else "blockquote"
        entities.append({"type": kind, **base})


def trim_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading/trailing whitespace like Telegram does and shift/clip the entities to match."""
    stripped = text.strip()
    if stripped == text:
        return text, [dict(e) for e in entities]
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    result = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(total, entity["offset"] + entity["length"] - lead)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


def _finish(entity: dict[str, Any]) -> dict[str, Any]:
    entity = dict(entity)
    if entity["type"] == "code":
        # A language is only kept for <pre><code class="language-x">; standalone code drops it.
        entity.pop("language", None)
    return entity


def strip_html(text: str) -> str:
    """Plain-text view of a Telegram-HTML string (lenient: never raises)."""
    try:
        plain, _ = parse_html(text, strict_ampersand=False)
    except EntityParseError:
        plain = _stdhtml.unescape(_KNOWN_TAG_RE.sub("", text))
    return plain


_ANSI = {"bold": "1", "italic": "3", "underline": "4", "strikethrough": "9", "code": "2", "pre": "2"}


def render_plain(text: str, entities: list[dict[str, Any]] | None = None, *, ansi: bool = False) -> str:
    """Render plain ``text``; with ``ansi`` apply bold/italic/underline entities as ANSI styles."""
    if not ansi or not entities:
        return text
    styles: list[set[str]] = [set() for _ in text]
    for entity in entities:
        code = _ANSI.get(entity.get("type", ""))
        if code is None:
            continue
        start = utf16_to_index(text, entity["offset"])
        end = utf16_to_index(text, entity["offset"] + entity["length"])
        for index in range(start, end):
            styles[index].add(code)
    parts: list[str] = []
    current: set[str] = set()
    for char, style in zip(text, styles, strict=True):
        if style != current:
            if current:
                parts.append("\x1b[0m")
            if style:
                parts.append("\x1b[" + ";".join(sorted(style)) + "m")
            current = style
        parts.append(char)
    if current:
        parts.append("\x1b[0m")
    return "".join(parts)
