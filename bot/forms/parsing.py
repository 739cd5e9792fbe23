"""Forgiving parsing of Vietnamese answers: numbers, yes/no and dates, typed on a phone
(`parse_integer`, `parse_decimal`, `parse_yes_no`, `parse_date`, each returning a `Parsed`).

Design notes: docs/design-notes.md#botformsparsingpy
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from bot.forms import vn_dates
from bot.forms.vn_numbers import Tok, literal_tok, lookup_word, number_to_words, read_run

__all__ = [
    "MAX_ANSWER_CHARS",
    "Parsed",
    "clean_text",
    "normalize",
    "number_to_words",
    "parse_date",
    "parse_decimal",
    "parse_integer",
    "parse_yes_no",
    "strip_accents",
    "warm_up",
]

MAX_ANSWER_CHARS = 200


@dataclass(frozen=True)
class Parsed:
    """The outcome of parsing one answer (codes and reasons: docs/design-notes.md)."""

    ok: bool
    value: Any = None  # int | Decimal | bool | datetime.date
    error: str | None = None  # a stable error code, None when ok
    uncertain: bool = False  # ok but must be confirmed by the user before it is used
    alternatives: tuple = ()  # other readings, for a "did you mean" button (first = value)
    detail: dict = field(default_factory=dict)  # e.g. {"text": original} for messages


# ---------------------------------------------------------------------------------------------
# text helpers


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    """User text as it may be stored: CR and CR LF become LF, other control characters (NUL…) dropped.

    C0 controls except tab and line feed, and DEL, are removed: PostgreSQL cannot turn a JSON
    NUL escape into text, and none of them means anything in an answer.
    """
    if text.isprintable():
        return text
    return _CONTROL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def normalize(text: str) -> str:
    """Lower-case NFC text, trimmed, with control/zero-width characters dropped and spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf":
            continue
        kept.append(" " if cat in ("Cc", "Zl", "Zp") else ch)
    return unicodedata.normalize("NFC", " ".join("".join(kept).lower().split()))


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def strip_accents(text: str) -> str:
    """`normalize`d text without Vietnamese diacritics: "Mười hai" → "muoi hai", "đ" → "d"."""
    return _strip_marks(normalize(text))


