"""`connect()`: a configured `ably.AblyRealtime`, with the ably-python defects this package meets hidden here.

Every component of the package takes such a client. ably-python 3.1.4 has two defects that matter off the
standard Ably hosts, and this module is the only place that knows about them:

1. Its WebSocket URL ignores `port`/`tls_port` (REST honours them), so a server on any port but 80/443 is
   unreachable; `_websocket_url_with_port` fixes the URL for the affected versions.
2. It refuses Basic (API key) auth on REST over plain HTTP (error 40103), and realtime history goes over
   REST, so on an `http://` endpoint a key is used to request tokens instead (`use_token_auth`); its token
   requests then omit the `client_id` option unless it is also a default token parameter.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ably
from ably import AblyRealtime
from ably.http.httputils import HttpUtils
from ably.transport import websockettransport
from ably.types.connectionstate import ConnectionState

from .errors import ConfigurationError, ConnectionFailedError

ENV_KEY = "ABLY_API_KEY"
ENV_ENDPOINT = "ABLY_ENDPOINT"
# Versions whose WebSocketTransport.connect builds `ws://{host}?{query}` with no port.
PORTLESS_WEBSOCKET_VERSIONS = ("3.1.",)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def client_options(
    key: str | None = None, endpoint: str | None = None, client_id: str | None = None, **ably_options: Any
) -> dict[str, Any]:
    """The `AblyRealtime` keyword arguments for a key and endpoint (arguments first, then the environment).

    `endpoint` is an Ably routing policy name or host (as ably-python takes it), or a URL such as
    `http://127.0.0.1:8080`, whose scheme selects TLS and whose port is honoured.
    """
    key = key or os.environ.get(ENV_KEY) or None
    endpoint = endpoint or os.environ.get(ENV_ENDPOINT) or None
    has_token_auth = any(ably_options.get(o) for o in ("token", "token_details", "auth_callback", "auth_url"))
    if key is None and not has_token_auth:
        raise ConfigurationError(
            f"No Ably credentials: pass key=, set {ENV_KEY}, or pass token=/auth_callback=/auth_url="
        )
    options: dict[str, Any] = {**_endpoint_options(endpoint), **ably_options}
    if client_id is not None:
        options["client_id"] = client_id
    if key is not None:
        options["key"] = key
        if options.get("tls") is False and "use_token_auth" not in options:
            options.update(_token_auth_from_key(client_id, options.get("default_token_params")))
    return options


def _token_auth_from_key(client_id: str | None, token_params: dict[str, Any] | None) -> dict[str, Any]:
    """Sign token requests with the key instead of sending it; 3.1.4 leaves clientId out unless told."""
    params = dict(token_params or {})
    if client_id is not None:
        params.setdefault("client_id", client_id)
    return {"use_token_auth": True, "default_token_params": params}


def _endpoint_options(endpoint: str | None) -> dict[str, Any]:
    if endpoint is None:
        return {}
    if "://" not in endpoint:
        return {"endpoint": endpoint}
    url = urllib.parse.urlsplit(endpoint)
    if url.scheme not in _DEFAULT_PORTS or not url.hostname:
        raise ConfigurationError(f"An endpoint URL is http://host:port or https://host:port, not {endpoint!r}")
    port = url.port or _DEFAULT_PORTS[url.scheme]
    if url.scheme == "https":
        return {"endpoint": url.hostname, "tls": True, "tls_port": port}
    return {"endpoint": url.hostname, "tls": False, "port": port}


@asynccontextmanager
async def connect(
    key: str | None = None,
    endpoint: str | None = None,
    client_id: str | None = None,
    *,
    connect_timeout: float = 15.0,
    **ably_options: Any,
) -> AsyncIterator[AblyRealtime]:
    """`async with connect() as client:` an `AblyRealtime` that is CONNECTED, closed on exit.

    Reads `ABLY_API_KEY` and `ABLY_ENDPOINT` when `key`/`endpoint` are absent; other keyword arguments
    are ably-python client options. Raises `ConnectionFailedError` with Ably's error code when the
    connection fails or does not connect within `connect_timeout` seconds.
    """
    options = client_options(key, endpoint, client_id, **ably_options)
    install_sdk_fixes()
    client = AblyRealtime(**options)
    try:
        await _connected(client, connect_timeout)
        yield client
    finally:
        await client.close()


async def _connected(client: AblyRealtime, timeout: float) -> None:
    connection = client.connection
    if connection.state == ConnectionState.CONNECTED:
        return
    outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_state(change: Any) -> None:
        if outcome.done():
            return
        if change.current == ConnectionState.CONNECTED:
            outcome.set_result(None)
        elif change.current in (ConnectionState.FAILED, ConnectionState.SUSPENDED, ConnectionState.CLOSED):
            outcome.set_exception(_connection_error(change.reason, change.current))
        elif change.current == ConnectionState.DISCONNECTED and _is_auth_refusal(change.reason):
            # The SDK would retry forever with the same credentials; a caller wants to know now.
            outcome.set_exception(_connection_error(change.reason, "credentials refused; check the API key"))

    connection.on(on_state)
    try:
        await asyncio.wait_for(outcome, timeout)
    except TimeoutError:
        raise _connection_error(connection.error_reason, f"not connected after {timeout:g} s") from None
    finally:
        connection.off(on_state)


def _is_auth_refusal(reason: Any) -> bool:
    """A 401 that renewing a token cannot cure (40140-40149 can), or 80019: ably-python's wrapper for a
    refused token request, which with a key means the key itself is wrong."""
    code = getattr(reason, "code", None) or 0
    renewable = 40140 <= code <= 40149
    return code == 80019 or (getattr(reason, "status_code", None) == 401 and not renewable)


def _connection_error(reason: Any, state: object) -> ConnectionFailedError:
    code = getattr(reason, "code", None)
    return ConnectionFailedError(
        f"Ably connection failed ({state}): {getattr(reason, 'message', reason) or 'no reason given'}",
        code=code,
        status_code=getattr(reason, "status_code", None),
    )


def attach_serial(channel: Any) -> str | None:
    """The channelSerial of a channel's last attach: the point up to which history precedes live delivery.

    ably-python 3.1.4 keeps it private and has no `history(untilAttach=True)`; ably-js sends the same value
    as the `from_serial` history parameter.
    """
    return getattr(channel, "_RealtimeChannel__attach_serial", None)


def install_sdk_fixes() -> None:
    """Apply the WebSocket port fix when the installed ably-python needs it; idempotent."""
    transport = websockettransport.WebSocketTransport
    if ably.lib_version.startswith(PORTLESS_WEBSOCKET_VERSIONS) and transport.connect is not _connect_with_port:
        transport.connect = _connect_with_port  # type: ignore[method-assign]


def _websocket_url_with_port(tls: bool, host: str, port: int | None, params: dict[str, Any]) -> str:
    scheme = "wss" if tls else "ws"
    netloc = host if port in (None, 443 if tls else 80) else f"{host}:{port}"
    return f"{scheme}://{netloc}?{urllib.parse.urlencode(params)}"


def _connect_with_port(self: websockettransport.WebSocketTransport) -> None:
    """`WebSocketTransport.connect` of ably-python 3.1.4 with the configured port in the URL.

    The host itself is left alone: on CONNECTED the SDK compares it with the primary host (RTN17e).
    """
    options = self.options
    port = options.tls_port if options.tls else options.port
    url = _websocket_url_with_port(options.tls, self.host, port, self.params)
    self.ws_connect_task = asyncio.create_task(self.ws_connect(url, HttpUtils.default_headers()))
    self.ws_connect_task.add_done_callback(self.on_ws_connect_done)
