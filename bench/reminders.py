"""Benchmark a reminder wave: plan and dispatch to N village heads against the emulator (on demand, not in CI).

A throw-away database (a temporary SQLite file, or a PostgreSQL database created next to --pg-url and
dropped at the end) gets N village heads — `--communes` communes of N/communes villages, one head
each, joined long ago — and one period of the shipped semiannual form, due in two days, whose
"3d" reminder has just passed: planning yields one reminder per head. Rows are written with bulk
inserts in a child process, so the measuring process's peak RSS is only planning and sending.

The Bot API emulator runs in a child process of its own (flood control off) with every user already
started, so the CPU time measured here is ours alone: the planner (`bot.services.reminders.plan`),
and the dispatcher (`bot.delivery.dispatcher.dispatch_due`) with the real renderer
(`bot.reminders.content.render_outbox`) — or `--render simple`, a constant text, to isolate the
dispatcher — and PTB/httpx, SQLAlchemy and, on SQLite, the database engine itself. The limiter is
switched off to measure throughput; the wave's duration at Telegram's 30 messages/s is computed.

    .venv/bin/python bench/reminders.py                       # 100,000 heads, SQLite
    .venv/bin/python bench/reminders.py --heads 10000 --pg-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/reminders.py --plan-only           # planning only (fast)
    .venv/bin/python bench/reminders.py --heads 3000 --rate 30            # limiter on, emulator's 30/s on
    .venv/bin/python bench/reminders.py --heads 6000 --paid-rate 300 --paid-stars 1000 --concurrency 32

With `--rate` or `--paid-rate` the limits are on, as in production: the emulator enforces Telegram's 30/s
(and 1,000/s for sends with `allow_paid_broadcast`), our limiter runs at `--rate` (free) and, with
`--paid-rate`, bulk rows go out as paid broadcasts (`bot.delivery.paid_broadcast`) under a cap of
`--paid-stars` a day; the figures then include the wave's rate (successful sends a second, first to last,
as the emulator saw them), its share of the configured rate, 429s, paid sends and duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "777000:BenchTokenBenchTokenBenchToken00"
FIRST_UID = 10_000_001
NOW = datetime(2026, 5, 17, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội; the period is due 19/05 17:00 UTC
OPENS = datetime(2026, 4, 30, 17, 0, tzinfo=UTC)
DUE = datetime(2026, 5, 19, 17, 0, tzinfo=UTC)
JOINED = datetime(2026, 1, 1, tzinfo=UTC)
TELEGRAM_RATE = 30  # messages per second, Telegram's global limit for a bot


def _chunks(rows: list[Any], size: int = 5000) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def seed(url: str, heads: int, communes: int) -> dict[str, float]:
    """Migrate and fill the database (runs in a child process); returns timings."""
    from sqlalchemy import insert

    from bot.calendar.reminder_rules import DEFAULT_RULES
    from bot.forms.loader import form_to_dict, load_form_file
    from bot.services.forms import checksum
    from storage.db import make_engine, upgrade
    from storage.models import Commune, CommuneForm, FormVersion, Membership, Period, Person, Role, Village

    started = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    loaded = load_form_file(ROOT / "deploy" / "forms" / "bao-cao-6-thang.yaml")
    form = loaded.forms[0]
    definition = json.loads(json.dumps(form_to_dict(form), ensure_ascii=False, default=str))
    per_commune = -(-heads // communes)
    with engine.begin() as conn:
        conn.execute(
            insert(FormVersion),
            [
                {
                    "form_id": form.id,
                    "version": form.version,
                    "title": form.title,
                    "kind": form.kind,
                    "definition": definition,
                    "checksum": checksum(definition),
                    "loaded_at": JOINED,
                }
            ],
        )
        conn.execute(
            insert(Commune),
            [
                {
                    "code": f"xa-{c:05d}",
                    "name": f"Xã Thử {c}",
                    "province": "Tỉnh Thử",
                    "active": True,
                    "created_at": JOINED,
                    "updated_at": JOINED,
                }
                for c in range(communes)
            ],
        )
        commune_ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM commune ORDER BY id")]
        conn.execute(
            insert(CommuneForm),
            [
                {
                    "commune_id": cid,
                    "form_id": form.id,
                    "position": 0,
                    "active": True,
                    "reminders": DEFAULT_RULES.to_json(),
                }
                for cid in commune_ids
            ],
        )
        conn.execute(
            insert(Period),
            [
                {
                    "commune_id": cid,
                    "form_id": form.id,
                    "code": "2026-6T",
                    "label": "6 tháng đầu năm 2026",
                    "opens_at": OPENS,
                    "due_at": DUE,
                    "closes_at": DUE + timedelta(days=30),
                    "active": True,
                    "created_at": JOINED,
                    "updated_at": JOINED,
                }
                for cid in commune_ids
            ],
        )
        villages = [
            {
                "commune_id": cid,
                "name": f"Thôn {v + 1}",
                "kind": "thon",
                "active": True,
                "created_at": JOINED,
                "updated_at": JOINED,
            }
            for cid in commune_ids
            for v in range(per_commune)
        ][:heads]
        for chunk in _chunks(villages):
            conn.execute(insert(Village), chunk)
        village_rows = list(conn.exec_driver_sql("SELECT id, commune_id FROM village ORDER BY id"))
        people = [
            {
                "telegram_user_id": FIRST_UID + i,
                "chat_id": FIRST_UID + i,
                "full_name": f"Trưởng thôn {i}",
                "active": True,
                "created_at": JOINED,
                "updated_at": JOINED,
            }
            for i in range(heads)
        ]
        for chunk in _chunks(people):
            conn.execute(insert(Person), chunk)
        person_ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM person ORDER BY id")]
        memberships = [
            {
                "person_id": pid,
                "role": Role.VILLAGE_HEAD.value,
                "commune_id": commune_id,
                "village_id": village_id,
                "is_deputy": False,
                "created_at": JOINED,
            }
            for pid, (village_id, commune_id) in zip(person_ids, village_rows, strict=True)
        ]
        for chunk in _chunks(memberships):
            conn.execute(insert(Membership), chunk)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()  # statistics are transactional: without it they are rolled back with the connection
    engine.dispose()
    return {"seed_s": time.perf_counter() - started}


def serve_emulator(first: int, count: int, flood: bool = False) -> None:
    """Child process: the emulator with `count` started users (Telegram's flood limits on if `flood`, 30/s and
    1,000/s paid, nothing per chat); prints its url, runs until stdin closes, then prints its figures."""
    from collections import Counter

    from bot.emulator.limits import FloodLimits
    from bot.emulator.server import EmulatorServer

    server = EmulatorServer(token=TOKEN)
    for uid in range(first, first + count):
        server.add_user(uid, f"Trưởng thôn {uid}")
        server.send_text(uid, "/start")
    server.drop_pending_updates()
    if flood:
        server.set_flood_control(FloodLimits(per_chat_per_second=None, per_group_per_minute=None))
    server.start_in_thread()
    cpu = time.process_time()  # from here on: serving the wave (and waiting for it)
    print(server.url, flush=True)
    sys.stdin.read()
    cpu = time.process_time() - cpu
    stats = server.stats()
    sends = [r for r in server.requests if r.method == "sendMessage"]
    ok = [r for r in sends if r.status == 200]
    times = sorted(r.time for r in ok)
    per_chat = Counter(int(r.params["chat_id"]) for r in ok)
    figures = {
        "send_ok": len(ok),
        "requests": stats["requests"],
        "send_429": sum(1 for r in sends if r.status == 429),
        "paid_sends": server.counters["paid_broadcast"],
        "stars": server.counters["paid_broadcast"] / 10,
        "duplicates": sum(1 for n in per_chat.values() if n > 1),
        "wave_rate": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
        "cpu_s": cpu,
    }
    print(json.dumps(figures), flush=True)
    server.stop_thread()


@dataclass
class Emulator:
    """The emulator child process."""

    proc: subprocess.Popen[str]
    url: str

    @classmethod
    def start(cls, count: int, *, flood: bool = False) -> Emulator:
        """Start it with `count` users (flood limits on if `flood`) and wait for its url."""
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-emulator", str(FIRST_UID), str(count), str(int(flood))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit(f"emulator did not start: {url!r}")
        return cls(proc, url)

    def stop(self) -> dict[str, Any]:
        """Stop it; returns its count of successful sendMessage requests."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        line = self.proc.stdout.readline()
        self.proc.wait(60)
        return json.loads(line) if line.strip() else {}


