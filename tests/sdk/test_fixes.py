"""The SDK seam: version-checked, applied to a client the user built, and each fix's behaviour against the dev server.

The drop and token-expiry tests of tests/faults run with user-built clients too (`user_built` there).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from ably import AblyRealtime
from ably.transport.websockettransport import ProtocolMessageAction
from ably.types.channelstate import ChannelState
from ably.types.connectionstate import ConnectionEvent, ConnectionState
from ably.util.exceptions import AblyException

from langchain_ably_transport import AblySaver, ClientSession, ConfigurationError, UnsupportedSdkError, connect
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.devserver.auth import mint_jwt
from langchain_ably_transport.devserver.config import ApiKey
from langchain_ably_transport.sdk import fixes
from langchain_ably_transport.sdk.pacer import inbound_rate

from ..devserver.helpers import eventually


def _host_and_port(url: str) -> tuple[str, int]:
    address = urllib.parse.urlsplit(url)
    return address.hostname or "", address.port or 80


def test_an_unchecked_sdk_version_is_refused_with_how_to_install_a_checked_one():
    fixes.check_version("3.1.4")
    with pytest.raises(UnsupportedSdkError, match=r"ably-python 3\.2\.0 is installed.*'ably>=3\.1\.4,<3\.2'"):
        fixes.check_version("3.2.0")
    assert issubclass(UnsupportedSdkError, ConfigurationError)


async def test_a_user_built_client_with_a_key_over_plain_http_is_refused_with_how_to_fix_it(server, channel_name):
    host, port = _host_and_port(server.url)
    client = AblyRealtime(key=server.key, endpoint=host, port=port, tls=False, auto_connect=False)
    try:
        for hand_over in (lambda: ClientSession(client, channel_name), lambda: AblySaver(client)):
            with pytest.raises(ConfigurationError, match=r"over plain HTTP.*client_options\(key, endpoint\)"):
                hand_over()
    finally:
        await client.close()


def test_a_client_built_before_the_package_is_handed_over_and_connects_with_the_fixes(server):
    """In a fresh interpreter: the fixes are not installed until the package is handed a client; a client the user
    built (on the dev server's port, which 3.1.4 cannot reach unfixed) then works from its first connection."""
    host, port = _host_and_port(server.url)
    script = textwrap.dedent(f"""
        import asyncio
        from ably import AblyRealtime
        from langchain_ably_transport import ClientSession
        from langchain_ably_transport.sdk import fixes

        async def main():
            client = AblyRealtime(key={server.key!r}, endpoint={host!r}, port={port}, tls=False,
                                  use_token_auth=True, client_id="user")
            before = fixes.installed()
            async with ClientSession(client, "user-built:1") as session:
                await session.send("hello")
                assert await session.wait_for(lambda: len(session.view()) == 1, timeout=10)
            print(before, fixes.installed(), client.auth.client_id)
            await client.close()

        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "user"]


async def test_the_publish_rate_the_server_announces_is_kept():
    with spawn(args=["--inbound-rate", "7"]) as limited:
        async with connect(limited.key, limited.url) as client:
            assert client.connection.connection_details.max_inbound_rate == 7
            assert inbound_rate(client) == 7.0


async def test_rest_requests_do_not_reauthorise_the_connection(server, channel_name):
    """With token auth, each history request (every session open, every checkpoint read) used to send the unchanged
    token on the realtime connection, and each CONNECTED answering it re-attached every channel."""
    async with connect(server.key, server.url, client_id="reader") as client:
        updates: list[object] = []

        def on_update(change: object) -> None:
            updates.append(change)

        client.connection.on(ConnectionEvent.UPDATE, on_update)
        channel = client.channels.get(channel_name)
        await channel.attach()
        for _ in range(5):
            await channel.history()
        assert updates == []
        assert channel.state == "attached"


async def test_a_user_built_client_with_a_token_callback_and_a_client_id_connects(server, backend, channel_name):
    """3.1.4 takes a token string's clientId to be None, and refuses the client_id it was built with (40102)."""
    from langchain_ably_transport import issue_token

    async def token(params: object) -> str:
        return issue_token(server.key, client_id="alice")

    host, port = _host_and_port(server.url)
    client = AblyRealtime(auth_callback=token, client_id="alice", endpoint=host, port=port, tls=False)
    try:
        async with ClientSession(client, channel_name) as session:
            await session.send("hi")
            assert await session.wait_for(lambda: len(session.view()) == 1, timeout=10)
        history = await client.channels.get(channel_name).history()
        assert [message.client_id for message in history.items] == ["alice"]
    finally:
        await client.close()


@pytest.mark.parametrize("fixed", [False, True])
def test_a_failed_connection_attempt_prints_no_stray_task_traceback(fixed):
    """3.1.4 closes the transport of a failed attempt in a task that raises; `adopt` makes that close a no-op. The
    unfixed run shows the stray traceback is real, so the fixed run's silence means something."""
    script = textwrap.dedent(f"""
        import asyncio
        from ably import AblyRealtime
        from langchain_ably_transport.sdk import adopt

        async def main():
            client = AblyRealtime(key="a.b:c", endpoint="127.0.0.1:9")  # no such host: every attempt fails
            if {fixed}:
                adopt(client)
            await asyncio.sleep(2)
            await client.close()
            await asyncio.sleep(0.3)

        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ("Task exception was never retrieved" in done.stderr) is not fixed


async def test_a_connection_attempt_given_up_leaves_no_task_waiting():
    """3.1.4's attempt waits for its transport to say connected or failed, and a refused socket says neither: each
    retry left its task waiting for good (4 after 5 attempts, 3 of them still there after `close`)."""
    client = fixes.adopt(AblyRealtime(key="a.b:c", endpoint="127.0.0.1:9", realtime_request_timeout=300,
                                      disconnected_retry_timeout=200))  # no such server: every attempt is refused
    attempts: list[Any] = []
    client.connection.on(ConnectionEvent.CONNECTING, lambda change: attempts.append(change))
    try:
        await eventually(lambda: len(attempts) >= 4, timeout=15)
        assert len(connection_attempts(client)) == 1, "only the attempt under way waits"
    finally:
        await client.close()
    await eventually(lambda: not connection_attempts(client), timeout=2, message="close ends the last one")


@pytest.mark.parametrize("closed_when", ["renewal asked for", "token expired"])
async def test_a_token_renewed_while_the_client_closes_does_not_reopen_it(server, closed_when):
    """3.1.4 reopened a client closed while its token was being renewed: the renewal, when the callback answered,
    reconnected it (an AUTH frame's `authorize`) or retried at once (a token error's), and it stayed connected for
    good. Here every renewal waits until the client is closed."""
    key = ApiKey.parse(server.key)
    asked: list[str] = []
    answer = asyncio.Event()

    async def token(_: dict[str, Any]) -> str:
        asked.append("token")
        if len(asked) > 1:
            await answer.wait()
        return mint_jwt(key, ttl_ms=2000, client_id="renewing")

    async with connect(None, server.url, auth_callback=token, client_id="renewing") as client:
        states: list[str] = []
        client.connection.on(lambda change: states.append(change.current))
        await eventually(lambda: len(asked) > 1, timeout=5)  # the server asks for a new token at half its life
        if closed_when == "token expired":  # its handler asks again, and waits to say DISCONNECTED
            await eventually(lambda: len(asked) > 2, timeout=5)
        assert states == [], "the state changes once a renewal is answered"
        closing = asyncio.ensure_future(client.close())
        await eventually(lambda: ConnectionState.CLOSED in states, timeout=5)
        answer.set()
        await closing
        await asyncio.sleep(0.5)  # a reconnection takes a few milliseconds on this server
        assert states[states.index(ConnectionState.CLOSED):] == [ConnectionState.CLOSED], states
        assert client.connection.state == ConnectionState.CLOSED


async def test_close_cancels_a_retry_timer_another_replaced(clients):
    """Two DISCONNECTEDs before a retry, with the connection restored between them by a token renewal, start two retry
    timers: 3.1.4 kept only the second, and the first opened the closed client when it fired."""
    client = await clients()
    manager = client.connection.connection_manager
    manager.start_retry_timer(300)
    manager.start_retry_timer(300)
    await client.close()
    await asyncio.sleep(0.6)
    assert client.connection.state == ConnectionState.CLOSED


def connection_attempts(client: AblyRealtime) -> list[asyncio.Task[Any]]:
    """The client's own attempts: another client in this loop may be connecting meanwhile."""
    manager = client.connection.connection_manager
    return [task for task in asyncio.all_tasks() if not task.done() and _attempt_of(task) is manager]


def _attempt_of(task: asyncio.Task[Any]) -> Any:
    coroutine: Any = task.get_coro()
    if getattr(coroutine, "__qualname__", "") != "ConnectionManager.connect_base" or coroutine.cr_frame is None:
        return None
    return coroutine.cr_frame.f_locals.get("self")


@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated")  # 3.1.4 logs the late ATTACHED with it
async def test_close_returns_after_the_tasks_its_transport_started_are_done(server):
    """A rare frame's handler is a task; 3.1.4's `close` returned without it, and a loop closed right after
    destroyed it pending. Here the ATTACHED frame's handler is held up 0.3 s: `close` waits for it."""
    async with connect(server.key, server.url) as client:
        transport = client.connection.connection_manager.transport
        handle = transport.on_protocol_message
        handling = asyncio.Event()
        handled: list[Any] = []

        async def slow_attached(frame: dict[str, Any]) -> None:
            if frame.get("action") == ProtocolMessageAction.ATTACHED:
                handling.set()
                await asyncio.sleep(0.3)
                handled.append(frame)
            await handle(frame)

        transport.on_protocol_message = slow_attached
        attaching = asyncio.ensure_future(client.channels.get("slowly-attached").attach())
        await asyncio.wait_for(handling.wait(), 5)
    assert handled, "close returned while the ATTACHED frame's handler still ran"
    attaching.cancel()


@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated")
async def test_a_handler_that_close_gives_up_on_is_cancelled_without_an_error(server, monkeypatch):
    """Past `TRANSPORT_TASKS_WAIT_S`, `close` cancels the handlers still running; 3.1.4's done-callback took the
    cancellation for an error, and asyncio printed "Exception in callback ... CancelledError"."""
    monkeypatch.setattr(fixes, "TRANSPORT_TASKS_WAIT_S", 0.2)
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    cancelled: list[Any] = []
    try:
        async with connect(server.key, server.url) as client:
            transport = client.connection.connection_manager.transport
            handle = transport.on_protocol_message
            handling = asyncio.Event()

            async def stuck_attached(frame: dict[str, Any]) -> None:
                if frame.get("action") == ProtocolMessageAction.ATTACHED:
                    handling.set()
                    try:
                        await asyncio.sleep(30)
                    except asyncio.CancelledError:
                        cancelled.append(frame)
                        raise
                await handle(frame)

            transport.on_protocol_message = stuck_attached
            attaching = asyncio.ensure_future(client.channels.get("never-attached").attach())
            await asyncio.wait_for(handling.wait(), 5)
        await asyncio.sleep(0.05)  # the done-callbacks' turn
    finally:
        loop.set_exception_handler(previous)
    attaching.cancel()
    assert cancelled, "close gave up on the handler"
    assert reported == []


@pytest.fixture(scope="module")
def strict_server() -> Iterator[Any]:
    """A dev server that ends a connection sending over 20 protocol messages a second (42924)."""
    with spawn(args=["--protocol-rate", "20"]) as running:
        yield running


async def test_a_fatal_connection_error_fails_every_publish_in_flight_at_once(strict_server):
    """3.1.4 entered FAILED without failing what waited for an ACK: after the server ended the connection for its
    rate, 81 of 100 publishes still waited 5 s later (until the client was closed), and the channel stayed attached."""
    async with connect(strict_server.key, strict_server.url) as client:
        channel = client.channels.get("flooded")
        await channel.attach()
        publishes = [asyncio.ensure_future(channel.publish("n", "x" * 1000)) for _ in range(100)]
        done, waiting = await asyncio.wait(publishes, timeout=5)
        assert not waiting, f"{len(waiting)} publishes still wait after the connection failed"
        assert client.connection.state == ConnectionState.FAILED
        failures = [publish.exception() for publish in done if publish.exception() is not None]
        assert any(isinstance(error, AblyException) and error.code == 42924 for error in failures), failures[:3]
        assert channel.state == ChannelState.FAILED


def test_closing_a_connection_that_failed_prints_no_stray_task_traceback(strict_server):
    """Closing sends CLOSE in a task no one awaits; on a socket the fatal error closed, 3.1.4's send raised there."""
    script = textwrap.dedent(f"""
        import asyncio
        from langchain_ably_transport import connect

        async def main():
            async with connect({strict_server.key!r}, {strict_server.url!r}) as client:
                channel = client.channels.get("flooded-then-closed")
                await channel.attach()
                publishes = [asyncio.ensure_future(channel.publish("n", "x" * 1000)) for _ in range(100)]
                await asyncio.wait(publishes, timeout=5)
                print(client.connection.state, sum(not p.done() for p in publishes))
                for publish in publishes:
                    publish.cancel() if not publish.done() else publish.exception()
            await asyncio.sleep(0.3)

        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ConnectionState.FAILED", "0"]
    assert "never retrieved" not in done.stderr and "destroyed" not in done.stderr, done.stderr


@contextmanager
def tasks_created() -> Iterator[Counter[str]]:
    """Counts of the tasks the running loop creates meanwhile, by their coroutine's qualified name."""
    loop = asyncio.get_running_loop()
    counts: Counter[str] = Counter()
    previous = loop.get_task_factory()

    def count(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
        counts[getattr(coro, "__qualname__", type(coro).__name__)] += 1
        return asyncio.Task(coro, loop=loop, **options)

    loop.set_task_factory(count)
    try:
        yield counts
    finally:
        loop.set_task_factory(previous)


async def test_frequent_frames_are_handled_without_a_task_each_and_in_order(server, channel_name):
    """Fixes 9 and 10: 100 pipelined publishes bring 100 ACKs (some merged) and 100 echoes; none takes a task of
    its own to handle, nor a new idle timer, and every echo reaches the listener in publish order."""
    async with connect(server.key, server.url) as client:
        channel = client.channels.get(channel_name)
        received: list[str] = []
        await channel.subscribe(lambda message: received.append(message.data))
        transport = client.connection.connection_manager.transport
        idle_timer = transport.idle_timer
        with tasks_created() as counts:
            await asyncio.gather(*(channel.publish("n", f"m{i}") for i in range(100)))
            deadline = asyncio.get_running_loop().time() + 10
            while len(received) < 100 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
    assert received == [f"m{i}" for i in range(100)]
    assert counts["WebSocketTransport.on_protocol_message"] == 0, counts
    assert idle_timer is transport.idle_timer is not None, "the idle timer was replaced"


async def test_frequent_frames_are_handled_in_the_sockets_callback_in_order(server, channel_name, monkeypatch):
    """Fix 15: an ACK or an echo that comes while the read loop waits is handled in the socket's callback (no task is
    current there), not a turn later by the read loop's task; the echoes keep their publish order, and a frame of
    another kind (the DETACHED below) still goes to the read loop."""
    from ably.realtime.connectionmanager import ConnectionManager

    handled_by: list[asyncio.Task[object] | None] = []
    on_ack = ConnectionManager.on_ack

    def recorded(manager: ConnectionManager, serial: int, count: int, res: object) -> None:
        handled_by.append(asyncio.current_task())
        on_ack(manager, serial, count, res)

    monkeypatch.setattr(ConnectionManager, "on_ack", recorded)
    async with connect(server.key, server.url) as client:
        channel = client.channels.get(channel_name)
        received: list[tuple[str, asyncio.Task[object] | None]] = []
        await channel.subscribe(lambda message: received.append((message.data, asyncio.current_task())))
        for i in range(100):
            await channel.publish("n", f"m{i}")  # one at a time: the read loop waits for each ACK
        deadline = asyncio.get_running_loop().time() + 10
        while len(received) < 100 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        await channel.detach()
        assert channel.state == "detached"
    assert [data for data, _ in received] == [f"m{i}" for i in range(100)]
    assert len(handled_by) == 100 and all(task is None for task in handled_by), "every ACK in the socket's callback"
    assert sum(task is None for _, task in received) >= 95, "nearly every echo in the socket's callback"


async def test_the_idle_timer_is_not_replaced_per_frame_and_still_fires(caplog):
    """Fix 10: a server gone silent (SIGSTOP) is noticed within its announced idle interval plus the request
    timeout, as 3.1.4 notices it (which then waits for the WebSocket's closing handshake before it reconnects)."""

    def noticed() -> bool:
        return any("No activity seen from realtime" in record.getMessage() for record in caplog.records)

    with spawn(args=["--max-idle-interval", "1"]) as silent:
        async with connect(silent.key, silent.url, realtime_request_timeout=500) as client:
            channel = client.channels.get("idle-timer")
            await asyncio.gather(*(channel.publish("n", f"m{i}") for i in range(50)))
            silent.process.send_signal(signal.SIGSTOP)
            stopped_at = asyncio.get_running_loop().time()
            try:
                while not noticed() and asyncio.get_running_loop().time() < stopped_at + 10:
                    await asyncio.sleep(0.05)
            finally:
                silent.process.send_signal(signal.SIGCONT)
            noticed_after = asyncio.get_running_loop().time() - stopped_at
    assert noticed(), "the idle timer never fired"
    assert noticed_after < 1.0 + 0.5 + 1.0, f"noticed after {noticed_after:.2f} s"


async def test_clients_share_one_verifying_ssl_context(server, channel_name):
    """Each client's REST requests verify certificates against the CA bundle, as httpx's default does, with a
    context loaded once for all of them (loading it took 20 to 45 ms of the event loop per client); and a client
    still reads history with it."""
    import ssl

    fixes.install()
    host, port = _host_and_port(server.url)
    clients = [AblyRealtime(key=server.key, endpoint=host, port=port, tls=False, use_token_auth=True,
                            auto_connect=False) for _ in range(3)]
    contexts = {id(client.http._Http__client._transport._pool._ssl_context): client.http._Http__client._transport
                ._pool._ssl_context for client in clients}
    [context] = contexts.values()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0, "the CA bundle is loaded"
    assert await clients[0].channels.get(channel_name).history() is not None
    for client in clients:
        await client.close()


async def test_sdk_timers_fire_and_cancel_without_a_task():
    """Fix 12: the SDK's timers (here the channels' own name for `Timer`) call a function or start a coroutine
    function after their timeout, never once cancelled, and take no task to wait."""
    from ably.realtime import channel as realtime_channel

    fixes.install()
    fired: list[str] = []

    async def later() -> None:
        fired.append("coroutine")

    with tasks_created() as counts:
        realtime_channel.Timer(20, lambda: fired.append("function"))
        realtime_channel.Timer(30, later)
        realtime_channel.Timer(10, lambda: fired.append("cancelled")).cancel()
        assert sum(counts.values()) == 0, counts
        await asyncio.sleep(0.1)
    assert fired == ["function", "coroutine"]


async def _collected_until_none_comes() -> None:
    """Collect what earlier tests left to the collector until a collection finds none: a client closed by the test
    before (in the same worker) becomes garbage when its last task ends, which may be during this one."""
    for _ in range(30):
        if not _garbage_in_cycles():
            return
        await asyncio.sleep(0.1)


def _garbage_in_cycles(existing: set[int] | None = None) -> list[str]:
    """What a full collection finds only in reference cycles, by type, from the SDK and the libraries under it; with
    `existing` (the ids of the objects alive before), only what was made since and is not held by what was."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
    finally:
        gc.set_debug(0)
    garbage = list(gc.garbage)
    gc.garbage.clear()
    if existing is not None:
        garbage = _made_since(garbage, existing)
    found = [f"{type(o).__module__}.{type(o).__qualname__}" for o in garbage]
    del garbage
    gc.collect()
    return [name for name in found if name.startswith(("ably.", "httpx.", "httpcore.", "pyee.", "asyncio."))]


def _made_since(garbage: list[object], existing: set[int]) -> list[object]:
    """`garbage` but the objects alive before and what they hold: a client of an earlier test in the same worker can
    become garbage during this one (when its last task ends), with the transports and errors it holds."""
    in_garbage = {id(o) for o in garbage}
    earlier = [o for o in garbage if id(o) in existing]
    held = {id(o) for o in earlier}
    while earlier:
        for referent in gc.get_referents(earlier.pop()):
            if id(referent) in in_garbage and id(referent) not in held:
                held.add(id(referent))
                earlier.append(referent)
    return [o for o in garbage if id(o) not in held]


async def test_channels_and_rest_requests_leave_no_garbage_in_cycles(server, channel_name):
    """Fixes 12 to 14: a channel attached, subscribed, published on, detached and released, and a history page
    read, leave nothing that only the collector would free (3.1.4 left about 140 objects: two cancelled timers'
    tasks, the channel with its presence and emitters, and the response bound to its stream)."""
    async with connect(server.key, server.url) as client:
        await _collected_until_none_comes()
        existing = {id(o) for o in gc.get_objects()}
        channel = client.channels.get(channel_name)
        await channel.attach()
        await channel.subscribe(lambda message: None)
        await channel.publish("n", "m")
        assert len((await channel.history()).items) == 1
        await channel.detach()
        client.channels.release(channel_name)
        del channel
        assert _garbage_in_cycles(existing) == []
