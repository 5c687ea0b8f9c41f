"""The defects of ably-python 3.1 that this package meets, and what replaces each: the one place that patches the SDK.

`adopt(client)` is called on every `AblyRealtime` the package is handed, the user's own included: `pacer_for`,
through which every publish passes, calls it the first time it sees a client, and `connect()` before it builds
one. It checks the installed version (`SUPPORTED_VERSIONS`; any other raises `UnsupportedSdkError`), installs the
class-level replacements once, and fixes or refuses the client's own options. Each defect has an upstream report
in docs/ably-python-fixes.md.

Each fix: what ably-python 3.1.4 does, what replaces it, and the test that proves it.

1. Its WebSocket URL leaves out `port`/`tls_port` (REST honours them): a server on any port but 80/443 is
   unreachable. `_connect_with_port`. tests/test_connection.py::test_connect_reaches_a_server_on_a_non_default_port
2. It refuses Basic (key) auth on REST over plain HTTP (40103), and realtime history goes over REST; with
   `use_token_auth`, its token requests omit `client_id` unless it is a default token parameter.
   `token_auth_from_key` (options); `adopt` refuses a client that sends its key over plain HTTP.
   tests/sdk/test_fixes.py::test_a_user_built_client_with_a_key_over_plain_http_is_refused_with_how_to_fix_it
3. `ConnectionDetails` drops `maxInboundRate`, the publish rate the server allows, which the pacer keeps to.
   `_details_with_inbound_rate`. tests/sdk/test_fixes.py::test_the_publish_rate_the_server_announces_is_kept
4. Its queue of messages in flight breaks across reconnections: duplicates, wrong ACKs, messages lost on token
   expiry, `msgSerial` collisions after a connection that could not be resumed. `outbox`.
   tests/faults/test_socket_drops.py, tests/faults/test_token_expiry.py, tests/faults/test_server_crash.py
5. A token string from `auth_callback` is taken to carry clientId None when `client_id` is set, and the
   connection fails (40102, surfacing as 80019). `tokens_for_client`. tests/faults/test_token_expiry.py
   (its callbacks return JWT strings), tests/sdk/test_fixes.py::test_a_user_built_client_survives_token_expiry
6. Every REST request (history: each session open and checkpoint read) re-sends an unchanged token on the
   realtime connection (AUTH), and each CONNECTED answering it re-attaches every channel: attach storms under
   load. `_authorize_when_necessary`. tests/sdk/test_fixes.py::test_rest_requests_do_not_reauthorise_the_connection
7. `EventEmitter.off` sets the listener's entry to None instead of removing it, so an emitter keeps every
   listener ever removed (a channel that lives on keeps every session that watched it). `_off_and_forget`.
   tests/test_connection.py::test_a_listener_removed_from_a_channel_that_lives_on_is_not_kept
8. A connect that fails (refused, a bad host) leaves its task's error unretrieved, so asyncio prints "Task
   exception was never retrieved" with a traceback on the user's terminal. `_take_failure`.
   tests/test_connection.py::test_a_refused_port_fails_fast_in_one_line_without_a_stray_traceback

The replacements are class-level, so they reach clients built before `adopt`, with one limit: a client that
connected before has no `maxInboundRate` until it next connects, and is paced at Ably's 50 msg/s meanwhile.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import ably
from ably import AblyRealtime
from ably.http.httputils import HttpUtils
from ably.rest.auth import Auth
from ably.transport import websockettransport
from ably.types.connectiondetails import ConnectionDetails
from ably.types.tokendetails import TokenDetails
from ably.util.eventemitter import EventEmitter

from ..errors import ConfigurationError, UnsupportedSdkError
from . import outbox

SUPPORTED_VERSIONS = ("3.1.",)  # the versions whose code these replacements were written against
_ADOPTED = "_langchain_ably_transport_adopted"


def check_version(version: str | None = None) -> None:
    """Raise `UnsupportedSdkError` unless ably-python's version is one the replacements were checked against."""
    version = version or ably.lib_version
    if not version.startswith(SUPPORTED_VERSIONS):
        raise UnsupportedSdkError(
            f"ably-python {version} is installed; langchain-ably-transport works around the defects of "
            f"{', '.join(v + 'x' for v in SUPPORTED_VERSIONS)} only: pip install 'ably>=3.1.4,<3.2'")


def install() -> None:
    """Install the class-level replacements (1, 3, 4, 6, 7) once; idempotent."""
    check_version()
    transport = websockettransport.WebSocketTransport
    if transport.connect is not _connect_with_port:
        transport.connect = _connect_with_port  # type: ignore[method-assign]
    if not getattr(ConnectionDetails.from_dict, "keeps_inbound_rate", False):
        ConnectionDetails.from_dict = _details_with_inbound_rate(ConnectionDetails.from_dict)  # type: ignore
    outbox.install()
    if Auth._Auth__authorize_when_necessary is not _authorize_when_necessary:  # type: ignore[attr-defined]
        Auth._Auth__authorize_when_necessary = _authorize_when_necessary  # type: ignore[attr-defined]
    if not getattr(EventEmitter.off, "forgets", False):
        EventEmitter.off = _off_and_forget(EventEmitter.off)  # type: ignore[method-assign]


