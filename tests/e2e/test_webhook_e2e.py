"""The real `baocao serve` process in webhook mode against the emulator, which POSTs updates to it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from tests.e2e.conftest import (
    ALL_READY,
    BAOCAO,
    HCM,
    TOKEN,
    BotProcess,
    child_env,
    free_port,
    invite,
    say,
    write_setup,
)

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret_0123456789"


def _command(*args: str) -> list[str]:
    """`baocao serve|webhook …`."""
    return [BAOCAO, *args]


def _env(emulator: EmulatorServer, database_url: str, **extra: str) -> tuple[str, dict[str, str]]:
    """(root URL, environment) for `baocao serve` on a free local port, webhook URL and secret set."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    env = child_env(
        emulator,
        database_url,
        BAOCAO_WEBHOOK_URL=f"{root}/telegram/webhook",
        BAOCAO_WEBHOOK_SECRET=SECRET,
        BAOCAO_LISTEN=f"127.0.0.1:{port}",
        **extra,
    )
    return root, env


class ServeProcess(BotProcess):
    """`baocao serve` as a child process; `cli` runs other commands against the same settings."""

    def __init__(self, env: dict[str, str], log_dir: Path, server: EmulatorServer, root: str) -> None:
        super().__init__(env, log_dir, server)
        self.root = root

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Run `baocao serve|webhook …` to completion."""
        return subprocess.run(_command(*args), env=self.env, capture_output=True, timeout=60)

    def start(self, *options: str) -> None:
        """Start `baocao [options] serve` and wait until /healthz answers."""
        self.starts += 1
        log = (self.log_dir / f"bot-{self.starts}.log").open("wb")
        command = _command(*options, "serve")
        self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.root}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"baocao serve did not come up:\n{self.log()}")

    def terminate(self) -> int:
        """SIGTERM, as systemd or docker stop; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(40)


@pytest.fixture
def served(emulator: EmulatorServer, database_url: str, tmp_path: Path) -> Iterator[ServeProcess]:
    """The configured commune and `baocao serve` listening on a free local port."""
    root, env = _env(emulator, database_url, BAOCAO_LOG_FORMAT="json")
    (tmp_path / "logs").mkdir()
    process = ServeProcess(env, tmp_path / "logs", emulator, root)
    process.cli("setup", str(write_setup(tmp_path, datetime.now(HCM))))
    process.start()
    yield process
    process.stop()


def test_webhook_mode_end_to_end(
    served: ServeProcess, emulator: EmulatorServer, client: EmulatorClient
) -> None:
    root = served.root
    # register the webhook through the emulator, like with Telegram
    done = served.run("webhook", "set")
    assert done.returncode == 0, done.stderr.decode()
    assert "Đã đăng ký webhook" in done.stdout.decode()
    assert emulator.webhook is not None and emulator.webhook["secret_token"] == SECRET
    info = served.run("webhook", "info", "--json")
    assert json.loads(info.stdout)["url"] == f"{root}/telegram/webhook"

    ready = httpx.get(f"{root}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == ALL_READY

    # a village head signs up through a deep link: the update arrives by webhook, the answer by sendMessage
    code = invite(served, "--village", "Thôn Nà Làng")
    an = client.user(8001, "An", "Hoàng Văn")
    welcome = say(an, f"/start {code}")
    assert "Đăng ký thành công" in welcome and "Thôn Nà Làng" in welcome
    assert "Kỳ thử nghiệm" in say(an, "/baocao")
    deliveries = client.webhook()["deliveries"]
    assert len(deliveries) >= 2 and all(d["status"] == 200 for d in deliveries)
    # while the webhook is set, long polling is refused like Telegram does
    poll = httpx.post(f"{emulator.url}/bot{TOKEN}/getUpdates", json={"timeout": 0}, timeout=10)
    assert poll.status_code == 409

    # someone who does not know the secret gets 403 and nothing is processed
    forged = {
        "update_id": 999_999_999,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": 8002, "type": "private", "first_name": "Kẻ"},
            "from": {"id": 8002, "is_bot": False, "first_name": "Kẻ"},
            "text": "/start",
        },
    }
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess-guess-guess-guess"}):
        answer = httpx.post(f"{root}/telegram/webhook", json=forged, headers=headers, timeout=10)
        assert answer.status_code == 403
    assert httpx.post(f"{root}/telegram/webhook", content=b"{oops", timeout=10).status_code == 403
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    assert (
        httpx.post(f"{root}/telegram/webhook", content=b"{oops", headers=headers, timeout=10).status_code
        == 400
    )
    time.sleep(0.5)
    events, _ = client.events(wait=0)
    assert not [e for e in events if e.get("chat_id") == 8002]  # the bot never answered the forger

    metrics = httpx.get(f"{root}/metrics", timeout=10).text
    assert 'baocao_updates_total{handler="command:start",outcome="ok"} 1.0' in metrics
    assert 'baocao_webhook_requests_total{status="403"} 3.0' in metrics
    assert 'baocao_outbox_messages{status="pending"}' in metrics
    assert httpx.get(f"{root}/readyz", timeout=10).status_code == 200

    # SIGTERM stops it cleanly
    assert served.terminate() == 0, served.log()
    logs = served.log()
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs and SECRET not in logs
    assert code not in logs  # what people type is not logged at INFO
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len([line for line in logs.splitlines() if line.strip()]), logs
    start = [e for e in lines if e.get("handler") == "command:start"]
    assert start and start[0]["outcome"] == "ok" and start[0]["chat_id"] == 8001
    assert {"update_id", "role", "duration_ms"} <= set(start[0])
    assert any(e.get("status") == 403 for e in lines)
    assert any(e.get("job") == "reminders-cycle" for e in lines)


def test_debug_logs_of_serve_and_webhook_commands_show_neither_token_nor_secret(
    emulator: EmulatorServer, client: EmulatorClient, database_url: str, tmp_path: Path
) -> None:
    root, env = _env(emulator, database_url, BAOCAO_TICK_SECONDS="0")
    (tmp_path / "logs").mkdir()
    process = ServeProcess(env, tmp_path / "logs", emulator, root)
    process.start("-v")
    outputs: list[str] = []
    try:
        for args in (("-v", "webhook", "set"), ("-v", "webhook", "info")):
            done = subprocess.run(_command(*args), env=env, capture_output=True, timeout=60)
            assert done.returncode == 0, done.stderr.decode()
            outputs.append(done.stdout.decode() + done.stderr.decode())
        assert "setWebhook" in outputs[0] and "<ẩn>" in outputs[0]  # PTB's debug line, scrubbed
        assert "mã mời" in say(client.user(8101, "Ba"), "/start")  # a stranger, answered by webhook
        assert process.terminate() == 0
    finally:
        process.kill()
    logs = process.log() + "\n".join(outputs)
    assert "DEBUG" in logs
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs and SECRET not in logs
