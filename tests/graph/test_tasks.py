"""HeldRunningParts: a task's `running` part waits for its end, and is not sent once its output shows."""

from __future__ import annotations

import asyncio

from langchain_ably_transport.graph.tasks import HeldRunningParts, task_chunk


def _part(status: str) -> dict:
    task = {"id": "t1", "name": "chat"} | ({} if status == "running" else {"result": [], "error": None})
    return task_chunk((), task)


async def test_a_running_part_is_held_until_due_and_then_sent():
    parts = HeldRunningParts(delay=0.05)
    assert parts.add(_part("running")) == [] and 0 < parts.due_in() <= 0.05
    await asyncio.sleep(0.06)
    assert parts.due_in() == 0 and [p["data"]["status"] for p in parts.due()] == ["running"]
    assert parts.due_in() is None


async def test_a_task_that_ends_while_held_sends_only_its_end():
    parts = HeldRunningParts(delay=10)
    parts.add(_part("running"))
    assert [p["data"]["status"] for p in parts.add(_part("done"))] == ["done"] and parts.due_in() is None


async def test_a_running_part_that_comes_after_its_tasks_output_is_dropped():
    """Tokens are taken in the model's task, so they can overtake the task's `running` event from the stream."""
    parts = HeldRunningParts(delay=0.01)
    parts.shown("t1")
    assert parts.add(_part("running")) == [] and parts.due_in() is None, "nothing held: the text shows it running"
    assert [p["data"]["status"] for p in parts.add(_part("done"))] == ["done"]
    assert parts.add(_part("running")) == [] and parts.due_in() is not None, "a new run of the id is held again"