def installed() -> bool:
    return websockettransport.WebSocketTransport.connect is _connect_with_port and outbox.installed()


def adopt(client: AblyRealtime) -> AblyRealtime:
    """Make `client` one the package can rely on: the replacements installed, its `auth_callback` fixed (5), and
    a key over plain HTTP refused (2), with how to build a client that works. Idempotent; returns `client`."""
    if getattr(client, _ADOPTED, False):
        return client
    install()
    options = client.options
    if not options.tls and client.auth.auth_mechanism == Auth.Method.BASIC:
        raise ConfigurationError(
            "This AblyRealtime sends its API key over plain HTTP, which ably-python refuses for history (40103): "
            "build it with AblyRealtime(**client_options(key, endpoint)), or pass use_token_auth=True")
    if options.auth_callback and options.client_id and not getattr(options.auth_callback, "names_client", False):
        options.auth_callback = tokens_for_client(options.auth_callback, options.client_id)
    setattr(client, _ADOPTED, True)
    return client


# --- 2 and 5: options ------------------------------------------------------------------------------------------


def token_auth_from_key(client_id: str | None, token_params: dict[str, Any] | None) -> dict[str, Any]:
    """Options that sign token requests with the key instead of sending it (2); 3.1.4 leaves clientId out of
    them unless it is a default token parameter."""
    params = dict(token_params or {})
    if client_id is not None:
        params.setdefault("client_id", client_id)
    return {"use_token_auth": True, "default_token_params": params}


def tokens_for_client(auth_callback: Any, client_id: str) -> Any:
    """`auth_callback` with the token strings it returns issued to `client_id` (5). The server still checks
    the token."""

    async def token_for_client(token_params: dict[str, Any]) -> Any:
        token = await auth_callback(token_params)
        return TokenDetails(token=token, client_id=client_id) if isinstance(token, str) and token else token

    token_for_client.names_client = True  # type: ignore[attr-defined]
    return token_for_client


# --- 1, 3, 6, 7: class-level replacements ------------------------------------------------------------------------


def websocket_url(tls: bool, host: str, port: int | None, params: dict[str, Any]) -> str:
    scheme = "wss" if tls else "ws"
    netloc = host if port in (None, 443 if tls else 80) else f"{host}:{port}"
    return f"{scheme}://{netloc}?{urllib.parse.urlencode(params)}"


def _connect_with_port(self: websockettransport.WebSocketTransport) -> None:
    """`WebSocketTransport.connect` with the configured port in the URL (1), and its failure taken (8).

    The host itself is left alone: on CONNECTED the SDK compares it with the primary host (RTN17e).
    """
    options = self.options
    port = options.tls_port if options.tls else options.port
    url = websocket_url(options.tls, self.host, port, self.params)
    self.ws_connect_task = asyncio.create_task(self.ws_connect(url, HttpUtils.default_headers()))
    self.ws_connect_task.add_done_callback(self.on_ws_connect_done)
    self.ws_connect_task.add_done_callback(_take_failure)


def _take_failure(task: asyncio.Task[Any]) -> None:
    """Retrieve a failed connect's error: the SDK has already reported it as the connection's state change."""
    if not task.cancelled():
        task.exception()


def _details_with_inbound_rate(from_dict: Any) -> Any:
    """`ConnectionDetails.from_dict`, keeping `maxInboundRate` as `max_inbound_rate` (3)."""

    def parse(json_dict: dict[str, Any]) -> ConnectionDetails:
        details = from_dict(json_dict)
        details.max_inbound_rate = (json_dict or {}).get("maxInboundRate")
        return details

    parse.keeps_inbound_rate = True  # type: ignore[attr-defined]
    return staticmethod(parse)


async def _authorize_when_necessary(self: Auth, token_params: Any = None, auth_options: Any = None,
                                    force: bool = False) -> Any:
    """`Auth.__authorize_when_necessary`, telling the realtime connection only of a new token (6)."""
    previous = self._Auth__token_details  # type: ignore[attr-defined]
    token_details = await self._ensure_valid_auth_credentials(token_params, auth_options, force)
    if self.ably._is_realtime and (force or token_details is not previous):
        await self.ably.connection.connection_manager.on_auth_updated(token_details)
    return token_details


def _off_and_forget(off: Any) -> Any:
    """`EventEmitter.off`, then the removed listener's entry dropped (7)."""

    def off_and_forget(self: EventEmitter, *args: Any) -> None:
        off(self, *args)
        wrapped = self._EventEmitter__wrapped_listeners  # type: ignore[attr-defined]
        if args and wrapped.get(args[-1], False) is None:
            del wrapped[args[-1]]

    off_and_forget.forgets = True  # type: ignore[attr-defined]
    return off_and_forget
