"""Vietnamese number words: spelling numbers out (`number_to_words`) and reading a run of number
tokens back (`Tok`, `read_run`, `words_to_int`).

Design notes: docs/design-notes.md#botformsvn_numberspy
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from decimal import Decimal

DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_AFTER_TENS = {1: "mốt", 4: "tư", 5: "lăm"}

THOUSAND = 1000
MILLION = 10**6
BILLION = 10**9


@dataclass(frozen=True)
class Tok:
    """One token of a number run: a number word or a digit literal, with what it can stand for."""

    text: str = ""
    digit: int | None = None  # can be a standalone digit 0-9
    unit: int | None = None  # can be the unit after a tens word (1-9)
    special: bool = False  # mốt/tư/lăm: only ever a unit after tens
    ten: bool = False  # mười / mươi (accentless "muoi" is both)
    hundred: bool = False  # trăm
    scale: int | None = None  # nghìn/ngàn 10**3, triệu 10**6, tỷ/tỉ 10**9
    zero_tens: bool = False  # linh / lẻ
    half: bool = False  # rưỡi
    chuc: bool = False  # chục
    point: bool = False  # phẩy / chấm
    nua: bool = False  # nửa
    neg: bool = False  # âm, or a "-" sign
    percent: bool = False  # % or "phần trăm"
    literal: tuple[Decimal, ...] = ()  # readings of a digit literal, preferred first
    ndigits: int = 0  # digits in an integer literal


def _w(**kw: object) -> Tok:
    return Tok(**kw)  # type: ignore[arg-type]


# Words as written with diacritics.  Tone-mark variants people use are listed too.
ACCENTED: dict[str, Tok] = {
    "không": _w(digit=0),
    "một": _w(digit=1, unit=1),
    "hai": _w(digit=2, unit=2),
    "ba": _w(digit=3, unit=3),
    "bốn": _w(digit=4, unit=4),
    "năm": _w(digit=5, unit=5),
    "sáu": _w(digit=6, unit=6),
    "bảy": _w(digit=7, unit=7),
    "bẩy": _w(digit=7, unit=7),
    "tám": _w(digit=8, unit=8),
    "chín": _w(digit=9, unit=9),
    "mốt": _w(unit=1, special=True),
    "tư": _w(unit=4, special=True),
    "lăm": _w(unit=5, special=True),
    "nhăm": _w(unit=5, special=True),
    "mười": _w(ten=True),
    "mươi": _w(ten=True),
    "trăm": _w(hundred=True),
    "nghìn": _w(scale=THOUSAND),
    "ngàn": _w(scale=THOUSAND),
    "triệu": _w(scale=MILLION),
    "tỷ": _w(scale=BILLION),
    "tỉ": _w(scale=BILLION),
    "linh": _w(zero_tens=True),
    "lẻ": _w(zero_tens=True),
    "rưỡi": _w(half=True),
    "rưởi": _w(half=True),
    "chục": _w(chuc=True),
    "phẩy": _w(point=True),
    "chấm": _w(point=True),
    "nửa": _w(nua=True),
    "âm": _w(neg=True),
}


def _plain_key(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _merge(a: Tok, b: Tok) -> Tok:
    return Tok(
        digit=a.digit if a.digit is not None else b.digit,
        unit=a.unit if a.unit is not None else b.unit,
        special=a.special or b.special,
        ten=a.ten or b.ten,
        hundred=a.hundred or b.hundred,
        scale=a.scale or b.scale,
        zero_tens=a.zero_tens or b.zero_tens,
        half=a.half or b.half,
        chuc=a.chuc or b.chuc,
        point=a.point or b.point,
        nua=a.nua or b.nua,
        neg=a.neg or b.neg,
    )


def _build_plain() -> dict[str, Tok]:
    table: dict[str, Tok] = {}
    for word, tok in ACCENTED.items():
        key = _plain_key(word)
        table[key] = _merge(table[key], tok) if key in table else tok
    return table


# Words typed without diacritics: every reading merged ("mot" = một or mốt, "muoi" = mười/mươi).
PLAIN: dict[str, Tok] = _build_plain()


def lookup_word(word: str, plain: str) -> Tok | None:
    """The number-word reading of one lower-case NFC word (accent-exact if it has diacritics)."""
    tok = ACCENTED.get(word) if word != plain else PLAIN.get(plain)
    return replace(tok, text=word) if tok is not None else None


# ---------------------------------------------------------------------------------------------
# digit literals

_INT = re.compile(r"\d+")
_ONE_SEP = re.compile(r"(\d+)([.,])(\d+)")
_DOT_GROUPS = re.compile(r"\d{1,3}(?:\.\d{3})+")
_COMMA_GROUPS = re.compile(r"\d{1,3}(?:,\d{3})+")
_VN_DECIMAL = re.compile(r"(\d{1,3}(?:\.\d{3})+),(\d+)")
_EN_DECIMAL = re.compile(r"(\d{1,3}(?:,\d{3})+)\.(\d+)")


def literal_readings(s: str) -> tuple[Decimal, ...]:
    """Readings of an ASCII digit literal, Vietnamese convention first; () if malformed.

    One separator followed by exactly three digits ("1.250", "1,250", integer part 1-3 digits not
    starting with 0) has two readings: thousands and decimal.  Vietnamese writes "." for thousands
    and "," for decimals, so "1.250" reads (1250, 1.25) and "1,250" reads (1.25, 1250).
    """
    if _INT.fullmatch(s):
        return (Decimal(s),)
    m = _ONE_SEP.fullmatch(s)
    if m:
        ip, sep, fp = m.groups()
        dec = Decimal(f"{ip}.{fp}")
        if len(ip) <= 3 and len(fp) == 3 and not ip.startswith("0"):
            thousands = Decimal(ip + fp)
            return (thousands, dec) if sep == "." else (dec, thousands)
        return (dec,)
    if _DOT_GROUPS.fullmatch(s) or _COMMA_GROUPS.fullmatch(s):
        return (Decimal(s.replace(".", "").replace(",", "")),)
    m = _VN_DECIMAL.fullmatch(s) or _EN_DECIMAL.fullmatch(s)
    if m:
        return (Decimal(f"{m.group(1).replace('.', '').replace(',', '')}.{m.group(2)}"),)
    return ()


def literal_tok(s: str) -> Tok:
    """A token for an ASCII digit literal (empty readings if malformed, which fails any run)."""
    readings = literal_readings(s)
    if _INT.fullmatch(s):
        value = int(s)
        return Tok(
            text=s,
            literal=readings,
            ndigits=len(s),
            digit=value if len(s) == 1 else None,
            unit=value if len(s) == 1 and value else None,
        )
    return Tok(text=s, literal=readings)


def _small_int(tok: Tok) -> int | None:
    """The value of an integer literal below 1000 usable as a whole group, else None."""
    if tok.ndigits and len(tok.literal) == 1 and tok.literal[0] < 1000:
        return int(tok.literal[0])
    return None


# ---------------------------------------------------------------------------------------------
# the grammar


def _tens(toks: list[Tok], i: int) -> tuple[int, int] | None:
    """A tens part at i ("mười lăm", "hai mươi mốt", "ba chục", "hai lăm"): (value, next index)."""
    n = len(toks)
    if i >= n:
        return None
    t = toks[i]
    nxt = toks[i + 1] if i + 1 < n else None
    if t.chuc and i == 0:
        return 10, 1  # a bare "chục" (ten) at the start: "chục người", "chục nghìn"
    if t.ten:
        if nxt is not None and nxt.unit is not None and not nxt.literal:
            return 10 + nxt.unit, i + 2
        return 10, i + 1
    if t.digit is None or nxt is None:
        return None
    if nxt.ten and t.digit >= 2:
        after = toks[i + 2] if i + 2 < n else None
        if after is not None and after.unit is not None and not after.literal:
            return t.digit * 10 + after.unit, i + 3
        return t.digit * 10, i + 2
    if nxt.chuc and t.digit >= 1:
        return t.digit * 10, i + 2
    if nxt.special and nxt.unit is not None and t.digit >= 2 and not t.literal:
        return t.digit * 10 + nxt.unit, i + 2
    return None


def _group(toks: list[Tok], i: int) -> tuple[int, int] | None:
    """A number below 1000 starting at i: (value, next index)."""
    n = len(toks)
    if i >= n:
        return None
    t = toks[i]
    if t.digit is not None and i + 1 < n and toks[i + 1].hundred:
        value = t.digit * 100
        i += 2
        if i >= n:
            return value, i
        nxt = toks[i]
        if nxt.zero_tens:
            if i + 1 < n and toks[i + 1].unit is not None:
                return value + toks[i + 1].unit, i + 2  # type: ignore[operator]
            return None
        if nxt.half:
            return value + 50, i + 1
        tens = _tens(toks, i)
        if tens is not None:
            return value + tens[0], tens[1]
        if i + 1 == n and nxt.unit is not None:
            return value + nxt.unit * 10, i + 1  # "một trăm hai" = 120 (only at the very end)
        return value, i
    tens = _tens(toks, i)
    if tens is not None:
        return tens
    small = _small_int(t)
    if small is not None:
        return small, i + 1
    if t.digit is not None:
        return t.digit, i + 1
    return None


def _below_scale_tail(toks: list[Tok], scale: int) -> int | None:
    """What a final single token after a scale word adds ("hai" → 2/10 of it, "rưỡi" → half)."""
    (t,) = toks
    if t.half:
        return scale // 2
    if t.literal:
        if t.ndigits == 1:
            return int(t.literal[0]) * scale // 10
        if t.ndigits == 3:
            return int(t.literal[0]) * scale // 1000
        return None
    if t.unit is not None:
        return t.unit * scale // 10
    return None


def _below_billion(toks: list[Tok]) -> int | None:
    """Read a whole run with scales nghìn/triệu (and nested numbers before tỷ handled above)."""
    n = len(toks)
    if n == 0:
        return None
    total = 0
    previous = BILLION * 1000
    i = 0
    while True:
        got = _group(toks, i)
        if got is None:
            return None
        value, i = got
        if i == n:
            return total + value
        scale = toks[i].scale
        if scale is None or scale >= previous:
            return None
        total += value * scale
        previous = scale
        i += 1
        rest = toks[i:]
        if not rest:
            return total
        if len(rest) == 1:
            tail = _below_scale_tail(rest, scale)
            if tail is not None:
                return total + tail
            if rest[0].literal:
                return None
        if rest[0].zero_tens:
            if len(rest) == 2 and rest[1].unit is not None:
                return total + rest[1].unit
            return None


def words_to_int(toks: list[Tok]) -> int | None:
    """The integer a run of number tokens spells (no sign, point or percent), or None."""
    if not toks:
        return None
    billions = [k for k, t in enumerate(toks) if t.scale == BILLION]
    if billions:
        k = billions[-1]
        left = words_to_int(toks[:k])
        if not left:
            return None
        right = toks[k + 1 :]
        if not right:
            return left * BILLION
        if len(right) == 1:
            tail = _below_scale_tail(right, BILLION)
            if tail is not None:
                return left * BILLION + tail
        if right[0].zero_tens:
            if len(right) == 2 and right[1].unit is not None:
                return left * BILLION + right[1].unit
            return None
        rest = _below_billion(right)
        return None if rest is None else left * BILLION + rest
    return _below_billion(toks)


def _fraction_digits(toks: list[Tok]) -> str | None:
    """Digits after "phẩy": digit words one by one ("không năm" → "05") or a number ("mười bốn")."""
    if not toks:
        return None
    if len(toks) == 1 and toks[0].ndigits:
        return toks[0].text
    if all(t.digit is not None and not t.literal for t in toks) and len(toks) > 1:
        return "".join(str(t.digit) for t in toks)
    value = words_to_int(toks)
    return None if value is None else str(value)


def read_run(toks: list[Tok]) -> tuple[Decimal, ...]:
    """All readings of one run of number tokens, preferred first; () when it spells no number."""
    if not toks:
        return ()
    sign = 1
    if toks[0].neg:
        sign, toks = -1, toks[1:]
    if toks and toks[-1].percent:
        toks = toks[:-1]
    if not toks or any(t.neg or t.percent for t in toks):
        return ()
    readings = _unsigned(toks)
    return tuple(sign * r for r in readings)


def _tidy(value: Decimal) -> Decimal:
    """1500000.0 → 1500000 (a scaled decimal literal that came out whole)."""
    return Decimal(int(value)) if value == value.to_integral_value() else value.normalize()


def _unsigned(toks: list[Tok]) -> tuple[Decimal, ...]:
    points = [k for k, t in enumerate(toks) if t.point]
    if points:
        if len(points) > 1:
            return ()
        k = points[0]
        whole = words_to_int(toks[:k]) if toks[:k] else None
        frac = _fraction_digits(toks[k + 1 :])
        if whole is None or frac is None:
            return ()
        return (Decimal(f"{whole}.{frac}"),)
    if toks[-1].nua and (len(toks) == 1 or (len(toks) == 2 and toks[0].digit == 1 and not toks[0].literal)):
        return (Decimal("0.5"),)
    # a decimal or ambiguous literal: alone, or times one scale word ("1,5 triệu", "2 triệu rưỡi")
    first = toks[0]
    if first.literal and _small_int(first) is None:
        if len(toks) == 1:
            return first.literal
        scale = toks[1].scale or (100 if toks[1].hundred else None)
        if scale is None or len(toks) > 3:
            return ()
        extra = 0
        if len(toks) == 3:
            if not toks[2].half:
                return ()
            extra = scale // 2
        return tuple(_tidy(r * scale + extra) for r in first.literal)
    if any(t.literal and _small_int(t) is None for t in toks):
        return ()
    value = words_to_int(toks)
    if value is not None:
        return (Decimal(value),)
    if toks[-1].half and len(toks) > 1:  # "ba rưỡi" = 3.5
        value = words_to_int(toks[:-1])
        if value is not None:
            return (Decimal(value) + Decimal("0.5"),)
    return ()


# ---------------------------------------------------------------------------------------------
# spelling out


def _group_words(g: int, full: bool) -> list[str]:
    hundreds, tens, units = g // 100, g // 10 % 10, g % 10
    words: list[str] = []
    if full or hundreds:
        words += [DIGIT_WORDS[hundreds], "trăm"]
    if tens == 0:
        if units:
            words += (["linh"] if full or hundreds else []) + [DIGIT_WORDS[units]]
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else DIGIT_WORDS[units])
    else:
        words += [DIGIT_WORDS[tens], "mươi"]
        if units:
            words.append(_AFTER_TENS.get(units, DIGIT_WORDS[units]))
    return words


def _below_billion_words(n: int, full: bool) -> list[str]:
    words: list[str] = []
    for scale, name in ((MILLION, "triệu"), (THOUSAND, "nghìn"), (1, "")):
        g = n // scale % 1000
        if g:
            words += _group_words(g, full)
            if name:
                words.append(name)
            full = True
    return words


def number_to_words(n: int) -> str:
    """Vietnamese words for an integer, with diacritics: 105 → "một trăm linh năm"."""
    if n < 0:
        return "âm " + number_to_words(-n)
    if n == 0:
        return DIGIT_WORDS[0]
    if n >= BILLION:
        high, low = divmod(n, BILLION)
        words = [number_to_words(high), "tỷ"]
        if low:
            words += _below_billion_words(low, full=True)
        return " ".join(words)
    return " ".join(_below_billion_words(n, full=False))
