"""The one "did you mean": the closest known word to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from bot.yamlkit.messages import TEXTS


def closest(word: object, known: Iterable[str], *, ignore_case: bool = False) -> str | None:
    """The known word closest to `word` (difflib ratio ≥ 0.6), or None; `ignore_case` retries case-folded."""
    if not isinstance(word, str):
        return None
    written = list(known)
    found = difflib.get_close_matches(word, sorted(written), n=1, cutoff=0.6)
    if not found and ignore_case:
        lowered = {k.lower(): k for k in written}
        found = [
            lowered[f] for f in difflib.get_close_matches(word.lower(), sorted(lowered), n=1, cutoff=0.6)
        ]
    return found[0] if found else None


def did_you_mean(word: object, known: Iterable[str], *, ignore_case: bool = False) -> str:
    """ " — có phải 'x'?" for the closest known word, or "" when none is close."""
    close = closest(word, known, ignore_case=ignore_case)
    return TEXTS["did_you_mean_tail"].format(close=close) if close is not None else ""
