"""What the dev server leaves for Python's collector: an ended connection, freed by reference counting.

The server runs in this process (not `spawn`), so that the test sees its heap; the client is the genuine ably-python
SDK. Under load a garbage connection is costly: it holds the ACKs it remembers for a resume (up to 1,000), and a
load test that ends hundreds of them gave the server a collection of 432,715 objects that stalled it for 1.2 s.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langchain_ably_transport import connect
from langchain_ably_transport.devserver.app import DevServer
from langchain_ably_transport.devserver.config import ServerConfig
from langchain_ably_transport.devserver.rollup import STREAM_CLOCKS_KEPT, AppendRollup

from .helpers import eventually

SERVER_MODULE = "langchain_ably_transport.devserver."


@asynccontextmanager
async def server_here() -> AsyncIterator[tuple[DevServer, str]]:
    server = DevServer(ServerConfig(data_path=":memory:"))
    url = await server.start(port=0)
    try:
        yield server, url
    finally:
        await server.stop()


def server_garbage() -> list[str]:
    """The dev server's objects that a full collection finds only in reference cycles, by type."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
    finally:
        gc.set_debug(0)
    found = [f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage]
    gc.garbage.clear()
    gc.collect()
    return [name for name in found if name.startswith(SERVER_MODULE)]


async def test_a_connection_that_published_and_closed_leaves_the_server_nothing_for_the_collector(channel_name):
    """Before the fix, its session held its append rollup, which held the session's methods: the session, its
    connection with every ACK it remembered, its socket and its rate limiters waited for the collector."""
    async with server_here() as (server, url):
        server_garbage()  # what starting the server left
        async with connect(str(server.config.keys[0]), url) as client:
            channel = client.channels.get(channel_name)
            for index in range(20):
                await channel.publish("m", str(index))
        await eventually(lambda: server.connections == 0, message="the closed connection is discarded")
        assert server_garbage() == []


async def test_a_connection_forgets_the_clocks_of_streams_out_of_their_window():
    """A connection's rollup keeps a last-sent time for each stream it appends to, and a pool's connection lives for
    hours and serves thousands of streams: the times of streams a window old (as good as never sent) are dropped."""
    def append(serial: str) -> dict:
        return {"action": 15, "channel": "c", "messages": [{"action": 5, "serial": serial, "data": "x"}]}

    rollup = AppendRollup(0.05, lambda frame, serial: ["v"], lambda serial, result: None)
    for turn in range(10):
        for index in range(STREAM_CLOCKS_KEPT // 2):
            assert not rollup.hold(index, append(f"{turn}-{index}")), "a stream's first append goes out at once"
        assert rollup.hold(-1, append(f"{turn}-0")), "a stream sent within its window still waits for it"
        rollup.flush()
        await asyncio.sleep(0.06)
    assert len(rollup._last_sent) <= STREAM_CLOCKS_KEPT + 1, "kept: the streams of one window (320 without forgetting)"
