"""Benchmark /summary: computation time and peak memory on SQLite and PostgreSQL (on demand, not in CI).

One throw-away database per backend (a temporary SQLite file; a PostgreSQL database created next to the
one in --pg-url and dropped at the end) holds, with the shipped semiannual form (25 questions):

* "commune"  — one commune of 30 villages (province "Tỉnh Xã");
* "province" — 150 communes × 20 villages = 3,000 villages (province "Tỉnh Vừa");
* "country"  — 5,000 communes × 20 villages = 100,000 villages, all put in one province ("Cả Nước") so
  a single roll-up covers them;

each with two periods (2025-6T, 2026-6T), ~90 % of villages reporting in each, ~5 % amended, ~12 % late,
some drafts. Rows are written with bulk inserts (SQLAlchemy Core executemany on SQLite, COPY on
PostgreSQL). Each measurement runs in a fresh child process: wall time (median of --repeat runs, after
one warm-up), the CPU time of the measuring process (median; on SQLite that is nearly all the work and
it barely moves when other jobs share the machine, while PostgreSQL's work is in the server), the
largest growth of the process's RSS during a timed run (sampled every 2 ms, over its value when the
run started) and the Python peak (tracemalloc) of one more, untimed run.

    .venv/bin/python bench/summary.py                       # both backends, every case
    .venv/bin/python bench/summary.py --backend sqlite --skip-country
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 5, 25, 3, 0, tzinfo=UTC)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERIODS = [
    (
        "2025-6T",
        "6 tháng đầu năm 2025",
        datetime(2025, 5, 1, tzinfo=UTC),
        datetime(2025, 5, 19, 17, tzinfo=UTC),
    ),
    (
        "2026-6T",
        "6 tháng đầu năm 2026",
        datetime(2026, 5, 1, tzinfo=UTC),
        datetime(2026, 5, 19, 17, tzinfo=UTC),
    ),
]
PROVINCES = {
    "commune": ("Tỉnh Xã", 1, 30),
    "province": ("Tỉnh Vừa", 150, 20),
    "country": ("Cả Nước", 5000, 20),
}
WORDS = ["đường", "xa", "thiếu", "kinh phí", "người", "camera", "đèn", "tổ tự quản", "họp", "dân"]


# ---------------------------------------------------------------------------------------------- data


def _answers(rng: random.Random, form: Any) -> dict[str, Any]:
    from bot.forms.model import QType

    out: dict[str, Any] = {}
    for q in form.questions:
        if q.type == QType.NOTE:
            continue
        if rng.random() < 0.05:
            out[q.id] = None
        elif q.type == QType.INTEGER:
            out[q.id] = rng.randint(int(q.min or 0), min(int(q.max or 500), 500))
        elif q.type == QType.YES_NO:
            out[q.id] = rng.random() < 0.6
        elif q.type == QType.SINGLE_CHOICE:
            out[q.id] = rng.choice(q.choices).value
        elif q.type == QType.DATE:
            out[q.id] = f"2026-0{rng.randint(1, 5)}-{rng.randint(10, 28)}"
        elif q.type == QType.REPEAT:
            out[q.id] = [
                {"ngay": "2026-03-02", "loai": "trom_cap", "mo_ta": "mất trộm xe máy"}
            ] * rng.randint(0, 2)
        elif q.type == QType.LONG_TEXT:
            out[q.id] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 60))) or None
    return out


def _chunks(rows: list[Any], size: int = 5000) -> Iterator[list[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def generate(url: str, seed: int = 1, *, skip_country: bool = False) -> dict[str, Any]:
    """Migrate a fresh database and fill it; returns the anchors of each case."""
    from sqlalchemy import text

    from bot.forms import engine as form_engine
    from bot.forms.loader import load_form_files
    from bot.services.forms import store_forms
    from storage.db import make_engine, session_scope, upgrade
    from storage.models import Commune, CommuneForm, Draft, Period, Submission, Village

    engine = make_engine(url)
    upgrade(engine)
    (form,) = load_form_files([ROOT / "deploy" / "forms" / "bao-cao-6-thang.yaml"]).forms
    with session_scope(engine) as s:
        store_forms(s, [form], now=T0, actor="bench")
    rng = random.Random(seed)
    draft_state = form_engine.start(form, T0).state.to_json()
    communes, villages, links, periods, subs, drafts = [], [], [], [], [], []
    anchors: dict[str, Any] = {}
    ids = {"commune": 0, "village": 0, "period": 0, "submission": 0}
    for case, (province, n_communes, per_commune) in PROVINCES.items():
        if case == "country" and skip_country:
            continue
        for c in range(n_communes):
            ids["commune"] += 1
            cid = ids["commune"]
            communes.append(
                {
                    "id": cid,
                    "code": f"xa-{cid}",
                    "name": f"Xã {case} {c:04d}",
                    "province": province,
                    "active": True,
                    "created_at": T0,
                    "updated_at": T0,
                }
            )
            links.append({"commune_id": cid, "form_id": form.id, "position": 0, "active": True})
            pids = []
            for code, label, opens, due in PERIODS:
                ids["period"] += 1
                pids.append((ids["period"], due))
                periods.append(
                    {
                        "id": ids["period"],
                        "commune_id": cid,
                        "form_id": form.id,
                        "code": code,
                        "label": label,
                        "opens_at": opens,
                        "due_at": due,
                        "closes_at": due + timedelta(days=30),
                        "active": True,
                        "created_at": T0,
                        "updated_at": T0,
                    }
                )
            if c == 0:
                anchors[case] = {"period_id": pids[-1][0], "province": province, "commune_id": cid}
            for v in range(per_commune):
                ids["village"] += 1
                vid = ids["village"]
                villages.append(
                    {
                        "id": vid,
                        "commune_id": cid,
                        "name": f"Thôn {v:02d} xã {cid}",
                        "kind": "thon",
                        "active": True,
                        "created_at": T0,
                        "updated_at": T0,
                    }
                )
                for pid, due in pids:
                    if rng.random() < 0.9:
                        late = rng.random() < 0.12
                        sent = (
                            due + timedelta(hours=rng.randint(1, 200))
                            if late
                            else due - timedelta(hours=rng.randint(1, 300))
                        )
                        versions = 2 if rng.random() < 0.05 else 1
                        for no in range(1, versions + 1):
                            ids["submission"] += 1
                            at = sent + timedelta(hours=3 * (no - 1))
                            subs.append(
                                {
                                    "id": ids["submission"],
                                    "village_id": vid,
                                    "form_id": form.id,
                                    "period_id": pid,
                                    "form_version": form.version,
                                    "version_no": no,
                                    "is_current": no == versions,
                                    "answers": _answers(rng, form),
                                    "sent_at": at,
                                    "received_at": at,
                                    "on_time": at < due,
                                    "receipt": f"BC-{ids['submission']:07d}",
                                }
                            )
                    elif pid == pids[-1][0] and rng.random() < 0.4:
                        drafts.append(
                            {
                                "village_id": vid,
                                "form_id": form.id,
                                "period_id": pid,
                                "form_version": form.version,
                                "state": draft_state,
                                "seen": {},
                                "created_at": T0,
                                "updated_at": T0,
                            }
                        )
    started = time.perf_counter()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                for table, rows in (("commune", communes), ("village", villages), ("period", periods)):
                    cols = list(rows[0])
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row([row[c] for c in cols])
                cols = list(subs[0])
                with cur.copy(f"COPY submission ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in subs:
                        copy.write_row(
                            [
                                json.dumps(row[c], ensure_ascii=False) if c == "answers" else row[c]
                                for c in cols
                            ]
                        )
            for table in ("commune", "village", "period", "submission"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
                )
        else:
            for model, rows in (
                (Commune, communes),
                (Village, villages),
                (Period, periods),
                (Submission, subs),
            ):
                for chunk in _chunks(rows):
                    conn.execute(model.__table__.insert(), chunk)  # type: ignore[attr-defined]
        for model, rows in ((CommuneForm, links), (Draft, drafts)):
            for chunk in _chunks(rows):
                conn.execute(model.__table__.insert(), chunk)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    load_seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "anchors": anchors,
        "villages": len(villages),
        "submissions": len(subs),
        "drafts": len(drafts),
        "load_seconds": round(load_seconds, 1),
    }


# ---------------------------------------------------------------------------------------------- measuring


def _rss() -> int:
    """The process's resident set size now, in bytes (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _RssSampler:
    """Samples RSS every 2 ms on a thread; `stop()` gives the peak growth over the value at start."""

    def __init__(self) -> None:
        self.base = self.peak = _rss()
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while self.running:
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, _rss())
        return self.peak - self.base


