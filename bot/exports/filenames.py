"""File names of exports: a readable Vietnamese one and an ASCII fallback.

"Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.xlsx" and "bao-cao-6-thang_hiep-luc_2026-6T.xlsx".
"""

from __future__ import annotations

import re
import unicodedata

from bot.exports.data import clean_text

MAX_TITLE = 60  # characters of the form title kept in a file name
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]+')  # + bidi controls
_CODE_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
_SLUG_SEPARATORS = re.compile(r"[^a-z0-9]+")


def short_title(title: str) -> str:
    """The head of a form title: "Báo cáo 6 tháng về phong trào …" → "Báo cáo 6 tháng"."""
    head = re.split(r"\s+(?:về|của)\s+", title, maxsplit=1)[0].strip()
    if len(head) > MAX_TITLE:
        head = head[:MAX_TITLE].rsplit(" ", 1)[0] or head[:MAX_TITLE]
    return head


def _safe(text: str) -> str:
    text = unicodedata.normalize("NFC", clean_text(text))
    return " ".join(_UNSAFE.sub(" ", text).split()).strip(". ")


def code_slug(text: str) -> str:
    """`bot.setup_file.code_slug` ("Xã Hiệp Lực" → "xa-hiep-luc"), here so that an export does not import the
    setup file's readers for three lines (tests/test_exports.py checks that the two agree)."""
    plain = text.replace("đ", "d").replace("Đ", "D")
    plain = "".join(ch for ch in unicodedata.normalize("NFD", plain) if not unicodedata.combining(ch))
    return _SLUG_SEPARATORS.sub("-", plain.lower()).strip("-")


def _code(text: str) -> str:
    return _CODE_UNSAFE.sub("-", text).strip("-") or "ky"


def export_filename(form_title: str, commune_name: str, period_code: str, ext: str) -> str:
    """The Vietnamese file name, safe on every file system: "Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.xlsx"."""
    parts = [_safe(short_title(form_title)) or "Báo cáo", _safe(commune_name)[:80], _code(period_code)]
    return " — ".join(p for p in parts if p) + f".{ext}"


def ascii_filename(form_id: str, commune_code: str, period_code: str, ext: str) -> str:
    """The ASCII fallback: "bao-cao-6-thang_hiep-luc_2026-6T.xlsx"."""
    parts = [code_slug(form_id) or "bao-cao", code_slug(commune_code) or "xa", _code(period_code)]
    return "_".join(parts) + f".{ext}"
