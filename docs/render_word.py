"""Render the commune's Word report to PNG pages, so a reader sees what the commune sends upward.

A throw-away SQLite database gets a setup file (Hiệp Lực's by default) and its shipped forms; every village but
two answers the 6-month form with seeded plausible answers (one late, one amended, one answering "ko" to every
free-text question; the previous period has answers too, for the comparisons). `build_export` writes the .docx
exactly as `/xuat` does; LibreOffice turns it into a PDF and `pdftoppm` into one PNG per page.

    .venv/bin/python docs/render_word.py                    # docs/word-report-1.png, -2.png … (+ the .docx/.pdf in a temp dir)
    .venv/bin/python docs/render_word.py --keep /tmp/out    # keep the .docx and .pdf there too

Needs `soffice` (Debian: libreoffice-writer-nogui) and `pdftoppm` (poppler-utils); the fonts are Times New Roman
or its metric twin Liberation Serif (fonts-liberation). It is a documentation tool, not part of the bot.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import Session, select  # noqa: E402

from bot.exports import build_export  # noqa: E402
from bot.forms.conditions import compile_condition  # noqa: E402
from bot.forms.model import Form, QType, Question  # noqa: E402
from bot.services.completeness import previous_period  # noqa: E402
from bot.services.forms import get_form, store_setup_forms  # noqa: E402
from bot.services.setup import apply_setup  # noqa: E402
from bot.setup_file import load_setup  # noqa: E402
from storage.db import make_engine, session_scope, upgrade  # noqa: E402
from storage.models import Commune, Period, Submission, Village  # noqa: E402

SETUP_NOW = datetime(2026, 5, 2, 2, 0, tzinfo=UTC)
EXPORT_NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
SAYINGS = [
    "Tổ chức họp thôn tuyên truyền phòng, chống ma túy và trộm cắp tài sản.",
    "Duy trì tổ tự quản an ninh trật tự, tuần tra ban đêm vào dịp lễ, Tết.",
    "Hòa giải thành công mâu thuẫn đất đai giữa hai hộ gia đình.",
    "Đề nghị xã hỗ trợ kinh phí lắp đặt camera tại đường liên thôn.",
    "Đề nghị khen thưởng tổ tự quản làm tốt công tác giữ gìn trật tự.",
    "Phối hợp Công an xã vận động người dân giao nộp vũ khí, vật liệu nổ.",
]
BARE_NO = "ko"


def answer(q: Question, rnd: random.Random, *, bare: bool) -> Any:
    """A plausible stored answer for `q` (free text is "ko" when `bare`)."""
    t = q.type
    if t == QType.INTEGER:
        low = int(q.min) if q.min is not None else 0
        high = int(q.max) if q.max is not None else 12
        return rnd.randint(low, max(low, min(high, 12)))
    if t == QType.DECIMAL:
        return str(Decimal(rnd.randint(0, 99)) / 10)
    if t == QType.YES_NO:
        return rnd.random() < 0.7
    if t == QType.SINGLE_CHOICE:
        return rnd.choice(q.choices).value
    if t == QType.MULTI_CHOICE:
        return [c.value for c in q.choices if rnd.random() < 0.4]
    if t == QType.DATE:
        return (date(2026, 1, 5) + timedelta(days=rnd.randint(0, 120))).isoformat()
    if t in (QType.TEXT, QType.LONG_TEXT):
        return BARE_NO if bare else rnd.choice(SAYINGS)
    if t == QType.REPEAT:
        return [
            {s.id: answer(s, rnd, bare=bare) for s in q.questions if s.type not in (QType.NOTE, QType.PHOTO)}
            for _ in range(rnd.randint(0, 2))
        ]
    return None


def answers(form: Form, rnd: random.Random, *, bare: bool = False) -> dict[str, Any]:
    """Answers to the form's questions that pass its checks, as the bot would have taken them (photos and
    locations left out: a report page shows none)."""
    checks = [compile_condition(c.condition) for c in form.checks]
    out: dict[str, Any] = {}
    for _ in range(200):
        out = {}
        for q in form.answerable:
            value = answer(q, rnd, bare=bare)
            if value is not None and (q.required or rnd.random() < 0.8):
                out[q.id] = value
        if all(c.evaluate(out) for c in checks):
            break
    return out


def submit(session: Session, village: Village, form: Form, period: Period, values: dict[str, Any],
           at: datetime, *, version: int = 1, current: bool = True) -> None:  # fmt: skip
    """One stored submission, as the bot stores a village head's report."""
    session.add(
        Submission(village_id=village.id, form_id=form.id, period_id=period.id, form_version=form.version,
                   version_no=version, is_current=current, answers=values, sent_at=at, received_at=at,
                   on_time=at < period.due_at, receipt=f"D{village.id}-{period.id}-{version}")
    )  # fmt: skip


