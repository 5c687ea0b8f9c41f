"""The chunk source a run pipes from: a cancel interrupts the producer at once or stops the next read, nothing
yielded is dropped, an outside cancel still propagates, and no task is made per chunk. Pure asyncio."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from langchain_ably_transport.session.agent import _CANCELLED, _END, _Source


async def _producer(seen: list[str], *, count: int = 3, pause: float = 0.0):
    try:
        for index in range(count):
            await asyncio.sleep(pause)
            yield {"n": index}
    except asyncio.CancelledError:
        seen.append("cancelled")
        raise
    except GeneratorExit:
        seen.append("closed")
        raise


def _tasks_but_the_sdks() -> set[asyncio.Task[Any]]:
    """The loop's tasks, less the SDK's (ably-python's, and the SDK seam's read loops that stand in for its own):
    the tests share one loop, and other tests' clients' tasks come and go meanwhile."""
    return {task for task in asyncio.all_tasks() if not _in_the_sdk(task)}


def _in_the_sdk(task: asyncio.Task[Any]) -> bool:
    parts = Path(getattr(task.get_coro(), "cr_code", _producer.__code__).co_filename).parts
    return "ably" in parts or ("langchain_ably_transport" in parts and "sdk" in parts)


async def test_chunks_then_the_end_with_one_task_for_the_whole_pass():
    cancelled = asyncio.Event()
    before = len(_tasks_but_the_sdks())
    source = _Source(_producer([], count=200), cancelled)
    got = []
    while (chunk := await source.next()) is not _END:
        got.append(chunk["n"])
        assert len(_tasks_but_the_sdks()) == before + 1, "the watcher only"
    source.close()
    assert got == list(range(200))


async def test_a_cancel_while_waiting_on_the_producer_interrupts_it_at_once():
    cancelled, seen = asyncio.Event(), []
    source = _Source(_producer(seen, pause=10), cancelled)
    asyncio.get_running_loop().call_later(0.05, cancelled.set)
    started = asyncio.get_running_loop().time()
    assert await source.next() is _CANCELLED
    assert asyncio.get_running_loop().time() - started < 1 and seen == ["cancelled"]
    assert asyncio.current_task().cancelling() == 0, "the source withdrew its own cancel"
    await asyncio.sleep(0)  # and the task goes on as usual
    source.close()


async def test_a_cancel_while_the_caller_is_busy_stops_the_next_read_and_keeps_what_was_read():
    cancelled, seen = asyncio.Event(), []
    source = _Source(_producer(seen), cancelled)
    assert await source.next() == {"n": 0}
    cancelled.set()
    await asyncio.sleep(0.01)  # the caller publishing
    assert await source.next() is _CANCELLED and seen == []
    await source.stop_producer()
    assert seen == ["closed"], "the producer, left waiting at its yield, is closed there"
    await source.stop_producer()  # once closed, nothing more
    assert seen == ["closed"]
    source.close()


async def test_a_cancel_from_outside_the_run_propagates():
    cancelled = asyncio.Event()
    source = _Source(_producer([], pause=10), cancelled)
    reading = asyncio.ensure_future(source.next())
    await asyncio.sleep(0.01)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    source.close()
