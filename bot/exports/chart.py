"""PNG charts for the police summary: who reported (by village) and the main figures against last period.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch), in
DejaVu Sans, which ships with matplotlib and has every Vietnamese glyph.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from bot.exports.data import clean_text, words
from bot.services.completeness import Completeness, VillageState
from bot.services.summaries import DerivedSummary, IndicatorSummary
from bot.texts.filters import vn_number, vn_number_rounded

FONT = "DejaVu Sans"
DEFAULT_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DPI = 110
WIDTH_IN = 8.0  # reads on a phone at full width
COLOURS = {
    VillageState.ON_TIME: "#2e7d32",
    VillageState.LATE: "#ef6c00",
    VillageState.DRAFT: "#fbc02d",
    VillageState.NOT_STARTED: "#c62828",
}
TEXT_ON = {
    VillageState.ON_TIME: "white",
    VillageState.LATE: "white",
    VillageState.DRAFT: "black",
    VillageState.NOT_STARTED: "white",
}
MAX_VILLAGE_BARS = 60  # more villages than this: the per-village panel is left out
PREVIOUS_COLOUR, CURRENT_COLOUR = "#9e9e9e", "#1565c0"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def _state_words() -> dict[VillageState, str]:
    w = words()["chart"]
    return {
        VillageState.ON_TIME: w["on_time"],
        VillageState.LATE: w["late"],
        VillageState.DRAFT: w["draft"],
        VillageState.NOT_STARTED: w["missing"],
    }


def _plain(text: str) -> str:
    """Data shown as typed: control characters dropped, "$" escaped so matplotlib never reads math."""
    return clean_text(text).replace("$", r"\$")


def _short(text: str, width: int, lines: int) -> str:
    wrapped = textwrap.wrap(" ".join(clean_text(text).split()), width) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1].rstrip() + "…"
    return "\n".join(wrapped).replace("$", r"\$")


def completeness_figure(done: Completeness, *, tz: ZoneInfo = DEFAULT_TZ) -> Figure:
    """The figure of `completeness_chart` (tests read its axes rather than pixels)."""
    names = _state_words()
    order = (VillageState.ON_TIME, VillageState.LATE, VillageState.DRAFT, VillageState.NOT_STARTED)
    counts = {state: sum(1 for v in done.villages if v.state == state) for state in order}
    villages = list(done.villages) if len(done.villages) <= MAX_VILLAGE_BARS else []
    height = 1.6 + (0.32 * len(villages) + 0.6 if villages else 0)
    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    ratios = [1.0, 0.32 * len(villages) + 0.3] if villages else [1.0]
    axes = fig.subplots(len(ratios), 1, gridspec_kw={"height_ratios": ratios}, squeeze=False)[:, 0]
    title = words()["chart"]["completeness_title"].format(period=_plain(done.period.label))
    fig.suptitle(f"{title}: {done.submitted}/{done.total}", fontfamily=FONT, fontsize=13, fontweight="bold")

    top = axes[0]
    left = 0
    for state in order:
        n = counts[state]
        if not n:
            continue
        top.barh(0, n, left=left, color=COLOURS[state], edgecolor="white")
        top.text(left + n / 2, 0, str(n), ha="center", va="center", color=TEXT_ON[state], fontfamily=FONT,
                 fontsize=11, fontweight="bold")  # fmt: skip
        left += n
    top.set_xlim(0, max(done.total, 1))
    top.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # villages are counted whole
    top.set_yticks([])
    top.set_xlabel(words()["chart"]["villages_axis"], fontfamily=FONT, fontsize=9)
    for side in ("top", "right", "left"):
        top.spines[side].set_visible(False)
    top.legend(
        handles=[Patch(color=COLOURS[s], label=f"{names[s]} ({counts[s]})") for s in order],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.35),
        ncol=4,
        frameon=False,
        prop={"family": FONT, "size": 9},
    )

    if villages:
        ax = axes[1]
        ys = range(len(villages))
        ax.barh(list(ys), [1] * len(villages), color=[COLOURS[v.state] for v in villages], edgecolor="white")
        for y, v in zip(ys, villages, strict=True):
            label = names[v.state]
            if v.sent_at is not None:
                label += f" · {v.sent_at.astimezone(tz):%H:%M %d/%m}"
            ax.text(
                0.02, y, label, va="center", ha="left", color=TEXT_ON[v.state], fontfamily=FONT, fontsize=9
            )
        ax.set_yticks(list(ys), [_short(v.name, 28, 1) for v in villages], fontfamily=FONT, fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xticks([])
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
    return fig


def completeness_chart(done: Completeness, *, tz: ZoneInfo = DEFAULT_TZ) -> bytes:
    """Who reported: a stacked bar of the counts by state, and one coloured bar per village (PNG bytes)."""
    return _png(completeness_figure(done, tz=tz))


def _float(value: int | Decimal | None) -> float:
    return float(value) if value is not None else 0.0


def applicable(indicators: Sequence[IndicatorSummary], limit: int = 12) -> list[IndicatorSummary]:
    """The numeric indicators worth a bar: some village answered them this period (a question skipped by
    every village, e.g. a follow-up of "no", is not applicable and left out)."""
    return [i for i in indicators if i.kind == "number" and i.answered > 0][:limit]


@dataclass(frozen=True)
class Bar:
    """One bar pair of the indicators chart: a short label, this period's and the previous value, and
    "%" for a derived share (drawn in its own panel, never on the axis of counts)."""

    label: str
    total: int | Decimal | None
    previous: int | Decimal | None
    unit: str = ""


def chart_bars(
    indicators: Sequence[IndicatorSummary], derived: Sequence[DerivedSummary] = (), limit: int = 12
) -> list[Bar]:
    """What the indicators chart draws: the applicable numeric indicators, then the derived figures that
    have a value (a share out of 0 has none and is left out); at most `limit` bars, the derived ones kept
    first when there are too many (the form's author chose them)."""
    extra = []
    for figure in derived:
        value = figure.value
        if value.value is None:
            continue
        previous = figure.previous.value if figure.previous is not None else None
        unit = "%" if value.derived.kind == "share" else ""
        extra.append(Bar(value.derived.short, value.value, previous, unit))
    extra = extra[:limit]
    room = limit - len(extra)
    bars = (
        [Bar(i.question.short_label, i.total, i.previous) for i in applicable(indicators, room)]
        if room
        else []
    )
    return bars + extra


def magnitude_groups(shown: Sequence[Any], ratio: float = 20.0) -> list[list[Any]]:
    """The indicators (or bars) in panels of comparable size (largest ≤ `ratio` × smallest, in form order
    within a panel), so bars on one axis can be compared: sessions and people reached differ a hundredfold.
    Percentages (`unit` "%") get panels of their own."""
    groups: list[list[Any]] = []
    for unit in dict.fromkeys(getattr(i, "unit", "") for i in shown):
        same = [i for i in shown if getattr(i, "unit", "") == unit]
        ranked = sorted(same, key=lambda i: -max(_float(i.total), _float(i.previous)))
        start = len(groups)
        for ind in ranked:
            size = max(_float(ind.total), _float(ind.previous), 1.0)
            top = (
                max(_float(groups[-1][0].total), _float(groups[-1][0].previous), 1.0)
                if len(groups) > start
                else 0.0
            )
            if len(groups) > start and top <= ratio * size:
                groups[-1].append(ind)
            else:
                groups.append([ind])
    order = {id(i): n for n, i in enumerate(shown)}
    return [sorted(g, key=lambda i: order[id(i)]) for g in groups]


def _bar_text(value: float, unit: str) -> str:
    if unit == "%":
        return vn_number(Decimal(repr(round(value, 3)))) + "%"
    return vn_number_rounded(value)


def indicators_figure(
    indicators: Sequence[IndicatorSummary],
    *,
    period_label: str,
    previous_label: str | None = None,
    limit: int = 12,
    derived: Sequence[DerivedSummary] = (),
) -> Figure:
    """The figure of `indicators_chart`: one panel per group of comparable indicators, each on a common
    axis of real values (whole-number ticks for counts), short labels, not-applicable ones left out;
    the form's derived figures after them (shares in a panel of percentages)."""
    w = words()["chart"]
    shown = chart_bars(indicators, derived, limit)
    with_previous = previous_label is not None and any(i.previous is not None for i in shown)
    period_label, previous_label = _plain(period_label), _plain(previous_label or "")
    groups = magnitude_groups(shown) or [[]]
    sizes = [max(len(g), 1) for g in groups]
    height = 1.4 + 0.62 * sum(sizes) + 0.5 * len(groups)
    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    axes = fig.subplots(len(groups), 1, gridspec_kw={"height_ratios": sizes}, squeeze=False)[:, 0]
    title = (
        w["indicators_title"].format(period=period_label, previous=previous_label)
        if with_previous
        else w["indicators_title_alone"].format(period=period_label)
    )
    fig.suptitle(title, fontfamily=FONT, fontsize=12, fontweight="bold")
    if not shown:
        axes[0].text(0.5, 0.5, w["no_data"], ha="center", va="center", fontfamily=FONT, fontsize=11)
        axes[0].set_axis_off()
        return fig
    bar = 0.38 if with_previous else 0.6
    for ax, group in zip(axes, groups, strict=True):
        top = max(max(_float(i.total), _float(i.previous) if with_previous else 0.0) for i in group) or 1.0
        for y, ind in enumerate(group):
            pairs = [(_float(ind.total), CURRENT_COLOUR, -bar / 2 if with_previous else 0.0)]
            if with_previous:
                pairs.append((_float(ind.previous), PREVIOUS_COLOUR, bar / 2))
            for value, colour, offset in pairs:
                ax.barh(y + offset, value, height=bar, color=colour)
                known = colour == CURRENT_COLOUR or ind.previous is not None
                text = _bar_text(value, ind.unit) if known else "—"
                ax.text(value + top * 0.01, y + offset, text, va="center", fontfamily=FONT, fontsize=9)
        ax.set_yticks(
            range(len(group)),
            [_short(i.label, 40, 2) for i in group],
            fontfamily=FONT,
            fontsize=8,
        )
        ax.invert_yaxis()
        percent = all(getattr(i, "unit", "") == "%" for i in group)
        ax.set_xlim(0, max(top * 1.15, 115.0) if percent else top * 1.15)  # shares on a 0–100 scale
        whole = all(_float(i.total).is_integer() and _float(i.previous).is_integer() for i in group)
        ax.xaxis.set_major_locator(MaxNLocator(integer=whole, min_n_ticks=2))
        ax.tick_params(axis="x", labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    handles = [Patch(color=CURRENT_COLOUR, label=f"{w['current']}: {period_label}")]
    if with_previous:
        handles.append(Patch(color=PREVIOUS_COLOUR, label=f"{w['previous']}: {previous_label}"))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=2,
        frameon=False,
        prop={"family": FONT, "size": 9},
    )
    return fig


def indicators_chart(
    indicators: Sequence[IndicatorSummary],
    *,
    period_label: str,
    previous_label: str | None = None,
    limit: int = 12,
    derived: Sequence[DerivedSummary] = (),
) -> bytes:
    """The main numeric indicators and derived figures, this period against the previous one, as grouped
    bars (PNG bytes)."""
    return _png(
        indicators_figure(
            indicators, period_label=period_label, previous_label=previous_label, limit=limit, derived=derived
        )
    )


__all__ = [
    "Bar",
    "applicable",
    "chart_bars",
    "completeness_chart",
    "completeness_figure",
    "indicators_chart",
    "indicators_figure",
    "magnitude_groups",
]