def seed(session: Session, setup_path: Path, form_id: str, seed_no: int) -> tuple[Commune, Form, Period]:
    """The setup applied and the newest period of `form_id` that has a previous one, answered."""
    setup = load_setup(setup_path).setup
    apply_setup(session, setup, now=SETUP_NOW, actor="docs")
    store_setup_forms(session, setup, now=SETUP_NOW, actor="docs")
    form = get_form(session, form_id)
    if form is None:
        raise SystemExit(f"{setup_path} has no form '{form_id}'")
    rnd = random.Random(seed_no)
    commune = session.exec(select(Commune).order_by(Commune.id)).first()
    assert commune is not None
    periods = session.exec(
        select(Period)
        .where(Period.commune_id == commune.id, Period.form_id == form_id)
        .order_by(Period.due_at)
    ).all()
    chosen = [(p, previous_period(session, p)) for p in periods if p.due_at <= EXPORT_NOW]
    period, before = next(((p, b) for p, b in reversed(chosen) if b is not None), (periods[0], None))
    villages = list(
        session.exec(select(Village).where(Village.commune_id == commune.id).order_by(Village.id))
    )
    for n, village in enumerate(villages[:-2]):  # the last two never report
        at = period.due_at + timedelta(days=1) if n == 1 else period.opens_at + timedelta(days=2, hours=n)
        if n == 2:  # amended: the first version is kept, the second is current
            submit(session, village, form, period, answers(form, rnd), at, current=False)
            at += timedelta(days=1)
            submit(session, village, form, period, answers(form, rnd), at, version=2)
            continue
        submit(session, village, form, period, answers(form, rnd, bare=n == 0), at)
    if before is not None:
        for village in villages[:-3]:
            submit(session, village, form, before, answers(form, rnd), before.opens_at + timedelta(days=3))
    session.commit()
    return commune, form, period


def main(argv: list[str] | None = None) -> int:
    """Write the report and its PNG pages; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", type=Path, default=ROOT / "deploy" / "hiep-luc.yaml")
    parser.add_argument("--form", default="bao-cao-6-thang")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNG pages")
    parser.add_argument("--prefix", default="word-report")
    parser.add_argument("--pages", type=int, default=2, help="how many pages to keep as PNG")
    parser.add_argument("--dpi", type=int, default=80)
    parser.add_argument("--keep", type=Path, help="also keep the .docx and .pdf in this folder")
    args = parser.parse_args(argv)
    for tool in ("soffice", "pdftoppm"):
        if shutil.which(tool) is None:
            print(
                f"{tool} is not installed (Debian: libreoffice-writer-nogui, poppler-utils)", file=sys.stderr
            )
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        engine = make_engine(f"sqlite:///{work / 'render.sqlite3'}")
        upgrade(engine)
        with session_scope(engine) as session:
            commune, form, period = seed(session, args.setup, args.form, args.seed)
            export = build_export(session, commune, form, period, "docx", EXPORT_NOW)
        engine.dispose()
        docx_path = work / "report.docx"
        docx_path.write_bytes(export.content)
        profile = (work / "lo-profile").as_uri()
        subprocess.run(
            ["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
             "--outdir", str(work), str(docx_path)],
            check=True, capture_output=True, timeout=180,
        )  # fmt: skip
        pdf = work / "report.pdf"
        args.out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["pdftoppm", "-png", "-r", str(args.dpi), "-l", str(args.pages), str(pdf),
             str(args.out / args.prefix)],
            check=True, timeout=120,
        )  # fmt: skip
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(docx_path, args.keep / export.ascii_filename)
            shutil.copy(pdf, args.keep / Path(export.ascii_filename).with_suffix(".pdf").name)
    for png in sorted(args.out.glob(f"{args.prefix}-*.png")):
        print(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
