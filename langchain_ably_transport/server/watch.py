"""The sessions a replica served recently, watched so that a run whose replica dies is finished here.

Ably cannot list a namespace's channels cheaply, and a crashed replica tells no one, so each replica watches the
sessions it served in the last `watch_s` seconds (`graph.watch_session`): when presence shows one of their runs
lost, the watchers race to claim it and one adopts it. With a load balancer that spreads a conversation's turns,
the run's earlier replicas are watching when its current one dies. Watching publishes nothing; it holds an
attached channel per session, so at most `max_sessions` are watched and the least recently served makes way.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable

from ..graph import GraphRunResult

log = logging.getLogger(__name__)

Watch = Callable[[str, float, asyncio.Event], Awaitable[list[GraphRunResult]]]  # (session, seconds, stop)


class SessionWatch:
    """One watcher task per recently served session; `adopted` counts what the runs it adopted ended as."""

    def __init__(self, watch: Watch, watch_s: float, max_sessions: int) -> None:
        self._watch = watch
        self._watch_s = watch_s
        self._max_sessions = max_sessions
        self._served: OrderedDict[str, float] = OrderedDict()  # session -> when last served (loop time)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()
        self.adopted: Counter[str] = Counter()

    @property
    def sessions(self) -> int:
        return len(self._tasks)

    def served(self, session_name: str) -> None:
        """`session_name` was just served: watch it for the next `watch_s` seconds."""
        if self._watch_s <= 0 or self._stop.is_set():
            return
        self._served[session_name] = asyncio.get_running_loop().time()
        self._served.move_to_end(session_name)
        if session_name not in self._tasks:
            self._tasks[session_name] = asyncio.ensure_future(self._watching(session_name))
        while len(self._served) > self._max_sessions:
            oldest, _ = self._served.popitem(last=False)
            if (task := self._tasks.pop(oldest, None)) is not None:
                task.cancel()

    async def _watching(self, session_name: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._stop.is_set() and session_name in self._served and \
                    (remaining := self._served[session_name] + self._watch_s - loop.time()) > 0:
                for result in await self._watch(session_name, remaining, self._stop):
                    self.adopted[result.outcome] += 1
        except Exception:  # a watch that fails (a connection gone for good) is logged; the sessions stay served
            log.exception("watching %s for lost runs failed", session_name)
        finally:
            if self._tasks.get(session_name) is asyncio.current_task():
                del self._tasks[session_name]
                self._served.pop(session_name, None)

    async def close(self, timeout: float) -> None:
        """Stop watching: idle watchers end at once, and a run being adopted stops as a drained run does."""
        self._stop.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks.values()), timeout=timeout)
        for task in list(self._tasks.values()):
            task.cancel()
