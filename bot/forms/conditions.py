"""A small, safe condition language for `relevant:` and `checks:` in forms: `compile_condition` turns
the text into a `Condition` (or raises `ConditionError`), evaluated against the answers.

Design notes: docs/design-notes.md#botformsconditionspy
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

MAX_LENGTH = 1000
MAX_DEPTH = 30

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
FUNCTIONS = frozenset({"count", "answered"})
RESERVED_WORDS = KEYWORDS | FUNCTIONS
"""Words a question id must not be (they would be read as keywords or functions)."""

NAME_RE = re.compile(r"[a-z_][a-z0-9_]*\Z")
_DIGITS = frozenset("0123456789")
_NUMBER_RE = re.compile(r"[0-9]*\.?[0-9]*")
_WORD_RE = re.compile(r"[\w.]+")
_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_VIETNAMESE_BOOLS = {"có": "true", "không": "false", "đúng": "true", "sai": "false"}
_BAD_OPERATORS = {
    "&&": "and",
    "||": "or",
    "=": "==",
    "<>": "!=",
    "=<": "<=",
    "=>": ">=",
    "!": "not",
    "&": "and",
    "|": "or",
}


class ConditionError(ValueError):
    """A condition that does not compile; the message says what is wrong and at which column."""

    def __init__(self, reason: str, column: int) -> None:
        super().__init__(f"{reason} (cột {column})")
        self.reason = reason
        self.column = column


# ---------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # NUM STR NAME KW OP ( ) [ ] , END
    text: str
    col: int  # 1-based
    value: Any = None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if ch.isspace():
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        negative = ch == "-" and (nxt in _DIGITS or nxt == ".")
        if ch in _DIGITS or negative or (ch == "." and nxt in _DIGITS):
            m = _NUMBER_RE.match(text, i + 1 if negative else i)
            assert m is not None
            raw = m.group()
            if raw.startswith(".") or raw.endswith("."):
                raise ConditionError(f"số không hợp lệ '{raw}', viết đủ như 0.5 hoặc 3.0", col)
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] == "_"):
                raise ConditionError(f"số dính liền chữ '{text[i : end + 1]}'", col)
            value: Any = Decimal(raw) if "." in raw else int(raw)
            if negative:
                value, raw = -value, "-" + raw
            tokens.append(_Token("NUM", raw, col, value))
            i = end
            continue
        if ch in "'\"":
            end = text.find(ch, i + 1)
            if end < 0:
                raise ConditionError(f"chuỗi chưa đóng dấu {ch}", col)
            tokens.append(_Token("STR", text[i : end + 1], col, text[i + 1 : end]))
            i = end + 1
            continue
        if ch.isalpha() or ch == "_":
            m = _WORD_RE.match(text, i)
            assert m is not None
            word = m.group()
            i = m.end()
            _check_word(word, col)
            kind = "KW" if word in KEYWORDS else "NAME"
            tokens.append(_Token(kind, word, col))
            continue
        two = text[i : i + 2]
        if two in ("==", "!=", "<=", ">="):
            tokens.append(_Token("OP", two, col))
            i += 2
            continue
        if two in _BAD_OPERATORS:
            raise ConditionError(f"toán tử lạ '{two}' — có phải '{_BAD_OPERATORS[two]}'?", col)
        if ch in "<>":
            tokens.append(_Token("OP", ch, col))
            i += 1
            continue
        if ch in "()[],":
            tokens.append(_Token(ch, ch, col))
            i += 1
            continue
        if ch in _BAD_OPERATORS:
            raise ConditionError(f"toán tử lạ '{ch}' — có phải '{_BAD_OPERATORS[ch]}'?", col)
        if ch == "-":
            raise ConditionError("dấu '-' chỉ dùng trước một số, như -1", col)
        raise ConditionError(f"ký tự lạ {ch!r}", col)
    tokens.append(_Token("END", "", n + 1))
    return tokens


def _check_word(word: str, col: int) -> None:
    if word in _VIETNAMESE_BOOLS:
        raise ConditionError(f"dùng '{_VIETNAMESE_BOOLS[word]}' thay cho '{word}'", col)
    if NAME_RE.match(word):
        return
    if "." in word:
        raise ConditionError(
            f"tên '{word}' có dấu chấm; trong nhóm lặp hãy gọi câu con bằng mã riêng của nó", col
        )
    lowered = word.lower()
    if lowered in RESERVED_WORDS:
        raise ConditionError(f"'{word}' phải viết thường: '{lowered}'", col)
    raise ConditionError(
        f"tên '{word}' không hợp lệ (chỉ dùng chữ thường không dấu a-z, số 0-9 và dấu _)", col
    )


# ---------------------------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class _Const:
    value: Any


@dataclass(frozen=True)
class _List:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class _Name:
    name: str


@dataclass(frozen=True)
class _Call:
    func: str
    name: str


@dataclass(frozen=True)
class _Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class _Not:
    operand: Any


@dataclass(frozen=True)
class _BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Any, ...]


def _describe(tok: _Token) -> str:
    return "hết điều kiện" if tok.kind == "END" else f"'{tok.text}'"


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.names: set[str] = set()
        self.counted: set[str] = set()

    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        tok = self.tokens[self.pos]
        if tok.kind != "END":
            self.pos += 1
        return tok

    def is_kw(self, word: str, offset: int = 0) -> bool:
        tok = self.tokens[min(self.pos + offset, len(self.tokens) - 1)]
        return tok.kind == "KW" and tok.text == word

    def expect(self, kind: str, what: str) -> _Token:
        if self.tok.kind != kind:
            raise ConditionError(f"cần {what}, gặp {_describe(self.tok)}", self.tok.col)
        return self.advance()

    def enter(self, col: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(f"lồng quá sâu (tối đa {MAX_DEPTH} tầng)", col)

    def parse(self) -> Any:
        if self.tok.kind == "END":
            raise ConditionError("điều kiện trống", 1)
        node = self.parse_or()
        if self.tok.kind != "END":
            tok = self.tok
            if tok.kind == "OP":
                raise ConditionError("không nối hai phép so sánh liền nhau; dùng 'and'", tok.col)
            raise ConditionError(f"thừa {_describe(tok)}; thiếu 'and'/'or'?", tok.col)
        return node

    def parse_or(self) -> Any:
        operands = [self.parse_and()]
        while self.is_kw("or"):
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else _BoolOp("or", tuple(operands))

    def parse_and(self) -> Any:
        operands = [self.parse_not()]
        while self.is_kw("and"):
            self.advance()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else _BoolOp("and", tuple(operands))

    def parse_not(self) -> Any:
        if self.is_kw("not"):
            tok = self.advance()
            if self.is_kw("in"):
                raise ConditionError("'not in' cần một giá trị ở bên trái", tok.col)
            self.enter(tok.col)
            node = _Not(self.parse_not())
            self.depth -= 1
            return node
        return self.parse_comparison()

    def parse_comparison(self) -> Any:
        left = self.parse_operand()
        tok = self.tok
        if tok.kind == "OP":
            self.advance()
            right = self.parse_operand()
            op = tok.text
        elif self.is_kw("in"):
            self.advance()
            right = self.parse_operand(allow_list=True)
            op = "in"
        elif self.is_kw("not") and self.is_kw("in", 1):
            self.advance()
            self.advance()
            right = self.parse_operand(allow_list=True)
            op = "not in"
        else:
            return left
        if isinstance(left, _List):
            raise ConditionError("danh sách [...] chỉ đứng sau 'in' hoặc 'not in'", tok.col)
        return _Compare(op, left, right)

    def parse_operand(self, allow_list: bool = False) -> Any:
        tok = self.tok
        if tok.kind == "NUM" or tok.kind == "STR":
            self.advance()
            return _Const(tok.value)
        if tok.kind == "KW" and tok.text in ("true", "false"):
            self.advance()
            return _Const(tok.text == "true")
        if tok.kind == "NAME":
            self.advance()
            if self.tok.kind == "(":
                return self.parse_call(tok)
            if tok.text in FUNCTIONS:
                raise ConditionError(f"hàm '{tok.text}' cần dấu ngoặc: {tok.text}(mã_câu)", tok.col)
            self.names.add(tok.text)
            return _Name(tok.text)
        if tok.kind == "(":
            self.advance()
            self.enter(tok.col)
            node = self.parse_or()
            self.depth -= 1
            if self.tok.kind != ")":
                raise ConditionError(f"thiếu ')' đóng ngoặc mở ở cột {tok.col}", self.tok.col)
            self.advance()
            return node
        if tok.kind == "[":
            if not allow_list:
                raise ConditionError("danh sách [...] chỉ đứng sau 'in' hoặc 'not in'", tok.col)
            return self.parse_list()
        if tok.kind == "END":
            raise ConditionError("điều kiện dừng giữa chừng, thiếu giá trị", tok.col)
        raise ConditionError(f"cần một giá trị hoặc mã câu hỏi, gặp {_describe(tok)}", tok.col)

    def parse_call(self, name_tok: _Token) -> Any:
        func = name_tok.text
        if func not in FUNCTIONS:
            raise ConditionError(f"hàm lạ '{func}' (chỉ có: count, answered)", name_tok.col)
        self.advance()  # (
        arg = self.expect("NAME", f"mã câu hỏi trong {func}(...)")
        if arg.text in FUNCTIONS:
            raise ConditionError(f"{func}(...) nhận một mã câu hỏi", arg.col)
        self.expect(")", "')'")
        self.names.add(arg.text)
        if func == "count":
            self.counted.add(arg.text)
        return _Call(func, arg.text)

    def parse_list(self) -> _List:
        open_tok = self.advance()
        items: list[Any] = []
        while True:
            tok = self.tok
            if tok.kind == "]" and items:
                self.advance()
                break
            if tok.kind in ("NUM", "STR"):
                items.append(tok.value)
            elif tok.kind == "KW" and tok.text in ("true", "false"):
                items.append(tok.text == "true")
            elif tok.kind == "]":
                raise ConditionError("danh sách rỗng", open_tok.col)
            elif tok.kind == "END":
                raise ConditionError(f"thiếu ']' đóng danh sách mở ở cột {open_tok.col}", tok.col)
            else:
                raise ConditionError(
                    f"trong danh sách chỉ có số, chuỗi, true/false; gặp {_describe(tok)}", tok.col
                )
            self.advance()
            if self.tok.kind == ",":
                self.advance()
            elif self.tok.kind == "END":
                raise ConditionError(f"thiếu ']' đóng danh sách mở ở cột {open_tok.col}", self.tok.col)
            elif self.tok.kind != "]":
                raise ConditionError(f"cần ',' hoặc ']', gặp {_describe(self.tok)}", self.tok.col)
        return _List(tuple(items))


# ---------------------------------------------------------------------------------------------- values

_INVALID = object()
_COLLECTIONS = (list, tuple, set, frozenset)


def _normalize(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return _INVALID if value.is_nan() else value
    if isinstance(value, float):
        if value != value:
            return _INVALID
        return Decimal(repr(value)) if abs(value) != float("inf") else Decimal(value)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    return _INVALID


def _as_date(text: str) -> date | None:
    if not _ISO_DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    a, b = _normalize(left), _normalize(right)
    if a is _INVALID or b is _INVALID:
        return False
    if isinstance(a, date) and isinstance(b, str):
        b = _as_date(b)
    elif isinstance(b, date) and isinstance(a, str):
        a = _as_date(a)
    if a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        if not (isinstance(a, bool) and isinstance(b, bool)) or op not in ("==", "!="):
            return False
    elif (isinstance(a, Decimal) and isinstance(b, Decimal)) or (isinstance(a, date) and isinstance(b, date)):
        pass
    elif isinstance(a, str) and isinstance(b, str):
        if op not in ("==", "!="):
            return False
    else:
        return False
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _member(left: Any, right: Any) -> bool | None:
    """Whether left is in right; None when the question makes no sense (None or not a list)."""
    if left is None or right is None or not isinstance(right, _COLLECTIONS):
        return None
    return any(_compare("==", left, item) for item in right)


def _truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (int, float, Decimal)):
        n = _normalize(value)
        return n is not _INVALID and n != 0
    if isinstance(value, (date, Mapping, *_COLLECTIONS)):
        return len(value) > 0 if not isinstance(value, date) else True
    return False


def _eval(node: Any, answers: Mapping[str, Any]) -> Any:
    if isinstance(node, _Const):
        return node.value
    if isinstance(node, _Name):
        return answers.get(node.name)
    if isinstance(node, _List):
        return node.items
    if isinstance(node, _Compare):
        left = _eval(node.left, answers)
        right = _eval(node.right, answers)
        if node.op == "in":
            return _member(left, right) is True
        if node.op == "not in":
            return _member(left, right) is False
        return _compare(node.op, left, right)
    if isinstance(node, _BoolOp):
        if node.op == "and":
            return all(_truthy(_eval(x, answers)) for x in node.operands)
        return any(_truthy(_eval(x, answers)) for x in node.operands)
    if isinstance(node, _Not):
        return not _truthy(_eval(node.operand, answers))
    if isinstance(node, _Call):
        value = answers.get(node.name)
        if node.func == "answered":
            return value is not None and not (isinstance(value, str) and not value.strip())
        if value is None:
            return 0
        if isinstance(value, _COLLECTIONS):
            return len(value)
        return None
    return None  # pragma: no cover


# ---------------------------------------------------------------------------------------------- API


@dataclass(frozen=True)
class Condition:
    """A compiled condition: its source text, the question ids it names, and `evaluate`."""

    source: str
    names: frozenset[str]
    counted: frozenset[str] = frozenset()  # ids used as count(...) arguments (repeat/multi-choice)
    _tree: Any = field(default=None, compare=False, repr=False)

    def evaluate(self, answers: Mapping[str, Any]) -> bool:
        """True or false for these answers (None = unanswered); never raises."""
        try:
            return _truthy(_eval(self._tree, answers))
        except Exception:
            return False


@lru_cache(maxsize=2048)
def _compile(text: str) -> Condition:
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"điều kiện quá dài ({len(text)} ký tự, tối đa {MAX_LENGTH})", MAX_LENGTH + 1)
    parser = _Parser(_tokenize(text))
    tree = parser.parse()
    return Condition(text, frozenset(parser.names), frozenset(parser.counted), tree)


def compile_condition(text: str) -> Condition:
    """Parse condition text into a `Condition`; raise `ConditionError` (with a column) if it is invalid."""
    if not isinstance(text, str):
        raise ConditionError(f"điều kiện phải là chuỗi, không phải {type(text).__name__}", 1)
    return _compile(text)


def _walk(node: Any) -> list[Any]:
    out, stack = [], [node]
    while stack:
        item = stack.pop()
        out.append(item)
        if isinstance(item, _Compare):
            stack += [item.right, item.left]
        elif isinstance(item, _BoolOp):
            stack += reversed(item.operands)
        elif isinstance(item, _Not):
            stack.append(item.operand)
    return out


def compared_literals(condition: Condition) -> tuple[tuple[str, str, Any, bool], ...]:
    """(question id, operator, literal, literal_on_left) for each answer-vs-constant comparison, for linting.

    A list literal after `in`/`not in` yields one entry per item; `'x' in q` yields (q, "in", 'x', True).
    """
    found: list[tuple[str, str, Any, bool]] = []
    for node in _walk(condition._tree):
        if not isinstance(node, _Compare):
            continue
        left, right = node.left, node.right
        if isinstance(left, _Name) and isinstance(right, _Const):
            found.append((left.name, node.op, right.value, False))
        elif isinstance(left, _Name) and isinstance(right, _List):
            found.extend((left.name, node.op, item, False) for item in right.items)
        elif isinstance(left, _Const) and isinstance(right, _Name):
            found.append((right.name, node.op, left.value, True))
    return tuple(found)
