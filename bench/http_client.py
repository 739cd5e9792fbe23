"""The Bot API client's own cost: PTB's HTTPXRequest against our AiohttpRequest (bot/telegram_request.py).

A minimal Bot API stand-in (aiohttp, answering every call with a sendMessage-sized result) runs in a child
process; this process posts a question-sized sendMessage through PTB's `BaseRequest.post` — form
encoding, the HTTP exchange, PTB's JSON parsing of the answer — with 8 calls in flight (the bot's pool),
alternating the two clients round by round. Reported: this process's CPU and wall time a call, each
client's median over the rounds, and their ratio.

`--reply-path`: no server; the CPU of one reply (a question with a 3-button keyboard) through the reply
path (`bot.updates.replies.send_reply`) against PTB's own `send_message`, on the application's kind of bot
(ExtBot, HTML by default) with an offline request answering an emulator-sized message.

    .venv/bin/python bench/http_client.py
    .venv/bin/python bench/http_client.py --calls 4000 --rounds 5
    .venv/bin/python bench/http_client.py --reply-path
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


async def reply_path(calls: int, rounds: int) -> dict[str, Any]:
    """CPU ms a reply: `send_reply` against PTB's `send_message` (a Message made of each answer), alternating."""
    from telegram.constants import ParseMode
    from telegram.ext import Defaults, ExtBot
    from telegram.request import BaseRequest

    from bot.updates import replies
    from bot.updates.context import OutgoingReply
    from bot.views.buttons import ReplyButton

    class Offline(BaseRequest):
        """Answers every call with the message the emulator would return (keyboard included)."""

        async def initialize(self) -> None:
            """Nothing to open."""

        async def shutdown(self) -> None:
            """Nothing to close."""

        @property
        def read_timeout(self) -> float:
            """Irrelevant offline."""
            return 1.0

        async def do_request(self, url: str, method: str, request_data: Any = None, **_: Any) -> Any:
            """The sent message, as Telegram describes it."""
            fields = request_data.json_parameters
            result = {
                **ANSWER["result"],  # type: ignore[dict-item]
                "from": {"id": 1, "is_bot": True, "first_name": "Báo cáo thôn", "username": "baocao_bot"},
                "entities": [{"offset": 0, "length": 9, "type": "bold"}],
                "reply_markup": json.loads(fields["reply_markup"]),
            }
            return 200, json.dumps({"ok": True, "result": result}).encode()

    bot = ExtBot("1:x", request=Offline(), defaults=Defaults(parse_mode=ParseMode.HTML))
    buttons = (
        (ReplyButton("⬅️ Quay lại", "f:12:3:back"), ReplyButton("⏸ Tạm dừng", "f:12:3:pause")),
        (ReplyButton("📋 Xem lại", "f:12:3:review"),),
    )
    reply = OutgoingReply(text=ANSWER["result"]["text"], buttons=buttons)  # type: ignore[index]

    async def ours() -> None:
        await replies.send_reply(bot, reply, 20_000_001)

    async def ptb() -> None:
        markup = replies.keyboard(reply.buttons)
        await bot.send_message(20_000_001, reply.text, parse_mode=ParseMode.HTML, reply_markup=markup)

    results: dict[str, list[float]] = {"reply_path": [], "ptb_send_message": []}
    for send in (ours, ptb):
        for _ in range(200):  # warm-up
            await send()
    for _ in range(rounds):
        for name, send in (("reply_path", ours), ("ptb_send_message", ptb)):
            cpu = time.process_time()
            for _ in range(calls):
                await send()
            results[name].append(1000 * (time.process_time() - cpu) / calls)
    out: dict[str, Any] = {"calls_per_round": calls, "rounds": rounds}
    for name, values in results.items():
        out[f"{name}_cpu_ms_per_reply"] = statistics.median(values)
    out["ratio_ptb_over_reply_path"] = (
        out["ptb_send_message_cpu_ms_per_reply"] / out["reply_path_cpu_ms_per_reply"]
    )
    return out


def main() -> int:
    """Start the stand-in server, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reply-path", action="store_true", help="the reply path against PTB's send_message")
    args = parser.parse_args()
    if args.reply_path:
        print(json.dumps(asyncio.run(reply_path(args.calls, args.rounds)), indent=2))
        return 0
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
