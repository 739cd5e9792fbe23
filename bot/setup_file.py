"""The commune setup file: communes, villages and police chats in one YAML file, checked as a whole.

`load_setup(path)` reads and checks a file and returns every mistake at once (with its place and,
when known, its line); nothing here touches the database — `bot.services.setup.apply_setup` does.

The keys allowed at each level are declared in the tables `TOP_KEYS`, `COMMUNE_KEYS`,
`VILLAGE_KEYS` and `POLICE_CHAT_KEYS`. To add a key (e.g. `periods`): write a reader
`_read_periods(ctx, value, where) -> parsed | INVALID` that reports problems with `ctx.error`,
add a row to the table, and a field of the same name to the dataclass built from that table.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml

from bot.reminders.rules import DEFAULT_QUIET, QuietHours, parse_quiet_hours
from bot.schedules import Schedule, parse_schedules
from storage.models import VillageKind

SUPPORTED_VERSIONS: Final = (1,)
MAX_NAME_LENGTH: Final = 200  # the database columns' limit
MAX_CODE_LENGTH: Final = 64
MAX_TIMEZONE_LENGTH: Final = 64
CODE_RE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The chat id printed in the shipped examples; a file still holding it gets a warning.
PLACEHOLDER_CHAT_IDS: Final = frozenset({-1001234567890})
_BIGINT: Final = 2**63

KIND_LABELS: Final = {VillageKind.THON: "thôn", VillageKind.TO_DAN_PHO: "tổ dân phố"}


# ---------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class SetupError:
    """One mistake: the file, where in it (a path such as `communes[0] (hiep-luc) › villages[3]`) and why."""

    file: str
    where: str
    reason: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        """`file: where: reason (dòng N)`, the form the command line prints."""
        head = f"{self.file}: {self.where}: " if self.where else f"{self.file}: "
        if self.line is None:
            return f"{head}{self.reason}"
        column = f", cột {self.column}" if self.column is not None else ""
        return f"{head}{self.reason} (dòng {self.line}{column})"


@dataclass(frozen=True)
class PoliceChatSpec:
    """A Telegram chat that receives a commune's alerts."""

    chat_id: int
    title: str | None = None


@dataclass(frozen=True)
class VillageSpec:
    """A village (thôn) or town block (tổ dân phố) as written in the file, names NFC-normalised."""

    name: str
    kind: VillageKind = VillageKind.THON
    renamed_from: str | None = None

    @property
    def key(self) -> str:
        """The comparison key of the name (see `name_key`)."""
        return name_key(self.name)


@dataclass(frozen=True)
class CommuneSpec:
    """A commune with its villages, police chats and the absolute paths of its form files."""

    code: str
    name: str
    villages: tuple[VillageSpec, ...]
    province: str | None = None
    timezone: str | None = None
    police_chats: tuple[PoliceChatSpec, ...] = ()
    forms: tuple[Path, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    quiet_hours: QuietHours = DEFAULT_QUIET


@dataclass(frozen=True)
class SetupFile:
    """A whole checked setup file."""

    source: Path
    version: int
    communes: tuple[CommuneSpec, ...]


@dataclass(frozen=True)
class SetupResult:
    """What checking a file gave: the parsed file when there is no error, every error, and warnings."""

    setup: SetupFile | None
    errors: tuple[SetupError, ...]
    warnings: tuple[SetupError, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the file has no error (warnings allowed)."""
        return self.setup is not None and not self.errors


# ---------------------------------------------------------------------------------------------
# Names


_WS_RE = re.compile(r"\s+")
# Old and new tone placement ("hoà"/"hòa", "thuý"/"thúy") are the same name; compare them equal.
_TONE_PAIRS = {
    **{"o" + toned: first + "a" for toned, first in zip("àáảãạ", "òóỏõọ", strict=True)},
    **{"o" + toned: first + "e" for toned, first in zip("èéẻẽẹ", "òóỏõọ", strict=True)},
    **{"u" + toned: first + "y" for toned, first in zip("ỳýỷỹỵ", "ùúủũụ", strict=True)},
}
_TONE_RE = re.compile("(" + "|".join(_TONE_PAIRS) + r")(?!\w)")


def normalize_name(text: str) -> str:
    """A name as stored: Unicode NFC, trimmed, inner whitespace collapsed to one space."""
    return _WS_RE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def name_key(text: str) -> str:
    """The key two names are compared by: normalised, case-folded, one tone-mark placement."""
    folded = unicodedata.normalize("NFC", normalize_name(text).casefold())
    return _TONE_RE.sub(lambda m: _TONE_PAIRS[m.group(1)], folded)


def slugify(text: str) -> str:
    """An ASCII slug of a Vietnamese name ("Xã Hiệp Lực" → "xa-hiep-luc"), for suggestions."""
    plain = text.replace("đ", "d").replace("Đ", "D")
    plain = "".join(ch for ch in unicodedata.normalize("NFD", plain) if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


# ---------------------------------------------------------------------------------------------
# Reading YAML with line numbers


class _Loader(yaml.SafeLoader):
    """A safe loader that remembers the line of every key and list item, and repeated keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[int, tuple[int, Any]] = {}
        self.repeated: dict[int, list[tuple[str, int, int]]] = {}


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Any:
    data: dict[Any, Any] = {}
    yield data
    first_seen: dict[str, int] = {}
    repeated: list[tuple[str, int, int]] = []
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            line = key_node.start_mark.line + 1
            if key_node.value in first_seen:
                repeated.append((key_node.value, line, first_seen[key_node.value]))
            else:
                first_seen[key_node.value] = line
    loader.flatten_mapping(node)
    key_lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
            ) from exc
        data[key] = loader.construct_object(value_node, deep=True)
        key_lines.setdefault(key, key_node.start_mark.line + 1)
    loader.lines[id(data)] = (node.start_mark.line + 1, key_lines)
    if repeated:
        loader.repeated[id(data)] = repeated


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Any:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)
    loader.lines[id(data)] = (node.start_mark.line + 1, [child.start_mark.line + 1 for child in node.value])


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)

