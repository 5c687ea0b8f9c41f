"""Fencing: an agent that was cut off checks that it still holds its run before it publishes again.

Presence leaves some seconds after an agent's connection dies (15 s on Ably), and another process may then adopt
the run (`adoption`). The cut-off agent may come back: a process that was frozen (SIGSTOP, a paused VM, a loop
stalled by blocking code) or a connection that dropped and resumed. Either is a *break*. After a break, a run
publishes nothing more until its session has checked that it still holds it (`AgentSession` does: no other
invocation of this agent on the run in the session's newest history, and a claim of its own that comes first);
if it does not, the run stops and publishes nothing more.

Breaks are departures of the connection from CONNECTED (*drops*), and stalls of the event loop of `STALL_S` or
more (seen by a ticker that runs while a run is active). A frozen process wakes with its timers overdue, so a
publish may come before the ticker runs or the SDK notices its dead socket: the stall is therefore also measured
at each check. A stall alone is first confirmed harmless, once per client and not per run, by a heartbeat round
trip: if the connection answers, unchanged, it lived through the stall, the server never dropped it, and its
presence never left, so no run needs checking (an overloaded process that stalls often pays a ping per stall, not
a history read and a claim per run). On the healthy path a check is two comparisons and publishes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from ably.types.connectionstate import ConnectionState
from ably.util.exceptions import AblyException

from ..sdk.per_client import PerClient
from ..wire.envelope import WireMessage

log = logging.getLogger(__name__)

STALL_S = 2.0  # a loop that did not run for this long may have been cut off (Ably drops presence after 15 s)
TICK_S = 0.25
PING_TIMEOUT_S = 5.0  # how long a heartbeat may take to prove the connection lived through a stall

Mark = tuple[int, int]  # (drops, stalls) as a run last saw them


class Continuity:
    """Counts the drops and stalls of one client's connection and process; a run compares them to its mark."""

    def __init__(self, client: Any) -> None:
        self.drops = 0
        self.stalls = 0
        self._client = weakref.ref(client)
        self._holders = 0
        self._tick = 0.0
        self._ticker: asyncio.TimerHandle | None = None
        self._confirming: tuple[int, asyncio.Future[bool]] | None = None
        client.connection.on(self._on_state)

    def _on_state(self, change: Any) -> None:
        if change.previous == ConnectionState.CONNECTED and change.current != ConnectionState.CONNECTED:
            self.drops += 1

    def mark(self) -> Mark:
        """The counts now: a run holds its run while they stay as they were."""
        self._check_stall()
        return self.drops, self.stalls

    def broken_since(self, mark: Mark) -> bool:
        return self.mark() != mark

    async def lived_through_stalls(self) -> bool:
        """Whether the connection lived through the stalls so far: a heartbeat answered with no drop meanwhile.
        One round trip per stall, shared by every run of the client."""
        if self._confirming is None or self._confirming[0] != self.stalls:
            self._confirming = (self.stalls, asyncio.ensure_future(self._heartbeat()))
        return await asyncio.shield(self._confirming[1])

    async def _heartbeat(self) -> bool:
        client, drops = self._client(), self.drops
        if client is None or client.connection.state != ConnectionState.CONNECTED:
            return False
        try:
            await asyncio.wait_for(client.connection.ping(), PING_TIMEOUT_S)
        except (AblyException, OSError, TimeoutError) as error:  # a dead socket, or no answer in time
            log.info("no heartbeat after a stall (%s): the runs on this connection check that they hold", error)
            return False
        return self.drops == drops

    def hold(self) -> None:
        """A run is active on this client: watch the loop for stalls until it `release`s."""
        self._holders += 1
        if self._ticker is None:
            self._tick = asyncio.get_running_loop().time()
            self._schedule()

    def release(self) -> None:
        self._holders = max(0, self._holders - 1)
        if self._holders == 0 and self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _check_stall(self) -> None:
        if self._ticker is None:
            return
        now = asyncio.get_running_loop().time()
        if now - self._tick >= STALL_S:
            self.stalls += 1
        self._tick = max(self._tick, now - TICK_S)  # one stall counts once

    def _on_tick(self) -> None:
        self._check_stall()
        self._tick = asyncio.get_running_loop().time()
        self._schedule()

    def _schedule(self) -> None:
        self._ticker = asyncio.get_running_loop().call_later(TICK_S, self._on_tick)


_continuities = PerClient(Continuity)


def continuity_of(client: Any) -> Continuity:
    return _continuities.of(client)


Verify = Callable[[], Awaitable[bool]]  # after a break: whether the run is still this process's to publish


class FencedWriter:
    """A run's `codec.ChannelWriter`: the session's writer, behind the run's fence.

    While no break has happened since the run's mark, every call goes straight through (an append returns the
    writer's own future: no task per chunk). After a break, calls queue, and the first verifies once: each is
    issued after the one before it, in order, or, once the run is found lost, not at all (it returns None).
    """

    def __init__(self, writer: Any, continuity: Continuity, verify: Verify) -> None:
        self._writer = writer
        self._continuity = continuity
        self._verify = verify
        self._mark = continuity.mark()
        self._tail: asyncio.Future[None] | None = None  # issued when the newest queued call has been
        self.lost = False

    def _clear(self) -> bool:
        return self._tail is None and not self.lost and not self._continuity.broken_since(self._mark)

    async def _in_order(self, issue: Callable[[], Awaitable[Any]]) -> Any:
        previous, issued = self._tail, asyncio.get_running_loop().create_future()
        self._tail = issued
        pending = None
        try:
            if previous is not None:
                await previous
            if await self._held():
                pending = issue()
        finally:
            issued.set_result(None)
            if self._tail is issued:
                self._tail = None
        return await pending if pending is not None else None

    async def _held(self) -> bool:
        """Whether the run is still ours: after stalls alone, if the connection lived through them; after a drop,
        or stalls it may not have lived through, verified by the session."""
        continuity = self._continuity
        if self.lost or not continuity.broken_since(self._mark):
            return not self.lost
        if continuity.drops == self._mark[0] and await continuity.lived_through_stalls():
            self._mark = (self._mark[0], continuity.stalls)
        if continuity.broken_since(self._mark):
            self._mark = continuity.mark()
            self.lost = not await self._verify()
        return not self.lost

    def publish(self, message: WireMessage) -> Awaitable[str | None]:
        if self._clear():
            return self._writer.publish(message)
        return self._in_order(lambda: self._writer.publish(message))

    def append(self, serial: str, message: WireMessage) -> Awaitable[Any]:
        if self._clear():
            return self._writer.append(serial, message)
        return self._in_order(lambda: self._writer.append(serial, message))

    async def update(self, serial: str, message: WireMessage) -> Any:
        if self._clear():
            return await self._writer.update(serial, message)
        return await self._in_order(lambda: self._writer.update(serial, message))
