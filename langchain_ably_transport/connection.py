"""`connect()` and `client_options()`: a configured, CONNECTED `ably.AblyRealtime` from a key and an endpoint.

Every component of the package takes such a client, or one the user built (`sdk.fixes.adopt` checks those). The
SDK's defects are handled in `sdk/`; this module chooses options, rejects an endpoint out of shape before anything
connects, and reports a failed connection in one line that names the endpoint.
"""

from __future__ import annotations

import asyncio
import os
import re
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ably import AblyRealtime
from ably.types.connectionstate import ConnectionState

from . import local
from .errors import RENEWABLE_TOKEN_ERRORS, ConfigurationError, ConnectionFailedError, ErrorCode
from .sdk import fixes

ENV_KEY = "ABLY_API_KEY"
ENV_ENDPOINT = "ABLY_ENDPOINT"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# An Ably routing policy name ("main", "nonprod:sandbox") or a bare host, as ably-python takes `endpoint`.
_ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$")
_URL_SHAPE = "http://host:port or https://host:port"


def client_options(
    key: str | None = None, endpoint: str | None = None, client_id: str | None = None, **ably_options: Any
) -> dict[str, Any]:
    """The `AblyRealtime` keyword arguments for a key and endpoint (arguments first, then the environment).

    `endpoint` is an Ably routing policy name or host (as ably-python takes it), a URL such as
    `http://127.0.0.1:8080`, whose scheme selects TLS and whose port is honoured, or `local`: the local dev
    server of this machine's user, started if it is not running (`local.local_server`), with its own key.
    Raises `ConfigurationError` for missing credentials or an endpoint out of shape.
    """
    endpoint = endpoint or os.environ.get(ENV_ENDPOINT) or None
    if endpoint == local.LOCAL:
        server = local.local_server()
        endpoint, key = server.url, server.key
    key = key or os.environ.get(ENV_KEY) or None
    has_token_auth = any(ably_options.get(o) for o in ("token", "token_details", "auth_callback", "auth_url"))
    if key is None and not has_token_auth:
        raise ConfigurationError(f"No Ably credentials: pass key=, set {ENV_KEY}, or pass token=/auth_callback=/"
                                 f"auth_url=; or set {ENV_ENDPOINT}=local to run on a local dev server")
    options: dict[str, Any] = {**_endpoint_options(endpoint), **ably_options}
    if client_id is not None:
        options["client_id"] = client_id
    if key is not None:
        options["key"] = key
        if options.get("tls") is False:  # the key signs token requests: ably-python refuses it over HTTP (fix 2)
            options.setdefault("use_token_auth", True)
    return options


def _endpoint_options(endpoint: str | None) -> dict[str, Any]:
    if endpoint is None:
        return {}
    if "://" not in endpoint:
        return {"endpoint": _endpoint_name(endpoint)}
    url = urllib.parse.urlsplit(endpoint)
    if url.scheme not in _DEFAULT_PORTS or not url.hostname or url.path not in ("", "/") or url.query:
        raise ConfigurationError(f"The endpoint URL {endpoint!r} is not {_URL_SHAPE}")
    try:
        port = url.port or _DEFAULT_PORTS[url.scheme]
    except ValueError as error:  # not a number, or out of range
        raise ConfigurationError(f"The endpoint URL {endpoint!r} has a bad port ({error}); expected {_URL_SHAPE}") \
            from None
    if url.scheme == "https":
        return {"endpoint": url.hostname, "tls": True, "tls_port": port}
    return {"endpoint": url.hostname, "tls": False, "port": port}


def _endpoint_name(endpoint: str) -> str:
    """A routing policy name or host; a host with a port but no scheme is the likeliest slip, so it is named."""
    if not _ENDPOINT_NAME.match(endpoint):
        raise ConfigurationError(f"The endpoint {endpoint!r} is neither {_URL_SHAPE} nor an Ably routing policy "
                                 "name or host (such as 'main')")
    host, _, port = endpoint.rpartition(":")
    if host and port.isdigit():
        raise ConfigurationError(f"The endpoint {endpoint!r} has a port but no scheme: write http://{endpoint} "
                                 f"(or https://{endpoint})")
    return endpoint


def endpoint_description(options: dict[str, Any]) -> str:
    """Where a client with these options connects, as a user would write it."""
    host = options.get("endpoint")
    if host is None:
        return "Ably's default endpoint"
    if "tls" not in options:
        return f"Ably endpoint {host!r}"
    scheme, port = ("https", options.get("tls_port")) if options["tls"] else ("http", options.get("port"))
    return f"{scheme}://{host}:{port}"


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

    Reads `ABLY_API_KEY` and `ABLY_ENDPOINT` when `key`/`endpoint` are absent (`endpoint="local"`: the local
    dev server); other keyword arguments are ably-python client options. Raises `ConfigurationError` before
    connecting for missing credentials or an endpoint out of shape, and `ConnectionFailedError`, naming the
    endpoint and with Ably's error code, when the connection is refused, fails, or does not connect within
    `connect_timeout` seconds.
    """
    options = client_options(key, endpoint, client_id, **ably_options)
    fixes.install()
    client = AblyRealtime(**options)
    try:
        await _connected(client, connect_timeout, endpoint_description(options))
        yield client
    finally:
        await client.close()


async def _connected(client: AblyRealtime, timeout: float, where: str) -> None:
    connection = client.connection
    if connection.state == ConnectionState.CONNECTED:
        return
    outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_state(change: Any) -> None:
        if not outcome.done():
            failure = _failure(change)
            if change.current == ConnectionState.CONNECTED:
                outcome.set_result(None)
            elif failure is not None:
                outcome.set_exception(_connection_error(where, change.reason, failure))

    connection.on(on_state)
    try:
        await asyncio.wait_for(outcome, timeout)
    except TimeoutError:
        raise _connection_error(where, connection.error_reason, f"not connected after {timeout:g} s") from None
    finally:
        connection.off(on_state)


def _failure(change: Any) -> str | None:
    """Why a state change ends the wait for CONNECTED (None: keep waiting)."""
    if change.current in (ConnectionState.FAILED, ConnectionState.SUSPENDED, ConnectionState.CLOSED):
        return str(change.current)
    if change.current != ConnectionState.DISCONNECTED:
        return None
    # The SDK would retry forever; a caller wants to know now when retrying cannot help.
    if _is_auth_refusal(change.reason):
        return "credentials refused; check the API key"
    if _is_refused(change.reason):
        return "connection refused: nothing is listening there"
    return None


def _is_auth_refusal(reason: Any) -> bool:
    """A 401 that renewing a token cannot cure, or ably-python's wrapper for a refused token request, which with
    a key means the key itself is wrong."""
    code = getattr(reason, "code", None) or 0
    renewable = code in RENEWABLE_TOKEN_ERRORS
    return code == ErrorCode.TOKEN_REQUEST_FAILED or (getattr(reason, "status_code", None) == 401 and not renewable)


def _is_refused(reason: Any) -> bool:
    """The TCP connection was refused: the host answered that no server listens on that port."""
    seen: set[int] = set()
    while reason is not None and id(reason) not in seen:
        if isinstance(reason, ConnectionRefusedError):
            return True
        seen.add(id(reason))
        reason = getattr(reason, "cause", None) or reason.__cause__ or reason.__context__
    return False


def _connection_error(where: str, reason: Any, why: str) -> ConnectionFailedError:
    detail = getattr(reason, "message", reason) or "no reason given"
    return ConnectionFailedError(f"Could not connect to {where} ({why}): {detail}",
                                 code=getattr(reason, "code", None), status_code=getattr(reason, "status_code", None))