_YAML_PROBLEMS = (
    ("found character '\\t'", "có ký tự Tab — chỉ thụt lề bằng dấu cách"),
    (
        "mapping values are not allowed here",
        "dấu ':' không đúng chỗ — thiếu dấu cách sau ':', hoặc giá trị có ':' mà chưa đặt trong ngoặc kép",
    ),
    ("could not find expected ':'", "thiếu dấu ':' sau tên khóa"),
    ("did not find expected '-' indicator", "thụt lề của danh sách không đều"),
    ("did not find expected key", "thụt lề không đều"),
    ("expected <block end>", "thụt lề không đều"),
    ("found unexpected end of stream", "tệp kết thúc giữa chừng — có dấu ngoặc kép chưa đóng?"),
    (
        "found undefined alias",
        "dùng '*' mà không có '&' tương ứng — tên thôn bắt đầu bằng '*' hãy đặt trong ngoặc kép",
    ),
    ("expected a single document", "tệp chỉ được chứa một tài liệu YAML — bỏ dòng '---' thừa"),
    ("expected ',' or ']'", "danh sách trong '[...]' thiếu dấu ']' đóng hoặc thiếu dấu ',' giữa các mục"),
    ("expected ',' or '}'", "nhóm trong '{...}' thiếu dấu '}' đóng hoặc thiếu dấu ',' giữa các mục"),
    ("found unhashable key", "khóa phải là một chữ, không phải danh sách hay bảng"),
    ("while scanning an anchor", "ký tự '&' đầu giá trị — hãy đặt giá trị trong ngoặc kép"),
    ("found character '@'", "ký tự '@' hoặc '`' đầu giá trị — hãy đặt giá trị trong ngoặc kép"),
    ("found character '`'", "ký tự '@' hoặc '`' đầu giá trị — hãy đặt giá trị trong ngoặc kép"),
)


def _yaml_error(file: str, exc: yaml.YAMLError) -> SetupError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = str(getattr(exc, "problem", None) or exc)
    context = str(getattr(exc, "context", None) or "")
    reason = next(
        (vn for en, vn in _YAML_PROBLEMS if en in problem or en in context),
        problem,
    )
    if mark is None:
        return SetupError(file, "", f"lỗi cú pháp YAML: {reason}")
    return SetupError(file, "", f"lỗi cú pháp YAML: {reason}", mark.line + 1, mark.column + 1)


# ---------------------------------------------------------------------------------------------
# Checking


