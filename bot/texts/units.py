"""How texts name the reporting units and their heads by kind ("thôn" / "trưởng thôn", "tổ dân phố" /
"tổ trưởng", "đơn vị" / "thủ trưởng đơn vị") and the body that collects the reports ("Công an xã", "Văn
phòng"): the words are in templates/common/units.yaml; `Wording` is what templates see as `who`.

Every template has `who`: the wording of whoever the text is about, set per update or per outbox row with
`speaking_for` (a context variable), else the default thôn commune with its Công an xã; a caller may also
pass `who=` in the context."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, Final

import yaml

from bot.texts.filters import vn_number
from bot.texts.paths import templates_dir

DEFAULT_KIND: Final = "thon"


@dataclass(frozen=True)
class UnitWords:
    """The words for one kind of unit (or a mix): one unit, the units after "các", the head's title."""

    unit: str
    units: str
    head: str


@dataclass(frozen=True)
class UnitTable:
    """templates/common/units.yaml, read: the words per kind, the residential kinds, the mix, the collector."""

    kinds: Mapping[str, UnitWords]
    residential: tuple[str, ...]
    mixed: UnitWords
    collector: str
    staff: str
    formal: str


@cache
def unit_table() -> UnitTable:
    """The shipped words for every kind of unit (read once)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: ~0.3 ms against ~6 ms (issue 18)
    with (templates_dir() / "common" / "units.yaml").open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=loader)  # a safe loader either way
    kinds = {str(k): UnitWords(**v) for k, v in data["kinds"].items()}
    residential = tuple(str(k) for k in data["residential"])
    mixed = UnitWords(**data["mixed"])
    return UnitTable(
        kinds, residential, mixed, str(data["collector"]), str(data["staff"]), str(data["formal"])
    )


def words_of(kind: str | None) -> UnitWords:
    """The words of one kind; an unknown or missing kind reads as a thôn."""
    table = unit_table()
    return table.kinds.get(str(kind or DEFAULT_KIND), table.kinds[DEFAULT_KIND])


def unit_noun(kind: str | None) -> str:
    """ "thon" → "thôn", "to_dan_pho" → "tổ dân phố", "phong_ban" → "đơn vị" (the `unit_noun` filter)."""
    return words_of(kind).unit


def head_title(kind: str | None) -> str:
    """ "thon" → "trưởng thôn", "to_dan_pho" → "tổ trưởng" (the `head_title` filter)."""
    return words_of(kind).head


def units_count(kinds: Iterable[str | None]) -> str:
    """The units counted by kind, in the table's order: "3 thôn, 2 tổ dân phố", "6 đơn vị" (a filter)."""
    tally: dict[str, int] = {}
    for kind in kinds:
        key = str(kind) if kind in unit_table().kinds else DEFAULT_KIND
        tally[key] = tally.get(key, 0) + 1
    order = list(unit_table().kinds)
    parts = [f"{vn_number(tally[k])} {unit_noun(k)}" for k in order if k in tally]
    return ", ".join(parts) if parts else f"0 {unit_noun(DEFAULT_KIND)}"


def _ordered(kinds: Iterable[str | None]) -> tuple[str, ...]:
    """The distinct known kinds in the table's order (unknown ones read as thôn); none: thôn."""
    table = unit_table()
    seen = {str(k) if k in table.kinds else DEFAULT_KIND for k in kinds}
    return tuple(k for k in table.kinds if k in seen) or (DEFAULT_KIND,)


def words_for(kinds: Iterable[str | None]) -> UnitWords:
    """The words for a set of units: their kind's when all are alike; for thôn, tổ dân phố and khu dân cư
    together the names joined ("thôn, tổ dân phố" / "trưởng thôn, tổ trưởng"); any other mix "đơn vị"."""
    table = unit_table()
    ordered = _ordered(kinds)
    if len(ordered) == 1:
        return table.kinds[ordered[0]]
    if all(k in table.residential for k in ordered):
        words = [table.kinds[k] for k in ordered]
        return UnitWords(
            unit=", ".join(w.unit for w in words),
            units=", ".join(w.units for w in words),
            head=", ".join(w.head for w in words),
        )
    return table.mixed


