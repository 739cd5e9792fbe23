"""The setup file's key readers, one per key, and the key tables (one per level) that name them."""

from __future__ import annotations

import os
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.calendar.periods import Schedule, parse_schedules
from bot.calendar.reminder_rules import DEFAULT_QUIET, QuietHours, parse_quiet_hours
from bot.setup_file.checking import (
    INVALID,
    Context,
    Invalid,
    Key,
    Where,
    all_valid,
    read_list,
    read_mapping,
    read_text,
)
from bot.setup_file.names import code_slug, name_key
from bot.setup_file.specs import KIND_LABELS, CommuneSpec, PoliceChatSpec, ReportIdentity, VillageSpec
from bot.yamlkit.messages import TEXTS, describe_value
from bot.yamlkit.suggest import closest
from storage.models import VillageKind

SUPPORTED_VERSIONS: Final = (1,)
MAX_CODE_LENGTH: Final = 64
MAX_TIMEZONE_LENGTH: Final = 64
CODE_RE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The chat id printed in the shipped examples; a file still holding it gets a warning.
PLACEHOLDER_CHAT_IDS: Final = frozenset({-1001234567890})
_BIGINT: Final = 2**63


# --- top level


def _read_version(ctx: Context, value: Any, where: Where) -> int | Invalid:
    if isinstance(value, bool) or not isinstance(value, int):
        return ctx.error(where, f"version phải là số 1, {describe_value(value)}")
    if value not in SUPPORTED_VERSIONS:
        return ctx.error(where, f"phiên bản {value} chưa được hỗ trợ — hãy ghi 'version: 1'")
    return value


def _commune_label(item: Any) -> str | None:
    if isinstance(item, dict):
        for key in ("code", "name"):
            if isinstance(item.get(key), str) and item[key].strip():
                return item[key].strip()
    return None


def _read_communes(ctx: Context, value: Any, where: Where) -> tuple[CommuneSpec, ...] | Invalid:
    items = read_list(ctx, value, where, "communes")
    if items is INVALID:
        return INVALID
    if not items:
        return ctx.error(where, "cần ít nhất một xã")
    communes: list[CommuneSpec | Invalid] = []
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
        communes.append(CommuneSpec(**fields) if all_valid(fields) else INVALID)
    if any(c is INVALID for c in communes):
        return INVALID
    return tuple(c for c in communes if isinstance(c, CommuneSpec))


# --- commune


def _read_code(ctx: Context, value: Any, where: Where) -> str | Invalid:
    if not isinstance(value, str):
        return ctx.error(where, f"mã xã phải là chữ, {describe_value(value)}")
    code = value.strip()
    if not code:
        return ctx.error(where, "mã xã không được để trống")
    if len(code) > MAX_CODE_LENGTH:
        return ctx.error(where, f"mã xã dài {len(code)} ký tự, tối đa {MAX_CODE_LENGTH}")
    if not CODE_RE.match(code):
        slug = code_slug(code)
        tip = f" — ví dụ '{slug}'" if slug and CODE_RE.match(slug) else ""
        return ctx.error(
            where, f"mã xã '{code}' không hợp lệ: chỉ dùng chữ thường không dấu, chữ số và dấu gạch nối{tip}"
        )
    return code


def _read_commune_name(ctx: Context, value: Any, where: Where) -> str | Invalid:
    return read_text(ctx, value, where, "tên xã")


def _read_province(ctx: Context, value: Any, where: Where) -> str | Invalid:
    return read_text(ctx, value, where, "tên tỉnh")


