"""A bare protocol client (aiohttp WebSocket, JSON frames) for what no genuine SDK would send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgpack

from langchain_ably_transport.devserver import RunningServer


class RawConnection:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, dict):
            await self.ws.send_str(json.dumps(frame))
        elif isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def expect(self, action: int, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame of `action`, skipping heartbeats; fails if the socket closes first."""
        while True:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
            if message.type == aiohttp.WSMsgType.BINARY:
                frame = msgpack.unpackb(message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                frame = json.loads(message.data)
            else:
                raise AssertionError(f"socket ended while waiting for action {action}: {message.type}")
            if frame["action"] == action:
                return frame
            if frame["action"] not in (0, 11, 16):
                raise AssertionError(f"expected action {action}, got {frame}")

    async def messages(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next `count` messages delivered, across MESSAGE frames (the server bundles neighbours into one frame,
        as Ably does)."""
        messages: list[dict[str, Any]] = []
        while len(messages) < count:
            messages += (await self.expect(15, timeout))["messages"]
        assert len(messages) == count, f"{len(messages) - count} more messages than expected: {messages}"
        return messages

    async def closed(self, timeout: float = 5.0) -> bool:
        while True:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return True


@asynccontextmanager
async def raw_connection(server: RunningServer, **params: str) -> AsyncIterator[RawConnection]:
    """A raw socket authenticated with the server's key unless `key`/`accessToken` say otherwise."""
    query = {"v": "5", **params}
    if "accessToken" not in query:
        query.setdefault("key", server.key)
    url = server.url.replace("http", "ws", 1) + "/"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, params=query) as ws:
        yield RawConnection(ws)
