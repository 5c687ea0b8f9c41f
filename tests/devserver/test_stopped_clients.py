"""A client process frozen with SIGSTOP, its TCP connection still open, is noticed: its presence member leaves.

This is what adoption relies on: an agent whose process hangs must leave presence, as on Ably, so that another
one adopts its runs. The frozen client is the genuine ably-python SDK in a child process; the server pings a
silent socket and drops it when no pong comes (`--client-timeout`), and a healthy idle client is never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langchain_ably_transport import connect
from langchain_ably_transport.devserver import RunningServer, spawn

from .helpers import Collector, eventually

CLIENT_TIMEOUT_S = 1.0
LEAVE_DELAY_S = 0.5
MARGIN_S = 3.0
LIMITS = ["--client-timeout", str(CLIENT_TIMEOUT_S), "--presence-leave-delay", str(LEAVE_DELAY_S)]
ENTER, LEAVE = 2, 3

# The replica: enters presence, reports its connection's states, and runs until its stdin closes.
REPLICA = """
import asyncio, sys
from langchain_ably_transport import connect

async def main(url, key, channel):
    async with connect(key, url, client_id="replica") as client:
        manager = client.connection.connection_manager
        client.connection.on(lambda change: print("state", change.current.value, manager.connection_id, flush=True))
        await client.channels.get(channel).presence.enter("working")
        print("entered", manager.connection_id, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main(*sys.argv[1:]))
"""


class Replica:
    """The child process and every line it has printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[list[str]] = []

    async def read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode().split())

    def said(self, *words: str) -> bool:
        return list(words) in self.lines

    @property
    def states(self) -> list[str]:
        return [line[1] for line in self.lines if line[0] == "state"]


@asynccontextmanager
async def replica(server: RunningServer, channel: str) -> AsyncIterator[Replica]:
    """A replica that has entered presence on `channel`; continued if stopped, then ended, on exit."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", REPLICA, server.url, server.key, channel,
                                                   stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    child = Replica(process)
    reading = asyncio.create_task(child.read())
    try:
        await eventually(lambda: any(line[0] == "entered" for line in child.lines), timeout=30,
                         message="the replica did not enter presence")
        yield child
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()
        await asyncio.wait_for(reading, 5)


def actions(events: Collector) -> list[int]:
    return [e.action for e in events.messages if e.client_id == "replica"]


@asynccontextmanager
async def watched_replica(channel_name: str) -> AsyncIterator[tuple[Any, Any, Collector, Replica]]:
    """On a server with short limits: a watcher's client, its channel with the presence events it saw, and a
    replica whose ENTER it has seen."""
    with spawn(args=LIMITS) as server:
        async with connect(server.key, server.url) as watcher:
            watching = watcher.channels.get(channel_name)
            events = Collector()
            await watching.presence.subscribe(events.add)
            async with replica(server, channel_name) as child:
                await eventually(lambda: actions(events) == [ENTER], message="the watcher saw no ENTER")
                yield watcher, watching, events, child


async def test_a_stopped_replica_leaves_presence_and_comes_back_when_continued(channel_name):
    async with watched_replica(channel_name) as (_, watching, events, child):
        connection_id = next(line[1] for line in child.lines if line[0] == "entered")
        os.kill(child.process.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        await eventually(lambda: actions(events) == [ENTER, LEAVE],
                         timeout=CLIENT_TIMEOUT_S + LEAVE_DELAY_S + MARGIN_S,
                         message="the stopped replica's member did not leave")
        assert time.monotonic() - stopped >= LEAVE_DELAY_S, "it left before the leave delay"
        assert await watching.presence.get() == []

        os.kill(child.process.pid, signal.SIGCONT)
        # At once the SDK reads the EOF the server sent while it was stopped ("no close frame received or
        # sent"), reconnects with resume= to the same connection, re-attaches and re-enters (RTP17).
        await eventually(lambda: child.states[-1:] == ["connected"], timeout=20,
                         message="the continued replica did not reconnect")
        assert child.states == ["disconnected", "connecting", "connected"]
        assert child.said("state", "connected", connection_id), "the connection was resumed, not replaced"
        await eventually(lambda: actions(events) == [ENTER, LEAVE, ENTER], timeout=10,
                         message="the continued replica did not re-enter")
        assert [(m.client_id, m.data) for m in await watching.presence.get()] == [("replica", "working")]


async def test_a_healthy_idle_replica_is_never_dropped(channel_name):
    async with watched_replica(channel_name) as (watcher, watching, events, child):
        watcher_id = watcher.connection.connection_manager.connection_id
        await asyncio.sleep(6 * CLIENT_TIMEOUT_S)  # several timeouts: it answers every ping
        assert actions(events) == [ENTER]
        assert child.states == [], "the replica's connection never changed state"
        assert [m.client_id for m in await watching.presence.get()] == ["replica"]
        assert watcher.connection.connection_manager.connection_id == watcher_id
