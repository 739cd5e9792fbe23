"""Benchmark the memory of an idle bot process (`baocao run`, or `serve`) with 100,000 registered people.

A throw-away database (a temporary SQLite file, or a PostgreSQL database created next to --pg-url and
dropped at the end) is migrated and filled with bulk inserts (executemany): --people village heads,
one per village, in communes of 100 villages, each commune using the shipped semiannual form with
one period that opens in two months (so the reminder planner runs on every tick but has nothing to
send: the process stays idle). Then the real bot (`baocao run`) starts against the Bot API emulator
(in a thread of this process) with BAOCAO_TICK_SECONDS=--tick, and after start-up and --ticks
scheduler ticks its VmRSS and VmHWM (peak) are read from /proc. `--tracemalloc` runs the same
command inside a wrapper that starts tracemalloc first (1 frame) and, when the wait is over, prints
the top allocation sites by package and by line (tracemalloc's own overhead inflates that run's RSS).

    .venv/bin/python bench/idle_memory.py                          # SQLite and PostgreSQL
    .venv/bin/python bench/idle_memory.py --backend sqlite --people 1000 --tracemalloc
    .venv/bin/python bench/idle_memory.py --command serve      # webhook mode: ready when /healthz answers
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "777001:IdleTokenIdleTokenIdleTokenIdle00"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
FIRST_UID = 30_000_001
BASELINE_MIB = 150


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@contextlib.contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    """A migrated, empty throw-away database URL (removed afterwards)."""
    from throwaway_db import database as throwaway

    with throwaway(backend, pg_url, "idle") as url:
        yield url


def seed(url: str, people: int, per_commune: int = 100) -> dict[str, Any]:
    """Communes, villages, one head (person + membership) per village, the form and a future period."""
    from sqlalchemy import insert

    from bot.calendar.reminder_rules import DEFAULT_RULES
    from bot.forms.loader import form_to_dict, load_form_file
    from bot.services.forms import checksum
    from storage.db import make_engine
    from storage.models import Commune, CommuneForm, FormVersion, Membership, Period, Person, Role, Village

    started = time.perf_counter()
    now = datetime.now(UTC)
    joined = now - timedelta(days=200)
    opens = now + timedelta(days=60)
    engine = make_engine(url)
    form = load_form_file(ROOT / "deploy" / "forms" / "bao-cao-6-thang.yaml").forms[0]
    definition = json.loads(json.dumps(form_to_dict(form), ensure_ascii=False, default=str))
    communes = -(-people // per_commune)
    stamp = {"created_at": joined, "updated_at": joined}
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
                    "loaded_at": joined,
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
                    **stamp,
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
                    "code": "2027-6T",
                    "label": "6 tháng đầu năm 2027",
                    "opens_at": opens,
                    "due_at": opens + timedelta(days=19),
                    "closes_at": opens + timedelta(days=49),
                    "active": True,
                    **stamp,
                }
                for cid in commune_ids
            ],
        )
        villages = [
            {"commune_id": cid, "name": f"Thôn {v + 1}", "kind": "thon", "active": True, **stamp}
            for cid in commune_ids
            for v in range(per_commune)
        ][:people]
        for chunk in _chunks(villages):
            conn.execute(insert(Village), chunk)
        village_rows = list(conn.exec_driver_sql("SELECT id, commune_id FROM village ORDER BY id"))
        persons = [
            {
                "telegram_user_id": FIRST_UID + i,
                "chat_id": FIRST_UID + i,
                "full_name": f"Trưởng thôn {i}",
                "active": True,
                **stamp,
            }
            for i in range(people)
        ]
        for chunk in _chunks(persons):
            conn.execute(insert(Person), chunk)
        person_ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM person ORDER BY id")]
        memberships = [
            {
                "person_id": pid,
                "role": Role.VILLAGE_HEAD.value,
                "commune_id": commune_id,
                "village_id": village_id,
                "is_deputy": False,
                "created_at": joined,
            }
            for pid, (village_id, commune_id) in zip(person_ids, village_rows, strict=True)
        ]
        for chunk in _chunks(memberships):
            conn.execute(insert(Membership), chunk)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        counts = {
            table: conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
            for table in ("commune", "village", "person", "membership", "period")
        }
    engine.dispose()
    return {"seed_s": time.perf_counter() - started, "rows": counts}


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS), RssAnon and RssFile of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(line.split()[1])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tracemalloc_child(top: int) -> None:
    """`baocao run` in this process with tracemalloc on; on SIGUSR1, write the top allocation sites."""
    import signal
    import tracemalloc

    tracemalloc.start(1)

    def report(*_: Any) -> None:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib*"))
        )
        current, peak = tracemalloc.get_traced_memory()
        lines = [f"tracemalloc: current {current / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB"]
        by_package: dict[str, int] = {}
        for stat in snapshot.statistics("filename"):
            name = stat.traceback[0].filename
            key = name.split("site-packages/", 1)[1].split("/", 1)[0] if "site-packages/" in name else name
            key = "stdlib" if "/lib/python3" in key and "site-packages" not in name else key
            key = "bot" if "/work/" in key and "/bot/" in key else key
            by_package[key] = by_package.get(key, 0) + stat.size
        lines.append("by package:")
        for key, size in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"  {size / 2**20:7.2f} MiB  {key}")
        lines.append("top lines:")
        for stat in snapshot.statistics("lineno")[:top]:
            frame = stat.traceback[0]
            lines.append(
                f"  {stat.size / 2**20:7.2f} MiB {stat.count:8d} blocks  {frame.filename}:{frame.lineno}"
            )
        Path(os.environ["IDLE_TRACEMALLOC_OUT"]).write_text("\n".join(lines) + "\n", encoding="utf-8")

    signal.signal(signal.SIGUSR1, report)
    from bot.cli import main as cli_main

    raise SystemExit(cli_main([os.environ.get("IDLE_COMMAND", "run")]))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def measure(
    url: str, tick: float, ticks: int, use_tracemalloc: bool, command_name: str = "run"
) -> dict[str, Any]:
    """Start `baocao run` (or `serve`) against the emulator, let it tick, read its memory."""
    from bot.emulator.server import EmulatorServer

    server = EmulatorServer(token=TOKEN, bot_username="baocao_idle_bot")
    server.start_in_thread()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BAOCAO_", "DATABASE_URL"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=server.url,
        DATABASE_URL=url,
        BAOCAO_TICK_SECONDS=str(tick),
        PYTHONUNBUFFERED="1",
        IDLE_COMMAND=command_name,
    )
    health = ""
    if command_name == "serve":  # webhook mode: no polling; started when /healthz answers
        port = _free_port()
        env.update(
            BAOCAO_LISTEN=f"127.0.0.1:{port}",
            BAOCAO_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
            BAOCAO_WEBHOOK_SECRET=secrets.token_urlsafe(24),
        )
        health = f"http://127.0.0.1:{port}/healthz"
    wait = tick * ticks + 2
    with tempfile.TemporaryDirectory(prefix="baocao-idle-") as tmp:
        if use_tracemalloc:
            env["IDLE_TRACEMALLOC_OUT"] = str(Path(tmp) / "tracemalloc.txt")
            command = [sys.executable, __file__, "--tracemalloc-child"]
        else:
            command = [str(Path(sys.executable).with_name("baocao")), command_name]
        log_path = Path(tmp) / "bot.log"
        started = time.perf_counter()
        with log_path.open("wb") as log:
            bot = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            if health:
                deadline = time.monotonic() + 600
                while bot.poll() is None and not _answers(health) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if bot.poll() is not None or not _answers(health):
                    raise SystemExit(f"baocao serve did not come up:\n{log_path.read_text()}")
            else:
                server.wait_for_sync(lambda: server.requests_for("getUpdates") or bot.poll() is not None, 600)
                if bot.poll() is not None or not server.requests_for("getUpdates"):
                    raise SystemExit(f"the bot did not start polling:\n{log_path.read_text()}")
            startup_s = time.perf_counter() - started
            after_start, cpu_start = status_kib(bot.pid), cpu_seconds(bot.pid)
            time.sleep(wait)
            idle, cpu_idle = status_kib(bot.pid), cpu_seconds(bot.pid) - cpu_start
            if use_tracemalloc:
                bot.send_signal(signal.SIGUSR1)
                for _ in range(600):
                    if Path(env["IDLE_TRACEMALLOC_OUT"]).exists():
                        break
                    time.sleep(0.1)
                time.sleep(0.5)
        finally:
            bot.terminate()
            bot.wait(60)
            server.stop_thread()
        text = log_path.read_text(errors="replace")
        tracemalloc_text = (Path(tmp) / "tracemalloc.txt").read_text() if use_tracemalloc else None
    result: dict[str, Any] = {
        "startup_s": startup_s,
        "rss_after_start_mib": after_start["VmRSS"] / 1024,
        "rss_idle_mib": idle["VmRSS"] / 1024,
        "peak_rss_mib": idle["VmHWM"] / 1024,
        "anon_mib": idle["RssAnon"] / 1024,
        "file_mib": idle["RssFile"] / 1024,
        "cpu_s_while_idle": cpu_idle,  # the planner's ticks (nothing due) and long polling
        "ticks_waited": ticks,
        "tick_s": tick,
        "log_lines": len(text.splitlines()),
        "log_errors": sum("ERROR" in line or "Traceback" in line for line in text.splitlines()),
    }
    if tracemalloc_text:
        result["tracemalloc"] = tracemalloc_text
    return result


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def main() -> int:
    """Parse arguments, seed, measure, print JSON."""
    if len(sys.argv) == 2 and sys.argv[1] == "--tracemalloc-child":
        tracemalloc_child(25)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--tick", type=float, default=5.0, help="BAOCAO_TICK_SECONDS for the bot")
    parser.add_argument("--ticks", type=int, default=6, help="scheduler ticks to wait after start-up")
    parser.add_argument("--tracemalloc", action="store_true", help="also print the top allocation sites")
    parser.add_argument(
        "--command", choices=("run", "serve"), default="run", help="long polling or webhook mode"
    )
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    result: dict[str, Any] = {"machine": machine(), "people": args.people, "command": args.command}
    for backend in backends:
        with database(backend, args.pg_url) as url:
            seeded = seed(url, args.people)
            measured = measure(url, args.tick, args.ticks, args.tracemalloc, args.command)
        trace = measured.pop("tracemalloc", None)
        if trace:
            print(f"===== {backend} =====\n{trace}")
        measured["under_target"] = measured["rss_idle_mib"] < BASELINE_MIB
        result[backend] = {**seeded, **measured}
        print(json.dumps({backend: result[backend]}, ensure_ascii=False), file=sys.stderr, flush=True)
    result["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
