"""Fixtures that start the emulator in this process and the real bot as a child process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.emulator.client import EmulatorClient, UserSession
from bot.emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "424242:E2EtokenE2EtokenE2EtokenE2Etoken00"
BAOCAO = str(Path(sys.executable).with_name("baocao"))
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
ALL_READY = {"application": "ok", "database": "ok", "migrations": "ok", "scheduler": "ok"}  # /readyz

pytestmark = pytest.mark.e2e


class BotProcess:
    """The real bot (`baocao run`) as a child process, restartable and killable."""

    def __init__(self, env: dict[str, str], log_dir: Path, server: EmulatorServer) -> None:
        self.env, self.log_dir, self.server = env, log_dir, server
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def cli(self, *args: str) -> str:
        """Run another `baocao` command against the same database; return stdout (fail loudly)."""
        done = subprocess.run([BAOCAO, *args], env=self.env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    def start(self) -> None:
        """Start `baocao run` and wait until it long-polls the emulator."""
        self.starts += 1
        polls_before = self.server.polls_started
        log = (self.log_dir / f"bot-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen([BAOCAO, "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.server.wait_for_sync(
            lambda: self.server.polls_started > polls_before or self.proc.poll() is not None, timeout=60
        )
        assert self.proc.poll() is None, self.log()

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush — like a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        """SIGINT, as an operator's Ctrl-C."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        """Everything the bot printed (for failure messages)."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("bot-*.log")))


def write_setup(tmp: Path, now: datetime) -> Path:
    """A setup file like Hiệp Lực's, with a one-off period open now and due in ten days."""
    shutil.copytree(ROOT / "deploy" / "forms", tmp / "forms")
    opens = (now - timedelta(days=1)).astimezone(HCM)
    due = (now + timedelta(days=10)).astimezone(HCM)
    text = f"""
version: 1
communes:
  - code: hiep-luc
    name: Xã Hiệp Lực
    province: Thái Nguyên
    police_chats:
      - chat_id: -100777
        title: Công an xã Hiệp Lực
    villages: [Thôn Nà Làng, Thôn Bản Duồm, Thôn Khuổi Ổ]
    forms: [forms/bao-cao-6-thang.yaml, forms/bao-cao-nam.yaml, forms/su-co.yaml]
    schedules:
      - form: bao-cao-6-thang
        main: true
        periods:
          - id: "E2E-6T"
            label: "Kỳ thử nghiệm"
            opens: "{opens:%d/%m/%Y}"
            due_before: "{due:%d/%m/%Y}"
"""
    path = tmp / "setup.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def child_env(emulator: EmulatorServer, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `baocao` child process against this emulator and database (ours dropped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BAOCAO_", "DATABASE_URL"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=emulator.url,
        DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port() -> int:
    """A local TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """The Bot API emulator on 127.0.0.1, in a thread of this process."""
    server = EmulatorServer(token=TOKEN, bot_username="baocao_e2e_bot")
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[EmulatorClient]:
    """Acting as users, over HTTP."""
    c = EmulatorClient(emulator.url, timeout=30)
    yield c
    c.close()


def start_bot(emulator: EmulatorServer, database_url: str, tmp_path: Path, setup: Path) -> BotProcess:
    """A bot process set up from the file `setup` and started (logs in `tmp_path/logs`); the caller stops it."""
    (tmp_path / "logs").mkdir()
    process = BotProcess(child_env(emulator, database_url), tmp_path / "logs", emulator)
    process.cli("setup", str(setup))
    process.start()
    return process


@pytest.fixture
def bot(emulator: EmulatorServer, database_url: str, tmp_path: Path) -> Iterator[BotProcess]:
    """The configured commune and a running bot process."""
    process = start_bot(emulator, database_url, tmp_path, write_setup(tmp_path, datetime.now(HCM)))
    yield process
    process.stop()


def invite(bot: BotProcess, *args: str) -> str:
    """Issue an invite with the CLI and return its deep-link start parameter."""
    data = json.loads(bot.cli("invite", *args, "--json"))
    assert data["link"].startswith("https://t.me/baocao_e2e_bot?start=")
    return data["link"].split("start=", 1)[1]


def tokens(user: UserSession) -> list[str]:
    """Engine tokens of the latest inline keyboard in the user's chat."""
    message = user.latest(with_keyboard=True)
    if message is None:
        return []
    return [(b.callback_data or "").split(":", 3)[-1] for b in message.flat_buttons]


def press(user: UserSession, token: str) -> None:
    """Press the button carrying `token` on the latest keyboard and wait for the bot."""
    message = user.latest(with_keyboard=True)
    data = next(b.callback_data for b in message.flat_buttons if (b.callback_data or "").endswith(token))
    user.press(data=data)
    user.wait_reply(timeout=20)


def say(user: UserSession, text: str) -> str:
    """Send a text and return what the bot answered (plain text)."""
    user.send(text)
    return user.wait_reply(timeout=20).plain


def answer(user: UserSession, *, until: str = "confirm", limit: int = 120) -> None:
    """Answer each question with a small valid value until a keyboard offers `until`.

    Typed values are tried in turn ("3", then "1", "0", "100") while the bot rejects them with a
    warning, so cross-question checks (e.g. new models ≤ all models) are satisfied.
    """
    values = ("3", "1", "0", "100")
    attempt = 0
    for _ in range(limit):
        available = tokens(user)
        if until in available:
            return
        for choice in ("submit", "more:n", "ok:0", "d:yday", "c:0", "n", "skip"):
            if choice in available:
                press(user, choice)
                break
        else:
            reply = say(user, values[attempt % len(values)])
            attempt = attempt + 1 if reply.lstrip().startswith("⚠") else 0
    last = [m.plain for m in user.messages()[-3:]]
    raise AssertionError(f"never reached {until!r}; last keyboard {tokens(user)}; last messages {last}")
