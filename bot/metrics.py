"""Prometheus metrics of the bot, on a registry of our own (served at `/metrics` by `baocao serve`)."""

# Counters are process-local; each worker process is its own Prometheus target. The outbox gauges
# are read from the database at scrape time (`refresh_outbox`), so they are right whichever process
# planned or sent the rows. The planner and dispatcher report through `record_planned`,
# `record_sent`, `record_failed` and `record_429`.

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from storage.models import Outbox

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

CONTENT_TYPE = CONTENT_TYPE_LATEST
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "obsolete")

UPDATES = Counter(
    "baocao_updates",
    "Updates handled, by handler and outcome (ok, refused, group, duplicate, error, ignored).",
    ["handler", "outcome"],
    registry=REGISTRY,
)
HANDLER_SECONDS = Histogram(
    "baocao_handler_duration_seconds",
    "Time from an update reaching its handler to the last reply sent, by handler.",
    ["handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
WEBHOOK_REQUESTS = Counter(
    "baocao_webhook_requests",
    "Requests to the webhook path, by HTTP status answered (200, 400, 403, 413, 503).",
    ["status"],
    registry=REGISTRY,
)
REMINDERS_PLANNED = Counter(
    "baocao_reminders_planned", "Outbox rows created by the reminder planner.", registry=REGISTRY
)
REMINDERS_SENT = Counter("baocao_reminders_sent", "Outbox messages Telegram accepted.", registry=REGISTRY)
REMINDERS_FAILED = Counter(
    "baocao_reminders_failed",
    "Outbox messages given up (e.g. the person blocked the bot).",
    registry=REGISTRY,
)
DISPATCH_RESULTS = Counter(
    "baocao_outbox_results",
    "What became of claimed outbox rows: sent, failed, obsolete, retry, released, lost.",
    ["outcome"],
    registry=REGISTRY,
)
TELEGRAM_429 = Counter(
    "baocao_telegram_429", "Answers 429 Too Many Requests received from the Bot API.", registry=REGISTRY
)
SCHEDULER_JOBS = Counter(
    "baocao_scheduler_jobs",
    "Scheduler jobs run, by job and outcome (ok, error).",
    ["job", "outcome"],
    registry=REGISTRY,
)
SCHEDULER_JOB_SECONDS = Histogram(
    "baocao_scheduler_job_duration_seconds",
    "Duration of scheduler jobs (a reminder cycle: plan, then dispatch).",
    ["job"],
    buckets=(0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0),
    registry=REGISTRY,
)
OUTBOX_MESSAGES = Gauge(
    "baocao_outbox_messages", "Outbox rows by status (read at scrape time).", ["status"], registry=REGISTRY
)
OUTBOX_DUE = Gauge(
    "baocao_outbox_due_messages",
    "Pending outbox rows already due: the backlog the dispatcher has still to send.",
    registry=REGISTRY,
)
SCRAPE_ERRORS = Counter(
    "baocao_metrics_scrape_errors", "Scrapes whose database read failed.", registry=REGISTRY
)


def record_update(handler: str, outcome: str, seconds: float) -> None:
    """Count one handled update and observe its latency."""
    UPDATES.labels(handler=handler, outcome=outcome).inc()
    HANDLER_SECONDS.labels(handler=handler).observe(seconds)


def record_webhook(status: int) -> None:
    """Count one request to the webhook path by the status answered."""
    WEBHOOK_REQUESTS.labels(status=str(status)).inc()


def record_planned(n: int) -> None:
    """Count outbox rows created by the planner."""
    if n > 0:
        REMINDERS_PLANNED.inc(n)


def record_sent(n: int = 1) -> None:
    """Count outbox messages sent."""
    if n > 0:
        REMINDERS_SENT.inc(n)


def record_failed(n: int = 1) -> None:
    """Count outbox messages given up."""
    if n > 0:
        REMINDERS_FAILED.inc(n)


def record_dispatch(outcome: str) -> None:
    """Count one claimed outbox row by what became of it (sent and failed also feed their counters)."""
    outcome = str(outcome)
    DISPATCH_RESULTS.labels(outcome=outcome).inc()
    if outcome == "sent":
        REMINDERS_SENT.inc()
    elif outcome == "failed":
        REMINDERS_FAILED.inc()


def record_429(n: int = 1) -> None:
    """Count 429 Too Many Requests answers from the Bot API."""
    if n > 0:
        TELEGRAM_429.inc(n)


def record_job(job: str, outcome: str, seconds: float) -> None:
    """Count one scheduler job run and observe its duration."""
    SCHEDULER_JOBS.labels(job=job, outcome=outcome).inc()
    SCHEDULER_JOB_SECONDS.labels(job=job).observe(seconds)


def refresh_outbox(engine: Engine, now: datetime) -> None:
    """Set the outbox gauges from the database (blocking: call it in a thread)."""
    status_col = Outbox.__table__.c.status  # type: ignore[attr-defined]
    due_col = Outbox.__table__.c.due_at  # type: ignore[attr-defined]
    with engine.connect() as conn:
        counts = dict(conn.execute(select(status_col, func.count()).group_by(status_col)).all())
        due = conn.execute(select(func.count()).where(status_col == "pending", due_col <= now)).scalar_one()
    for status in OUTBOX_STATUSES:
        OUTBOX_MESSAGES.labels(status=status).set(counts.get(status, 0))
    OUTBOX_DUE.set(due)


def exposition() -> bytes:
    """The Prometheus text exposition of every metric."""
    return generate_latest(REGISTRY)


def observe_scheduler(scheduler: Any, job: str = "reminders-cycle") -> None:
    """Log one line per reminder cycle (duration, planned, sent, failed) and time it in the metrics.

    Wraps the instance's `run_cycle`, which `tick()` looks up at each tick.
    """
    original: Callable[[], Awaitable[Any]] = scheduler.run_cycle
    jobs_log = logging.getLogger("bot.jobs")

    async def run_cycle() -> Any:
        started = time.perf_counter()
        outcome, report = "error", None
        try:
            report = await original()
            outcome = "ok"
            return report
        finally:
            seconds = time.perf_counter() - started
            record_job(job, outcome, seconds)
            planned = sum(getattr(p, "created", 0) for p in getattr(report, "plans", ()))
            dispatches = getattr(report, "dispatches", ())
            sent = sum(d.sent for d in dispatches)
            failed = sum(d.failed for d in dispatches)
            waits = sum(d.flood_waits for d in dispatches)
            jobs_log.info(
                "job %s %s %.0fms planned=%s sent=%s failed=%s 429=%s",
                job,
                outcome,
                seconds * 1000,
                planned,
                sent,
                failed,
                waits,
                extra={
                    "job": job,
                    "outcome": outcome,
                    "duration_ms": round(seconds * 1000, 1),
                    "planned": planned,
                    "sent": sent,
                    "failed": failed,
                    "rate_limited": waits,
                },
            )

    scheduler.run_cycle = run_cycle