@dataclass(frozen=True)
class Wording:
    """What templates call `who`: the units' noun (`unit`, `units` after "các"), the head's title (`head`),
    the collecting body (`collector`) and `count(n)` ("6 thôn"), for one unit or all units of a commune.

    The kinds (`source`) and the collector may be callables, asked the first time a text uses a word (so
    that a text naming nobody costs no query)."""

    source: tuple[str, ...] | Callable[[], Iterable[str | None]] = (DEFAULT_KIND,)
    collector_source: str | Callable[[], str | None] | None = None

    @cached_property
    def kinds(self) -> tuple[str, ...]:
        """The distinct kinds of the units, in the table's order (asked once)."""
        return _ordered(self.source() if callable(self.source) else self.source)

    @cached_property
    def words(self) -> UnitWords:
        """The unit words for these kinds."""
        return words_for(self.kinds)

    @property
    def units_formal(self) -> str:
        """The units named in documents: "thôn, tổ dân phố" while all are residential, else `units`."""
        table = unit_table()
        return table.formal if all(k in table.residential for k in self.kinds) else self.units

    @property
    def unit(self) -> str:
        """One unit: "thôn", "tổ dân phố", "đơn vị"."""
        return self.words.unit

    @property
    def units(self) -> str:
        """The units after "các": "các thôn", "các phòng, ban", "các thôn, tổ dân phố"."""
        return self.words.units

    @property
    def head(self) -> str:
        """The head's title: "trưởng thôn", "tổ trưởng", "thủ trưởng đơn vị"."""
        return self.words.head

    @property
    def collector(self) -> str:
        """The body that collects the reports: "Công an xã" unless the commune's `report: collector:` says."""
        return self.collector_name or unit_table().collector

    @cached_property
    def collector_name(self) -> str | None:
        """The collector as set up for the commune (None: the shipped one), asked once."""
        source = self.collector_source
        return source() if callable(source) else source

    @property
    def staff(self) -> str:
        """Whose officer one is, after "cán bộ": "Công an" unless the commune names its collector."""
        return self.collector_name or unit_table().staff

    def count(self, n: int) -> str:
        """ "6 thôn", "3 tổ dân phố", "6 đơn vị"."""
        return f"{vn_number(n)} {self.unit}"

    @cached_property
    def marks(self) -> tuple[tuple[str, str], ...]:
        """What {unit_noun}, {units_noun}, {units_formal}, {head_title}, {collector} (and {Unit_noun}…
        capitalised) stand for in data files (templates/commands.yaml, templates/*/words.yaml)."""
        out: list[tuple[str, str]] = []
        for name, attribute in MARKS.items():
            value = str(getattr(self, attribute))
            out += [("{" + name + "}", value), ("{" + name[0].upper() + name[1:] + "}", upper_first(value))]
        return tuple(out)

    def fill(self, text: str) -> str:
        """`text` with its marks ({units_noun}, {Head_title}, {collector}…) replaced; the kinds are asked
        only if it has one."""
        return replace_marks(text, self.marks) if has_marks(text) else text


# a mark in a data file → the `Wording` attribute it stands for (names that no `str.format` field uses)
MARKS: Final = {
    "unit_noun": "unit",
    "units_noun": "units",
    "units_formal": "units_formal",
    "head_title": "head",
    "collector": "collector",
}
_MARK_NAMES: Final = tuple("{" + n + "}" for n in MARKS) + tuple(
    "{" + n[0].upper() + n[1:] + "}" for n in MARKS
)


