"""A database for timing `baocao periods` and `baocao remind --dry-run` as whole processes (issue 18, gate 2).

`--make-db PATH` applies a setup file (default the shipped Hiệp Lực) to a fresh SQLite file, signs up a head
for every unit and, in the main form's 2026-6T period, leaves drafts part-answered in some units and reports
submitted (one late) in others, then prints the commands to compare with the floor
`python -c "import sqlalchemy, telegram"` (run them alternately, e.g. under /usr/bin/time -v).

    .venv/bin/python bench/cli_startup.py --make-db /tmp/startup-seeded.db
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SET_UP_AT = datetime(2026, 4, 20, 2, 0, tzinfo=UTC)
WORKED_AT = datetime(2026, 5, 16, 3, 0, tzinfo=UTC)  # 10:00 on 16/05 in Vietnam: 2026-6T is open
AT = "2026-05-17 08:00"  # the moment the commands are asked about (local time)
DRAFTS = 5  # units with a draft part-answered
SUBMITTED = 6  # units that submitted (the last one late)


def make_db(path: Path, setup_file: Path) -> int:
    """Fill a fresh SQLite file at `path` and print the commands to time."""
    from sqlmodel import select

    from bot.forms.inputs import Text
    from bot.services import reports
    from bot.services.accounts import TelegramUser, create_invite, redeem_invite
    from bot.services.forms import store_setup_forms
    from bot.services.setup import apply_setup
    from bot.setup_file import load_setup
    from storage.db import make_engine, session_scope, upgrade
    from storage.models import Period, Person, Submission, Village

    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    url = f"sqlite:///{path.resolve()}"
    engine = make_engine(url)
    upgrade(engine)
    loaded = load_setup(setup_file)
    assert loaded.ok, [str(e) for e in loaded.errors]
    with session_scope(engine) as s:
        apply_setup(s, loaded.setup, now=SET_UP_AT, actor="bench")
        store_setup_forms(s, loaded.setup, now=SET_UP_AT, actor="bench")
    commune = loaded.setup.communes[0]
    with session_scope(engine) as s:
        villages = list(s.exec(select(Village).order_by(Village.id)))
        for n, village in enumerate(villages):
            issued = create_invite(
                s,
                role="village_head",
                now=SET_UP_AT,
                actor="bench",
                village=village.name,
                commune=commune.code,
            )
            redeem_invite(s, issued.code, TelegramUser(5000 + n, 5000 + n, f"Người {n}"), now=SET_UP_AT)
    with session_scope(engine) as s:
        period = s.exec(select(Period).where(Period.code == "2026-6T").order_by(Period.id)).first()
        assert period is not None, "the setup file has no 2026-6T period"
        villages = list(s.exec(select(Village).order_by(Village.id)))
        for n, village in enumerate(villages[:DRAFTS]):
            person = s.exec(select(Person).where(Person.telegram_user_id == 5000 + n)).one()
            outcome = reports.begin_periodic(s, person, village, period.id, WORKED_AT)
            for answer in ("3", "120")[: 1 + n % 2]:
                reports.feed(
                    s, person, {village.id}, outcome.draft.id, Text(answer), now=WORKED_AT, sent_at=WORKED_AT
                )
        for n, village in enumerate(villages[DRAFTS : DRAFTS + SUBMITTED]):
            late = n == SUBMITTED - 1
            at = period.due_at + timedelta(hours=2) if late else WORKED_AT
            s.add(
                Submission(
                    village_id=village.id,
                    form_id=period.form_id,
                    period_id=period.id,
                    form_version=1,
                    answers={"so_buoi_tuyen_truyen": n},
                    sent_at=at,
                    received_at=at,
                    on_time=not late,
                    receipt=f"BC-{n:06d}",
                )
            )
    engine.dispose()
    print(f"{path}: {len(villages)} units, {DRAFTS} drafts, {SUBMITTED} submissions (2026-6T)")
    env = f"DATABASE_URL={url} TELEGRAM_BOT_TOKEN=123456789:{'A' * 35}"
    floor = '.venv/bin/python -c "import sqlalchemy, telegram"'
    for argv in (f'periods --at "{AT}"', f'remind --dry-run --at "{AT}"'):
        print(f"  {env} .venv/bin/baocao {argv}    vs    {floor}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and make the database."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--make-db", metavar="PATH", required=True, help="the SQLite file to write")
    parser.add_argument("--setup", default=str(ROOT / "deploy" / "hiep-luc.yaml"), help="the setup file")
    args = parser.parse_args(argv)
    return make_db(Path(args.make_db), Path(args.setup))


if __name__ == "__main__":
    raise SystemExit(main())
