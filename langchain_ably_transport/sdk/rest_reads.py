"""The SDK's REST reads (GETs: history pages, a message by serial) over keep-alive HTTP/1.1 connections of this
package's own, h11 on asyncio streams, instead of ably-python's httpx client (fix 21 in `fixes`).

A history page read with `client.request` took 1.05 ms of CPU through httpx (its request and response models,
httpcore's pool, anyio, then h11) and takes 0.49 ms here, on the same 2-core machine against the dev server. An agent
reads history twice a run, its session's and its thread's: 11% of its CPU at 200 sessions in `benchmarks/load.py`,
before this. Only what succeeds is done here: a GET to the client's first host,
answered 2xx. An error status (whose handling is the SDK's: a token renewed, fallback hosts, the exception it raises),
a connection that fails or times out, and a client with a proxy configured go the SDK's way, as every read did before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from ably.http import http as ably_http
from ably.http.httputils import HttpUtils
from ably.rest.auth import Auth
from ably.util.exceptions import AblyException

if TYPE_CHECKING:  # h11 is imported where a read is made: httpx imports it only with its first client, too
    import h11

log = logging.getLogger(__name__)
IDLE_KEPT = 4  # idle connections kept per origin: a client's reads seldom overlap more
READ_SIZE = 64 * 1024
_PROXY_SCHEMES = ("http", "https", "all")  # the proxies httpx takes from the environment
_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host, port
MakeRequest = Callable[..., Awaitable[Any]]
_installed = False


class KeepAliveConnections:
    """One SDK client's connections for its reads, kept open between them: at most `IDLE_KEPT` idle per origin,
    all closed with the client."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self._tls = tls
        self._idle: dict[Origin, list[_Connection]] = {}
        self._closed = False

    @classmethod
    def for_client(cls, verify: Any) -> KeepAliveConnections | None:
        """Connections for an SDK client verifying TLS with `verify`, or None when a proxy is configured: httpx
        honours it, and these would not. Without an SSL context to verify with, HTTPS reads go the SDK's way."""
        proxies = urllib.request.getproxies()
        if any(proxies.get(scheme) for scheme in _PROXY_SCHEMES):
            return None
        return cls(verify if isinstance(verify, ssl.SSLContext) else None)

    async def get(self, origin: Origin, target: str, headers: dict[str, str], open_timeout: float,
                  request_timeout: float) -> httpx.Response | None:
        """The 2xx response to GET `target`, or None (an error status, or a failure: logged) for the SDK to do again.
        A kept connection that fails (the server closed it while idle) is dropped and the read tried on the next."""
        import h11

        if self._closed or (origin[0] == "https" and self._tls is None):
            return None
        try:
            request = h11.Request(method="GET", target=target,
                                  headers=[("Host", _host_header(origin)), *headers.items()])
        except h11.LocalProtocolError:  # a header h11 will not send: the SDK's client may
            return None
        while True:
            connection = self._take_idle(origin)
            kept = connection is not None
            try:
                if connection is None:
                    async with asyncio.timeout(open_timeout):
                        connection = await _Connection.open(origin, self._tls)
                async with asyncio.timeout(request_timeout):
                    status, response_headers, body = await connection.exchange(request)
            except (OSError, TimeoutError, h11.ProtocolError) as error:
                if connection is not None:
                    connection.close()
                if kept:
                    continue
                log.debug("GET %s from %s failed here (%r): the SDK reads it", target, origin[1], error)
                return None
            except BaseException:
                if connection is not None:
                    connection.close()
                raise
            self._keep(origin, connection)
            return httpx.Response(status, headers=response_headers, content=body) if 200 <= status < 300 else None

    def close(self) -> None:
        """Close the idle connections; those in use close when their read ends."""
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    def _keep(self, origin: Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if self._closed or len(idle) >= IDLE_KEPT or not connection.next_cycle():
            connection.close()
        else:
            idle.append(connection)


class _Connection:
    """One HTTP/1.1 connection: a request at a time, its response read in full."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h11

        self._reader = reader
        self._writer = writer
        self._protocol = h11.Connection(h11.CLIENT)
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, origin: Origin, tls: ssl.SSLContext | None) -> _Connection:
        scheme, host, port = origin
        reader, writer = await asyncio.open_connection(host, port, ssl=tls if scheme == "https" else None)
        return cls(reader, writer)

    async def exchange(self, request: h11.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send `request`; its response's status, headers and body."""
        import h11

        protocol = self._protocol
        self._writer.write(protocol.send(request) + protocol.send(h11.EndOfMessage()))
        await self._writer.drain()
        status, headers, body = 0, [], []
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(await self._reader.read(READ_SIZE))
            elif isinstance(event, h11.Response):
                status, headers = event.status_code, list(event.headers)
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, b"".join(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the server closed the connection before it answered")

    def usable(self) -> bool:
        """Whether a kept connection may carry another request: the server has not closed it, and it belongs to
        the running loop (a client's reads all run in its loop; this is only a guard)."""
        return not self._reader.at_eof() and self._loop is asyncio.get_running_loop()

    def next_cycle(self) -> bool:
        """Ready for the next request; False when the exchange left the connection unusable (the server's
        `Connection: close`, say)."""
        import h11

        if self._protocol.our_state is not h11.DONE or self._protocol.their_state is not h11.DONE:
            return False
        self._protocol.start_next_cycle()
        return True

    def close(self) -> None:
        self._writer.close()


def install() -> None:
    """Route the SDK's REST reads through `KeepAliveConnections` (its `Http.make_request`), once per process: what
    replaces `make_request` later (a test counting requests) stays above it."""
    global _installed
    if not _installed:
        ably_http.Http.make_request = _reading_kept_alive(ably_http.Http.make_request)  # type: ignore[method-assign]
        _installed = True


def installed() -> bool:
    return _installed


def _reading_kept_alive(make_request: MakeRequest) -> MakeRequest:
    """`Http.make_request`, a GET first tried on the client's kept connections (see the module's docstring)."""

    @functools.wraps(make_request)
    async def make_request_kept_alive(self: ably_http.Http, method: str, path: str, version: str | None = None,
                                      headers: dict[str, str] | None = None, body: Any = None, skip_auth: bool = False,
                                      timeout: Any = None, raise_on_error: bool = True) -> Any:
        connections = getattr(self._Http__client, "reads", None)  # type: ignore[attr-defined]
        if connections is not None and method == "GET" and body is None and path.startswith("/"):
            try:
                response = await _get(self, connections, path, version, headers, skip_auth)
            except AblyException:  # the credentials: the SDK asks again, renewing a token it must
                response = None
            if response is not None:
                return ably_http.Response(response)
        return await make_request(self, method, path, version, headers, body, skip_auth, timeout, raise_on_error)

    return make_request_kept_alive


async def _get(http: ably_http.Http, connections: KeepAliveConnections, path: str, version: str | None,
               headers: dict[str, str] | None, skip_auth: bool) -> httpx.Response | None:
    """GET `path` with the headers and query the SDK would send; None where the SDK must do it."""
    scheme = http.preferred_scheme.lower()
    if not skip_auth and http.auth.auth_mechanism == Auth.Method.BASIC and scheme == "http":
        return None  # the SDK refuses to send a key in the clear (40103)
    request_headers = HttpUtils.default_get_headers(http.options.use_binary_protocol, version=version)
    if not skip_auth:
        request_headers.update(await http.auth._get_auth_headers())
    request_headers.update(headers or {})
    query = HttpUtils.get_query_params(http.options)
    target = f"{path}{'&' if '?' in path else '?'}{urllib.parse.urlencode(query)}" if query else path
    origin = (scheme, http.get_hosts()[0], http.preferred_port)
    return await connections.get(origin, target, request_headers, http.http_open_timeout, http.http_request_timeout)


def _host_header(origin: Origin) -> str:
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return host if _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
