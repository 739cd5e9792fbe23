"""The update processor: different chats at once, one chat's updates strictly in arrival order."""

from __future__ import annotations

import asyncio

from telegram import Update

from bot.update_order import ChatOrderedProcessor, chat_key


def message_update(update_id: int, chat_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 1_780_000_000,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "A"},
                "text": f"m{update_id}",
            },
        },
        None,
    )


async def run_all(processor: ChatOrderedProcessor, updates: list[Update], delays: dict[int, float]) -> list:
    events: list[tuple[str, int, int]] = []

    async def handle(update: Update) -> None:
        events.append(("start", update.effective_chat.id, update.update_id))
        await asyncio.sleep(delays.get(update.update_id, 0.01))
        events.append(("end", update.effective_chat.id, update.update_id))

    async with processor:
        tasks = [asyncio.create_task(processor.process_update(u, handle(u))) for u in updates]
        await asyncio.gather(*tasks)
    return events


async def test_one_chat_in_order_even_when_the_first_update_is_slow() -> None:
    processor = ChatOrderedProcessor(8)
    updates = [message_update(i, 100) for i in range(1, 6)]
    events = await run_all(processor, updates, {1: 0.05})
    assert events == [(kind, 100, i) for i in range(1, 6) for kind in ("start", "end")]
    assert processor.chats_in_flight == 0  # locks are dropped when a chat is idle


async def test_different_chats_overlap() -> None:
    processor = ChatOrderedProcessor(8)
    updates = [message_update(1, 100), message_update(2, 200), message_update(3, 300)]
    events = await run_all(processor, updates, {1: 0.05, 2: 0.05, 3: 0.05})
    starts = [i for i, e in enumerate(events) if e[0] == "start"]
    assert starts == [0, 1, 2]  # all three started before any ended


async def test_interleaved_chats_keep_each_chats_order_under_a_small_concurrency_limit() -> None:
    processor = ChatOrderedProcessor(2)
    updates = [message_update(i, 100 + i % 3) for i in range(1, 31)]
    events = await run_all(processor, updates, {})
    for chat in (100, 101, 102):
        mine = [e for e in events if e[1] == chat]
        ids = [e[2] for e in mine if e[0] == "start"]
        assert ids == sorted(ids) and len(ids) == 10
        for a, b in zip(mine[::2], mine[1::2], strict=True):  # never two of one chat at once
            assert a[0] == "start" and b[0] == "end" and a[2] == b[2]


async def test_an_error_in_one_update_releases_the_chat() -> None:
    processor = ChatOrderedProcessor(4)

    async def boom() -> None:
        raise RuntimeError("handler failed")

    async def fine(out: list[int]) -> None:
        out.append(1)

    out: list[int] = []
    async with processor:
        first = asyncio.create_task(processor.process_update(message_update(1, 5), boom()))
        second = asyncio.create_task(processor.process_update(message_update(2, 5), fine(out)))
        results = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and out == [1] and processor.chats_in_flight == 0


def test_chat_key() -> None:
    assert chat_key(message_update(1, 42)) == 42
    assert chat_key(object()) is None
    assert chat_key(Update(update_id=3)) is None
