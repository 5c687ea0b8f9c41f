"""A graph task's `data-task` part: `running`, then `done`, `error` or `interrupted`, at one message per task when it
can be.

Each part is a message of its own, billed. A task that ends within `RUNNING_PART_DELAY_S` of starting (a router, a
node that only updates the state) shows only its end: one message instead of two. A longer task's `running` part
goes out once it has run that long, so a slow, silent node (a tool, a retrieval) still shows as running. A task
whose output streams before then (a model's answer) needs no `running` part either: its text shows it running.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..codec.langchain import data_chunk

TASK_PART = "task"
RUNNING_PART_DELAY_S = 0.25


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
        self._shown: set[str] = set()

    def add(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The parts to publish now for `chunk`, a task part: none for a `running` one (held, or dropped when the
        task's output already shows), the end part alone for a task whose `running` part is still held, else the
        part itself."""
        task_id = str(chunk.get("id"))
        if chunk["data"]["status"] == "running":
            if task_id in self._shown:
                return []
            if self._delay > 0:
                self._held[task_id] = (asyncio.get_running_loop().time() + self._delay, chunk)
                return []
        self._held.pop(task_id, None)
        self._shown.discard(task_id)
        return [chunk]

    def shown(self, task_id: str) -> None:
        """The task's own output is on its way: the client sees it running without a part for it."""
        self._held.pop(task_id, None)
        self._shown.add(task_id)

    def due(self) -> list[dict[str, Any]]:
        """The held parts whose task has run `delay` seconds, to publish now."""
        now = asyncio.get_running_loop().time()
        due = [task_id for task_id, (at, _) in self._held.items() if at <= now]
        return [self._held.pop(task_id)[1] for task_id in due]

    def due_in(self) -> float | None:
        """Seconds until the next held part is due (0 when one is); None while nothing is held."""
        if not self._held:
            return None
        return max(0.0, min(at for at, _ in self._held.values()) - asyncio.get_running_loop().time())
