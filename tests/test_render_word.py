"""`docs/render_word.py` turns the Word report into PNG pages (LibreOffice → PDF → PNG) — skipped where
LibreOffice or poppler is not installed; the committed pages under `docs/` come from this script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(
    shutil.which("soffice") is None or shutil.which("pdftoppm") is None,
    reason="LibreOffice (soffice) and poppler (pdftoppm) are not installed",
)
def test_the_word_report_renders_to_pages(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "render_word.py"), "--out", str(tmp_path), "--pages", "3",
         "--keep", str(tmp_path / "files")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    pages = sorted(tmp_path.glob("word-report-*.png"))
    assert len(pages) >= 2  # the header, the completeness table and the body do not fit one A4 page
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in pages)
    pdf = next((tmp_path / "files").glob("*.pdf"))
    assert pdf.read_bytes().startswith(b"%PDF")
    assert next((tmp_path / "files").glob("*.docx")).stat().st_size > 10_000


def test_without_libreoffice_it_says_what_to_install(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}  # neither soffice nor pdftoppm on this PATH
    out = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "render_word.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert out.returncode == 2
    assert "libreoffice-writer-nogui" in out.stderr
    assert not list(tmp_path.glob("*.png"))
