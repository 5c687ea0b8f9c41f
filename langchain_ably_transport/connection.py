"""`connect()`: a configured `ably.AblyRealtime`, with the ably-python defects this package meets hidden here.

Every component of the package takes such a client. ably-python 3.1.4 has six defects that matter here,
and this module is the only place that knows about them:

1. Its WebSocket URL ignores `port`/`tls_port` (REST honours them), so a server on any port but 80/443 is
   unreachable; `_websocket_url_with_port` fixes the URL for the affected versions.
2. It refuses Basic (API key) auth on REST over plain HTTP (error 40103), and realtime history goes over
   REST, so on an `http://` endpoint a key is used to request tokens instead (`use_token_auth`); its token
   requests then omit the `client_id` option unless it is also a default token parameter.
3. Its `ConnectionDetails` drops `maxInboundRate`, the publish rate the server allows the connection, which
   `ratelimit.PublishPacer` keeps to; the fix keeps it as `connection_details.max_inbound_rate`.
4. Its queue of messages in flight breaks across reconnections: a message published while disconnected can
   be sent twice, a write on a socket that just died raises into the caller although the message is sent
   later, messages in flight when a token expires are never resent yet reported ACKed, and after a
   connection that could not be resumed (e.g. the server restarted) old `msgSerial`s collide with new ones,
   so messages are lost or never settle. `_send_protocol_message` and `_send_queued_messages` replace that
   part of the SDK (see them for what is resent and what is refused).
5. An `auth_callback` returning a token string fails to connect when `client_id` is set: the SDK takes the
   string's clientId to be None (40102, surfacing as 80019); `_tokens_for_client` names the clientId.
6. With token auth, every REST request of a realtime client (history, `get_message`: each session open and
   checkpoint read) re-sends the unchanged token on the realtime connection (an AUTH frame), and each CONNECTED
   answering it re-attaches every channel of the connection: under load, attach storms that time attaches
   out (the channel is then SUSPENDED). `_authorize_when_necessary` re-authorises the connection only when
   the token changed.
7. `EventEmitter.off(listener)` sets the listener's entry to None instead of removing it, so an emitter keeps
   every listener ever removed (and what it refers to): a channel that lives on (the liveness channel every
   session watches) would keep every session that ever watched it. `_off_and_forget` removes the entry.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ably
from ably import AblyRealtime
from ably.http.httputils import HttpUtils
from ably.realtime import connectionmanager
from ably.realtime.connectionmanager import PendingMessage
from ably.rest.auth import Auth
from ably.transport import websockettransport
from ably.transport.websockettransport import ProtocolMessageAction
from ably.types.channelstate import ChannelState
from ably.types.connectiondetails import ConnectionDetails
from ably.types.connectionstate import ConnectionState
from ably.types.message import MessageAction
from ably.types.operations import PublishResult
from ably.types.tokendetails import TokenDetails
from ably.util.eventemitter import EventEmitter
from ably.util.exceptions import AblyException
from websockets.exceptions import WebSocketException

from .errors import ConfigurationError, ConnectionFailedError

log = logging.getLogger(__name__)

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
        if options.get("auth_callback"):
            options["auth_callback"] = _tokens_for_client(options["auth_callback"], client_id)
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


def _tokens_for_client(auth_callback: Any, client_id: str) -> Any:
    """`auth_callback` with the token strings it returns issued to `client_id`: 3.1.4 takes a bare token's
    clientId to be None and refuses the change (40102, surfacing as 80019). The server still checks the token."""

    async def token_for_client(token_params: dict[str, Any]) -> Any:
        token = await auth_callback(token_params)
        return TokenDetails(token=token, client_id=client_id) if isinstance(token, str) and token else token

    return token_for_client


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


def release_channel(client: AblyRealtime, channel: Any) -> None:
    """Forget a channel this package is done with: ably-python keeps every channel ever got (about 9 KB each),
    so a long-lived agent would grow with every conversation it served. Only an unattached channel that is
    still the client's own is released: the SDK finds an arriving message's channel by name, and fails on
    a missing one."""
    if channel.state in _RELEASABLE and client.channels._Channels__all.get(channel.name) is channel:
        client.channels.release(channel.name)


_RELEASABLE = (ChannelState.INITIALIZED, ChannelState.DETACHED, ChannelState.FAILED)


def install_sdk_fixes() -> None:
    """Apply the WebSocket port fix when the installed ably-python needs it, keep `maxInboundRate`, replace
    the SDK's handling of messages in flight across reconnections, stop its AUTH storms, and make `off` forget
    the listener; idempotent."""
    transport = websockettransport.WebSocketTransport
    if ably.lib_version.startswith(PORTLESS_WEBSOCKET_VERSIONS) and transport.connect is not _connect_with_port:
        transport.connect = _connect_with_port  # type: ignore[method-assign]
    if not getattr(ConnectionDetails.from_dict, "keeps_inbound_rate", False):
        ConnectionDetails.from_dict = _details_with_inbound_rate(ConnectionDetails.from_dict)  # type: ignore
    _install_outbox()
    if Auth._Auth__authorize_when_necessary is not _authorize_when_necessary:  # type: ignore[attr-defined]
        Auth._Auth__authorize_when_necessary = _authorize_when_necessary  # type: ignore[attr-defined]
    if not getattr(EventEmitter.off, "forgets", False):
        EventEmitter.off = _off_and_forget(EventEmitter.off)  # type: ignore[method-assign]


def _off_and_forget(off: Any) -> Any:
    """ably-python 3.1.4's `EventEmitter.off`, then the removed listener's entry dropped (3.1.4 leaves it, None)."""

    def off_and_forget(self: EventEmitter, *args: Any) -> None:
        off(self, *args)
        wrapped = self._EventEmitter__wrapped_listeners  # type: ignore[attr-defined]
        if args and wrapped.get(args[-1], False) is None:
            del wrapped[args[-1]]

    off_and_forget.forgets = True  # type: ignore[attr-defined]
    return off_and_forget


async def _authorize_when_necessary(self: Auth, token_params: Any = None, auth_options: Any = None,
                                    force: bool = False) -> Any:
    """`Auth.__authorize_when_necessary` of ably-python 3.1.4, telling the realtime connection only of a new
    token (3.1.4 tells it on every REST request, even when the token it has is still the one in use)."""
    previous = self._Auth__token_details  # type: ignore[attr-defined]
    token_details = await self._ensure_valid_auth_credentials(token_params, auth_options, force)
    if self.ably._is_realtime and (force or token_details is not previous):
        await self.ably.connection.connection_manager.on_auth_updated(token_details)
    return token_details


def _details_with_inbound_rate(from_dict: Any) -> Any:
    def parse(json_dict: dict[str, Any]) -> ConnectionDetails:
        details = from_dict(json_dict)
        details.max_inbound_rate = (json_dict or {}).get("maxInboundRate")
        return details

    parse.keeps_inbound_rate = True  # type: ignore[attr-defined]
    return staticmethod(parse)


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


# --- 4. Messages in flight when the connection changes ------------------------------------------------------------

IN_DOUBT = 80008  # Ably's "unable to recover connection": the cause of every refusal below
_SENT_ON = "_sent_on_connection"
_QUEUEING_STATES = (ConnectionState.INITIALIZED, ConnectionState.DISCONNECTED, ConnectionState.CONNECTING)
_REWRITES = (MessageAction.MESSAGE_UPDATE, MessageAction.MESSAGE_DELETE)
_APPENDS_IN_DOUBT = "_appends_in_doubt"
_SENT_BEFORE = ("it was sent over a connection the server could not resume, so it may or may not have been "
                "applied, and sending it again could apply it twice")
_BEHIND_ONE_IN_DOUBT = ("an earlier append to that message is in doubt after a connection the server could not "
                        "resume; update the message with its full data, then append again")


def _install_outbox() -> None:
    manager = connectionmanager.ConnectionManager
    if manager.send_protocol_message is not _send_protocol_message:
        manager.send_protocol_message = _send_protocol_message  # type: ignore[method-assign]
        manager.send_queued_messages = _send_queued_messages  # type: ignore[method-assign]


async def _send_protocol_message(self: Any, protocol_message: dict[str, Any]) -> PublishResult | None:
    """`ConnectionManager.send_protocol_message` of ably-python 3.1.4, numbering a message when it is written.

    3.1.4 gives a message its `msgSerial` when it is queued, keeps it while disconnected in both its queues
    (a failed reconnection attempt then queues it twice, so it is sent twice), and raises a write on a socket
    that just died into the caller although the message stays queued and is sent later.
    """
    state = self.state
    queueing = state in _QUEUEING_STATES
    if state != ConnectionState.CONNECTED and not queueing:
        raise AblyException(f"Cannot send message while connection is {state}", 400, 90000)
    if queueing and not self.options.queue_messages:
        raise AblyException(f"Cannot send message while connection is {state}, and queue_messages is false",
                            400, 90000)
    _give_ids(protocol_message)
    pending = PendingMessage(protocol_message)
    refusal = _refusal(self, pending)
    if refusal is not None:
        raise refusal
    if queueing or self.transport is None:
        self.queued_messages.appendleft(pending)
        written = None
    else:
        written = _write(self, pending)
    if pending.future is not None:
        return await pending.future
    if written is not None:
        await written
    return None


def _send_queued_messages(self: Any) -> None:
    """`ConnectionManager.send_queued_messages` (on CONNECTED), oldest first, unless resending one could apply
    it twice.

    A message written over a connection that this one did not resume (a new connectionId: the server lost
    the old one, e.g. it restarted) gets a new `msgSerial` from 0, as RTN15c7 asks (3.1.4 resends the old
    one, which collides with the new connection's own and gets a stranger's ACK). Whether the old server
    applied it is unknown. Resending is harmless for creates (`_give_ids` makes them idempotent), updates,
    deletes and presence; an append would be applied twice, so it fails with 80008 instead, and so does
    every later append to the same message until an update rewrites it (`MessageEncoder` does, with the
    message's full text).

    Messages still awaiting an ACK from an earlier transport go first, again: 3.1.4 requeues them only when
    it tears a transport down itself, not after a DISCONNECTED frame (a token expiring: 40142) or a
    re-authentication, and a later ACK then settles them as if the server had had them (RTN19a).
    """
    self.requeue_pending_messages()
    while self.queued_messages:
        pending = self.queued_messages.pop()
        refusal = _refusal(self, pending)
        if refusal is None:
            _write(self, pending).add_done_callback(_log_write_failure)
        elif pending.future is not None and not pending.future.done():
            pending.future.set_exception(refusal)


def _write(self: Any, pending: PendingMessage) -> asyncio.Future[None]:
    """Write a message on the current transport; it takes a `msgSerial` on its first write over a connection
    (a resumed connection keeps the old one, so the server re-ACKs a message it had already applied)."""
    if pending.ack_required:
        if getattr(pending, _SENT_ON, None) != self.connection_id:
            pending.message["msgSerial"] = self.msg_serial
            self.msg_serial += 1
            setattr(pending, _SENT_ON, self.connection_id)
        self.pending_message_queue.push(pending)
    return asyncio.ensure_future(_send_on(self.transport, pending))


async def _send_on(transport: Any, pending: PendingMessage) -> None:
    try:
        await transport.send(pending.message)
    except (WebSocketException, OSError):
        if not pending.ack_required:
            raise
        # The socket died under the write. The message stays awaiting its ACK: the SDK requeues it when it
        # notices the socket is gone and writes it on the next connection (RTN19a); its caller keeps waiting.


def _log_write_failure(written: asyncio.Future[None]) -> None:
    if not written.cancelled() and written.exception() is not None:
        log.info("a queued protocol message was not written: %s", written.exception())


def _refusal(self: Any, pending: PendingMessage) -> AblyException | None:
    """Why `pending` must not be written now (see `_send_queued_messages`), or None."""
    message = pending.message
    channel = message.get("channel")
    blocked: set[tuple[str, str]] = self.__dict__.setdefault(_APPENDS_IN_DOUBT, set())
    sent_before = getattr(pending, _SENT_ON, None) not in (None, self.connection_id)
    if sent_before and message.get("action") not in (ProtocolMessageAction.MESSAGE, ProtocolMessageAction.PRESENCE):
        return _in_doubt(f"A {ProtocolMessageAction(message['action']).name} message on {channel}", _SENT_BEFORE)
    for item in message.get("messages") or ():
        target = (channel, item.get("serial"))
        if item.get("action") in _REWRITES:
            blocked.discard(target)
        elif item.get("action") == MessageAction.MESSAGE_APPEND and (sent_before or target in blocked):
            blocked.add(target)
            what = f"An append to {item.get('serial')} on {channel}"
            return _in_doubt(what, _SENT_BEFORE if sent_before else _BEHIND_ONE_IN_DOUBT)
    return None


def _in_doubt(what: str, why: str) -> AblyException:
    return AblyException(f"{what} was not sent: {why}", 400, IN_DOUBT)


def _give_ids(protocol_message: dict[str, Any]) -> None:
    """Give each create without an id one (`<random>:<index>`, as Ably's REST SDKs do for idempotent
    publishing), so that a server that already applied it recognises it when it is sent again."""
    if protocol_message.get("action") != ProtocolMessageAction.MESSAGE:
        return
    base = base64.urlsafe_b64encode(os.urandom(9)).decode("ascii")
    for index, item in enumerate(protocol_message.get("messages") or ()):
        if item.get("action") in (None, MessageAction.MESSAGE_CREATE) and not item.get("id"):
            item["id"] = f"{base}:{index}"