def words_file(load: Callable[[], Any]) -> Callable[[], Any]:
    """A reader of a YAML data file's words with their marks filled for the current wording. The exports
    ask for their words per cell, so the last answer is kept for the same `Wording` (an identity check), and
    the filled copies per set of words (`Wording.marks`); the file is read once."""
    load = cache(load)
    by_marks: dict[tuple[tuple[str, str], ...], Any] = {}
    last: list[Any] = [None, None]  # [wording, data]
    current = _CURRENT.get

    def words() -> Any:
        w = current()
        if last[0] is w:
            return last[1]
        marks = w.marks
        data = by_marks.get(marks)
        if data is None:
            data = by_marks[marks] = fill_marks(load(), marks)
        last[:] = [w, data]  # a racing thread at worst fills it again
        return data

    return words


def has_marks(text: str) -> bool:
    """Whether `text` names units, heads or the collector by a mark ({units_noun}, {collector}…)."""
    return "{" in text and any(mark in text for mark in _MARK_NAMES)


def replace_marks(text: str, marks: tuple[tuple[str, str], ...]) -> str:
    """`text` with every mark replaced by its word (`Wording.marks`)."""
    for mark, value in marks:
        text = text.replace(mark, value)
    return text


def fill_marks(data: Any, marks: tuple[tuple[str, str], ...]) -> Any:
    """A copy of YAML data (dicts, lists, strings) with every string's marks replaced (`Wording.marks`)."""
    if isinstance(data, str):
        return replace_marks(data, marks) if has_marks(data) else data
    if isinstance(data, dict):
        return {k: fill_marks(v, marks) for k, v in data.items()}
    if isinstance(data, list):
        return [fill_marks(v, marks) for v in data]
    return data


def wording(kinds: Iterable[str | None] | None = None, collector: str | None = None) -> Wording:
    """A `Wording` for these unit kinds (None: a thôn) and this collector (None: the shipped one)."""
    return Wording(tuple(str(k) for k in kinds if k) if kinds is not None else (DEFAULT_KIND,), collector)


def lazy_wording(
    kinds: Callable[[], Iterable[str | None]], collector: str | Callable[[], str | None] | None = None
) -> Wording:
    """A `Wording` whose kinds (and collector, if a callable) are asked only when a text first uses them."""
    return Wording(kinds, collector)


DEFAULT_WORDING: Final = Wording()
_CURRENT: ContextVar[Wording] = ContextVar("wording", default=DEFAULT_WORDING)


def current_wording() -> Wording:
    """The wording texts rendered now use as `who` (default: a thôn commune with its Công an xã)."""
    return _CURRENT.get()


@contextmanager
def speaking_for(w: Wording | None) -> Iterator[Wording]:
    """Render the texts inside the block with `w` as `who` (None: leave the current one)."""
    if w is None:
        yield current_wording()
        return
    token = _CURRENT.set(w)
    try:
        yield w
    finally:
        _CURRENT.reset(token)


class _Who:
    """The `who` template global: the current `Wording`, looked up at render time."""

    def __getattr__(self, name: str) -> Any:
        return getattr(current_wording(), name)


WHO: Final = _Who()


def upper_first(text: Any) -> str:
    """The text with its first letter in capitals ("thôn" → "Thôn"; the `upper_first` filter)."""
    text = str(text)
    return text[:1].upper() + text[1:]


UNIT_FILTERS: Final[dict[str, Callable[[Any], str]]] = {
    "unit_noun": unit_noun,
    "head_title": head_title,
    "units_count": units_count,
    "upper_first": upper_first,
}

__all__ = [
    "DEFAULT_WORDING",
    "MARKS",
    "UNIT_FILTERS",
    "WHO",
    "UnitWords",
    "Wording",
    "current_wording",
    "fill_marks",
    "has_marks",
    "head_title",
    "lazy_wording",
    "replace_marks",
    "speaking_for",
    "unit_noun",
    "unit_table",
    "units_count",
    "upper_first",
    "wording",
    "words_file",
    "words_for",
    "words_of",
]
