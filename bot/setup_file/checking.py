"""Checking a setup file's data against key tables: places in the file, the reading context, shared readers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bot.setup_file.names import normalize_name
from bot.yamlkit.messages import TEXTS, Problems, describe_value
from bot.yamlkit.reader import Lines
from bot.yamlkit.suggest import closest

MAX_NAME_LENGTH: Final = 200  # the database columns' limit


class Invalid:
    """The value a reader returns when it has reported an error."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = Invalid()


@dataclass(frozen=True)
class Where:
    """A place in the file: a path of keys and list indexes, and a line when known."""

    path: tuple[str, ...] = ()
    line: int | None = None

    def __str__(self) -> str:
        return " › ".join(self.path)

    def key(self, name: str, line: int | None = None) -> Where:
        """The place of a key below this one."""
        return Where((*self.path, name), line if line is not None else self.line)

    def item(self, index: int, line: int | None = None, label: str | None = None) -> Where:
        """The place of item `index` of the list at this place (`villages` → `villages[3]`)."""
        last = f"{self.path[-1]}[{index}]" if self.path else f"[{index}]"
        if label:
            last = f"{last} ({label})"
        return Where((*self.path[:-1], last), line if line is not None else self.line)


@dataclass
class Context:
    """What a reader needs: the file's name and folder, the lines YAML gave, and where mistakes go."""

    file: str
    base_dir: Path
    lines: Lines = field(default_factory=Lines)
    problems: Problems = field(init=False)

    def __post_init__(self) -> None:
        self.problems = Problems(self.file)

    def error(self, where: Where, reason: str) -> Invalid:
        """Record an error and return INVALID (so a reader can `return ctx.error(...)`)."""
        self.problems.error(str(where), reason, where.line)
        return INVALID

    def warn(self, where: Where, reason: str) -> None:
        """Record a warning: worth reading, but the file can still be applied."""
        self.problems.warn(str(where), reason, where.line)

    def start_line(self, container: object) -> int | None:
        """The line a mapping or list starts on."""
        return self.lines.start_line(container)

    def line_of(self, container: object, key: object) -> int | None:
        """The line of a key of a mapping, or of an item of a list."""
        return self.lines.line_of(container, key)


Reader = Callable[[Context, Any, Where], Any]


@dataclass(frozen=True)
class Key:
    """One allowed key of a mapping: required or not, how its value is read, the default when absent."""

    read: Reader
    required: bool = False
    default: Any = None
    hint: str = ""  # added to the "missing key" message


def read_mapping(ctx: Context, value: Any, where: Where, keys: Mapping[str, Key]) -> dict[str, Any] | Invalid:
    """Check a mapping against its key table: unknown, repeated, missing keys; read every known key."""
    if not isinstance(value, dict):
        return ctx.error(where, TEXTS["not_a_mapping"].format(value=describe_value(value)))
    for repeat in ctx.lines.repeated_in(value):
        ctx.error(
            where.key(repeat.text, repeat.line),
            TEXTS["repeated_key_setup"].format(key=repeat.text, first=repeat.first),
        )
    for raw in value:
        if raw not in keys:
            at = where.key(str(raw), ctx.line_of(value, raw))
            close = closest(str(raw), keys, ignore_case=True)
            if close is not None and close not in value:
                ctx.error(at, TEXTS["unknown_key_close"].format(key=raw, close=close))
            elif close is not None:
                line = ctx.line_of(value, close)
                ctx.error(at, TEXTS["unknown_key_close_taken"].format(key=raw, close=close, line=line))
            else:
                ctx.error(at, TEXTS["unknown_key_only"].format(key=raw, allowed=", ".join(keys)))
    result: dict[str, Any] = {}
    for name, spec in keys.items():
        if name not in value or (value[name] is None and not spec.required):
            if spec.required:
                hint = f" ({spec.hint})" if spec.hint else ""
                result[name] = ctx.error(
                    Where(where.path, ctx.start_line(value) or where.line),
                    TEXTS["missing_key"].format(key=name, hint=hint),
                )
            else:
                result[name] = spec.default
            continue
        result[name] = spec.read(ctx, value[name], where.key(name, ctx.line_of(value, name)))
    return result


def all_valid(values: Mapping[str, Any]) -> bool:
    """True when no value read is INVALID."""
    return all(v is not INVALID for v in values.values())


def read_text(
    ctx: Context, value: Any, where: Where, what: str, max_length: int = MAX_NAME_LENGTH
) -> str | Invalid:
    """A non-empty string, NFC-normalised with whitespace collapsed, at most `max_length` characters."""
    if not isinstance(value, str):
        return ctx.error(where, TEXTS["not_text"].format(what=what, value=describe_value(value)))
    text = normalize_name(value)
    if not text:
        return ctx.error(where, TEXTS["empty_text"].format(what=what))
    if len(text) > max_length:
        return ctx.error(where, TEXTS["too_long"].format(what=what, length=len(text), limit=max_length))
    return text


def read_list(ctx: Context, value: Any, where: Where, what: str) -> list[Any] | Invalid:
    """A YAML list (one item per `- ` line)."""
    if not isinstance(value, list):
        return ctx.error(where, TEXTS["not_a_list"].format(what=what, value=describe_value(value)))
    return value