class _Invalid:
    """The value a reader returns when it has reported an error."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()


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
    """What a reader needs: the file's name and folder, the lines YAML gave, and where errors go."""

    file: str
    base_dir: Path
    lines: Mapping[int, tuple[int, Any]] = field(default_factory=dict)
    repeated: Mapping[int, list[tuple[str, int, int]]] = field(default_factory=dict)
    errors: list[SetupError] = field(default_factory=list)
    warnings: list[SetupError] = field(default_factory=list)

    def error(self, where: Where, reason: str) -> _Invalid:
        """Record an error and return INVALID (so a reader can `return ctx.error(...)`)."""
        self.errors.append(SetupError(self.file, str(where), reason, where.line))
        return INVALID

    def warn(self, where: Where, reason: str) -> None:
        """Record a warning: worth reading, but the file can still be applied."""
        self.warnings.append(SetupError(self.file, str(where), reason, where.line))

    def start_line(self, container: object) -> int | None:
        """The line a mapping or list starts on."""
        found = self.lines.get(id(container))
        return found[0] if found else None

    def line_of(self, container: object, key: object) -> int | None:
        """The line of a key of a mapping, or of an item of a list."""
        found = self.lines.get(id(container))
        if not found:
            return None
        inner = found[1]
        if isinstance(inner, dict):
            return inner.get(key)
        if isinstance(key, int) and 0 <= key < len(inner):
            return inner[key]
        return None


Reader = Callable[[Context, Any, Where], Any]


@dataclass(frozen=True)
class Key:
    """One allowed key of a mapping: required or not, how its value is read, the default when absent."""

    read: Reader
    required: bool = False
    default: Any = None
    hint: str = ""  # added to the "missing key" message


def _type_vn(value: object) -> str:
    if value is None:
        return "đang để trống"
    if isinstance(value, bool):
        return "đang là đúng/sai (true/false)"
    if isinstance(value, int | float):
        return f"đang là số {value}"
    if isinstance(value, str):
        return f"đang là chữ '{value}'"
    if isinstance(value, list):
        return "đang là một danh sách"
    if isinstance(value, dict):
        return "đang là các cặp khóa: giá trị"
    return f"đang là {type(value).__name__}"


def _suggest(word: str, known: list[str] | tuple[str, ...] | set[str] | frozenset[str]) -> str | None:
    found = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    if not found:
        lowered = {k.lower(): k for k in known}
        found = difflib.get_close_matches(word.lower(), sorted(lowered), n=1, cutoff=0.6)
        found = [lowered[f] for f in found]
    return found[0] if found else None


def read_mapping(
    ctx: Context, value: Any, where: Where, keys: Mapping[str, Key]
) -> dict[str, Any] | _Invalid:
    """Check a mapping against its key table: unknown, repeated, missing keys; read every known key."""
    if not isinstance(value, dict):
        return ctx.error(where, f"phải là các cặp 'khóa: giá trị', {_type_vn(value)}")
    for name, line, first in ctx.repeated.get(id(value), ()):
        ctx.error(
            where.key(str(name), line),
            f"khóa '{name}' được ghi hai lần (lần đầu ở dòng {first}) — chỉ giữ một",
        )
    for raw in value:
        if raw not in keys:
            at = where.key(str(raw), ctx.line_of(value, raw))
            close = _suggest(str(raw), list(keys))
            if close is not None and close not in value:
                ctx.error(at, f"khóa lạ '{raw}' — có phải '{close}'?")
            elif close is not None:
                ctx.error(
                    at,
                    f"khóa lạ '{raw}' — có phải '{close}'? ('{close}' đã có ở dòng {ctx.line_of(value, close)})",
                )
            else:
                ctx.error(at, f"khóa lạ '{raw}' — ở đây chỉ dùng: {', '.join(keys)}")
    result: dict[str, Any] = {}
    for name, spec in keys.items():
        if name not in value or (value[name] is None and not spec.required):
            if spec.required:
                hint = f" ({spec.hint})" if spec.hint else ""
                result[name] = ctx.error(
                    Where(where.path, ctx.start_line(value) or where.line), f"thiếu khóa '{name}'{hint}"
                )
            else:
                result[name] = spec.default
            continue
        result[name] = spec.read(ctx, value[name], where.key(name, ctx.line_of(value, name)))
    return result


def _all_valid(values: Mapping[str, Any]) -> bool:
    return all(v is not INVALID for v in values.values())


