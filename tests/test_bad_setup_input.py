"""Bad input found by probing the setup and form files and the database file: one line per error, never a
traceback, nothing opened outside the setup file's folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.cli import main
from bot.forms.loader import load_form_files
from bot.setup_file import load_setup

FORM = """\
    id: mau
    title: "Báo cáo{bad}"
    version: 1
    kind: periodic
    questions:
      - id: a
        type: integer
        label: Có bao nhiêu người
        short: Số người
"""


@pytest.mark.parametrize("escape", ["\\a", "\\0", "\\x1b", "\\x7f"])
def test_a_control_character_in_a_form_is_one_error_with_its_line(tmp_path: Path, escape: str) -> None:
    path = tmp_path / "mau.yaml"
    path.write_text(textwrap.dedent(FORM.format(bad=escape)), encoding="utf-8")
    result = load_form_files([path])
    assert result.forms == [] or not result.forms
    (error,) = result.errors
    assert "ký tự điều khiển" in str(error) and "dòng 2" in str(error)


def test_line_breaks_and_tabs_in_text_are_still_fine(tmp_path: Path) -> None:
    path = tmp_path / "mau.yaml"
    path.write_text(textwrap.dedent(FORM.format(bad="\\tnăm\\n2026")), encoding="utf-8")
    result = load_form_files([path])
    assert not result.errors and result.forms[0].title.startswith("Báo cáo")


def test_a_nul_in_a_commune_name_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "xa.yaml"
    path.write_text('version: 1\ncommunes:\n  - code: xa\n    name: "Xã\\0 Mẫu"\n    villages: [Thôn 1]\n')
    result = load_setup(path)
    (error,) = result.errors
    assert "U+0000" in str(error) and "dòng 4" in str(error)


def test_forms_outside_the_setup_folder_are_refused_and_not_opened(tmp_path: Path) -> None:
    inside = tmp_path / "xa"
    inside.mkdir()
    (tmp_path / "secret.yaml").write_text("id: x\n")
    path = inside / "xa.yaml"
    path.write_text(
        "version: 1\ncommunes:\n  - code: xa\n    name: Xã Mẫu\n    villages: [Thôn 1]\n"
        "    forms: [../secret.yaml, ../../../../etc/passwd]\n"
    )
    result = load_setup(path)
    assert len(result.errors) == 2
    assert all("ra ngoài thư mục chứa tệp này" in str(e) for e in result.errors)


def test_setup_and_forms_check_print_one_line_per_error_never_a_traceback(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    (tmp_path / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "bel.yaml").write_text(textwrap.dedent(FORM.format(bad="\\a")), encoding="utf-8")
    (tmp_path / "xa.yaml").write_text(
        "version: 1\ncommunes:\n  - code: xa\n    name: Xã Mẫu\n    villages: [Thôn 1]\n"
        "    forms: [bin.yaml, bel.yaml]\n"
    )
    assert main(["setup", "xa.yaml"]) != 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "UTF-8" in out + err and "ký tự điều khiển" in out + err
    assert main(["forms", "check", "bel.yaml", "bin.yaml"]) != 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "ký tự điều khiển" in out + err


def test_a_damaged_sqlite_file_is_one_line_pointing_to_the_restore_steps(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    damaged = tmp_path / "baocao.db"
    damaged.write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 20)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{damaged}")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456789:AAEabcdefghijklmnopqrstuvwxyz0123456")
    for argv in (["periods"], ["run"]):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 2, argv
        assert "bị hỏng" in err and "Backup and restore" in err and "Traceback" not in out + err
        assert len(err.strip().splitlines()) == 1


def test_a_forms_folder_linked_into_the_setup_folder_is_the_administrators_choice(tmp_path: Path) -> None:
    shared = tmp_path / "forms"
    shared.mkdir()
    (shared / "mau.yaml").write_text(textwrap.dedent(FORM.format(bad="")), encoding="utf-8")
    inside = tmp_path / "examples"
    inside.mkdir()
    (inside / "forms").symlink_to(shared, target_is_directory=True)
    path = inside / "xa.yaml"
    path.write_text(
        "version: 1\ncommunes:\n  - code: xa\n    name: Xã Mẫu\n    villages: [Thôn 1]\n"
        "    forms: [forms/mau.yaml, forms/../../forms/mau.yaml]\n"
    )
    result = load_setup(path)
    assert [str(e) for e in result.errors] == [
        next(str(e) for e in result.errors if "forms[1]" in str(e) and "ra ngoài thư mục" in str(e))
    ]
