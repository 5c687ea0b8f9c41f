"""The runs a replica serves in the background: a concurrency limit, their outcomes, and a graceful drain.

An invocation is answered 202 at once and served by a task of its own; the client follows the answer on the
channel. `RunSupervisor` admits a task while fewer than `max_runs` are active, counts what each ended as, and on
shutdown (`drain`) refuses new work, lets active runs finish within a grace period, then stops the rest
(`serve_graph(stop=)`: each ends `error`, so none is left streaming) and, as a last resort, cancels them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from enum import StrEnum

from ..graph import GraphRunResult
from ..wire.invocation import Invocation

log = logging.getLogger(__name__)

STOP_WAIT_S = 10.0  # how long stopped runs get to publish their end before their tasks are cancelled


class Admission(StrEnum):
    """Whether an invocation was taken, and if not, why."""

    ACCEPTED = "accepted"
    BUSY = "busy"  # the replica serves `max_runs` already: 429
    DRAINING = "draining"  # the replica is shutting down: 503


Serve = Callable[[Invocation, asyncio.Event], Awaitable[GraphRunResult]]


class RunSupervisor:
    """Admits, tracks and drains the background tasks that serve invocations."""

    def __init__(self, serve: Serve, max_runs: int) -> None:
        self._serve = serve
        self._max_runs = max_runs
        self._tasks: set[asyncio.Task[None]] = set()
        self.stop = asyncio.Event()
        self.draining = False
        self.outcomes: Counter[str] = Counter()

    @property
    def active(self) -> int:
        return len(self._tasks)

    def admit(self, invocation: Invocation) -> Admission:
        if self.draining:
            return Admission.DRAINING
        if len(self._tasks) >= self._max_runs:
            return Admission.BUSY
        task = asyncio.ensure_future(self._run(invocation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Admission.ACCEPTED

    async def _run(self, invocation: Invocation) -> None:
        try:
            result = await self._serve(invocation, self.stop)
        except Exception:  # serve_graph does not raise for a run; anything that does is a bug, logged, counted
            log.exception("serving %s on %s failed", invocation.input_event_id, invocation.session_name)
            self.outcomes["failed"] += 1
            return
        self.outcomes[result.outcome] += 1
        log.info("run %s on %s: %s", result.run_id, invocation.session_name, result.outcome)

    async def drain(self, grace_period_s: float) -> None:
        """Refuse new invocations, give active runs `grace_period_s` to finish, then stop the others."""
        self.draining = True
        if self._tasks:
            log.info("draining: %d runs active, %.0f s to finish", len(self._tasks), grace_period_s)
            await asyncio.wait(set(self._tasks), timeout=grace_period_s)
        if self._tasks:
            log.warning("draining: stopping %d runs still active after the grace period", len(self._tasks))
            self.stop.set()
            await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_S)
        for task in set(self._tasks):  # a run waiting its turn (double texting) has not started: nothing streams
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_S)