def read_text(
    ctx: Context, value: Any, where: Where, what: str, max_length: int = MAX_NAME_LENGTH
) -> str | _Invalid:
    """A non-empty string, NFC-normalised with whitespace collapsed, at most `max_length` characters."""
    if not isinstance(value, str):
        return ctx.error(where, f"{what} phải là chữ, {_type_vn(value)}")
    text = normalize_name(value)
    if not text:
        return ctx.error(where, f"{what} không được để trống")
    if len(text) > max_length:
        return ctx.error(where, f"{what} dài {len(text)} ký tự, tối đa {max_length}")
    return text


def read_list(ctx: Context, value: Any, where: Where, what: str) -> list[Any] | _Invalid:
    """A YAML list (one item per `- ` line)."""
    if not isinstance(value, list):
        return ctx.error(
            where, f"{what} phải là một danh sách (mỗi mục một dòng bắt đầu bằng '- '), {_type_vn(value)}"
        )
    return value


# --- top level


def _read_version(ctx: Context, value: Any, where: Where) -> int | _Invalid:
    if isinstance(value, bool) or not isinstance(value, int):
        return ctx.error(where, f"version phải là số 1, {_type_vn(value)}")
    if value not in SUPPORTED_VERSIONS:
        return ctx.error(where, f"phiên bản {value} chưa được hỗ trợ — hãy ghi 'version: 1'")
    return value


def _commune_label(item: Any) -> str | None:
    if isinstance(item, dict):
        for key in ("code", "name"):
            if isinstance(item.get(key), str) and item[key].strip():
                return item[key].strip()
    return None


def _read_communes(ctx: Context, value: Any, where: Where) -> tuple[CommuneSpec, ...] | _Invalid:
    items = read_list(ctx, value, where, "communes")
    if items is INVALID:
        return INVALID
    if not items:
        return ctx.error(where, "cần ít nhất một xã")
    communes: list[CommuneSpec | _Invalid] = []
    codes: dict[str, int] = {}
    for index, item in enumerate(items):
        at = where.item(index, ctx.line_of(items, index), _commune_label(item))
        fields = read_mapping(ctx, item, at, COMMUNE_KEYS)
        if fields is INVALID:
            communes.append(INVALID)
            continue
        code = fields["code"]
        if code is not INVALID:
            if code in codes:
                ctx.error(
                    at.key("code", ctx.line_of(item, "code")),
                    f"mã xã '{code}' trùng với communes[{codes[code]}]",
                )
            else:
                codes[code] = index
        if not fields["police_chats"] and fields["police_chats"] is not INVALID:
            ctx.warn(at, "chưa có nơi nhận cảnh báo (police_chats) — báo cáo đột xuất sẽ không báo cho ai")
        communes.append(CommuneSpec(**fields) if _all_valid(fields) else INVALID)
    if any(c is INVALID for c in communes):
        return INVALID
    return tuple(c for c in communes if isinstance(c, CommuneSpec))


# --- commune


def _read_code(ctx: Context, value: Any, where: Where) -> str | _Invalid:
    if not isinstance(value, str):
        return ctx.error(where, f"mã xã phải là chữ, {_type_vn(value)}")
    code = value.strip()
    if not code:
        return ctx.error(where, "mã xã không được để trống")
    if len(code) > MAX_CODE_LENGTH:
        return ctx.error(where, f"mã xã dài {len(code)} ký tự, tối đa {MAX_CODE_LENGTH}")
    if not CODE_RE.match(code):
        slug = slugify(code)
        tip = f" — ví dụ '{slug}'" if slug and CODE_RE.match(slug) else ""
        return ctx.error(
            where, f"mã xã '{code}' không hợp lệ: chỉ dùng chữ thường không dấu, chữ số và dấu gạch nối{tip}"
        )
    return code


def _read_commune_name(ctx: Context, value: Any, where: Where) -> str | _Invalid:
    return read_text(ctx, value, where, "tên xã")


def _read_province(ctx: Context, value: Any, where: Where) -> str | _Invalid:
    return read_text(ctx, value, where, "tên tỉnh")