def _measure(url: str, case: str, anchor: dict[str, Any], what: str, repeat: int, queue: Any) -> None:
    """In a fresh process: warm up once, then time `repeat` runs; report time and memory."""
    from bot.services import summaries
    from bot.views.summary import render_summary_messages
    from storage.db import make_engine, session_scope
    from storage.models import Period

    engine = make_engine(url)

    def run() -> int:
        with session_scope(engine) as s:
            period = s.get(Period, anchor["period_id"])
            if what == "village_rows":
                return sum(
                    1 for _ in summaries.village_rows(s, summaries.province_scope(period, anchor["province"]))
                )
            scope = None if case == "commune" else anchor["province"]
            messages = render_summary_messages(s, period, scope, NOW)
            assert messages and all(len(t) <= 4096 for t, _ in messages)
            return len(messages)

    out = run()  # warm-up: connection, form parsing, compiled-statement caches
    times, cpu, growth = [], [], 0
    for _ in range(repeat):
        sampler = _RssSampler()
        started, started_cpu = time.perf_counter(), time.process_time()
        out = run()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        growth = max(growth, sampler.stop())
    tracemalloc.start()  # one more run, traced (tracing slows it down, so it is not timed)
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    engine.dispose()
    queue.put(
        {
            "median_ms": round(statistics.median(times) * 1000, 1),
            "min_ms": round(min(times) * 1000, 1),
            "cpu_ms": round(statistics.median(cpu) * 1000, 1),
            "py_peak_mib": round(peak / 2**20, 2),
            "rss_growth_mib": round(growth / 2**20, 1),
            "result": out,
        }
    )


