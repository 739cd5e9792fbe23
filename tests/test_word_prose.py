"""The Word report's body reads as a report: short indicator names in prose, nothing quoted from the questions,
no bare "ko" quoted as a proposal, an assessment drafted from the figures, and every phrase rewordable.

Every shipped form (6-month, yearly, incident) is filled for the Hiệp Lực villages with random answers, one
village answering "ko" to every free-text question; the document is opened again and read paragraph by paragraph.
"""

from __future__ import annotations

import io
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docx
import pytest
from sqlmodel import Session, select

from bot.exports import build_export
from bot.exports.prose import changes, is_nothing, lower_label, section_view
from bot.forms.model import Form
from bot.forms.types import type_of
from bot.services.completeness import previous_period
from bot.services.forms import get_form, store_setup_forms
from bot.services.setup import apply_setup
from bot.setup_file import load_setup
from storage.models import Commune, Period, Submission, Village
from tests.test_exports import random_answers

ROOT = Path(__file__).resolve().parent.parent
SETUP_NOW = datetime(2026, 5, 2, 2, 0, tzinfo=UTC)
EXPORT_NOW = datetime(2026, 12, 21, 3, 0, tzinfo=UTC)
BARE_NO = ["ko", "Không.", "không có", "Không có ạ", "k"]


# ---------------------------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    "text",
    ["ko", "Ko.", "không", "Không có", "không có gì ạ", "KHÔNG CÓ Ý KIẾN", "chưa có", "0", "-", " ", "k co"],
)
def test_a_bare_no_says_nothing(text: str) -> None:
    assert is_nothing(text)


@pytest.mark.parametrize(
    "text",
    ["Không có kinh phí cho tổ tự quản", "Đề nghị khen ông A", "có", "Chưa có kinh phí", "Không đủ camera"],
)
def test_a_real_answer_is_kept(text: str) -> None:
    assert not is_nothing(text)


def test_short_labels_inside_a_sentence_keep_acronyms() -> None:
    assert lower_label("Buổi tuyên truyền") == "buổi tuyên truyền"
    assert lower_label("ANTT ở cơ sở") == "ANTT ở cơ sở"
    assert lower_label("") == ""


def _view(kind: str, **kw: Any) -> dict[str, Any]:
    view = {"id": kw.pop("id", "x"), "kind": kind, "short": "X", "short_lower": "x", "answered": 1}
    view.update(total=None, previous=None, delta=None, counts=[], yes=0, texts=[], said_nothing=0)
    view.update(kw)
    return view


def test_sections_sort_figures_nothing_and_texts() -> None:
    figure = _view("number", total=3, previous=1, delta=2)
    zero = _view("number", total=0, previous=0, delta=0)
    fell_to_zero = _view("number", total=0, previous=4, delta=-4)  # the fall is worth saying
    nobody_yes = _view("yes_no", yes=0)
    quoted = _view("text", texts=[("Nà Làng", "Đề nghị làm đường")])
    silent = _view("text", said_nothing=2)
    unanswered = _view("number", answered=0)
    s = section_view("T", [figure, zero, fell_to_zero, nobody_yes, quoted, silent, unanswered])
    assert s["figures"] == [figure, fell_to_zero]
    assert s["nil"] == [zero, nobody_yes]
    assert s["texts"] == [quoted] and s["silent"] == [silent] and not s["empty"]
    assert section_view("T", [unanswered, _view("text")])["empty"]
    found = changes([figure, zero, fell_to_zero, _view("number", total=2, previous=None, delta=None)])
    assert [(c["rose"], c["amount"], c["before"], c["after"]) for c in found] == [
        (True, 2, 1, 3),
        (False, 4, 4, 0),
    ]


# ---------------------------------------------------------------------------------------------- seeding


