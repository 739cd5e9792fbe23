"""The charts read on the figure's data, not pixels: whole-number axes for counts, bars comparable within a
panel, short labels, not-applicable indicators left out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from bot.exports.chart import _short as wrap
from bot.exports.chart import completeness_figure, indicators_figure, magnitude_groups
from bot.forms.loader import load_form_files
from bot.services.completeness import Completeness, VillageState, VillageStatus
from bot.services.summaries import IndicatorSummary

FORM = next(
    f for f in load_form_files(sorted(Path("deploy/forms").glob("*.yaml"))).forms if f.id == "bao-cao-6-thang"
)
NUMBERS = [q for q in FORM.questions if q.type == "integer"]


def indicator(index: int, total: int, previous: int | None, answered: int = 3) -> IndicatorSummary:
    return IndicatorSummary(NUMBERS[index], "number", 3, answered, total=total, previous=previous)


def labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def bar_widths(ax) -> list[float]:
    return [p.get_width() for p in ax.patches]


def test_counts_get_whole_number_ticks_and_short_labels() -> None:
    shown = [indicator(0, 3, 2), indicator(2, 7, 5), indicator(3, 4, None)]
    fig = indicators_figure(shown, period_label="Kỳ này", previous_label="Kỳ trước")
    (ax,) = fig.axes
    fig.canvas.draw()  # let the locator place the ticks
    ticks = [t for t in ax.get_xticks() if 0 <= t <= ax.get_xlim()[1]]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    assert ax.xaxis.get_major_locator()._integer
    assert labels(ax) == [wrap(NUMBERS[i].short_label, 40, 2) for i in (0, 2, 3)]
    assert all(NUMBERS[i].short_label != NUMBERS[i].label for i in (0, 2, 3))  # short, not the question
    assert not any(NUMBERS[i].label in " ".join(labels(ax)) for i in (0, 2, 3))


def test_bars_are_comparable_within_a_panel_and_sizes_apart_get_their_own() -> None:
    small = [indicator(0, 5, 4), indicator(2, 8, 6)]
    large = [indicator(1, 400, 300), indicator(4, 900, 700)]
    shown = [small[0], large[0], small[1], large[1]]
    groups = magnitude_groups(shown)
    assert [[i.total for i in g] for g in groups] == [[400, 900], [5, 8]]  # form order inside a panel
    fig = indicators_figure(shown, period_label="Kỳ này", previous_label="Kỳ trước")
    big_ax, small_ax = fig.axes[:2]
    assert sorted(bar_widths(big_ax)) == [300, 400, 700, 900]  # real values on a common axis
    assert sorted(bar_widths(small_ax)) == [4, 5, 6, 8]
    assert big_ax.get_xlim()[1] >= 900 and small_ax.get_xlim()[1] < 100


def test_not_applicable_indicators_are_left_out() -> None:
    shown = [indicator(0, 3, 2), indicator(2, 0, None, answered=0), indicator(3, 6, 1)]
    fig = indicators_figure(shown, period_label="Kỳ này")
    (ax,) = fig.axes
    assert wrap(NUMBERS[2].short_label, 40, 2) not in labels(ax) and len(labels(ax)) == 2
    empty = indicators_figure([indicator(0, 0, None, answered=0)], period_label="Kỳ này")
    assert not empty.axes[0].axison  # nothing to draw: "Chưa có số liệu"


def test_the_completeness_axis_counts_whole_villages() -> None:
    now = datetime(2026, 5, 25, tzinfo=UTC)
    period = SimpleNamespace(label="6 tháng đầu năm 2026", due_at=now)
    states = [VillageState.ON_TIME] * 2 + [VillageState.LATE] + [VillageState.NOT_STARTED] * 4
    done = Completeness(period, now, tuple(VillageStatus(n, f"Thôn {n}", s) for n, s in enumerate(states)))
    fig = completeness_figure(done)
    top = fig.axes[0]
    fig.canvas.draw()
    ticks = [t for t in top.get_xticks() if 0 <= t <= 7]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert sorted(bar_widths(top))[-1] == 4 and sum(p.get_width() for p in top.patches) == 7
