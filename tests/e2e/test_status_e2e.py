"""The real `baocao run` (long polling) with BAOCAO_STATUS_LISTEN: health, readiness and metrics over HTTP."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from tests.e2e.conftest import ALL_READY, HCM, BotProcess, child_env, free_port, invite, say, write_setup

pytestmark = pytest.mark.e2e


def _updates_counted(metrics: str) -> float:
    """The sum of baocao_updates_total over its labels."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("baocao_updates_total{")
    )


def test_long_polling_serves_health_readiness_and_metrics(
    emulator: EmulatorServer, client: EmulatorClient, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = child_env(emulator, database_url, BAOCAO_STATUS_LISTEN=f"127.0.0.1:{port}")
    (tmp_path / "logs").mkdir()
    bot = BotProcess(env, tmp_path / "logs", emulator)
    bot.cli("setup", str(write_setup(tmp_path, datetime.now(HCM))))
    bot.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            ready = http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == ALL_READY
            before = _updates_counted(http.get("/metrics").text)
            head = client.user(7001, "Hoa")
            say(head, f"/start {invite(bot, '--village', 'Thôn Nà Làng')}")
            after = _updates_counted(http.get("/metrics").text)
            assert after >= before + 1
            assert http.post("/telegram/webhook", json={"update_id": 1}).status_code == 404  # no webhook here
    finally:
        bot.stop()
    assert bot.proc is not None and bot.proc.returncode == 0, bot.log()
    assert "status server: /healthz /readyz /metrics on 127.0.0.1" in bot.log()
    with socket.socket() as s:  # the port is free again (for a new server: TIME_WAIT left by our requests is fine)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