# Time zones people write for Việt Nam that are not IANA names ("Asia/Hanoi", "UTC+7", "GMT+7", …).
_VIETNAM_RE = re.compile(r"ha.?no[i.]|sai.?gon|ho.?chi|viet|\bvn\b|\bict\b|[+]0?7\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _read_timezone(ctx: Context, value: Any, where: Where) -> str | Invalid:
    if not isinstance(value, str):
        return ctx.error(where, f"múi giờ phải là chữ như 'Asia/Ho_Chi_Minh', {describe_value(value)}")
    name = value.strip()
    try:
        if not name or len(name) > MAX_TIMEZONE_LENGTH:
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = (
            "Asia/Ho_Chi_Minh" if _VIETNAM_RE.search(name) else closest(name, _timezones(), ignore_case=True)
        )
        tip = TEXTS["did_you_mean"].format(close=close) if close else "ở Việt Nam dùng 'Asia/Ho_Chi_Minh'"
        return ctx.error(where, f"múi giờ lạ '{name}' — {tip}")
    return name


def _read_police_chats(ctx: Context, value: Any, where: Where) -> tuple[PoliceChatSpec, ...] | Invalid:
    items = read_list(ctx, value, where, "police_chats")
    if items is INVALID:
        return INVALID
    chats: list[PoliceChatSpec | Invalid] = []
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
        chats.append(PoliceChatSpec(**fields) if all_valid(fields) else INVALID)
    if any(c is INVALID for c in chats):
        return INVALID
    return tuple(c for c in chats if isinstance(c, PoliceChatSpec))


def _read_chat_id(ctx: Context, value: Any, where: Where) -> int | Invalid:
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return ctx.error(where, f"chat_id phải là số nguyên — bỏ dấu ngoặc kép quanh {value.strip()}")
    if isinstance(value, bool) or not isinstance(value, int):
        return ctx.error(where, f"chat_id phải là số nguyên như -1001234567890, {describe_value(value)}")
    if value == 0 or not -_BIGINT < value < _BIGINT:
        return ctx.error(where, f"chat_id {value} không phải mã cuộc trò chuyện Telegram")
    return value


def _read_chat_title(ctx: Context, value: Any, where: Where) -> str | Invalid:
    return read_text(ctx, value, where, "tên nhóm")


def _read_villages(ctx: Context, value: Any, where: Where) -> tuple[VillageSpec, ...] | Invalid:
    if value is None:
        return ctx.error(where, "đang để trống — cần ít nhất một thôn")
    items = read_list(ctx, value, where, "villages")
    if items is INVALID:
        return INVALID
    if not items:
        return ctx.error(where, "cần ít nhất một thôn")
    entries: list[dict[str, Any] | Invalid] = []  # the read keys of each village, or INVALID
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
            ctx.error(
                at, f"mỗi thôn là một tên, hoặc các khóa name/kind/renamed_from — {describe_value(item)}"
            )
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
    result: list[VillageSpec | Invalid] = []
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
        result.append(VillageSpec(**fields) if all_valid(fields) else INVALID)
    if any(v is INVALID for v in result):
        return INVALID
    return tuple(v for v in result if isinstance(v, VillageSpec))


# --- village


def _read_village_name(ctx: Context, value: Any, where: Where) -> str | Invalid:
    return read_text(ctx, value, where, "tên thôn")


# What each kind may be written as: its value, its label without accents, and a few everyday words.
_KIND_WORDS: dict[VillageKind, tuple[str, ...]] = {
    VillageKind.THON: ("thôn, xóm, bản, ấp…",),
    VillageKind.TO_DAN_PHO: ("tổ dân phố, khu phố, khối…", "khu phố", "khối"),
    VillageKind.KHU_DAN_CU: ("khu dân cư",),
    VillageKind.CO_QUAN: ("cơ quan",),
    VillageKind.TRUONG_HOC: ("trường học, cơ sở giáo dục", "trường", "cơ sở giáo dục"),
    VillageKind.DOANH_NGHIEP: ("doanh nghiệp",),
    VillageKind.PHONG_BAN: ("phòng, ban, trung tâm của một cơ quan", "phòng ban", "trung tâm"),
}


def _kind_slug(text: str) -> str:
    return code_slug(text).replace("-", "_")


_KIND_ALIASES: dict[str, VillageKind] = {}
for _kind in VillageKind:
    for _word in (_kind.value, KIND_LABELS[_kind], *_KIND_WORDS[_kind][1:]):
        _KIND_ALIASES.setdefault(_kind_slug(_word), _kind)
_KIND_CHOICES = ", ".join(f"'{k.value}' ({_KIND_WORDS[k][0]})" for k in VillageKind)


def _read_kind(ctx: Context, value: Any, where: Where) -> VillageKind | Invalid:
    if not isinstance(value, str):
        return ctx.error(where, f"loại phải là một trong: {_KIND_CHOICES}; {describe_value(value)}")
    alias = _kind_slug(value)
    if alias in _KIND_ALIASES:
        return _KIND_ALIASES[alias]
    close = closest(alias, _KIND_ALIASES, ignore_case=True)
    tip = (
        TEXTS["did_you_mean"].format(close=_KIND_ALIASES[close].value)
        if close
        else f"chỉ nhận một trong: {_KIND_CHOICES}"
    )
    return ctx.error(where, f"loại lạ '{value}' — {tip}")


def _read_renamed_from(ctx: Context, value: Any, where: Where) -> str | Invalid:
    return read_text(ctx, value, where, "tên cũ (renamed_from)")


# --- forms (loaded elsewhere; here only: relative paths to files that exist)


def _read_forms(ctx: Context, value: Any, where: Where) -> tuple[Path, ...] | Invalid:
    items = read_list(ctx, value, where, "forms")
    if items is INVALID:
        return INVALID
    paths: list[Path] = []
    seen: dict[Path, int] = {}
    ok = True
    for index, item in enumerate(items):
        at = where.item(index, ctx.line_of(items, index))
        if not isinstance(item, str) or not item.strip():
            ctx.error(at, f"mỗi biểu mẫu là đường dẫn tới một tệp, {describe_value(item)}")
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
        # as written (a link the administrator put in the folder is theirs to make): no way out by '..'
        if not Path(os.path.normpath(ctx.base_dir.absolute() / written)).is_relative_to(
            ctx.base_dir.absolute()
        ):
            ctx.error(
                at,
                f"đường dẫn '{written}' ra ngoài thư mục chứa tệp này — để tệp biểu mẫu trong thư mục đó "
                "(ví dụ 'forms/su-co.yaml')",
            )
            ok = False
        elif not resolved.is_file():
            ctx.error(at, f"không thấy tệp biểu mẫu '{written}' (tìm ở {resolved})")
            ok = False
        elif resolved in seen:
            ctx.error(at, f"biểu mẫu '{written}' trùng với forms[{seen[resolved]}]")
            ok = False
        else:
            seen[resolved] = index
            paths.append(resolved)
    return tuple(paths) if ok else INVALID


def _read_schedules(ctx: Context, value: Any, where: Where) -> tuple[Schedule, ...] | Invalid:
    """Reporting periods per form (see bot.calendar.periods for the format)."""
    schedules, problems = parse_schedules(value, where="schedules")
    for problem in problems:
        place, _, reason = problem.partition(": ")
        ctx.error(Where((*where.path[:-1], place), where.line), reason)
    return INVALID if problems else schedules


def _read_quiet_hours(ctx: Context, value: Any, where: Where) -> QuietHours | Invalid:
    """No reminders in this local window: "21:00-06:30" (may wrap midnight), or false for none."""
    quiet, problem = parse_quiet_hours(value)
    if problem is not None or quiet is None:
        return ctx.error(where, problem or "giờ yên lặng không đúng")
    return quiet


def _read_report_line(ctx: Context, value: Any, where: Where) -> str | Invalid:
    return read_text(ctx, value, where, "dòng chữ", max_length=MAX_REPORT_LINE)


def _read_collector(ctx: Context, value: Any, where: Where) -> str | Invalid:
    """The body that collects the units' reports, as messages name it ("Công an xã", "Văn phòng"): one short
    line without control characters."""
    if isinstance(value, str) and any(unicodedata.category(ch) == "Cc" for ch in value):
        return ctx.error(
            where, "tên nơi tổng hợp có ký tự điều khiển (không in được): hãy gõ lại tên, ví dụ 'Văn phòng'"
        )
    return read_text(ctx, value, where, "tên nơi tổng hợp", max_length=MAX_COLLECTOR)


def _read_recipients(ctx: Context, value: Any, where: Where) -> tuple[str, ...] | Invalid:
    items = read_list(ctx, value, where, "nơi nhận")
    if items is INVALID:
        return INVALID
    if not items or len(items) > MAX_RECIPIENTS:
        return ctx.error(where, f"cần từ 1 đến {MAX_RECIPIENTS} dòng nơi nhận, ví dụ '- UBND tỉnh (để b/c);'")
    lines = [
        _read_report_line(ctx, item, where.item(i, ctx.line_of(items, i))) for i, item in enumerate(items)
    ]
    return INVALID if any(line is INVALID for line in lines) else tuple(str(line) for line in lines)


def _read_report(ctx: Context, value: Any, where: Where) -> ReportIdentity | Invalid | None:
    """The Word report's identity: who issues it (superior, issuer), its number, recipients and signer."""
    if value is None:
        return None
    fields = read_mapping(ctx, value, where, REPORT_IDENTITY_KEYS)
    if fields is INVALID or not all_valid(fields):
        return INVALID
    return ReportIdentity(**fields)


# ---------------------------------------------------------------------------------------------
# The key tables (one per level) — add new keys here.

MAX_REPORT_LINE: Final = 200
MAX_RECIPIENTS: Final = 10
MAX_COLLECTOR: Final = 60  # named in one-line messages: "đã gửi Công an xã", "Hãy xin … một mã mời"
REPORT_IDENTITY_KEYS: dict[str, Key] = {
    "superior": Key(_read_report_line, default=None),
    "issuer": Key(_read_report_line, default=None),
    "number": Key(_read_report_line, default=None),
    "recipients": Key(_read_recipients, default=None),
    "signer_title": Key(_read_report_line, default=None),
    "signer_name": Key(_read_report_line, default=None),
    "collector": Key(_read_collector, default=None),
}

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
    "report": Key(_read_report, default=None),
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