def _commune(session: Session) -> Commune:
    setup = load_setup(ROOT / "deploy" / "hiep-luc.yaml").setup
    apply_setup(session, setup, now=SETUP_NOW, actor="test")
    store_setup_forms(session, setup, now=SETUP_NOW, actor="test")
    return session.exec(select(Commune).where(Commune.code == "hiep-luc")).one()


def _villages(session: Session, commune: Commune) -> list[Village]:
    return list(session.exec(select(Village).where(Village.commune_id == commune.id).order_by(Village.id)))


def _period_with_previous(session: Session, commune: Commune, form: Form) -> tuple[Period, Period | None]:
    """A period of the form that has a previous one (the incident form has no period: one is made)."""
    periods = session.exec(
        select(Period)
        .where(Period.commune_id == commune.id, Period.form_id == form.id)
        .order_by(Period.due_at)
    ).all()
    for period in periods:
        before = previous_period(session, period)
        if before is not None:
            return period, before
    at = SETUP_NOW
    period = Period(commune_id=commune.id, form_id=form.id, code="2026-DX", label="Đột xuất năm 2026",
                    opens_at=at, due_at=at + timedelta(days=30), closes_at=at + timedelta(days=60),
                    created_at=at, updated_at=at)  # fmt: skip
    session.add(period)
    session.flush()
    return period, None


def _submit(session: Session, village: Village, form: Form, period: Period, answers: dict[str, Any],
            sent_at: datetime) -> None:  # fmt: skip
    session.add(
        Submission(village_id=village.id, form_id=form.id, period_id=period.id, form_version=form.version,
                   version_no=1, is_current=True, answers=answers, sent_at=sent_at, received_at=sent_at,
                   on_time=sent_at < period.due_at, receipt=f"W{village.id}-{period.id}")
    )  # fmt: skip


def _free_text_ids(form: Form) -> list[str]:
    return [q.id for q in form.answerable if type_of(q).free_text]


def _docx_text(content: bytes) -> list[str]:
    d = docx.Document(io.BytesIO(content))
    lines = [p.text for p in d.paragraphs]
    for table in d.tables:
        lines += [c.text for row in table.rows for c in row.cells]
    return [line for line in lines if line.strip()]


def _body(content: bytes) -> list[str]:
    """The body paragraphs (after the title and subject, before the closing table)."""
    paragraphs = [p.text for p in docx.Document(io.BytesIO(content)).paragraphs if p.text.strip()]
    return paragraphs[2:]


def _fill(session: Session, form_id: str, *, seed: int = 3) -> tuple[Commune, Form, Period, list[Village]]:
    """Random answers from 8 villages (one says "ko" to every free text), the previous period from 6."""
    rnd = random.Random(seed)
    commune = _commune(session)
    form = get_form(session, form_id)
    assert form is not None
    period, before = _period_with_previous(session, commune, form)
    villages = _villages(session, commune)
    for n, village in enumerate(villages[:8]):
        answers = random_answers(form, rnd)
        if n == 0:
            answers.update({qid: BARE_NO[k % len(BARE_NO)] for k, qid in enumerate(_free_text_ids(form))})
        _submit(session, village, form, period, answers, period.opens_at + timedelta(hours=n + 1))
    if before is not None:
        for village in villages[:6]:
            _submit(
                session,
                village,
                form,
                before,
                random_answers(form, rnd),
                before.opens_at + timedelta(hours=1),
            )
    session.commit()
    return commune, form, period, villages


# ---------------------------------------------------------------------------------------------- every form


