"""How the dev server's `Socket` writes: the first frame of a turn at once, the rest by its writer task, in order.

Genuine aiohttp on both sides, in this process: a tiny app hands its WebSocket to a `Socket`, as the realtime server
does, so that the test can hold the server's event loop still and look at the client's socket meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from langchain_ably_transport.devserver.realtime import Socket

FRAME_BYTES = 10_000


@asynccontextmanager
async def socket_pair(*, send_buffer: int | None = None, max_queue: int = 10_000,
                      ) -> AsyncIterator[tuple[Socket, aiohttp.ClientWebSocketResponse]]:
    """A server-side `Socket` and the client's end of it; with `send_buffer`, the server's kernel send buffer is
    that small, so that a client that does not read soon makes the server's writes wait."""
    accepted: asyncio.Future[Socket] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if send_buffer is not None:
            request.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        server_socket = Socket(ws, "json", max_queue=max_queue, after_commit=lambda action: action())
        accepted.set_result(server_socket)
        await server_socket.closed()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/") as client:
            server_socket = await asyncio.wait_for(accepted, 5)
            yield server_socket, client
            server_socket.close_after_sending()
    finally:
        await runner.cleanup()


def frame(index: int, padding: int = 0) -> dict[str, object]:
    return {"action": 0, "id": f"f{index}", "padding": "x" * padding}


def readable(client: aiohttp.ClientWebSocketResponse, timeout: float) -> bool:
    """Whether the client's socket has bytes to read within `timeout`, waited for without letting the loop run."""
    raw = client._response.connection.transport.get_extra_info("socket")  # type: ignore[union-attr]
    return bool(select.select([raw.fileno()], [], [], timeout)[0])


async def received(client: aiohttp.ClientWebSocketResponse, count: int) -> list[str]:
    ids = []
    while len(ids) < count:
        message = await asyncio.wait_for(client.receive(), 10)
        ids.append(json.loads(message.data)["id"])
    return ids


async def test_a_frame_for_an_idle_socket_is_written_in_the_turn_that_makes_it():
    async with socket_pair() as (server_socket, client):
        await asyncio.sleep(0.05)  # the writer task waits for frames: the socket is idle
        server_socket.send_frame(frame(0))
        # The loop does not run here: only a frame written in this turn can reach the client's socket.
        assert readable(client, 2.0), "the frame waited for the writer task's turn"
        assert await received(client, 1) == ["f0"]


async def test_the_frames_after_the_first_of_a_turn_are_written_after_it_in_order():
    async with socket_pair() as (server_socket, client):
        await asyncio.sleep(0.05)
        for index in range(5):
            server_socket.send_frame(frame(index))
        assert await received(client, 5) == [f"f{index}" for index in range(5)]


async def test_frames_for_a_client_that_does_not_read_wait_and_arrive_in_order_once_it_reads():
    count = 300  # about 3 MB: more than the client's and the server's buffers hold, so the server's writes wait
    async with socket_pair(send_buffer=4096) as (server_socket, client):
        await asyncio.sleep(0.05)
        for index in range(count):
            server_socket.send_frame(frame(index, FRAME_BYTES))
            await asyncio.sleep(0)  # each frame in a turn of its own: each one first of its turn
        await asyncio.sleep(0.2)
        assert await received(client, count) == [f"f{index}" for index in range(count)], \
            "a write that waited lost or reordered a frame"


async def test_a_client_that_does_not_read_is_dropped_once_its_queue_is_full_not_buffered_without_end():
    async with socket_pair(send_buffer=4096, max_queue=50) as (server_socket, _client):
        await asyncio.sleep(0.05)
        for index in range(300):
            server_socket.send_frame(frame(index, FRAME_BYTES))
            await asyncio.sleep(0)
        # A write that waits holds the frames behind it in the queue, which fills: the socket is dropped.
        await asyncio.wait_for(server_socket.closed(), 5)
