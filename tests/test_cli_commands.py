"""`baocao setup`, `forms check`, `forms try` and `demo`, run as a person would run them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main
from storage.db import session_scope
from storage.models import Commune, FormVersion, Period, Village

ROOT = Path(__file__).resolve().parent.parent
BAOCAO = str(Path(sys.executable).with_name("baocao"))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "BAOCAO_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    return tmp_path / "deploy"


def test_setup_applies_once_and_reports_no_change_the_second_time(env, engine, capsys) -> None:
    assert main(["setup", str(env / "hiep-luc.yaml")]) == 0
    first = capsys.readouterr().out
    assert "Thôn Nà Làng" in first and "kỳ 2026-6T" in first
    assert main(["setup", str(env / "hiep-luc.yaml")]) == 0
    assert "Không có gì thay đổi" in capsys.readouterr().out
    with session_scope(engine) as s:
        assert len(s.exec(select(Village)).all()) == 14
        assert {p.code for p in s.exec(select(Period))} >= {"2026-6T", "2026-CN"}
        assert len(s.exec(select(FormVersion)).all()) == 3


def test_setup_with_errors_writes_nothing(env, engine, capsys) -> None:
    text = (env / "hiep-luc.yaml").read_text(encoding="utf-8")
    bad = env / "bad.yaml"
    bad.write_text(
        text.replace("villages:", "vilages:").replace("code: hiep-luc", "code: Hiệp Lực"), encoding="utf-8"
    )
    assert main(["setup", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "chưa ghi gì" in err and "vilages" in err and "'villages'" in err
    with session_scope(engine) as s:
        assert s.exec(select(Commune)).all() == []


def test_a_changed_form_without_a_new_version_is_refused_and_nothing_written(env, engine, capsys) -> None:
    assert main(["setup", str(env / "hiep-luc.yaml")]) == 0
    form = env / "forms" / "su-co.yaml"
    form.write_text(form.read_text(encoding="utf-8").replace("label:", "label: Sửa —", 1), encoding="utf-8")
    (env / "hiep-luc.yaml").write_text(
        (env / "hiep-luc.yaml").read_text(encoding="utf-8").replace("Thôn Bản Chang", "Thôn Bản Chang Mới"),
        encoding="utf-8",
    )
    assert main(["setup", str(env / "hiep-luc.yaml")]) == 1
    assert "chưa tăng 'version'" in capsys.readouterr().err
    with session_scope(engine) as s:  # the village rename in the same run was rolled back too
        assert not s.exec(select(Village).where(Village.name == "Thôn Bản Chang Mới")).all()


def test_forms_check(env, capsys) -> None:
    assert main(["forms", "check", *map(str, sorted((env / "forms").glob("*.yaml")))]) == 0
    assert "OK  bao-cao-6-thang v2" in capsys.readouterr().out
    broken = env / "forms" / "broken.yaml"
    broken.write_text("id: Bad Id\ntitle: x\nversion: 0\nkind: periodic\nquestions: []\n", encoding="utf-8")
    assert main(["forms", "check", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "3 lỗi." in err and "'Bad Id'" in err and "'version'" in err and "'questions'" in err


def _run(args: list[str], stdin: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_URL"))}
    return subprocess.run(
        [BAOCAO, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env
    )


def test_forms_try_walks_a_form_in_the_terminal(tmp_path) -> None:
    done = _run(["forms", "try", "su-co"], "1\n/thoat\n", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Câu 1/" in done.stdout and "[1]" in done.stdout


def test_forms_try_unknown_form_lists_the_known_ones(tmp_path) -> None:
    done = _run(["forms", "try", "khong-co"], "", tmp_path)
    assert done.returncode == 2 and "bao-cao-6-thang" in done.stderr


@pytest.mark.e2e
def test_demo_signs_you_up_and_chats_in_the_terminal(tmp_path) -> None:
    done = _run(["demo", "--data-dir", str(tmp_path / "demo")], "/help\n/baocao\n/thoat\n", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Đăng ký thành công" in done.stdout and "/baocao" in done.stdout
    again = _run(["demo", "--data-dir", str(tmp_path / "demo")], "/thoat\n", tmp_path)
    assert again.returncode == 0 and "tài khoản đã sẵn sàng" in again.stdout  # same data: already signed up