@pytest.mark.parametrize("form_id", ["bao-cao-6-thang", "bao-cao-nam", "su-co"])
def test_every_shipped_form_reads_as_a_report(session: Session, form_id: str) -> None:
    commune, form, period, villages = _fill(session, form_id)
    content = build_export(session, commune, form, period, "docx", EXPORT_NOW).content
    lines = _docx_text(content)
    text = "\n".join(lines)
    folded = text.casefold()

    # no question put to the village head, and no "Xin đồng chí"
    for q in form.answerable:
        if q.short and q.short != q.label:
            assert q.label not in text, q.id
        for sub in q.questions:
            if sub.short and sub.short != sub.label:
                assert sub.label not in text, sub.id
    assert "xin đồng chí" not in folded

    # every indicator some village answered is named by its short label
    answers = [
        s.answers
        for s in session.exec(
            select(Submission).where(Submission.period_id == period.id, Submission.is_current)
        )
    ]
    for q in form.answerable:
        t = type_of(q)
        if not (t.summary or t.free_text):
            continue
        given = [a[q.id] for a in answers if a.get(q.id) not in (None, "", [])]
        if t.free_text:
            given = [g for g in given if not is_nothing(str(g))]
            if not given:
                continue
        if t.group and not given:
            continue
        if given:
            assert q.short_label.casefold() in folded, q.id

    # the village that said "ko" to everything is never quoted
    ko_village = villages[0].name
    assert not any(line.startswith(f"- {ko_village}:") for line in lines)
    for bare in BARE_NO:
        assert not any(line.rstrip(".").endswith(f": {bare.rstrip('.')}") for line in lines), bare

    # the two closing sections are there, in order
    body = _body(content)
    assert body.index("III. ĐÁNH GIÁ CHUNG") < body.index("IV. PHƯƠNG HƯỚNG, NHIỆM VỤ KỲ TỚI")
    assert "1. Ưu điểm" in body and "2. Hạn chế" in body
    assert body[-1].endswith("trân trọng báo cáo./.")


# ---------------------------------------------------------------------------------------------- assessment


def _controlled(session: Session) -> tuple[Commune, Form, Period, Period, list[Village]]:
    """The 6-month form: 4 villages now, the same 4 before, with chosen figures (others random)."""
    rnd = random.Random(11)
    commune = _commune(session)
    form = get_form(session, "bao-cao-6-thang")
    assert form is not None
    period, before = _period_with_previous(session, commune, form)
    assert before is not None
    villages = _villages(session, commune)
    now_figures = [(5, 2, 4), (3, 1, 2), (4, 0, 6), (2, 3, 1)]  # sessions, incidents, models
    before_figures = [(1, 0, 5), (2, 1, 4), (1, 0, 6), (1, 1, 3)]
    for village, (now, old) in zip(villages[:4], zip(now_figures, before_figures, strict=True), strict=False):
        for target, figures in ((period, now), (before, old)):
            answers = random_answers(form, rnd)
            answers.update(so_buoi_tuyen_truyen=figures[0], so_vu_viec=figures[1], so_mo_hinh=figures[2])
            answers.update(so_mo_hinh_moi=0, so_luot_nguoi_du=max(figures[0], 1) * 10, vu_viec=[])
            late = village is villages[3] and target is period
            sent = target.due_at + timedelta(hours=3) if late else target.opens_at + timedelta(hours=1)
            _submit(session, village, form, target, answers, sent)
    session.commit()
    return commune, form, period, before, villages


def _sum(session: Session, period: Period, qid: str) -> int:
    rows = session.exec(select(Submission).where(Submission.period_id == period.id, Submission.is_current))
    return sum(int(s.answers.get(qid) or 0) for s in rows)


