"""A channel's mailbox: asyncio.Queue's semantics for what a channel layer uses, and little memory when idle."""

import asyncio
import tracemalloc

import pytest

from chat.backends.channel_mailbox import Mailbox


async def test_items_come_out_in_order():
    mailbox = Mailbox()
    for item in ("a", "b", "c"):
        mailbox.put_nowait(item)

    assert mailbox.qsize() == 3
    assert [await mailbox.get(), mailbox.get_nowait(), await mailbox.get()] == ["a", "b", "c"]
    assert mailbox.empty()


async def test_an_empty_mailbox_refuses_get_nowait_and_first():
    mailbox = Mailbox()

    with pytest.raises(asyncio.QueueEmpty):
        mailbox.get_nowait()
    with pytest.raises(asyncio.QueueEmpty):
        mailbox.first()


async def test_a_bounded_mailbox_refuses_one_more_and_accepts_again_once_read():
    mailbox = Mailbox(maxsize=2)
    mailbox.put_nowait(1)
    mailbox.put_nowait(2)

    with pytest.raises(asyncio.QueueFull):
        mailbox.put_nowait(3)
    assert mailbox.first() == 1  # left in place
    assert mailbox.get_nowait() == 1
    mailbox.put_nowait(3)
    assert [mailbox.get_nowait(), mailbox.get_nowait()] == [2, 3]


async def test_a_waiting_getter_gets_the_next_item():
    mailbox = Mailbox()
    getter = asyncio.create_task(mailbox.get())
    await asyncio.sleep(0)
    assert not getter.done()

    mailbox.put_nowait("hello")

    assert await asyncio.wait_for(getter, 1) == "hello"


async def test_waiting_getters_are_served_first_come_first_served():
    mailbox = Mailbox()
    first, second = asyncio.create_task(mailbox.get()), asyncio.create_task(mailbox.get())
    await asyncio.sleep(0)

    mailbox.put_nowait(1)
    mailbox.put_nowait(2)

    assert await asyncio.wait_for(asyncio.gather(first, second), 1) == [1, 2]


async def test_a_getter_cancelled_after_being_woken_passes_the_item_on():
    mailbox = Mailbox()
    first, second = asyncio.create_task(mailbox.get()), asyncio.create_task(mailbox.get())
    await asyncio.sleep(0)

    mailbox.put_nowait("only")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs

    assert await asyncio.wait_for(second, 1) == "only"
    assert first.cancelled()
    assert mailbox.empty()


async def test_a_cancelled_getter_leaves_nothing_behind():
    mailbox = Mailbox()
    getter = asyncio.create_task(mailbox.get())
    await asyncio.sleep(0)
    getter.cancel()
    await asyncio.sleep(0)

    mailbox.put_nowait("later")

    assert mailbox.get_nowait() == "later"


async def test_an_idle_mailbox_with_a_waiting_getter_is_a_fraction_of_an_asyncio_queue():
    async def held(make, count=200):
        tracemalloc.start()
        try:
            boxes = [make() for _ in range(count)]
            for box in boxes:  # as a layer uses them: a message came and went, a receiver waits
                box.put_nowait("x")
                box.get_nowait()
            getters = [asyncio.create_task(box.get()) for box in boxes]
            await asyncio.sleep(0)
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        for getter in getters:
            getter.cancel()
        await asyncio.gather(*getters, return_exceptions=True)
        return size / count

    mailbox, queue = await held(Mailbox), await held(asyncio.Queue)

    assert mailbox < queue / 3, (mailbox, queue)
