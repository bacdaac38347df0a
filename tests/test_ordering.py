"""Updates: side by side across chats, one at a time and in order within a chat."""

from __future__ import annotations

import asyncio

from telegram import Update

from bot.ordering import PerChatUpdateProcessor


def message_update(update_id: int, chat_id: int, user_id: int) -> Update:
    return Update.de_json({
        "update_id": update_id,
        "message": {"message_id": update_id, "date": 0, "text": "hi",
                    "chat": {"id": chat_id, "type": "group" if chat_id < 0 else "private"},
                    "from": {"id": user_id, "is_bot": False, "first_name": "A"}},
    }, None)


async def test_one_chat_in_order_other_chats_not_held_up() -> None:
    processor = PerChatUpdateProcessor(8)
    done: list[str] = []
    release_first = asyncio.Event()

    async def work(name: str, gate: asyncio.Event | None = None) -> None:
        if gate is not None:
            await gate.wait()
        done.append(name)

    group_a, group_b = -100, -200
    first = asyncio.create_task(processor.process_update(message_update(1, group_a, 1),
                                                         work("a1", release_first)))
    second = asyncio.create_task(processor.process_update(message_update(2, group_a, 2), work("a2")))
    other = asyncio.create_task(processor.process_update(message_update(3, group_b, 3), work("b1")))
    await asyncio.wait_for(other, 5)
    assert done == ["b1"]  # another chat went on while a1 was still being handled
    assert not second.done()  # a2 waits for a1, its chat's earlier update
    release_first.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert done == ["b1", "a1", "a2"]
    assert processor._locks == {}  # nothing kept for chats with nothing queued


async def test_many_updates_of_one_chat_keep_their_order() -> None:
    processor = PerChatUpdateProcessor(4)
    done: list[int] = []

    async def work(n: int) -> None:
        for _ in range(n % 3):  # some yield more often than others
            await asyncio.sleep(0)
        done.append(n)

    await asyncio.gather(*(processor.process_update(message_update(n, -100, n), work(n))
                           for n in range(1, 41)))
    assert done == list(range(1, 41))