def test_the_assessment_says_what_rose_and_what_fell(session: Session) -> None:
    commune, form, period, before, villages = _controlled(session)
    body = _body(build_export(session, commune, form, period, "docx", EXPORT_NOW).content)
    good = body[body.index("1. Ưu điểm") + 1]
    bad = body[body.index("2. Hạn chế") + 1]
    label = before.label[:1].lower() + before.label[1:]

    sessions = (_sum(session, before, "so_buoi_tuyen_truyen"), _sum(session, period, "so_buoi_tuyen_truyen"))
    incidents = (_sum(session, before, "so_vu_viec"), _sum(session, period, "so_vu_viec"))
    models = (_sum(session, before, "so_mo_hinh"), _sum(session, period, "so_mo_hinh"))
    assert sessions == (5, 14) and incidents == (2, 6) and models == (18, 13)  # the figures chosen above

    assert good.startswith("4/14 thôn, tổ dân phố đã nộp báo cáo, trong đó 3 thôn đúng hạn.")
    assert f"So với {label}, buổi tuyên truyền tăng 9 (từ 5 lên 14)" in good
    # more incidents is a weakness; fewer models too; and who was late or missing
    assert "vụ việc về ANTT tăng 4 (từ 2 lên 6)" in bad
    assert "mô hình tự quản giảm 5 (từ 18 xuống 13)" in bad
    assert f"Còn 1 thôn nộp báo cáo muộn ({villages[3].name})." in bad
    assert "Còn 10 thôn chưa nộp báo cáo (" in bad
    # the figures themselves, in the results, with the change against the previous period
    assert any(line.startswith(f"Buổi tuyên truyền: 14 (tăng 9 so với {label})") for line in body)
    assert "Đôn đốc các thôn, tổ dân phố thực hiện nghiêm chế độ báo cáo, gửi báo cáo đúng hạn." in " ".join(
        body
    )


def test_nothing_rose_or_fell_without_a_previous_period(session: Session) -> None:
    commune, form, period, _villages = _fill(session, "su-co")
    body = _body(build_export(session, commune, form, period, "docx", EXPORT_NOW).content)
    good = body[body.index("1. Ưu điểm") + 1]
    assert good == "8/14 thôn, tổ dân phố đã nộp báo cáo, tất cả đúng hạn."
    assert not any("so với" in line for line in body[: body.index("III. ĐÁNH GIÁ CHUNG")])


# ---------------------------------------------------------------------------------------------- rewording


def _templates_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from bot.texts import templates

    root = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", root)
    monkeypatch.setattr(templates, "_current", templates.Renderer(shipped=root))
    return root