def _ascii_digits(text: str) -> str:
    """Full-width and other Unicode decimal digits as ASCII ("１２" → "12")."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)


def _prepare(text: str) -> tuple[str, str]:
    """(normalized text with ASCII digits, the same without diacritics)."""
    norm = _ascii_digits(normalize(text))
    return norm, _strip_marks(norm)


def _precheck(text: Any) -> Parsed | None:
    """The early refusals shared by every parser: not a string, too long, empty."""
    if not isinstance(text, str):
        return Parsed(ok=False, error="empty", detail={"text": ""})
    if len(text) > MAX_ANSWER_CHARS:
        return Parsed(
            ok=False, error="too_long", detail={"text": text[:MAX_ANSWER_CHARS], "length": len(text)}
        )
    if not text.strip():
        return Parsed(ok=False, error="empty", detail={"text": text})
    return None


@dataclass(frozen=True)
class _W:
    """A token of an answer: its normalized text and that text without diacritics."""

    text: str
    plain: str

    @property
    def is_word(self) -> bool:
        return self.text[:1].isalpha()

    def is_(self, words: frozenset[str], plain_words: frozenset[str]) -> bool:
        """Accent-exact membership if typed with diacritics, else membership of the plain form."""
        if self.text != self.plain:
            return self.text in words
        return self.plain in plain_words


def _word_set(*accented: str, plain_extra: tuple[str, ...] = (), plain_except: tuple[str, ...] = ()) -> tuple:
    words = frozenset(accented)
    plain = frozenset(_strip_marks(w) for w in accented) | frozenset(plain_extra)
    return words, plain - frozenset(plain_except)


_TOKEN = re.compile(r"[0-9]+(?:[.,][0-9]+)*|[^\W\d_]+|\S")
_SPACE_GROUPS = re.compile(r"(?<![0-9.,])([0-9]{1,3})((?: [0-9]{3})+)(?![0-9])")


def _tokens(norm: str) -> list[_W]:
    return [_W(t, _strip_marks(t)) for t in _TOKEN.findall(norm)]


# ---------------------------------------------------------------------------------------------
# numbers

_APPROX = _word_set(
    "khoảng", "tầm", "chừng", "độ", "cỡ", "gần", "hơn", "trên", "dưới", "ngoài", "tới", "đến",
    "ước", "xấp", "xỉ", "chắc", "chưa", "ít", "trở", "ngót", "hay", "hoặc", "lẽ", "hình", "tối",
    "ko", "k", "kg", "khg", "hông", "chẳng", "chả", "hok",
    plain_except=("co", "tam", "le"),
)  # fmt: skip
_VAGUE = _word_set(
    "mấy", "vài", "dăm", "nhiều", "nhiêu", "hàng", "biết", "rõ", "nhớ", "bao",
    plain_except=("nho", "bao"),
)  # fmt: skip
_NEGATION = _word_set("ko", "k", "kg", "khg", "hông", "chẳng", "chả", "hok", "hem", "đâu")
_FILLER = _word_set(
    "có", "là", "được", "đc", "tổng", "cộng", "tất", "cả", "gồm", "chỉ", "thì", "số", "lượng",
    "hết", "dạ", "vâng", "ừ", "ạ", "em", "anh", "chị", "con", "cháu", "tôi", "mình", "bên",
    "thôn", "xóm", "đã", "bằng", "đúng", "báo", "cáo", "ok", "kết", "quả", "nay", "hôm",
    plain_extra=("dc", "a", "u"),
)  # fmt: skip
# single number words that are also everyday words: ignored (but flagged) next to a real number
_WEAK = frozenset(
    {"ba", "nam", "năm", "sau", "bay", "tam", "tu", "le", "lam", "mot", "am", "chuc", "nua", "cham", "ti"}
)
_ZERO_PHRASE = re.compile(
    r"^(?:(?:da|vang|u) )?"
    r"(?:(?:khong|ko|k|kg|khg|hong|hok|hem|chua)(?: co)?|(?:chang|cha) co)"
    r"(?: (?:ai|gi|\w+ nao|\w+ \w+ nao|\w+ gi))?"
    r"(?: (?:ca|het|luon|a|nhe|nha|dau|ban))*$"
)
_PERCENT_WORDS = re.compile(r"\b(?:phần trăm|phan tram)\b")


_RANGE_SEPARATORS = frozenset({"-", "–", "—", "~", "đến", "tới", "den", "toi"})


@dataclass(frozen=True)
class _Reading:
    values: tuple[Decimal, ...] = ()
    reason: str | None = None  # why uncertain, or why refused when values == ()
    uncertain: bool = False
    percent: bool = False  # written with "%" or "phần trăm"
    range_: tuple[Decimal, Decimal] | None = None  # "20-25", "20 đến 25": both ends


def _number_tokens(ws: list[_W]) -> list[Tok | None]:
    """For each token, its number-token reading (None for ordinary words and symbols)."""
    out: list[Tok | None] = []
    for k, w in enumerate(ws):
        nxt = ws[k + 1] if k + 1 < len(ws) else None
        prev = ws[k - 1] if k else None
        if w.text[0].isdigit():
            out.append(literal_tok(w.text))
        elif w.text == "-" and nxt is not None and nxt.text[0].isdigit() and (not out or out[-1] is None):
            out.append(Tok(text="-", neg=True))
        elif w.text == "%":
            out.append(Tok(text="%", percent=True))
        elif w.text == "k" and prev is not None and prev.text[0].isdigit():
            out.append(Tok(text="k", scale=1000))
        elif w.is_word:
            tok = lookup_word(w.text, w.plain)
            if (
                tok is not None
                and tok.neg
                and (nxt is None or not (nxt.text[0].isdigit() or lookup_word(nxt.text, nxt.plain)))
            ):
                tok = None  # "âm" only as a sign in front of a number
            out.append(tok)
        else:
            out.append(None)
    return out


def _runs(toks: list[Tok | None]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    start = None
    for k, t in enumerate([*toks, None]):
        if t is not None and start is None:
            start = k
        elif t is None and start is not None:
            runs.append((start, k))
            start = None
    return runs


def _read_number(text: str) -> _Reading:
    """Read one number from an answer: the values (preferred first) and any doubt."""
    norm, _ = _prepare(text)
    norm = _SPACE_GROUPS.sub(lambda m: m.group(0).replace(" ", ""), norm)
    norm = _PERCENT_WORDS.sub(" % ", norm)
    ws = _tokens(norm)
    words = [w for w in ws if w.is_word]
    if not any(w.text[0].isdigit() for w in ws) and _ZERO_PHRASE.match(" ".join(w.plain for w in words)):
        return _Reading((Decimal(0),))
    toks = _number_tokens(ws)
    runs = _runs(toks)
    doubts: list[str] = []
    if len(runs) > 1:
        strong = [r for r in runs if not (r[1] - r[0] == 1 and ws[r[0]].text in _WEAK)]
        if len(strong) == 1:
            runs, doubts = strong, ["extra_words"]
    if not runs:
        return _Reading(reason="no_number")
    if len(runs) == 2 and runs[1][0] - runs[0][1] == 1 and ws[runs[0][1]].text in _RANGE_SEPARATORS:
        low = read_run([t for t in toks[slice(*runs[0])] if t is not None])
        high = read_run([t for t in toks[slice(*runs[1])] if t is not None])
        if low and high:
            return _Reading(reason="range", range_=(low[0], high[0]))
    if len(runs) > 1:
        return _Reading(reason="several_numbers")
    (a, b) = runs[0]
    run = [t for t in toks[a:b] if t is not None]
    outside = [w for k, w in enumerate(ws) if not a <= k < b and w.is_word and w.text not in _WEAK]
    if any(w.is_(*_VAGUE) for w in outside):
        return _Reading(reason="vague")
    if any(w.is_(*_NEGATION) for w in ws[:a]) or (
        run[0].text in ("không", "khong") and len(run) == 1 and outside
    ):
        return _Reading(reason="negated")
    if any(w.is_(*_APPROX) for w in outside):
        doubts.append("approximate")
    if any(not w.is_(*_FILLER) and not w.is_(*_APPROX) for w in ws[:a] if w.is_word):
        doubts.append("extra_words")
    if any(t.text == "k" and t.scale for t in run):
        doubts.append("thousand_k")
    values = read_run(run)
    if run[0].text == "tam" and len(run) > 1:  # accentless: tám (8) … or tầm (about) …
        about = read_run(run[1:])
        if about:
            values = tuple(dict.fromkeys(values + about))
            doubts.append("eight_or_about" if len(values) > len(about) else "approximate")
    if not values:
        return _Reading(reason="grammar")
    return _Reading(values, doubts[0] if doubts else None, bool(doubts), percent=run[-1].percent)


def _is_clean_int(value: Decimal) -> bool:
    """Whole and written without fraction digits: Decimal("1000"), not Decimal("1.000")."""
    exponent = value.as_tuple().exponent
    return isinstance(exponent, int) and exponent >= 0


def _number_result(text: str, reading: _Reading, integer: bool) -> Parsed:
    detail: dict[str, Any] = {"text": text}
    if reading.range_ is not None:
        low, high = reading.range_
        detail.update(reason="range", low=low, high=high)
        return Parsed(ok=False, error="not_a_number", detail=detail)
    if not reading.values:
        detail["reason"] = reading.reason
        return Parsed(ok=False, error="not_a_number", detail=detail)
    if integer and reading.percent:  # a count is not a share: "100%" is not 100 people
        detail.update(reason="percent", value=reading.values[0])
        return Parsed(ok=False, error="not_a_number", detail=detail)
    values = list(reading.values)
    uncertain, reason = reading.uncertain, reading.reason
    if integer:
        # a clean integer reading ("1,000" read as thousands) goes before a decimal one that
        # happens to be whole (1,000 = 1); if the preferred reading was not clean, confirm
        clean = [int(v) for v in values if _is_clean_int(v)]
        whole = [int(v) for v in values if v == v.to_integral_value()]
        if not whole:
            detail["value"] = str(values[0])
            return Parsed(ok=False, error="not_an_integer", detail=detail)
        if not _is_clean_int(values[0]):
            uncertain, reason = True, reason or "thousands_or_decimal"
        chosen: list[Any] = list(dict.fromkeys(clean + whole))
    else:
        chosen = list(dict.fromkeys(values))
        if len(chosen) > 1 and not uncertain:
            uncertain, reason = True, "thousands_or_decimal"
    if uncertain:
        detail["reason"] = reason
        return Parsed(ok=True, value=chosen[0], uncertain=True, alternatives=tuple(chosen), detail=detail)
    return Parsed(ok=True, value=chosen[0], detail=detail)


def parse_integer(text: str) -> Parsed:
    """Read a whole number from digits or Vietnamese words ("1.200", "hai lăm", "không có")."""
    early = _precheck(text)
    if early is not None:
        return early
    try:
        return _number_result(text, _read_number(text), integer=True)
    except (ArithmeticError, ValueError, RecursionError):  # pragma: no cover - defensive
        return Parsed(ok=False, error="not_a_number", detail={"text": text})


def parse_decimal(text: str) -> Parsed:
    """Read a number that may have a fraction ("2,5", "hai phẩy năm", "ba rưỡi", "50%") as a Decimal."""
    early = _precheck(text)
    if early is not None:
        return early
    try:
        return _number_result(text, _read_number(text), integer=False)
    except (ArithmeticError, ValueError, RecursionError):  # pragma: no cover - defensive
        return Parsed(ok=False, error="not_a_number", detail={"text": text})


def _certain_int(text: str) -> int | None:
    """An integer spelled by number tokens only, read with no doubt (day/month/year/count words)."""
    norm, _ = _prepare(text)
    ws = _tokens(norm)
    if not ws or any(t is None for t in _number_tokens(ws)):
        return None
    got = parse_integer(text)
    return got.value if got.ok and not got.uncertain else None


# ---------------------------------------------------------------------------------------------
# yes / no

_YES = _word_set(
    "có", "rồi", "đã", "ok", "oke", "okay", "okie", "oki", "okê", "đúng", "vâng", "ừ", "ừm",
    "ờ", "uh", "uhm", "um", "ừa", "yes", "được", "đc", "phải", "chuẩn", "👍", "👌", "✅", "✔", "☑",
    plain_extra=("dc", "uk", "ukm", "yep"),
    plain_except=("o",),
)  # fmt: skip
_NO = _word_set(
    "không", "chưa", "chẳng", "chả", "hông", "hổng", "sai", "no", "ko", "k", "kg", "khg", "hok",
    "hem", "đâu", "nope", "👎", "❌", "✖", "🚫",
    plain_except=("cha",),
)  # fmt: skip
_SOLE_YES = frozenset({"y", "1"})
_SOLE_NO = frozenset({"n", "0"})
_HEDGE = _word_set(
    "lẽ", "thể", "chắc", "biết", "nhớ", "rõ", "vẻ", "hoặc", "hay", "maybe", "nhỉ", plain_except=("nho",)
)
_HEDGE_PAIRS = (("có", "khi"), ("hình", "như"), ("không", "nhớ"), ("chưa", "nhớ"))
_ACK = _word_set("dạ", "vâng", "ừ", "ờ", "ừm", "uh", "thưa", plain_except=("o", "da"))
_PARTICLE = _word_set("ạ", "a", "nhé", "nhe", "nha", "nhá", "ah", "ak", "ạh", "đó", "ha", "luôn", "mà")
_AFTER_NO_OK = _word_set("có", "được", "phải", "đúng", "đc")
_IGNORED_MARKS = re.compile("[\ufe0f\ufe0e\U0001f3fb-\U0001f3ff]")


def _yn_tokens(norm: str) -> list[_W]:
    out = []
    for t in _TOKEN.findall(_IGNORED_MARKS.sub("", norm)):
        if len(t) == 1 and unicodedata.category(t).startswith("P") and t != ",":
            continue  # punctuation except the comma, which separates "không, có"
        out.append(_W(t, _strip_marks(t)))
    return out


def _polarity(w: _W) -> bool | None:
    if w.is_(*_YES):
        return True
    if w.is_(*_NO):
        return False
    return None


def _is_pair(a: _W, b: _W, pair: tuple[str, str]) -> bool:
    first, second = pair
    return a.is_(frozenset({first}), frozenset({_strip_marks(first)})) and b.is_(
        frozenset({second}), frozenset({_strip_marks(second)})
    )


def _yes_no(text: str) -> tuple[bool | None, str | None]:
    """(answer, uncertainty reason) — answer None when it is neither yes nor no."""
    norm, _ = _prepare(text)
    ws = _yn_tokens(norm)
    while ws and (ws[-1].is_(*_PARTICLE) or ws[-1].text == ","):
        ws.pop()
    while ws and ws[0].text == ",":
        ws.pop(0)
    if not ws:
        return None, None
    if len(ws) == 1 and ws[0].plain in _SOLE_YES:
        return True, None
    if len(ws) == 1 and ws[0].plain in _SOLE_NO:
        return False, None
    if any(w.is_(*_HEDGE) for w in ws) or any(
        _is_pair(a, b, p) for a, b in itertools.pairwise(ws) for p in _HEDGE_PAIRS
    ):
        return None, None
    # leading acknowledgements ("dạ", "vâng", accentless "da") give way to a polarity word after them
    while len(ws) > 1 and (ws[0].is_(*_ACK) or ws[0].text == "da"):
        rest = [w for w in ws[1:] if w.text != ","]
        if ws[0].text == "da" and (not rest or _polarity(rest[0]) is None):
            break  # accentless "da tổ chức" is "đã tổ chức"
        if not any(_polarity(w) is not None for w in rest) and ws[0].is_(*_YES):
            break  # "vâng, tổ chức" — the "vâng" is the answer
        ws = rest
    if len(ws) == 1 and ws[0].text == "da":
        return True, "da_without_accents"
    head = ws[0]
    answer = _polarity(head)
    if answer is None:
        polar = [_polarity(w) for w in ws]
        if ws[-1].plain == "roi" and polar.count(None) == len(polar) - 1:
            return True, None  # "họp rồi"
        return None, None
    for k in range(1, len(ws)):
        p = _polarity(ws[k])
        if p is None or p == answer:
            continue
        if ws[k].is_(*_AFTER_NO_OK) and _polarity(ws[k - 1]) is False:
            continue  # "không có", "chưa có", "không được"
        return None, None
    return answer, None


def parse_yes_no(text: str) -> Parsed:
    """Read a yes/no answer ("có", "rồi ạ", "ko", "chưa tổ chức", "👍"); hedges are refused."""
    early = _precheck(text)
    if early is not None:
        return early
    answer, reason = _yes_no(text)
    if answer is None:
        return Parsed(ok=False, error="not_yes_no", detail={"text": text})
    if reason:
        return Parsed(
            ok=True,
            value=answer,
            uncertain=True,
            alternatives=(answer,),
            detail={"text": text, "reason": reason},
        )
    return Parsed(ok=True, value=answer, detail={"text": text})


# ---------------------------------------------------------------------------------------------
# dates


def parse_date(text: str, today: date, *, prefer: str = "past") -> Parsed:
    """Read a day ("hôm qua", "20/5", "thứ hai tuần trước", "15 tháng 10 năm 2026") relative to `today`."""
    if prefer not in ("past", "future"):
        raise ValueError(f"prefer must be 'past' or 'future', not {prefer!r}")
    early = _precheck(text)
    if early is not None:
        return early
    norm, plain = _prepare(text)
    try:
        got = vn_dates.read_date(norm, plain, today, prefer, _certain_int)
    except (ArithmeticError, ValueError, OverflowError):  # pragma: no cover - defensive
        got = vn_dates.DateReading(error="not_a_date")
    detail: dict[str, Any] = {"text": text}
    if got.reason:
        detail["reason"] = got.reason
    if got.value is None:
        return Parsed(ok=False, error=got.error or "not_a_date", detail=detail)
    if got.uncertain:
        alternatives = tuple(dict.fromkeys((got.value, *got.alternatives)))
        return Parsed(ok=True, value=got.value, uncertain=True, alternatives=alternatives, detail=detail)
    return Parsed(ok=True, value=got.value, detail=detail)


def warm_up(today: date) -> None:
    """Import dateparser and load its Vietnamese data now (≈0.3 s) rather than on a first answer."""
    vn_dates.warm_up(today)
