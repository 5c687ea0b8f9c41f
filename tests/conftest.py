"""Fixtures shared by every test: dev servers in child processes and genuine ably-python clients."""

from __future__ import annotations

import asyncio
import gc
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from ably import AblyRealtime, AblyRest
from ably.realtime.connectionmanager import ConnectionManager
from ably.types.connectionstate import ConnectionState

from langchain_ably_transport import client_options, connect
from langchain_ably_transport.devserver import RunningServer, spawn
from langchain_ably_transport.sdk import adopt

ClientFactory = Callable[..., Awaitable[AblyRealtime]]


_LEFT_OPEN = (ConnectionState.CONNECTING, ConnectionState.CONNECTED, ConnectionState.DISCONNECTED,
              ConnectionState.SUSPENDED, ConnectionState.CLOSING)


@pytest.fixture(scope="session", autouse=True)
async def no_client_left_open() -> AsyncIterator[None]:
    """Every client opened in the tests' loop is closed by the end. One left open, or opened again after its
    `close` (as ably-python 3.1.4 did: sdk fixes 19 and 20), retries in the loop for the rest of the run, and its
    tasks disturbed later tests that count tasks."""
    yield
    loop = asyncio.get_running_loop()
    for _ in range(40):  # a close under way finishes first
        left = [manager for manager in gc.get_objects() if isinstance(manager, ConnectionManager)
                and manager.options.loop is loop and manager.state in _LEFT_OPEN]
        if not left:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("clients left open after the tests: " + ", ".join(
        f"{manager.state.value} (client_id {manager.options.client_id!r})" for manager in left))


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """A shared in-memory dev server with Ably's limits except the 50 msg/s publish rate (tests burst)."""
    with spawn(args=["--inbound-rate", "0"]) as running:
        yield running


@pytest.fixture(scope="module")
def strict() -> Iterator[RunningServer]:
    """A dev server that ends a connection sending over 60 protocol messages a second (42924), as Ably ends one that
    floods it: the connection is FAILED for good."""
    with spawn(args=["--protocol-rate", "60"]) as running:
        yield running


async def flood_until_failed(client: AblyRealtime) -> None:
    """Flood `client`'s connection with publishes until `strict` ends it (its owner, such as a pool, may be closing
    it already)."""
    channel = client.channels.get(f"flood:{uuid.uuid4().hex[:6]}")
    await channel.attach()
    publishes = [asyncio.ensure_future(channel.publish("n", "x")) for _ in range(100)]
    await asyncio.wait(publishes, timeout=10)
    for publish in publishes:
        publish.cancel() if not publish.done() else publish.exception()
    assert client.connection.state in (ConnectionState.FAILED, ConnectionState.CLOSING, ConnectionState.CLOSED)
    assert client.connection.error_reason is not None and client.connection.error_reason.code == 42924


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


def user_built_options(server: RunningServer, **options: Any) -> dict[str, Any]:
    """What a user passes to build their own `AblyRealtime` for the dev server, without `client_options()`."""
    address = urllib.parse.urlsplit(server.url)
    built = {"endpoint": address.hostname, "port": address.port, "tls": False, **options}
    if "auth_callback" not in options:
        built.update(key=server.key, use_token_auth=True)
    return built


@pytest.fixture(params=["connect", "user-built"])
async def any_clients(request: pytest.FixtureRequest, server: RunningServer) -> AsyncIterator[ClientFactory]:
    """`clients`, made by `connect()` or built by the user (`AblyRealtime(...)` handed to `sdk.adopt` at once, as
    docs/troubleshooting.md asks of a client built long before the package gets it), connected, closed after."""
    async with AsyncExitStack() as stack:

        async def make(**options: Any) -> AblyRealtime:
            if request.param == "connect":
                key = None if "auth_callback" in options else server.key
                return await stack.enter_async_context(connect(key, server.url, **options))
            client = adopt(AblyRealtime(**user_built_options(server, **options)))
            stack.push_async_callback(client.close)
            await asyncio.wait_for(client.connection.once_async(ConnectionState.CONNECTED), 15)
            return client

        yield make


@pytest.fixture
async def backend(server: RunningServer) -> AsyncIterator[AblyRest]:
    """A web backend of `server`: it holds the key and signs the token requests of browsers and agents."""
    rest = AblyRest(**client_options(server.key, server.url))
    yield rest
    await rest.close()