def measure(url: str, case: str, anchor: dict[str, Any], what: str, repeat: int) -> dict[str, Any]:
    """Run one measurement in a spawned child process (clean memory figures)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(url, case, anchor, what, repeat, queue))
    proc.start()
    result = queue.get(timeout=3600)
    proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    """Generate, measure, print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-country", action="store_true", help="leave out the 100,000-village case")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}",
        "results": [],
    }
    from throwaway_db import database

    for backend in backends:
        with database(backend, args.pg_url, "summary") as url:  # migrated; generate's upgrade is then a no-op
            started = time.perf_counter()
            info = generate(url, skip_country=args.skip_country)
            print(
                f"{backend}: {info['villages']:,} villages, {info['submissions']:,} submissions, "
                f"{info['drafts']:,} drafts; bulk load {info['load_seconds']} s, "
                f"generation total {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            cases = [("commune", "summary"), ("province", "summary"), ("province", "village_rows")]
            if not args.skip_country:
                cases += [("country", "summary"), ("country", "village_rows")]
            for case, what in cases:
                result = measure(url, case, info["anchors"][case], what, args.repeat)
                row = {"backend": backend, "case": case, "what": what, **result}
                report["results"].append(row)
                print(
                    f"  {case:9} {what:13} median {result['median_ms']:>9} ms  min {result['min_ms']:>9} ms  "
                    f"client CPU {result['cpu_ms']:>9} ms  "
                    f"py peak {result['py_peak_mib']:>7} MiB  RSS +{result['rss_growth_mib']:>6} MiB  "
                    f"({result['result']})",
                    flush=True,
                )
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
