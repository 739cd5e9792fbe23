"""The Bot API client's own cost: PTB's HTTPXRequest against our AiohttpRequest (bot/telegram_request.py).

A minimal Bot API stand-in (aiohttp, answering every call with a sendMessage-sized result) runs in a child
process; this process posts a question-sized sendMessage through PTB's `BaseRequest.post` — form
encoding, the HTTP exchange, PTB's JSON parsing of the answer — with 8 calls in flight (the bot's pool),
alternating the two clients round by round. Reported: this process's CPU and wall time a call, each
client's median over the rounds, and their ratio.

    .venv/bin/python bench/http_client.py
    .venv/bin/python bench/http_client.py --calls 4000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ANSWER = {
    "ok": True,
    "result": {
        "message_id": 1,
        "date": 1_780_000_000,
        "chat": {"id": 20_000_001, "type": "private", "first_name": "Trưởng thôn"},
        "text": "Câu 3/20: Số buổi tuyên truyền, phổ biến pháp luật đã tổ chức trong kỳ? " * 2,
    },
}


def serve(port: int) -> None:
    """The stand-in Bot API server (child process)."""
    from aiohttp import web

    body = json.dumps(ANSWER).encode()

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def one_round(request: Any, url: str, calls: int, in_flight: int) -> tuple[float, float]:
    """(CPU ms, wall ms) a call for `calls` calls, `in_flight` at a time."""
    from telegram.request import RequestData
    from telegram.request._requestparameter import RequestParameter

    params = [
        RequestParameter("chat_id", 20_000_001, None),
        RequestParameter("text", ANSWER["result"]["text"], None),  # type: ignore[index]
        RequestParameter("parse_mode", "HTML", None),
        RequestParameter(
            "reply_markup", '{"inline_keyboard":[[{"text":"Bỏ qua","callback_data":"f:1:2:skip"}]]}', None
        ),
    ]
    data = RequestData(params)

    async def worker(n: int) -> None:
        for _ in range(n):
            await request.post(url, request_data=data)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(calls // in_flight) for _ in range(in_flight)))
    done = (calls // in_flight) * in_flight
    return 1000 * (time.process_time() - cpu) / done, 1000 * (time.perf_counter() - wall) / done


async def run(port: int, calls: int, rounds: int) -> dict[str, Any]:
    """Alternate the two clients for `rounds` rounds after a warm-up each."""
    from telegram.request import HTTPXRequest

    from bot.telegram_request import AiohttpRequest

    url = f"http://127.0.0.1:{port}/bot1:x/sendMessage"
    clients = {
        "httpx": HTTPXRequest(connection_pool_size=8, pool_timeout=5, connect_timeout=10, read_timeout=20),
        "aiohttp": AiohttpRequest(8),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    for request in clients.values():
        await request.initialize()
        await one_round(request, url, 400, 8)  # warm-up
    for _ in range(rounds):
        for name, request in clients.items():
            results[name].append(await one_round(request, url, calls, 8))
    for request in clients.values():
        await request.shutdown()
    out: dict[str, Any] = {"calls_per_round": calls, "rounds": rounds, "in_flight": 8}
    for name, values in results.items():
        out[f"{name}_cpu_ms_per_call"] = statistics.median(v[0] for v in values)
        out[f"{name}_wall_ms_per_call"] = statistics.median(v[1] for v in values)
    out["cpu_ratio_httpx_over_aiohttp"] = out["httpx_cpu_ms_per_call"] / out["aiohttp_cpu_ms_per_call"]
    return out


def main() -> int:
    """Start the stand-in server, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    server.start()
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        print(json.dumps(asyncio.run(run(port, args.calls, args.rounds)), indent=2))
    finally:
        server.terminate()
        server.join(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
