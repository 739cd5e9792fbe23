"""The Word report's body as prose: which indicators say something, which are said once as "nothing",
which free texts are real proposals (a bare "ko" is not), and what rose or fell since the previous period.

Pure functions over the indicator views `bot.exports.word.template_context` builds; the wording itself is
in templates/export/report_phrases.txt and report_body.txt (a commune's copy can reword everything).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

_NO_MARKS = str.maketrans({"đ": "d", "Đ": "d"})
_PUNCT = re.compile(r"[\s\.,;:!?…\-–—_/\\()\[\]\"'“”‘’*+=~`^]+")
_NOTHING = re.compile(
    r"^(?:"
    r"k|ko|kg|kh|khong|hong|0|x|no|none|nil|chua|chua co|het|binh thuong|"
    r"(?:k|ko|kg|kh|khong|chua)\s?(?:co)?\s?(?:gi|y kien|de nghi|de xuat|kien nghi|kho khan|vuong mac|"
    r"kho khan vuong mac|gi ca|ai|truong hop nao|van de gi)?"
    r")(?:\s?(?:a|ah|nhe|ca))?$"
)
KINDS_WITH_CHANGE = ("number", "items", "count")  # a rise or a fall of these is worth a sentence


def _folded(text: str) -> str:
    """Lower case, no diacritics, punctuation and runs of spaces as one space: "Không có ạ." → "khong co a"."""
    text = unicodedata.normalize("NFD", text.translate(_NO_MARKS).casefold())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return " ".join(_PUNCT.sub(" ", text).split())


def is_nothing(text: str | None) -> bool:
    """Whether a free-text answer only says "nothing" ("ko", "Không.", "không có gì ạ", "0", "-", "chưa có")."""
    if text is None:
        return True
    folded = _folded(text)
    return not folded or bool(_NOTHING.match(folded))


def lower_label(label: str) -> str:
    """A short label inside a sentence: first letter in lower case unless it starts an acronym ("ANTT")."""
    if len(label) > 1 and label[:2].isupper():
        return label
    return label[:1].lower() + label[1:]


def _number(value: Any) -> int | Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    return value if isinstance(value, (int, Decimal)) else Decimal(str(value))


def is_nil(view: dict[str, Any]) -> bool:
    """An answered indicator whose result is "none" (0 sessions, no "yes", no item) and was none before."""
    kind = view["kind"]
    if not view.get("answered"):
        return False
    if kind in ("number", "items", "count"):
        total, previous = _number(view.get("total")), _number(view.get("previous"))
        return total == 0 and not previous
    if kind == "yes_no":
        return not view.get("yes")
    return False


def has_figure(view: dict[str, Any]) -> bool:
    """Whether an indicator has something to say in the results (an answer that is not "none")."""
    kind = view["kind"]
    if view.get("derived"):
        return view.get("total") is not None  # a share out of 0, or nothing reported: left out
    if kind == "text":
        return bool(view.get("texts"))
    if kind == "choice":
        return bool(view.get("counts"))
    if kind == "date":
        return view.get("first") is not None
    if kind == "items":
        return bool(view.get("answered")) or bool(view.get("total"))
    return bool(view.get("answered"))


def section_view(title: str, views: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One section of the results: `figures` to state, `nil` to say once, `texts` to quote, `silent`
    text indicators no village said anything real about (said once), and whether it is `empty`."""
    figures = [v for v in views if v["kind"] != "text" and has_figure(v) and not is_nil(v)]
    nil = [v for v in views if v["kind"] != "text" and is_nil(v)]
    texts = [v for v in views if v["kind"] == "text" and v.get("texts")]
    silent = [v for v in views if v["kind"] == "text" and not v.get("texts") and v.get("said_nothing")]
    return {
        "title": title,
        "indicators": list(views),
        "figures": figures,
        "nil": nil,
        "texts": texts,
        "silent": silent,
        "empty": not (figures or nil or texts or silent),
    }


def changes(views: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Indicators that rose or fell against the previous period: view, `rose`, `amount`, `before`, `after`."""
    out = []
    for view in views:
        if view["kind"] not in KINDS_WITH_CHANGE:
            continue
        delta, before, after = (_number(view.get(k)) for k in ("delta", "previous", "total"))
        if delta is None or before is None or after is None or delta == 0:
            continue
        out.append(
            {"indicator": view, "rose": delta > 0, "amount": abs(delta), "before": before, "after": after}
        )
    return out


def split_texts(texts: Iterable[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """(village, text) pairs worth quoting, and how many villages only said "nothing"."""
    kept, nothing = [], 0
    for village, text in texts:
        if is_nothing(text):
            nothing += 1
        else:
            kept.append((village, text))
    return kept, nothing
