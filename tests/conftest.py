"""Fixtures shared by every test: dev servers in child processes and genuine ably-python clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from ably import AblyRealtime, AblyRest

from langchain_ably_transport import client_options, connect
from langchain_ably_transport.devserver import RunningServer, spawn

ClientFactory = Callable[..., Awaitable[AblyRealtime]]


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """A shared in-memory dev server with Ably's limits except the 50 msg/s publish rate (tests burst)."""
    with spawn(args=["--inbound-rate", "0"]) as running:
        yield running


@pytest.fixture
def channel_name() -> str:
    return f"test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def clients(server: RunningServer) -> AsyncIterator[ClientFactory]:
    """`await clients(client_id="a", use_binary_protocol=False)`: connected clients of `server`, closed after."""
    async with AsyncExitStack() as stack:

        async def make(target: RunningServer | None = None, **options: Any) -> AblyRealtime:
            target = target or server
            key = options.pop("key", target.key)
            return await stack.enter_async_context(connect(key, target.url, **options))

        yield make


@pytest.fixture
async def backend(server: RunningServer) -> AsyncIterator[AblyRest]:
    """A web backend of `server`: it holds the key and signs the token requests of browsers and agents."""
    rest = AblyRest(**client_options(server.key, server.url))
    yield rest
    await rest.close()
