"""Benchmark the exports (Excel by default; --format csv|docx): time and peak memory for one commune of
30 / 3,000 / 100,000 villages.

Uses the data generator of bench/summary.py (same form, ~90 % reporting, amendments, late reports,
drafts, bulk inserts) with one commune per case, on SQLite and PostgreSQL. Each measurement runs in a
fresh child process: wall time of `build_export(..., format)` (median of --repeat runs after one warm-up),
the process's peak RSS during those runs and its growth over the RSS after the warm-up (from
/proc/self/status), the Python peak (tracemalloc) of one more, untimed run, and the file size.

    .venv/bin/python bench/exports.py                        # both backends, every case
    .venv/bin/python bench/exports.py --backend sqlite --skip-country --repeat 3
    .venv/bin/python bench/exports.py --format docx             # the Word report; --format csv
    .venv/bin/python bench/exports.py --make-db /tmp/exports.db --skip-country   # for whole commands

`--make-db PATH` only writes the generated SQLite database to PATH (the 30- and 3,000-village communes are
xa-1 and xa-2 … see the printed lines) and prints the whole commands that gate 3 of issue 18 compares: the
export as `baocao export`, and the floor of its writer as `bench/export_floor.py` (bench/README.md, "Exports
at their writer's floor").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import summary as data  # noqa: E402  (bench/summary.py: the shared generator)

CASES = {
    "30": ("Tỉnh Ba Mươi", 1, 30),
    "3000": ("Tỉnh Ba Nghìn", 1, 3_000),
    "country": ("Cả Nước", 1, 100_000),  # "country": skipped with --skip-country, as in summary.py
}


def _rss_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in KiB.

    Read from /proc rather than getrusage: ru_maxrss survives exec, so a spawned child would report the
    parent's peak (the data generator's) instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux ≥ 4.0), so VmHWM covers what follows."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _measure(url: str, anchor: dict[str, Any], fmt: str, repeat: int, queue: Any) -> None:
    """In a fresh process: warm up once, then time `repeat` exports; report time, memory and size."""
    import bot.exports
    from bot.exports import build_export
    from bot.services.forms import get_form
    from storage.db import make_engine, session_scope
    from storage.models import Commune, Period

    # measure what the Word report's village limit protects against (the bot refuses past 5,000)
    bot.exports.WORD_MAX_VILLAGES = 10**9
    engine = make_engine(url)

    def run() -> int:
        with session_scope(engine) as s:
            period = s.get(Period, anchor["period_id"])
            commune = s.get(Commune, anchor["commune_id"])
            form = get_form(s, period.form_id)
            return len(build_export(s, commune, form, period, fmt, data.NOW).content)

    size = run()
    base_rss = _rss_kib("VmRSS")
    _reset_peak()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        size = run()
        times.append(time.perf_counter() - started)
    rss = _rss_kib("VmHWM")
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    engine.dispose()
    queue.put(
        {
            "median_s": round(statistics.median(times), 2),
            "min_s": round(min(times), 2),
            "py_peak_mib": round(peak / 2**20, 1),
            "rss_growth_mib": round((rss - base_rss) / 1024, 1),
            "peak_rss_mib": round(rss / 1024, 1),
            "base_rss_mib": round(base_rss / 1024, 1),
            "file_mib": round(size / 2**20, 2),
        }
    )


def measure(url: str, anchor: dict[str, Any], fmt: str, repeat: int) -> dict[str, Any]:
    """Run one measurement in a spawned child process (clean memory figures)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(url, anchor, fmt, repeat, queue))
    proc.start()
    result = queue.get(timeout=7200)
    proc.join()
    return result


def make_db(path: Path, *, skip_country: bool) -> int:
    """Generate the cases into a SQLite file at `path` and print the whole commands to compare."""
    if path.exists():
        path.unlink()
    info = data.generate(f"sqlite:///{path.resolve()}", skip_country=skip_country)
    print(f"{path}: {info['villages']:,} villages, {info['submissions']:,} submissions")
    env = f"DATABASE_URL=sqlite:///{path.resolve()} TELEGRAM_BOT_TOKEN=123456789:{'A' * 35}"
    for case, anchor in info["anchors"].items():
        commune = f"xa-{anchor['commune_id']}"
        print(f"  {CASES[case][2]:>7,} villages: --commune {commune} --period 2026-6T")
    big = f"xa-{info['anchors']['3000']['commune_id']}"
    print("Whole commands (run each alternately with the other, e.g. under /usr/bin/time -v):")
    for fmt in ("xlsx", "csv"):
        print(
            f"  {env} .venv/bin/baocao export --commune {big} --period 2026-6T --format {fmt} -o /tmp/ours.{fmt}"
        )
        print(f"  .venv/bin/python bench/export_floor.py --format {fmt} -o /tmp/floor.{fmt}")
        print(
            f"  .venv/bin/python bench/export_floor.py --format {fmt} --with-bot-imports -o /tmp/floor.{fmt}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Generate, measure, print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", choices=["xlsx", "csv", "docx"], default="xlsx")
    parser.add_argument("--skip-country", action="store_true", help="leave out the 100,000-village commune")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--make-db", metavar="PATH", help="write the generated SQLite database here and stop")
    args = parser.parse_args(argv)
    data.PROVINCES = CASES  # one commune per case instead of the summary's provinces
    if args.make_db:
        return make_db(Path(args.make_db), skip_country=args.skip_country)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}",
        "results": [],
    }
    for backend in backends:
        runner = data._sqlite_run if backend == "sqlite" else data._postgres_run
        for url in runner(args):
            info = data.generate(url, skip_country=args.skip_country)
            print(
                f"{backend}: {info['villages']:,} villages, {info['submissions']:,} submissions", flush=True
            )
            for case, anchor in info["anchors"].items():
                villages = CASES[case][2]
                result = measure(url, anchor, args.format, args.repeat)
                report["results"].append({"backend": backend, "villages": villages, **result})
                print(
                    f"  {villages:>7,} villages  {args.format}  median {result['median_s']:>7} s  "
                    f"min {result['min_s']:>7} s  py peak {result['py_peak_mib']:>6} MiB  "
                    f"RSS peak {result['peak_rss_mib']:>6} MiB (+{result['rss_growth_mib']} over {result['base_rss_mib']})  "
                    f"file {result['file_mib']} MiB",
                    flush=True,
                )
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
