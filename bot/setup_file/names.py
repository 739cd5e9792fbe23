"""Names of communes and villages: as stored, as compared, and as an ASCII code."""

from __future__ import annotations

import re
import unicodedata

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


def code_slug(text: str) -> str:
    """An ASCII code of a Vietnamese name, words joined by '-' ("Xã Hiệp Lực" → "xa-hiep-luc").

    For commune codes (the suggestion when a code has accents), village kinds, ASCII file names and
    sorting village names.
    """
    plain = text.replace("đ", "d").replace("Đ", "D")
    plain = "".join(ch for ch in unicodedata.normalize("NFD", plain) if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")