def test_a_commune_rewords_a_phrase_without_copying_the_body(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commune, form, period, _before, _villages = _controlled(session)
    shipped = _body(build_export(session, commune, form, period, "docx", EXPORT_NOW).content)
    root = _templates_copy(tmp_path, monkeypatch)
    phrases = (root / "export" / "report_phrases.txt").read_text(encoding="utf-8")
    own = root / "export" / "communes" / commune.code
    own.mkdir(parents=True)
    reworded = phrases.replace("Chưa có kết quả về: ", "Trong kỳ không phát sinh: ").replace(
        "tăng {{ c.amount | vn_number }} (từ", "tăng thêm {{ c.amount | vn_number }} (từ"
    )
    assert reworded != phrases
    (own / "report_phrases.txt").write_text(reworded, encoding="utf-8")
    body = _body(build_export(session, commune, form, period, "docx", EXPORT_NOW).content)
    assert any(line.startswith("Chưa có kết quả về: ") for line in shipped)
    assert not any(line.startswith("Chưa có kết quả về: ") for line in body)
    assert any(line.startswith("Trong kỳ không phát sinh: ") for line in body)
    good = body[body.index("1. Ưu điểm") + 1]
    assert "buổi tuyên truyền tăng thêm 9 (từ 5 lên 14)" in good
    assert len(body) == len(shipped)  # only the words changed


def test_the_deployment_rewords_the_closing_sections(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BAOCAO_TEMPLATES_DIR/<commune>/export/report_phrases.txt replaces the default plan for the next period."""
    from bot.texts import templates

    commune, form, period, _before, _villages = _controlled(session)
    phrases = (ROOT / "templates" / "export" / "report_phrases.txt").read_text(encoding="utf-8")
    start = phrases.index("{%- macro phuong_huong(done) -%}")
    own = tmp_path / commune.code / "export"
    own.mkdir(parents=True)
    (own / "report_phrases.txt").write_text(
        phrases[:start] + "{%- macro phuong_huong(done) -%}\n- Nhiệm vụ riêng của xã.\n{%- endmacro -%}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(templates, "_current", templates.Renderer(tmp_path))
    body = _body(build_export(session, commune, form, period, "docx", EXPORT_NOW).content)
    plan = body[body.index("IV. PHƯƠNG HƯỚNG, NHIỆM VỤ KỲ TỚI") + 1 : -1]
    assert plan == ["- Nhiệm vụ riêng của xã."]


@pytest.mark.parametrize(
    ("mistake", "line"),
    [("{{ khong_co_bien }}", 3), ("{% if %}", 3)],  # a runtime error inside a macro, a syntax error
)
def test_a_broken_phrase_file_is_named_with_its_line(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mistake: str, line: int
) -> None:
    from bot.exports import ExportError

    commune, form, period, _before, _villages = _controlled(session)
    root = _templates_copy(tmp_path, monkeypatch)
    phrases = root / "export" / "report_phrases.txt"
    text = phrases.read_text(encoding="utf-8")
    start = text.index("{%- macro phuong_huong(done) -%}")
    phrases.write_text(
        text[:start].replace("\n", " ", text[:start].count("\n"))
        + "\n{%- macro phuong_huong(done) -%}\n"
        + mistake
        + "\n{%- endmacro -%}\n",
        encoding="utf-8",
    )
    with pytest.raises(ExportError, match=rf"report_phrases\.txt, dòng {line}\)"):
        build_export(session, commune, form, period, "docx", EXPORT_NOW)


def test_a_generated_commune_paragraph_by_paragraph(session: Session) -> None:
    """The test_exports commune (late, amended, draft and missing villages, a previous period), one village
    answering "ko" / "không" / "Không có" to the free texts: no paragraph quotes a question or a bare no, the
    amended village is quoted from its current version only, and both closing sections are there."""
    from tests.test_exports import seed_reports

    seeded = seed_reports(session)
    ko = session.exec(
        select(Submission).where(
            Submission.village_id == seeded.villages[0].id, Submission.period_id == seeded.period.id
        )
    ).one()
    ko.answers = {**ko.answers, "de_xuat": "ko", "kho_khan": "không", "de_nghi_khen_thuong": "Không có"}
    session.add(ko)
    session.commit()
    content = build_export(session, seeded.commune, seeded.form, seeded.period, "docx", EXPORT_NOW).content
    body = _body(content)
    questions = [q for q in seeded.form.answerable if q.short and q.short != q.label]
    for paragraph in body:
        assert not any(q.label in paragraph for q in questions), paragraph
        assert "xin đồng chí" not in paragraph.casefold(), paragraph
        assert not paragraph.startswith(f"- {seeded.villages[0].name}:"), paragraph
    versions = session.exec(select(Submission).where(Submission.village_id == seeded.amended.id,
                                                     Submission.period_id == seeded.period.id)).all()  # fmt: skip
    current = next(s for s in versions if s.is_current)
    old = next(s for s in versions if not s.is_current)
    for qid in ("de_xuat", "kho_khan"):
        now_text, old_text = current.answers.get(qid), old.answers.get(qid)
        if now_text and not is_nothing(now_text):
            assert f"- {seeded.amended.name}: {now_text}" in body
        if old_text and old_text != now_text:
            assert f"- {seeded.amended.name}: {old_text}" not in body
    assert f"Còn 1 thôn nộp báo cáo muộn ({seeded.late.name})." in " ".join(body)
    missing = ", ".join(v.name for v in (seeded.draft, *seeded.missing))
    assert f"Còn 3 thôn chưa nộp báo cáo ({missing})." in " ".join(body)
    heads = [body.index(h) for h in ("III. ĐÁNH GIÁ CHUNG", "1. Ưu điểm", "2. Hạn chế")]
    assert heads == sorted(heads) and body.index("IV. PHƯƠNG HƯỚNG, NHIỆM VỤ KỲ TỚI") > heads[-1]
