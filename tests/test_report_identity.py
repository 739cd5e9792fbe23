"""The Word report's issuing body, number, recipients and signer come from the setup file (`report:`), e.g. a
provincial office's report is not headed "CÔNG AN XÃ …"; without it, the shipped Công an xã wording stays."""

from __future__ import annotations

import copy
import io
import textwrap
from datetime import UTC, datetime

import docx
import yaml
from sqlmodel import select

from bot.exports import build_export
from bot.services.forms import get_form
from bot.setup_file import loads_setup
from storage.db import session_scope
from storage.models import AuditLog, Commune, Period
from tests.support.world import HIEP_LUC, apply_setup_file

NOW = datetime(2026, 5, 25, 3, 0, tzinfo=UTC)
OFFICE = {
    "superior": "UBND TỈNH LAI CHÂU",
    "issuer": "VĂN PHÒNG",
    "number": "Số: ……/BC-VP",
    "recipients": ["- UBND tỉnh (để b/c);", "- Công an tỉnh;", "- Lưu: VT, HCQT."],
    "signer_title": "CHÁNH VĂN PHÒNG",
    "signer_name": "Nguyễn Văn A",
}


def setup_with(report: dict | None) -> dict:
    data = copy.deepcopy(yaml.safe_load(HIEP_LUC.read_text(encoding="utf-8")))
    if report is not None:
        data["communes"][0]["report"] = report
    return data


def word_text(engine) -> str:
    with session_scope(engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
        period = s.exec(select(Period).where(Period.commune_id == commune.id, Period.code == "2026-6T")).one()
        file = build_export(s, commune, get_form(s, "bao-cao-6-thang"), period, "docx", NOW)
    document = docx.Document(io.BytesIO(file.content))
    cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def test_a_provincial_office_heads_and_signs_its_own_report(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, setup_with(OFFICE), now=NOW)
    text = word_text(engine)
    assert "UBND TỈNH LAI CHÂU" in text and "VĂN PHÒNG" in text and "Số: ……/BC-VP" in text
    assert "- Lưu: VT, HCQT." in text and "CHÁNH VĂN PHÒNG" in text and "Nguyễn Văn A" in text
    assert "CÔNG AN XÃ HIỆP LỰC" not in text and "TRƯỞNG CÔNG AN" not in text and "- UBND xã;" not in text


def test_without_report_the_shipped_wording_stays_and_a_change_is_audited(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, setup_with(None), now=NOW)
    text = word_text(engine)
    assert "CÔNG AN XÃ HIỆP LỰC" in text and "TRƯỞNG CÔNG AN XÃ" in text
    with session_scope(engine) as s:
        apply_setup_file(
            s, setup_with({"signer_title": "PHÓ TRƯỞNG CÔNG AN XÃ {không phải chỗ điền}"}), now=NOW
        )
    with session_scope(engine) as s:
        assert s.exec(select(Commune)).one().report == {
            "signer_title": "PHÓ TRƯỞNG CÔNG AN XÃ {không phải chỗ điền}"
        }
        assert s.exec(select(AuditLog).where(AuditLog.action == "setup.commune.report")).all()
    text = word_text(engine)
    assert "PHÓ TRƯỞNG CÔNG AN XÃ {không phải chỗ điền}" in text and "CÔNG AN XÃ HIỆP LỰC" in text
    with session_scope(engine) as s:
        apply_setup_file(s, setup_with(None), now=NOW)  # taken out of the file: back to the shipped wording
        assert s.exec(select(Commune)).one().report is None


def test_bad_report_entries_are_listed_at_once() -> None:
    result = loads_setup(
        textwrap.dedent(
            """\
            version: 1
            communes:
              - code: a
                name: Xã A
                villages: [Thôn 1]
                report:
                  issuer: ""
                  recipients: []
                  signer: Trưởng
                  number: 12
            """
        ),
        "mem.yaml",
    )
    reasons = "\n".join(str(e) for e in result.errors)
    assert len(result.errors) == 4, reasons
    assert "report" in reasons and "signer" in reasons and "nơi nhận" in reasons