# Time zones people write for Việt Nam that are not IANA names ("Asia/Hanoi", "UTC+7", "GMT+7", …).
_VIETNAM_RE = re.compile(r"ha.?no[i.]|sai.?gon|ho.?chi|viet|\bvn\b|\bict\b|[+]0?7\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _read_timezone(ctx: Context, value: Any, where: Where) -> str | _Invalid:
    if not isinstance(value, str):
        return ctx.error(where, f"múi giờ phải là chữ như 'Asia/Ho_Chi_Minh', {_type_vn(value)}")
    name = value.strip()
    try:
        if not name or len(name) > MAX_TIMEZONE_LENGTH:
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = "Asia/Ho_Chi_Minh" if _VIETNAM_RE.search(name) else _suggest(name, _timezones())
        tip = f"có phải '{close}'?" if close else "ở Việt Nam dùng 'Asia/Ho_Chi_Minh'"
        return ctx.error(where, f"múi giờ lạ '{name}' — {tip}")
    return name


def _read_police_chats(ctx: Context, value: Any, where: Where) -> tuple[PoliceChatSpec, ...] | _Invalid:
    items = read_list(ctx, value, where, "police_chats")
    if items is INVALID:
        return INVALID
    chats: list[PoliceChatSpec | _Invalid] = []
    seen: dict[int, int] = {}
    for index, item in enumerate(items):
        at = where.item(index, ctx.line_of(items, index))
        if isinstance(item, dict):
            fields = read_mapping(ctx, item, at, POLICE_CHAT_KEYS)
        else:  # a bare chat id is allowed: `- -1001234567890`
            fields = {"chat_id": _read_chat_id(ctx, item, at), "title": None}
        if fields is INVALID:
            chats.append(INVALID)
            continue
        chat_id = fields["chat_id"]
        if isinstance(chat_id, int):
            chat_at = at.key("chat_id", ctx.line_of(item, "chat_id")) if isinstance(item, dict) else at
            if chat_id in seen:
                ctx.error(chat_at, f"chat_id {chat_id} trùng với police_chats[{seen[chat_id]}]")
            else:
                seen[chat_id] = index
            if chat_id in PLACEHOLDER_CHAT_IDS:
                ctx.warn(
                    chat_at,
                    f"chat_id {chat_id} là số mẫu — thêm bot vào nhóm, gửi /start trong nhóm "
                    "và chép mã nhóm bot trả lời vào đây",
                )
        chats.append(PoliceChatSpec(**fields) if _all_valid(fields) else INVALID)
    if any(c is INVALID for c in chats):
        return INVALID
    return tuple(c for c in chats if isinstance(c, PoliceChatSpec))


def _read_chat_id(ctx: Context, value: Any, where: Where) -> int | _Invalid:
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return ctx.error(where, f"chat_id phải là số nguyên — bỏ dấu ngoặc kép quanh {value.strip()}")
    if isinstance(value, bool) or not isinstance(value, int):
        return ctx.error(where, f"chat_id phải là số nguyên như -1001234567890, {_type_vn(value)}")
    if value == 0 or not -_BIGINT < value < _BIGINT:
        return ctx.error(where, f"chat_id {value} không phải mã cuộc trò chuyện Telegram")
    return value


def _read_chat_title(ctx: Context, value: Any, where: Where) -> str | _Invalid:
    return read_text(ctx, value, where, "tên nhóm")


def _read_villages(ctx: Context, value: Any, where: Where) -> tuple[VillageSpec, ...] | _Invalid:
    if value is None:
        return ctx.error(where, "đang để trống — cần ít nhất một thôn")
    items = read_list(ctx, value, where, "villages")
    if items is INVALID:
        return INVALID
    if not items:
        return ctx.error(where, "cần ít nhất một thôn")
    entries: list[dict[str, Any] | _Invalid] = []  # the read keys of each village, or INVALID
    names: dict[str, tuple[int, str]] = {}
    ats: list[Where] = []
    for index, item in enumerate(items):
        at = where.item(index, ctx.line_of(items, index))
        ats.append(at)
        if isinstance(item, dict):
            fields = read_mapping(ctx, item, at, VILLAGE_KEYS)
            if fields is not INVALID and fields["renamed_from"] is not None:
                fields["renamed_from_at"] = at.key("renamed_from", ctx.line_of(item, "renamed_from"))
        elif isinstance(item, str):
            fields = {
                "name": read_text(ctx, item, at, "tên thôn"),
                "kind": VillageKind.THON,
                "renamed_from": None,
            }
        else:
            ctx.error(at, f"mỗi thôn là một tên, hoặc các khóa name/kind/renamed_from — {_type_vn(item)}")
            fields = INVALID
        if not isinstance(fields, dict):
            entries.append(INVALID)
            continue
        name = fields["name"]
        if isinstance(name, str):
            key = name_key(name)
            if key in names:
                first, first_name = names[key]
                ctx.error(at, f"tên thôn trùng với villages[{first}] '{first_name}'")
                fields["name"] = INVALID
            else:
                names[key] = (index, name)
        entries.append(fields)
    # renamed_from may name neither a village still in the file nor the same old village twice
    olds: dict[str, int] = {}
    result: list[VillageSpec | _Invalid] = []
    for index, fields in enumerate(entries):
        if not isinstance(fields, dict):
            result.append(INVALID)
            continue
        old = fields["renamed_from"]
        old_at = fields.pop("renamed_from_at", ats[index])
        if isinstance(old, str):
            key = name_key(old)
            if isinstance(fields["name"], str) and key == name_key(fields["name"]):
                fields["renamed_from"] = ctx.error(old_at, "renamed_from giống tên hiện tại — bỏ khóa này đi")
            elif key in names:
                other, other_name = names[key]
                fields["renamed_from"] = ctx.error(
                    old_at,
                    f"renamed_from '{old}' là tên của villages[{other}] '{other_name}' vẫn còn trong tệp — "
                    "thôn đổi tên thì bỏ tên cũ khỏi danh sách",
                )
            elif key in olds:
                fields["renamed_from"] = ctx.error(
                    old_at,
                    f"renamed_from '{old}' đã dùng ở villages[{olds[key]}] — hai thôn không thể cùng đổi từ một tên",
                )
            else:
                olds[key] = index
        result.append(VillageSpec(**fields) if _all_valid(fields) else INVALID)
    if any(v is INVALID for v in result):
        return INVALID
    return tuple(v for v in result if isinstance(v, VillageSpec))


# --- village


def _read_village_name(ctx: Context, value: Any, where: Where) -> str | _Invalid:
    return read_text(ctx, value, where, "tên thôn")


_KIND_ALIASES = {slugify(label).replace("-", "_"): kind for kind, label in KIND_LABELS.items()}


def _read_kind(ctx: Context, value: Any, where: Where) -> VillageKind | _Invalid:
    allowed = " hoặc ".join(f"'{k.value}'" for k in VillageKind)
    if not isinstance(value, str):
        return ctx.error(where, f"loại phải là {allowed}, {_type_vn(value)}")
    alias = slugify(value).replace("-", "_")
    if alias in _KIND_ALIASES:
        return _KIND_ALIASES[alias]
    close = _suggest(alias, list(_KIND_ALIASES))
    tip = (
        f"có phải '{close}'?"
        if close
        else "chỉ nhận 'thon' (thôn, xóm, bản, ấp…) hoặc 'to_dan_pho' (tổ dân phố, khu phố…)"
    )
    return ctx.error(where, f"loại lạ '{value}' — {tip}")


def _read_renamed_from(ctx: Context, value: Any, where: Where) -> str | _Invalid:
    return read_text(ctx, value, where, "tên cũ (renamed_from)")


# --- forms (loaded elsewhere; here only: relative paths to files that exist)


def _read_forms(ctx: Context, value: Any, where: Where) -> tuple[Path, ...] | _Invalid:
    items = read_list(ctx, value, where, "forms")
    if items is INVALID:
        return INVALID
    paths: list[Path] = []
    seen: dict[Path, int] = {}
    ok = True
    for index, item in enumerate(items):
        at = where.item(index, ctx.line_of(items, index))
        if not isinstance(item, str) or not item.strip():
            ctx.error(at, f"mỗi biểu mẫu là đường dẫn tới một tệp, {_type_vn(item)}")
            ok = False
            continue
        written = item.strip()
        if Path(written).is_absolute():
            ctx.error(
                at, f"đường dẫn '{written}' phải tính từ thư mục chứa tệp này, ví dụ 'forms/su-co.yaml'"
            )
            ok = False
            continue
        resolved = (ctx.base_dir / written).resolve()
        if not resolved.is_file():
            ctx.error(at, f"không thấy tệp biểu mẫu '{written}' (tìm ở {resolved})")
            ok = False
        elif resolved in seen:
            ctx.error(at, f"biểu mẫu '{written}' trùng với forms[{seen[resolved]}]")
            ok = False
        else:
            seen[resolved] = index
            paths.append(resolved)
    return tuple(paths) if ok else INVALID


def _read_schedules(ctx: Context, value: Any, where: Where) -> tuple[Schedule, ...] | _Invalid:
    """Reporting periods per form (see bot.schedules for the format)."""
    schedules, problems = parse_schedules(value, where="schedules")
    for problem in problems:
        place, _, reason = problem.partition(": ")
        ctx.error(Where((*where.path[:-1], place), where.line), reason)
    return INVALID if problems else schedules


def _read_quiet_hours(ctx: Context, value: Any, where: Where) -> QuietHours | _Invalid:
    """No reminders in this local window: "21:00-06:30" (may wrap midnight), or false for none."""
    quiet, problem = parse_quiet_hours(value)
    if problem is not None or quiet is None:
        return ctx.error(where, problem or "giờ yên lặng không đúng")
    return quiet


# ---------------------------------------------------------------------------------------------
# The key tables (one per level) — add new keys here.

TOP_KEYS: dict[str, Key] = {
    "version": Key(_read_version, required=True, hint="ghi 'version: 1' ở đầu tệp"),
    "communes": Key(_read_communes, required=True, hint="danh sách các xã"),
}

COMMUNE_KEYS: dict[str, Key] = {
    "code": Key(_read_code, required=True, hint="mã không dấu, ví dụ 'hiep-luc'"),
    "name": Key(_read_commune_name, required=True, hint="ví dụ 'Xã Hiệp Lực'"),
    "province": Key(_read_province),
    "timezone": Key(_read_timezone),
    "police_chats": Key(_read_police_chats, default=()),
    "villages": Key(_read_villages, required=True, hint="danh sách thôn, tổ dân phố"),
    "forms": Key(_read_forms, default=()),
    "schedules": Key(_read_schedules, default=()),
    "quiet_hours": Key(_read_quiet_hours, default=DEFAULT_QUIET),
}

POLICE_CHAT_KEYS: dict[str, Key] = {
    "chat_id": Key(_read_chat_id, required=True, hint="gửi /start trong nhóm để bot cho biết mã"),
    "title": Key(_read_chat_title),
}

VILLAGE_KEYS: dict[str, Key] = {
    "name": Key(_read_village_name, required=True),
    "kind": Key(_read_kind, default=VillageKind.THON),
    "renamed_from": Key(_read_renamed_from),
}


# ---------------------------------------------------------------------------------------------
# Entry points


def _check(ctx: Context, data: Any, source: Path) -> SetupResult:
    if data is None:
        ctx.error(Where(), "tệp trống — cần có 'version: 1' và danh sách 'communes'")
        fields: dict[str, Any] | _Invalid = INVALID
    elif not isinstance(data, dict):
        ctx.error(
            Where(line=ctx.start_line(data)),
            f"đầu tệp phải là các khóa 'version' và 'communes', {_type_vn(data)}",
        )
        fields = INVALID
    else:
        fields = read_mapping(ctx, data, Where(), TOP_KEYS)
    errors = tuple(sorted(ctx.errors, key=lambda e: e.line if e.line is not None else 0))
    warnings = tuple(ctx.warnings)
    if errors or fields is INVALID or not _all_valid(fields):
        return SetupResult(None, errors, warnings)
    assert isinstance(fields, dict)
    return SetupResult(SetupFile(source=source, **fields), (), warnings)


def parse_setup(data: Any, source: str | Path) -> SetupResult:
    """Check already-loaded data (e.g. from `yaml.safe_load`); `source` names the file and anchors form paths."""
    path = Path(source)
    return _check(Context(str(source), path.resolve().parent), data, path)


def loads_setup(text: str, source: str | Path) -> SetupResult:
    """Check setup YAML given as text; errors carry line numbers."""
    path = Path(source)
    ctx = Context(str(source), path.resolve().parent)
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        return SetupResult(None, (_yaml_error(str(source), exc),))
    finally:
        loader.dispose()
    ctx.lines, ctx.repeated = loader.lines, loader.repeated
    return _check(ctx, data, path)


def load_setup(path: str | Path) -> SetupResult:
    """Read and check a setup file; every error is returned at once, nothing raises for a bad file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        reason = (
            "không thấy tệp" if isinstance(exc, FileNotFoundError) else f"không đọc được tệp ({exc.strerror})"
        )
        return SetupResult(None, (SetupError(str(path), "", reason),))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        reason = "tệp không lưu bằng mã UTF-8 — hãy lưu lại với mã hóa UTF-8"
        return SetupResult(None, (SetupError(str(path), "", reason, line),))
    return loads_setup(text, path)