def maxrss_mb() -> float:
    """This process's peak resident set size so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    url: str,
    heads: int,
    *,
    plan_only: bool,
    render_kind: str,
    concurrency: int,
    rate: int | None = None,
    paid_rate: int | None = None,
    paid_stars: int = 0,
    http_client: str = "aiohttp",
) -> dict[str, Any]:
    """Plan (twice: new rows, then the idempotent re-plan every tick does) and dispatch the wave (limits off,
    or our limiter at `rate` and the emulator's on; with `paid_rate`, as paid broadcasts)."""
    from sqlalchemy import func, select
    from telegram import Bot
    from telegram.constants import ParseMode
    from telegram.ext import Defaults, ExtBot
    from telegram.request import BaseRequest, HTTPXRequest

    from bot.delivery.dispatcher import dispatch_due, plan_now
    from bot.delivery.ratelimit import RateLimiter, SendLimits
    from bot.reminders.content import render_outbox
    from bot.services.reminders import plan
    from storage.db import make_engine
    from storage.models import Outbox

    out: dict[str, Any] = {"rss_start_mb": maxrss_mb()}
    engine = make_engine(url)
    for label in ("plan", "replan"):
        cpu, wall = time.process_time(), time.perf_counter()
        report = plan_now(engine, NOW, plan)
        out[f"{label}_wall_s"] = time.perf_counter() - wall
        out[f"{label}_cpu_s"] = time.process_time() - cpu
        out[f"{label}_counts"] = report.counts
    out["plan_ms_per_1000"] = out["plan_wall_s"] * 1000 / heads * 1000
    out["replan_ms_per_1000"] = out["replan_wall_s"] * 1000 / heads * 1000
    out["rss_after_plan_mb"] = maxrss_mb()
    with engine.connect() as conn:
        out["outbox_rows"] = conn.execute(select(func.count()).select_from(Outbox)).scalar_one()
    if plan_only:
        engine.dispose()
        return out

    limited = rate is not None or paid_rate is not None
    emulator = Emulator.start(heads, flood=limited)
    render = render_outbox
    if render_kind == "simple":
        from bot.reminders.content import Outgoing

        def render(session, row, now):  # type: ignore[no-untyped-def]
            return Outgoing("⏰ <b>Nhắc báo cáo</b>", ((("Làm báo cáo", f"rp:{row.period_id}"),),))

    async def run() -> Any:
        from zoneinfo import ZoneInfo

        from bot.delivery.paid_broadcast import PAID_BATCH, PaidBroadcast

        request: BaseRequest
        if (
            http_client == "aiohttp"
        ):  # what the running bot's reminder dispatcher uses (bot.app._reminder_bot)
            from bot.telegram_request import AiohttpRequest

            request = AiohttpRequest(concurrency + 4, read_timeout=30, write_timeout=30)
        else:
            request = HTTPXRequest(connection_pool_size=concurrency + 4, read_timeout=30, write_timeout=30)
        limits = SendLimits(rate, None, None) if limited else SendLimits(None, None, None)
        paid = None
        if paid_rate is not None:
            paid = PaidBroadcast(
                engine, rate=paid_rate, max_stars=paid_stars, timezone=ZoneInfo("Asia/Ho_Chi_Minh")
            )
        if http_client == "aiohttp":
            bot: Bot = ExtBot(
                TOKEN,
                base_url=f"{emulator.url}/bot",
                request=request,
                defaults=Defaults(parse_mode=ParseMode.HTML),
            )
        else:
            bot = Bot(TOKEN, base_url=f"{emulator.url}/bot", request=request)
        async with bot:
            return await dispatch_due(
                engine,
                bot,
                NOW,
                render=render,
                limiter=RateLimiter(limits),
                worker_id="bench",
                concurrency=concurrency,
                batch=PAID_BATCH if paid is not None else 30,
                paid=paid,
            )

    try:
        cpu, wall = time.process_time(), time.perf_counter()
        sent = asyncio.run(run())
        out["dispatch_wall_s"] = time.perf_counter() - wall
        out["dispatch_cpu_s"] = time.process_time() - cpu
    finally:
        emu = emulator.stop()
        engine.dispose()
    out["emulator_cpu_s"] = emu.get("cpu_s", float("nan"))
    out["sent"] = sent.sent
    out["emulator_send_ok"] = emu.get("send_ok")
    if limited:
        configured = paid_rate if paid_rate is not None else rate
        out["limits"] = {"rate": rate, "paid_rate": paid_rate, "paid_stars": paid_stars}
        out["wave_rate"] = round(emu["wave_rate"], 2)
        out["wave_rate_share"] = round(emu["wave_rate"] / configured, 3) if configured else None
        for key in ("send_429", "paid_sends", "stars", "duplicates"):
            out[key] = emu[key]
        out["flood_waits"] = sent.flood_waits
    out["other_outcomes"] = {o: sent.count(o) for o in ("failed", "obsolete", "retry", "lost")}
    out["dispatch_cpu_ms_per_msg"] = out["dispatch_cpu_s"] * 1000 / max(1, sent.sent)
    out["emulator_cpu_ms_per_msg"] = out["emulator_cpu_s"] * 1000 / max(1, sent.sent)
    out["dispatch_wall_ms_per_msg"] = out["dispatch_wall_s"] * 1000 / max(1, sent.sent)
    out["throughput_msg_s"] = sent.sent / out["dispatch_wall_s"]
    windows = [w * 1000 for w in sent.commit_windows]
    out["commit_window_ms"] = {
        "p50": percentile(windows, 0.5),
        "p99": percentile(windows, 0.99),
        "max": max(windows, default=float("nan")),
        "mean": statistics.fmean(windows) if windows else float("nan"),
    }
    out["rss_after_dispatch_mb"] = maxrss_mb()
    out["wave_at_30_per_s_min"] = sent.sent / TELEGRAM_RATE / 60
    return out


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def _pg_database(pg_url: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from bot.config import settings_from

    base = settings_from({"DATABASE_URL": pg_url}).database_url
    name = f"baocao_bench_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return make_url(base).set(database=name).render_as_string(hide_password=False), drop


def main() -> int:
    """Parse arguments, seed, measure, print JSON."""
    if len(sys.argv) == 5 and sys.argv[1] == "--serve-emulator":
        serve_emulator(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1")
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", type=int, default=100_000)
    parser.add_argument("--communes", type=int, default=0, help="default: one per 100 heads")
    parser.add_argument("--pg-url", help="PostgreSQL server to create a throw-away database on")
    parser.add_argument("--plan-only", action="store_true")
    parser.add_argument("--render", choices=("real", "simple"), default="real")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--http-client",
        choices=("httpx", "aiohttp"),
        default="aiohttp",
        help="the Bot API client: the running bot's (an ExtBot on aiohttp, the default), or httpx and a plain Bot "
        "(what sessions 1-8 measured)",
    )
    parser.add_argument("--rate", type=int, help="limits on: our free rate (the emulator enforces 30/s)")
    parser.add_argument("--paid-rate", type=int, help="limits on, bulk rows as paid broadcasts at this rate")
    parser.add_argument(
        "--paid-stars", type=int, default=100_000, help="the day's cap in Stars (--paid-rate)"
    )
    args = parser.parse_args()
    communes = args.communes or max(1, args.heads // 100)

    drop = None
    tmp = tempfile.TemporaryDirectory(prefix="baocao-bench-")
    if args.pg_url:
        url, drop = _pg_database(args.pg_url)
    else:
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    try:
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as pool:
            seeded = pool.apply(seed, (url, args.heads, communes))
        result = {
            "machine": machine(),
            "backend": "postgresql" if args.pg_url else "sqlite",
            "heads": args.heads,
            "communes": communes,
            "render": args.render,
            "concurrency": args.concurrency,
            "http_client": args.http_client,
            **seeded,
            **measure(
                url,
                args.heads,
                plan_only=args.plan_only,
                render_kind=args.render,
                concurrency=args.concurrency,
                rate=args.rate if args.rate is not None or args.paid_rate is None else TELEGRAM_RATE,
                paid_rate=args.paid_rate,
                paid_stars=args.paid_stars,
                http_client=args.http_client,
            ),
        }
    finally:
        if drop is not None:
            drop()
        tmp.cleanup()
    print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
