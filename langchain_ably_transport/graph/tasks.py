"""A graph task's `data-task` part: `running`, then `done`, `error` or `interrupted`, at one message per task when it
can be.

Each part is a message of its own, billed. A task that ends within `RUNNING_PART_DELAY_S` of starting (a router, a
node that only updates the state) shows only its end: one message instead of two. A longer task's `running` part
goes out once it has run that long, so a slow, silent node (a tool, a retrieval) still shows as running. A task
whose output streams before then (a model's answer) needs no `running` part either: its text shows it running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ..codec.langchain import data_chunk

TASK_PART = "task"
RUNNING_PART_DELAY_S = 0.25
DUE = None
"""What `HeldRunningParts.events` yields when held parts are due: no graph event, only time passing."""


def task_chunk(namespace: tuple[str, ...], task: dict[str, Any], agent: str | None = None) -> dict[str, Any]:
    """A `data-task` part for a graph task (node run), from LangGraph's `tasks` stream.

    The part's id is the task id, so a client's view replaces it in place and always shows each node's
    latest state; `namespace` says which (sub)graph the node belongs to, and `agent` (set for a sub-agent's
    tasks only) which agent.
    """
    if "result" not in task and "error" not in task:
        status = "running"
    elif task.get("error"):
        status = "error"
    elif task.get("interrupts"):
        status = "interrupted"
    else:
        status = "done"
    data: dict[str, Any] = {"node": task.get("name"), "namespace": list(namespace), "status": status}
    if agent is not None:
        data["agent"] = agent
    return data_chunk(TASK_PART, data, id=str(task.get("id")))


class HeldRunningParts:
    """`running` parts waiting `delay` seconds for their task to end first."""

    def __init__(self, delay: float = RUNNING_PART_DELAY_S) -> None:
        self._delay = delay
        self._held: dict[str, tuple[float, dict[str, Any]]] = {}

    def add(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The parts to publish now for `chunk`, a task part: none for a `running` one (held), the end part alone
        for a task whose `running` part is still held, else the part itself."""
        task_id = str(chunk.get("id"))
        if chunk["data"]["status"] == "running" and self._delay > 0:
            self._held[task_id] = (asyncio.get_running_loop().time() + self._delay, chunk)
            return []
        self._held.pop(task_id, None)
        return [chunk]

    def shown(self, task_id: str) -> None:
        """The task's own output is on its way: the client sees it running without a part for it."""
        self._held.pop(task_id, None)

    def due(self) -> list[dict[str, Any]]:
        """The held parts whose task has run `delay` seconds, to publish now."""
        now = asyncio.get_running_loop().time()
        due = [task_id for task_id, (at, _) in self._held.items() if at <= now]
        return [self._held.pop(task_id)[1] for task_id in due]

    async def events(self, source: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """`source`'s items, and `DUE` whenever held parts come due between them. While nothing is held, items
        are awaited directly (no task per item): only a task's first `delay` seconds take the slower path."""
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                if pending is None and not self._held:
                    try:
                        yield await anext(source)
                    except StopAsyncIteration:
                        return
                    continue
                if pending is None:
                    pending = asyncio.ensure_future(anext(source))
                timeout = max(0.0, min(at for at, _ in self._held.values()) - asyncio.get_running_loop().time()) \
                    if self._held else None
                done, _ = await asyncio.wait({pending}, timeout=timeout)
                if not done:
                    yield DUE
                    continue
                finished, pending = pending, None
                try:
                    yield finished.result()
                except StopAsyncIteration:
                    return
        finally:  # closed early (a cancelled run): the graph's step in flight stops before this returns
            if pending is not None:
                pending.cancel()
                await asyncio.wait({pending})
