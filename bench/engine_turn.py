"""The pure part of a text answer: the form engine and the view, no database and no Telegram.

Loads the shipped `bao-cao-6-thang` form, answers up to question 6 ("Không" at the yes/no question 3), then times `engine.handle` on one
more "3" (and `view.render_events` on its events) many times with a fixed clock. Compare the median with
what `bench/turns.py` says the 2x target leaves for all of a turn's logic ("logic_budget_ms_at_2x").

    .venv/bin/python bench/engine_turn.py
    .venv/bin/python bench/engine_turn.py --repeat 20000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    """Time the engine alone, and the engine plus the view, for one text answer."""
    from bot.forms.engine import handle
    from bot.forms.inputs import Start, Text
    from bot.forms.loader import load_form_file
    from bot.views.form import render_events

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5000)
    args = parser.parse_args()
    loaded = load_form_file(ROOT / "deploy" / "forms" / "bao-cao-6-thang.yaml")
    if loaded.errors:
        raise SystemExit("\n".join(map(str, loaded.errors)))
    form = loaded.forms[0]
    now = datetime(2026, 5, 15, 2, 0, tzinfo=UTC)
    state = handle(form, None, Start(), now).state
    for answer in ("3", "3", "không", "3", "3"):  # question 3 is the yes/no opening an optional part
        state = handle(form, state, Text(answer), now).state
    engine_s: list[float] = []
    both_s: list[float] = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        step = handle(form, state, Text("3"), now)
        middle = time.perf_counter()
        render_events(form, step.state, step.events)
        ended = time.perf_counter()
        engine_s.append(middle - started)
        both_s.append(ended - started)
    result = {
        "repeat": args.repeat,
        "engine_median_ms": 1000 * statistics.median(engine_s),
        "engine_and_view_median_ms": 1000 * statistics.median(both_s),
        "engine_and_view_mean_ms": 1000 * statistics.fmean(both_s),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
