"""The one table of Vietnamese texts for mistakes in YAML files, and the error type that collects them all.

Form files and the commune setup file word a few mistakes differently (the tests hold both wordings), so a
text that differs has one column per kind of file: `setup` and `form`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import yaml

Wording = Literal["setup", "form"]


@dataclass(frozen=True)
class SyntaxText:
    """A PyYAML syntax problem (a fragment of its problem or context) in each wording; None: left in English."""

    pyyaml: str
    setup: str | None
    form: str | None


_TAB_FORM: Final = "có ký tự tab; YAML chỉ thụt lề bằng dấu cách"
_FLOW_FORM: Final = "trong { ... } hoặc [ ... ], chữ có dấu ',', ':', '?' hãy đặt trong ngoặc kép"
_QUOTE_SIGIL: Final = "ký tự '@' hoặc '`' đầu giá trị — hãy đặt giá trị trong ngoặc kép"

# The first row whose fragment is found and that has a text in the wording asked for wins.
SYNTAX_TEXTS: Final[tuple[SyntaxText, ...]] = (
    SyntaxText("found character '\\t'", "có ký tự Tab — chỉ thụt lề bằng dấu cách", _TAB_FORM),
    SyntaxText("found a tab character that violates indentation", None, _TAB_FORM),
    SyntaxText(
        "mapping values are not allowed here",
        "dấu ':' không đúng chỗ — thiếu dấu cách sau ':', hoặc giá trị có ':' mà chưa đặt trong ngoặc kép",
        "dấu ':' không đúng chỗ (chuỗi có dấu ':' hãy đặt trong ngoặc kép)",
    ),
    SyntaxText("could not find expected ':'", "thiếu dấu ':' sau tên khóa", "thiếu dấu ':' sau tên khóa"),
    SyntaxText("did not find expected '-' indicator", "thụt lề của danh sách không đều", None),
    SyntaxText("did not find expected key", "thụt lề không đều", None),
    SyntaxText("expected <block end>", "thụt lề không đều", None),
    SyntaxText(
        "found unexpected end of stream",
        "tệp kết thúc giữa chừng — có dấu ngoặc kép chưa đóng?",
        "tệp kết thúc giữa chừng (thiếu dấu ngoặc kép đóng?)",
    ),
    SyntaxText(
        "found undefined alias",
        "dùng '*' mà không có '&' tương ứng — tên thôn bắt đầu bằng '*' hãy đặt trong ngoặc kép",
        None,
    ),
    SyntaxText(
        "expected a single document", "tệp chỉ được chứa một tài liệu YAML — bỏ dòng '---' thừa", None
    ),
    SyntaxText(
        "expected ',' or ']'",
        "danh sách trong '[...]' thiếu dấu ']' đóng hoặc thiếu dấu ',' giữa các mục",
        _FLOW_FORM,
    ),
    SyntaxText(
        "expected ',' or '}'",
        "nhóm trong '{...}' thiếu dấu '}' đóng hoặc thiếu dấu ',' giữa các mục",
        _FLOW_FORM,
    ),
    SyntaxText("found unhashable key", "khóa phải là một chữ, không phải danh sách hay bảng", None),
    SyntaxText("while scanning an anchor", "ký tự '&' đầu giá trị — hãy đặt giá trị trong ngoặc kép", None),
    SyntaxText("found character '@'", _QUOTE_SIGIL, None),
    SyntaxText("found character '`'", _QUOTE_SIGIL, None),
)

# Every other text, by name; `{…}` are filled in with str.format.
TEXTS: Final[dict[str, str]] = {
    "did_you_mean": "có phải '{close}'?",
    "did_you_mean_tail": " — có phải '{close}'?",
    "syntax_setup": "lỗi cú pháp YAML: {reason}",
    "syntax_form": "lỗi cú pháp YAML{where}: {reason}",
    "syntax_form_where": " ở dòng {line}, cột {column}",
    "yaml_other_form": "lỗi YAML: {error}",
    "alias_form": "không dùng alias (*tên) trong tệp biểu mẫu",
    "repeated_key_setup": "khóa '{key}' được ghi hai lần (lần đầu ở dòng {first}) — chỉ giữ một",
    "repeated_key_form": "khóa '{key}' bị lặp ở dòng {line} (đã có ở dòng {first}); YAML sẽ chỉ giữ cái sau",
    "unknown_key_close": "khóa lạ '{key}' — có phải '{close}'?",
    "unknown_key_close_taken": "khóa lạ '{key}' — có phải '{close}'? ('{close}' đã có ở dòng {line})",
    "unknown_key_only": "khóa lạ '{key}' — ở đây chỉ dùng: {allowed}",
    "missing_key": "thiếu khóa '{key}'{hint}",
    "not_a_mapping": "phải là các cặp 'khóa: giá trị', {value}",
    "not_a_list": "{what} phải là một danh sách (mỗi mục một dòng bắt đầu bằng '- '), {value}",
    "not_text": "{what} phải là chữ, {value}",
    "empty_text": "{what} không được để trống",
    "too_long": "{what} dài {length} ký tự, tối đa {limit}",
}


def syntax_reason(exc: yaml.YAMLError, wording: Wording) -> str:
    """The Vietnamese reason for a PyYAML syntax error in the given wording (PyYAML's own text if none)."""
    if wording == "setup":
        problem = str(getattr(exc, "problem", None) or exc)
        context = str(getattr(exc, "context", None) or "")
        texts = [problem, context]
    else:
        problem = str(getattr(exc, "problem", None) or getattr(exc, "context", None) or "")
        texts = [problem]
    for row in SYNTAX_TEXTS:
        text = row.setup if wording == "setup" else row.form
        if text is not None and any(row.pyyaml in t for t in texts):
            return text
    return problem


def syntax_place(exc: yaml.YAMLError) -> tuple[int, int] | None:
    """The 1-based (line, column) PyYAML points at, or None."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return (mark.line + 1, mark.column + 1) if mark is not None else None


def form_syntax_message(exc: yaml.YAMLError) -> str:
    """The whole message for a syntax mistake in a form file: 'lỗi cú pháp YAML ở dòng N, cột M: …'."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return TEXTS["yaml_other_form"].format(error=exc)
    place = syntax_place(exc)
    where = TEXTS["syntax_form_where"].format(line=place[0], column=place[1]) if place else ""
    return TEXTS["syntax_form"].format(where=where, reason=syntax_reason(exc, "form"))


def describe_value(value: object) -> str:
    """What a wrong value is, in words ("đang là chữ 'abc'"), to end a message with."""
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


@dataclass(frozen=True)
class YamlError:
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


def setup_syntax_error(file: str, exc: yaml.YAMLError) -> YamlError:
    """A syntax mistake as a `YamlError` in the setup file's wording, with line and column when known."""
    reason = TEXTS["syntax_setup"].format(reason=syntax_reason(exc, "setup"))
    place = syntax_place(exc)
    return YamlError(file, "", reason, *place) if place else YamlError(file, "", reason)


@dataclass
class Problems:
    """Collects every mistake of one file at once (errors stop it from being used, warnings do not)."""

    file: str
    errors: list[YamlError] = field(default_factory=list)
    warnings: list[YamlError] = field(default_factory=list)

    def error(self, where: str, reason: str, line: int | None = None) -> None:
        """Record an error."""
        self.errors.append(YamlError(self.file, where, reason, line))

    def warn(self, where: str, reason: str, line: int | None = None) -> None:
        """Record a warning: worth reading, but the file can still be used."""
        self.warnings.append(YamlError(self.file, where, reason, line))

    def sorted_errors(self) -> tuple[YamlError, ...]:
        """The errors by line (those without a line first), in the order found within a line."""
        return tuple(sorted(self.errors, key=lambda e: e.line if e.line is not None else 0))
