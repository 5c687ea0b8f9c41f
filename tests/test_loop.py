"""`LoopThread`, the loop that sync callers' savers and handlers run on: it stops as `asyncio.run` ends."""

from __future__ import annotations

import asyncio

from langchain_ably_transport.loop import LoopThread


def test_stop_cancels_what_still_runs_and_lets_it_finish_before_closing_the_loop():
    """A task still pending when the loop closes would be destroyed with it, and say so on stderr; an async
    generator left open would never run its cleanup."""
    runner = LoopThread("test-loop")
    cleaned: list[str] = []

    async def waits_forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("task")

    async def generator():
        try:
            yield 1
            await asyncio.Event().wait()
        finally:
            cleaned.append("generator")

    async def start() -> asyncio.Task[None]:
        opened = generator()
        await anext(opened)
        runner.opened = opened  # type: ignore[attr-defined]  # kept alive, as a client's would be, until stop
        return asyncio.ensure_future(waits_forever())

    task = runner.run(start())
    runner.stop()
    assert task.cancelled(), "cancelled and finished, not left pending"
    assert sorted(cleaned) == ["generator", "task"]
    assert runner.loop.is_closed()
