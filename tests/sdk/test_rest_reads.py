"""Fix 21: the SDK's REST reads on kept-alive connections of the client's own, and everything else left to the SDK.

Reads go to the dev server through the genuine SDK; what a server does to a kept connection (closing it idle, not
answering) is played by a plain HTTP/1.1 server on a socket.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from ably import AblyRealtime
from ably.util.exceptions import AblyException

from langchain_ably_transport import connect
from langchain_ably_transport.sdk.rest_reads import KeepAliveConnections

REQUEST_END = b"\r\n\r\n"


class _SdkSends:
    """Counts what the SDK's own httpx client sends, by method."""

    def __init__(self, client: AblyRealtime) -> None:
        self.http = client.http._Http__client  # type: ignore[attr-defined]
        self.methods: list[str] = []
        send = self.http.send

        async def counted(request: Any, *args: Any, **kwargs: Any) -> Any:
            self.methods.append(request.method)
            return await send(request, *args, **kwargs)

        self.http.send = counted


async def _pages(read: Callable[[], Any]) -> list[list[tuple[str, Any]]]:
    page = await read()
    pages = [[(message.serial, message.data) for message in page.items]]
    while page.has_next():
        page = await page.next()
        pages.append([(message.serial, message.data) for message in page.items])
    return pages


@pytest.mark.parametrize("binary", [True, False], ids=["msgpack", "json"])
async def test_history_pages_come_on_a_kept_connection_as_the_sdk_reads_them(server, channel_name, binary):
    async with connect(server.key, server.url, use_binary_protocol=binary) as client:
        channel = client.channels.get(channel_name)
        await channel.attach()
        for n in range(7):
            await channel.publish("n", {"n": n} if n % 2 else f"text {n}")
        sends = _SdkSends(client)

        kept = await _pages(lambda: channel.history(limit=3))
        assert sends.methods == [], "a read went through httpx"
        assert [len(page) for page in kept] == [3, 3, 1]

        sends.http.reads = None  # the SDK's own way, for comparison
        assert await _pages(lambda: channel.history(limit=3)) == kept
        assert sends.methods == ["GET"] * 3


async def test_an_error_status_gets_the_sdks_own_answer(server, channel_name):
    async with connect(server.key, server.url) as client:
        channel = client.channels.get(channel_name)
        sends = _SdkSends(client)
        with pytest.raises(AblyException) as kept:
            await channel.get_message("no-such-serial")
        assert sends.methods == ["GET"], "the SDK did not read it again"

        sends.http.reads = None
        with pytest.raises(AblyException) as sdk:
            await channel.get_message("no-such-serial")
        assert (kept.value.status_code, kept.value.code) == (sdk.value.status_code, sdk.value.code) == (404, 40400)


async def test_a_proxy_in_the_environment_leaves_reads_to_the_sdk(server, channel_name, monkeypatch):
    context = ssl.create_default_context()
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert KeepAliveConnections.for_client(context) is not None, "NO_PROXY alone names no proxy"
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert KeepAliveConnections.for_client(context) is None

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # for the SDK: its WebSocket honours the proxy too
    async with connect(server.key, server.url) as client:
        channel = client.channels.get(channel_name)
        await channel.publish("n", "m")
        sends = _SdkSends(client)
        assert [message.data for message in (await channel.history()).items] == ["m"]
        assert sends.methods == ["GET"]


async def test_closing_the_client_closes_its_kept_connections(server, channel_name):
    async with connect(server.key, server.url) as client:
        channel = client.channels.get(channel_name)
        await channel.history()
        reads = client.http._Http__client.reads  # type: ignore[attr-defined]
        (kept,) = [connection for connections in reads._idle.values() for connection in connections]
    assert kept._writer.transport.is_closing()


@asynccontextmanager
async def _http_server(answer: Callable[[int, int], str], tls: ssl.SSLContext | None = None,
                       ) -> AsyncIterator[tuple[tuple[str, str, int], list[int]]]:
    """A keep-alive HTTP/1.1 server on a socket. `answer(connection, request)` (both counted from 0) says what to do
    with a request: "answer" it, "close" the connection without a word (as a server whose idle timer fired just
    then does), or "hold" it unanswered. Yields its origin and the requests each connection carried."""
    carried: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = len(carried)
        carried.append(0)
        try:
            while await reader.readuntil(REQUEST_END):
                carried[connection] += 1
                what = answer(connection, carried[connection] - 1)
                if what == "close":
                    break
                if what == "hold":
                    await reader.read()  # until the client closes
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    try:
        yield ("https" if tls else "http", "127.0.0.1", listening.sockets[0].getsockname()[1]), carried
    finally:
        listening.close()
        await listening.wait_closed()


@pytest.fixture
def reads() -> Iterator[KeepAliveConnections]:
    """Kept connections for plain HTTP, closed after the test."""
    connections = KeepAliveConnections(None)
    yield connections
    connections.close()


async def test_a_kept_connection_the_server_closed_is_replaced_and_the_read_answered(reads):
    async with _http_server(lambda connection, request: "close" if request == 1 else "answer") as (origin, carried):
        first = await reads.get(origin, "/a", {}, 4, 10)
        second = await reads.get(origin, "/b", {}, 4, 10)  # the kept one is closed on it: a new one answers
    assert first is not None and first.status_code == 200
    assert second is not None and second.json() == []
    assert carried == [2, 1]


async def test_a_read_that_fails_on_a_new_connection_is_left_to_the_sdk(reads):
    async with _http_server(lambda connection, request: "close") as (origin, carried):
        assert await reads.get(origin, "/a", {}, 4, 10) is None
    assert carried == [1]


async def test_a_read_cancelled_midway_keeps_no_half_read_connection(reads):
    async with _http_server(lambda connection, request: "hold" if connection == 0 else "answer") as (origin, carried):
        held = asyncio.ensure_future(reads.get(origin, "/held", {}, 4, 10))
        while not carried:
            await asyncio.sleep(0.01)
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
        answered = await reads.get(origin, "/next", {}, 4, 10)
    assert answered is not None and answered.status_code == 200
    assert carried == [1, 1], "the cancelled read's connection was used again"


async def test_a_read_that_times_out_is_left_to_the_sdk(reads):
    async with _http_server(lambda connection, request: "hold") as (origin, carried):
        assert await reads.get(origin, "/slow", {}, 4, 0.2) is None
    assert carried == [1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key (files), made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


async def test_https_reads_verify_the_servers_certificate(certificate):
    cert, key = certificate
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(cert, key)
    async with _http_server(lambda connection, request: "answer", serving) as (origin, carried):
        trusting = ssl.create_default_context(cafile=cert)
        answered = await (reads := KeepAliveConnections(trusting)).get(origin, "/a", {}, 4, 10)
        reads.close()
        unverified = await (reads := KeepAliveConnections(ssl.create_default_context())).get(origin, "/a", {}, 4, 10)
        reads.close()
        without_context = await (reads := KeepAliveConnections(None)).get(origin, "/a", {}, 4, 10)
        reads.close()
    assert answered is not None and answered.status_code == 200
    assert unverified is None, "a certificate no authority signed was accepted"
    assert without_context is None
    assert carried == [1], "a read went ahead on a connection it could not verify"
