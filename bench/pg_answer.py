"""An answer's reads on PostgreSQL, alone: the claim and the actor-and-draft read, with that read sent ahead
behind the claim (storage/begin_together READ_AHEAD, as the bot does) or sent on its own after it (as before
session 12). On demand, not in CI.

One throw-away database next to --pg-url (bench/throwaway_db.py), one engine (storage.db.make_engine), one thread:
each transaction records a new update id under the chat's lock, reads the actor with the draft locked and
commits. Rounds alternate the two ways; for each: wall time, this process's CPU and the server backend's CPU
(from /proc, the server on this machine) per transaction, medians over the rounds. The server's CPU is what the
bot's turns share the two cores with; the wall time is mostly round trips.

    .venv/bin/python bench/pg_answer.py
    .venv/bin/python bench/pg_answer.py --rounds 7 --transactions 3000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 5, 15, 2, 0, tzinfo=UTC)
LOCK = (0x62630001, 7)
USER = 123_456  # nobody: the read's plan and round trips are the same for an empty answer


def _server_cpu(pid: int) -> float:
    """User + system CPU seconds of the server process `pid` (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(engine: Any, ahead: bool, first_id: int, count: int) -> dict[str, float]:
    """`count` transactions one way; per-transaction wall, client CPU and server CPU in milliseconds."""
    from bot.services import reports
    from storage.db import session_scope
    from storage.processed_updates import first_delivery

    def one(update_id: int) -> int:
        read = reports.actor_and_draft_read(USER, None)
        with session_scope(engine) as session:
            extra = {"read_ahead": read} if ahead else {}
            assert first_delivery(session, update_id, NOW, lock=LOCK, **extra) is True
            reports.load_actor_with_draft(session, USER, None)
            return session.connection().connection.dbapi_connection.info.backend_pid

    pid = one(first_id)  # one connection in a one-thread run: its backend is the one measured
    server, cpu, wall = _server_cpu(pid), time.process_time(), time.perf_counter()
    for update_id in range(first_id + 1, first_id + 1 + count):
        assert one(update_id) == pid
    wall, cpu, server = time.perf_counter() - wall, time.process_time() - cpu, _server_cpu(pid) - server
    return {
        "wall_ms": 1000 * wall / count,
        "client_cpu_ms": 1000 * cpu / count,
        "server_cpu_ms": 1000 * server / count,
    }


def main() -> int:
    """Create the database, alternate the two ways for --rounds rounds, print the medians as JSON."""
    from throwaway_db import database

    from storage.db import make_engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--transactions", type=int, default=2000, help="per way and round")
    args = parser.parse_args()

    runs: dict[str, list[dict[str, float]]] = {"read_alone": [], "read_ahead": []}
    with database("postgresql", args.pg_url, "answer") as url:
        engine = make_engine(url)
        next_id = 1
        for _ in range(args.rounds):
            for way in runs:
                runs[way].append(_run(engine, way == "read_ahead", next_id, args.transactions))
                next_id += args.transactions + 1
        engine.dispose()
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg": os.getloadavg(),
    }
    for way, rounds in runs.items():
        out[way] = {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}
        out[way]["rounds"] = [{key: round(value, 3) for key, value in r.items()} for r in rounds]
    for key in ("wall_ms", "client_cpu_ms", "server_cpu_ms"):
        out[f"ahead_over_alone_{key}"] = round(out["read_ahead"][key] / out["read_alone"][key], 3)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
