"""bot.metrics: the recording functions the dispatcher and planner call, and the per-cycle job line."""

from __future__ import annotations

import logging

import pytest

from bot import metrics
from bot.delivery.outbox import DispatchReport
from bot.reminders.scheduler import CycleReport


def value(name: str, **labels: str) -> float:
    """Current value of one sample (0 when never touched)."""
    return metrics.REGISTRY.get_sample_value(name, labels or None) or 0.0


def test_record_functions_move_their_counters() -> None:
    before = {
        "sent": value("baocao_reminders_sent_total"),
        "failed": value("baocao_reminders_failed_total"),
        "planned": value("baocao_reminders_planned_total"),
        "429": value("baocao_telegram_429_total"),
        "retry": value("baocao_outbox_results_total", outcome="retry"),
    }
    metrics.record_dispatch("sent")
    metrics.record_dispatch("failed")
    metrics.record_dispatch("retry")
    metrics.record_sent(3)
    metrics.record_failed(0)  # nothing to count
    metrics.record_planned(5)
    metrics.record_planned(-1)
    metrics.record_429()
    assert value("baocao_reminders_sent_total") == before["sent"] + 4
    assert value("baocao_reminders_failed_total") == before["failed"] + 1
    assert value("baocao_reminders_planned_total") == before["planned"] + 5
    assert value("baocao_telegram_429_total") == before["429"] + 1
    assert value("baocao_outbox_results_total", outcome="retry") == before["retry"] + 1


class _Plan:
    created = 4


class FakeScheduler:
    """Something with a `run_cycle` coroutine, like ReminderScheduler."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    async def run_cycle(self) -> CycleReport:
        """One cycle: 4 planned, 2 429 waits, or an error."""
        if self.fail:
            raise RuntimeError("database gone")
        return CycleReport(plans=[_Plan()], dispatches=[DispatchReport(flood_waits=2)])


async def test_observe_scheduler_logs_one_line_per_cycle_and_counts_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.jobs")
    ok_before = value("baocao_scheduler_jobs_total", job="reminders-cycle", outcome="ok")
    err_before = value("baocao_scheduler_jobs_total", job="reminders-cycle", outcome="error")
    good, bad = FakeScheduler(), FakeScheduler(fail=True)
    metrics.observe_scheduler(good)
    metrics.observe_scheduler(bad)
    report = await good.run_cycle()
    assert isinstance(report, CycleReport)
    with pytest.raises(RuntimeError):
        await bad.run_cycle()
    lines = [r for r in caplog.records if r.name == "bot.jobs"]
    assert [(r.job, r.outcome, r.planned, r.rate_limited) for r in lines] == [
        ("reminders-cycle", "ok", 4, 2),
        ("reminders-cycle", "error", 0, 0),
    ]
    assert all(r.duration_ms >= 0 for r in lines)
    assert value("baocao_scheduler_jobs_total", job="reminders-cycle", outcome="ok") == ok_before + 1
    assert value("baocao_scheduler_jobs_total", job="reminders-cycle", outcome="error") == err_before + 1
