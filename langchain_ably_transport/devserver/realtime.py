"""Realtime connections: the WebSocket side of the protocol, resume, ACK ordering, limits and heartbeats.

A `Connection` outlives its sockets for `connectionStateTtl`, so a client that reconnects with
`resume=<connectionKey>` keeps its connectionId and has already-processed publishes re-ACKed, not re-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .auth import Authenticator, Identity
from .channel import Attachment, ChannelRegistry, Publisher
from .config import ServerConfig
from .protocol import (
    AblyError,
    Action,
    Flag,
    MessageAction,
    Outbound,
    WireFormat,
    bad_request,
    coalesce,
    decode_frame,
    not_permitted,
    token_expired,
    unrecoverable_connection,
    without_none,
)
from .rollup import AppendRollup, PublishResult

log = logging.getLogger(__name__)

ACK_MEMORY = 1000
Remembered = tuple[str | None, ...] | AblyError  # what a publish came to: its serials, or its NACK's error
FATAL_FRAME_LINGER_S = 2.0
MAX_ROLLUP_WINDOW_MS = 500


class RateLimiter:
    """A token bucket allowing `rate` events a second with bursts of up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._tokens = rate
        self._at = time.monotonic()

    def allow(self, cost: int = 1) -> bool:
        if self._rate <= 0:
            return True
        now = time.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True


@dataclass(eq=False)
class Connection:
    """Per-connection state that survives a dropped socket until `connectionStateTtl` passes."""

    connection_id: str
    key: str
    identity: Identity
    echo: bool
    rollup_window_s: float
    acks: OrderedDict[int, Remembered] = field(default_factory=OrderedDict)  # by msgSerial, for a re-sent publish
    attachments: dict[str, Attachment] = field(default_factory=dict)
    present_on: set[str] = field(default_factory=set)  # channels it published presence on: where it may be a member
    socket: Socket | None = None
    expiry: asyncio.TimerHandle | None = None
    presence_expiry: asyncio.TimerHandle | None = None

    def cancel_timers(self) -> None:
        for timer in (self.expiry, self.presence_expiry):
            if timer is not None:
                timer.cancel()
        self.expiry = self.presence_expiry = None

    def send(self, outbound: Outbound) -> None:
        if self.socket is not None:
            self.socket.send(outbound)

    def remember_ack(self, msg_serial: int, result: PublishResult) -> None:
        """Keep what a publish came to, as a tuple of serials rather than its ACK frame: the collector walks four
        objects an ACK frame, and a busy server's remembered ones were nine in ten of all it had to walk."""
        self.acks[msg_serial] = result if isinstance(result, AblyError) else tuple(result)
        while len(self.acks) > ACK_MEMORY:
            self.acks.popitem(last=False)


class Socket:
    """One WebSocket: its frames in order, and the encoding in use.

    Every frame passes `after_commit` (the store's): while the event-loop turn's writes are not committed yet, a
    frame waits for them, so an ACK never goes out before what it acknowledges is durable, and frames keep their
    order on the socket. The first frame of a turn for an idle socket is written at once; the writer task takes
    the frames after it (at the end of the turn, merged as `coalesce` merges them), and those that come while a
    write waits (the client reads slowly), after finishing that write. Waking the writer for every frame cost a
    turn of the loop each, which a busy server runs late: each ACK and each delivery waited for one.
    """

    def __init__(self, ws: web.WebSocketResponse, wire_format: str, max_queue: int,
                 after_commit: Callable[[Callable[[], None]], None]) -> None:
        self.ws = ws
        self._after_commit = after_commit
        self.wire_format = wire_format
        self._queue: asyncio.Queue[Outbound | _UnfinishedWrite | None] = asyncio.Queue()
        self._idle = False  # the writer waits for a frame
        self._wrote_this_turn = False
        self._max_queue = max_queue
        self._linger = 0.0
        self._writer = asyncio.create_task(self._write())
        self.sent_at = time.monotonic()

    def send(self, outbound: Outbound) -> None:
        self._after_commit(lambda: self._enqueue(outbound))

    def _enqueue(self, outbound: Outbound | None) -> None:
        if outbound is None:
            self._queue.put_nowait(None)
            return
        if self._idle and not self._wrote_this_turn and self._queue.empty():
            self._write_now(outbound)
            return
        if self._queue.qsize() >= self._max_queue:
            log.warning("dropping a socket that does not read: %d frames queued", self._queue.qsize())
            self.abort()
            return
        self._queue.put_nowait(outbound)

    def send_frame(self, frame: dict[str, Any]) -> None:
        self.send(Outbound(frame))

    def _end_turn(self) -> None:
        self._wrote_this_turn = False

    def _write_now(self, outbound: Outbound) -> None:
        """Write `outbound` in this turn. aiohttp's send awaits only to drain a full buffer: a write that must wait
        is handed to the writer task, which finishes it before it takes the frames queued behind it."""
        self._wrote_this_turn = True
        asyncio.get_running_loop().call_soon(self._end_turn)
        sending = _sent(self.ws, outbound.encoded(self.wire_format))
        try:
            waiting = sending.send(None)
        except StopIteration:
            self.sent_at = time.monotonic()
        except (ConnectionError, RuntimeError):  # the socket is closing, as the writer would find
            self.abort()
        else:
            self._queue.put_nowait(_UnfinishedWrite(sending, waiting))

    async def _write(self) -> None:
        try:
            closing = False
            while not closing:
                batch, closing = await self._next_batch()
                for payload in coalesce(batch, self.wire_format):
                    await _sent(self.ws, payload)
                self.sent_at = time.monotonic()
            if self._linger:
                await self._await_peer_close(self._linger)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            await self.ws.close()

    async def _next_batch(self) -> tuple[list[Outbound], bool]:
        """The frames queued since the last write (what the event-loop turns since made), to be sent in as few
        frames as they merge into; and whether the socket closes after them."""
        self._idle = True
        try:
            outbound = await self._queue.get()
        finally:
            self._idle = False
        if isinstance(outbound, _UnfinishedWrite):
            await outbound.finish()
            if self._queue.empty():
                return [], False
            outbound = self._queue.get_nowait()
        batch: list[Outbound] = []
        while outbound is not None:
            assert not isinstance(outbound, _UnfinishedWrite)  # only ever first: written when nothing was queued
            batch.append(outbound)
            if self._queue.empty():
                return batch, False
            outbound = self._queue.get_nowait()
        return batch, True

    async def _await_peer_close(self, timeout: float) -> None:
        """Give the client time to read a fatal frame: an SDK that sees the socket close first takes it
        for a network failure (ably-python then retries after 15 s instead of renewing its token at once)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (await self.ws.receive()).type not in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    pass

    def close_after_sending(self, linger: float = 0.0) -> None:
        """Close once every queued frame is sent; with `linger`, first wait that long for the client to."""
        self._linger = linger
        self._after_commit(lambda: self._enqueue(None))

    def abort(self) -> None:
        self._writer.cancel()
        asyncio.get_running_loop().create_task(self.ws.close())

    async def closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


def _sent(ws: web.WebSocketResponse, payload: str | bytes) -> Coroutine[Any, Any, None]:
    return ws.send_bytes(payload) if isinstance(payload, bytes) else ws.send_str(payload)


class _UnfinishedWrite:
    """A write begun in the caller's turn that waits (on `waiting`, what it awaited) to drain the socket's buffer."""

    def __init__(self, sending: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._sending = sending
        self._waiting = waiting

    async def finish(self) -> None:
        """Resume the write each time what it awaits is done, as a task would, until it returns or raises."""
        waiting = self._waiting
        while True:
            if isinstance(waiting, asyncio.Future):
                await asyncio.wait((waiting,))
            else:  # a bare yield: it only let others run
                await asyncio.sleep(0)
            try:
                waiting = self._sending.send(None)
            except StopIteration:
                return


class RealtimeServer:
    """Accepts WebSocket connections and runs the protocol for each."""

    def __init__(self, config: ServerConfig, channels: ChannelRegistry, auth: Authenticator,
                 after_commit: Callable[[Callable[[], None]], None]) -> None:
        self._config = config
        self._after_commit = after_commit
        self.limits = config.limits
        self.channels = channels
        self.auth = auth
        self.account_inbound = RateLimiter(config.limits.account_rate)
        self._connections: dict[str, Connection] = {}

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        # No permessage-deflate: frames are small and deflating each one costs both ends more than it saves.
        ws = web.WebSocketResponse(max_msg_size=self.limits.max_frame_size, autoping=True, compress=False,
                                   heartbeat=_ping_after(self.limits.client_timeout_s))
        await ws.prepare(request)
        try:
            wire_format = WireFormat.parse(request.query.get("format"))
        except AblyError as error:
            await ws.send_json({"action": int(Action.ERROR), "error": error.to_wire()})
            await ws.close()
            return ws
        socket = Socket(ws, wire_format, self.limits.max_outbound_queue, self._after_commit)
        try:
            connection = self._open(request.query, socket)
        except AblyError as error:
            socket.send_frame({"action": int(Action.ERROR), "error": error.to_wire()})
            socket.close_after_sending(linger=FATAL_FRAME_LINGER_S)
            await socket.closed()
            return ws
        session = _Session(self, connection, socket)
        await session.run()
        return ws

    # --- connection lifecycle ---

    def _open(self, query: Any, socket: Socket) -> Connection:
        identity = self._identify(query)
        echo = query.get("echo", "true") != "false"
        rollup = _rollup_window(query.get("appendRollupWindow"), self.limits.append_rollup_window_ms)
        resumed = self._resume(query.get("resume"), identity)
        error = None
        if resumed is not None:
            connection = resumed
            connection.identity, connection.echo, connection.rollup_window_s = identity, echo, rollup
        else:
            if query.get("resume"):
                error = unrecoverable_connection()
            connection_id = secrets.token_urlsafe(8).replace("!", "-")
            connection = Connection(connection_id, f"{connection_id}!{secrets.token_urlsafe(12)}", identity,
                                    echo, rollup)
            self._connections[connection.key] = connection
        connection.socket = socket
        socket.send_frame(self._connected_frame(connection, error))
        return connection

    def _identify(self, query: Any) -> Identity:
        client_id = query.get("clientId") or None
        token = query.get("accessToken") or query.get("access_token")
        if token:
            return self.auth.from_token(token, client_id)
        key = query.get("key")
        if key:
            return self.auth.from_key(key, client_id)
        raise AblyError(40101, 401, "No credentials: connect with key=, accessToken= or access_token=")

    def _resume(self, key: str | None, identity: Identity) -> Connection | None:
        connection = self._connections.get(key) if key else None
        if connection is None or connection.identity.concrete_client_id != identity.concrete_client_id:
            return None
        connection.cancel_timers()
        if connection.socket is not None:
            connection.socket.abort()
        return connection

    def _connected_frame(self, connection: Connection, error: AblyError | None) -> dict[str, Any]:
        limits = self.limits
        details: dict[str, Any] = {
            "connectionKey": connection.key,
            "maxMessageSize": limits.max_message_size,
            "maxInboundRate": limits.inbound_rate,
            "maxOutboundRate": 100,
            "maxFrameSize": limits.max_frame_size,
            "serverId": self._config.server_id,
            "connectionStateTtl": int(limits.connection_state_ttl_s * 1000),
            "maxIdleInterval": int(limits.max_idle_interval_s * 1000),
        }
        if connection.identity.client_id is not None:
            details["clientId"] = connection.identity.client_id
        frame: dict[str, Any] = {
            "action": int(Action.CONNECTED),
            "connectionId": connection.connection_id,
            "connectionDetails": details,
        }
        if error is not None:
            frame["error"] = error.to_wire()
        return frame

    def socket_lost(self, connection: Connection, socket: Socket) -> None:
        """Keep the connection resumable; its attachments stop receiving until it re-attaches."""
        if connection.socket is not socket:
            return
        connection.socket = None
        for name in connection.attachments:
            self.channels.get(name).forget(connection.connection_id)
        loop = asyncio.get_running_loop()
        connection.expiry = loop.call_later(self.limits.connection_state_ttl_s, self.discard, connection)
        connection.presence_expiry = loop.call_later(self.limits.presence_leave_delay_s, self._leave_presence,
                                                     connection)

    def _leave_presence(self, connection: Connection) -> None:
        """A connection gone quiet for the leave delay leaves presence; its SDK re-enters if it resumes."""
        connection.presence_expiry = None
        self._leave_everywhere(connection)

    def discard(self, connection: Connection) -> None:
        """End a connection for good: detach everywhere, which also leaves presence."""
        self._connections.pop(connection.key, None)
        connection.cancel_timers()
        for name in list(connection.attachments):
            self.channels.get(name).detach(connection.connection_id)
        self._leave_everywhere(connection)
        connection.attachments.clear()

    def _leave_everywhere(self, connection: Connection) -> None:
        """Leave presence on the channels the connection entered it on (not on every channel the server holds)."""
        for name in connection.present_on:
            self.channels.get(name).leave_all(connection.connection_id)
        connection.present_on.clear()

    def connected_frame(self, connection: Connection) -> dict[str, Any]:
        return self._connected_frame(connection, None)


class _Session:
    """Runs the protocol for one socket of a connection; frames are handled strictly in order."""

    def __init__(self, server: RealtimeServer, connection: Connection, socket: Socket) -> None:
        self._server = server
        self._limits = server.limits
        self._channels = server.channels
        self._connection = connection
        self._socket = socket
        self._inbound = RateLimiter(self._limits.inbound_rate)
        self._protocol = RateLimiter(self._limits.protocol_rate)
        self._rollup = AppendRollup(connection.rollup_window_s, self._publish, self._ack)
        self._attached_here: set[str] = set()  # channels attached over this socket: it was sent all they carried
        self._timers: list[asyncio.TimerHandle] = []
        self._closed_cleanly = False
        self._linger = 0.0

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat())
        self._schedule_token_expiry()
        try:
            async for message in self._socket.ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                if not self._handle_raw(message.data):
                    break
        finally:
            heartbeat.cancel()
            self._rollup.close()
            for timer in self._timers:
                timer.cancel()
            if self._closed_cleanly:
                self._server.discard(self._connection)
            else:
                self._server.socket_lost(self._connection, self._socket)
            self._socket.close_after_sending(self._linger)
            await self._socket.closed()

    def _handle_raw(self, payload: str | bytes) -> bool:
        """Handle one frame; False ends the socket."""
        try:
            if not self._protocol.allow():
                raise AblyError(42924, 429, "Connection terminated for abuse (inbound protocol message rate)")
            frame = decode_frame(payload, self._socket.wire_format)
            return self._dispatch(frame)
        except AblyError as error:
            self._fail(error)
            return False

    def _fail(self, error: AblyError) -> None:
        self._socket.send_frame({"action": int(Action.ERROR), "error": error.to_wire()})
        self._closed_cleanly = True
        self._linger = FATAL_FRAME_LINGER_S

    def _dispatch(self, frame: dict[str, Any]) -> bool:
        action = frame.get("action")
        if action in (Action.MESSAGE, Action.PRESENCE):
            self._on_publish(frame)
        elif action == Action.HEARTBEAT:
            self._socket.send_frame(without_none({"action": int(Action.HEARTBEAT), "id": frame.get("id")}))
        elif action == Action.ATTACH:
            self._on_attach(frame)
        elif action == Action.DETACH:
            self._on_detach(frame)
        elif action == Action.AUTH:
            self._on_auth(frame)
        elif action == Action.CLOSE:
            self._rollup.flush()
            self._socket.send_frame({"action": int(Action.CLOSED)})
            self._closed_cleanly = True
            return False
        else:
            raise bad_request(f"Unsupported protocol action {action!r}")
        return True

    # --- channels ---

    def _on_attach(self, frame: dict[str, Any]) -> None:
        name = frame.get("channel")
        try:
            channel = self._channels.get(name)
            attachments = self._connection.attachments
            if name not in attachments and len(attachments) >= self._limits.max_channels_per_connection:
                raise AblyError(90010, 400, "Maximum number of channels per connection exceeded")
            continuous = channel.name in self._attached_here and channel.name in attachments
            attachments[channel.name] = channel.attach(self._connection, self._connection.identity, frame,
                                                       continuous=continuous)
            self._attached_here.add(channel.name)
        except AblyError as error:
            self._socket.send_frame({"action": int(Action.ERROR), "channel": name, "error": error.to_wire()})

    def _on_detach(self, frame: dict[str, Any]) -> None:
        name = frame.get("channel")
        self._attached_here.discard(name)
        if self._connection.attachments.pop(name, None) is not None:
            self._channels.get(name).detach(self._connection.connection_id)
        self._socket.send_frame({"action": int(Action.DETACHED), "channel": name})

    # --- publishing, in msgSerial order ---

    def _on_publish(self, frame: dict[str, Any]) -> None:
        msg_serial = frame.get("msgSerial")
        if not isinstance(msg_serial, int) or isinstance(msg_serial, bool) or msg_serial < 0:
            raise bad_request("MESSAGE and PRESENCE frames need an integer msgSerial")
        previous = self._connection.acks.get(msg_serial)
        if previous is not None:
            self._socket.send_frame(_ack_frame(msg_serial, previous))
            return
        if self._rollup.hold(msg_serial, frame):
            return
        self._rollup.flush()
        self._ack(msg_serial, self._publish(frame, msg_serial))

    def _publish(self, frame: dict[str, Any], msg_serial: int) -> PublishResult:
        """Run one MESSAGE or PRESENCE frame; its serials, or the error to NACK it with."""
        try:
            channel = self._channels.get(frame.get("channel"))
            attachment = self._connection.attachments.get(channel.name)
            publisher = Publisher(self._connection.identity, self._connection.connection_id, msg_serial)
            if frame["action"] == Action.PRESENCE:
                members = _list_field(frame, "presence")
                if attachment is not None and not attachment.modes & Flag.PRESENCE:
                    raise not_permitted("presence: the channel was attached without presence mode")
                self._connection.present_on.add(channel.name)
                channel.update_presence(members, publisher)
                return []
            messages = _list_field(frame, "messages")
            if attachment is not None and not attachment.modes & Flag.PUBLISH:
                raise not_permitted("publish: the channel was attached without publish mode")
            self._take_inbound(len(messages))
            if any(_is_mutation(m) for m in messages):
                return [channel.mutate(m, publisher) for m in messages]
            return list(channel.publish(messages, publisher))
        except AblyError as error:
            return error

    def _take_inbound(self, count: int) -> None:
        if not self._inbound.allow(count):
            raise AblyError(
                42911, 429,
                f"Rate limit exceeded; request rejected (nonfatal); metric = connection.inboundRate; "
                f"permitted rate = {self._limits.inbound_rate:g}/s",
            )
        if not self._server.account_inbound.allow(count):
            raise AblyError(
                42910, 429,
                f"Rate limit exceeded; request rejected; metric = account.messages; "
                f"permitted rate = {self._limits.account_rate:g}/s",
            )

    def _ack(self, msg_serial: int, result: PublishResult) -> None:
        self._connection.remember_ack(msg_serial, result)
        self._socket.send_frame(_ack_frame(msg_serial, result))

    # --- auth and liveness ---

    def _on_auth(self, frame: dict[str, Any]) -> None:
        auth = frame.get("auth") if isinstance(frame.get("auth"), dict) else {}
        token = auth.get("accessToken") or auth.get("access_token")
        if token:
            # A renewed token may not change who the connection is (40102).
            current = self._connection.identity.concrete_client_id
            self._connection.identity = self._server.auth.from_token(token, current)
            self._schedule_token_expiry()
        self._socket.send_frame(self._server.connected_frame(self._connection))

    def _schedule_token_expiry(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        expires_ms = self._connection.identity.expires_ms
        if expires_ms is None:
            return
        loop = asyncio.get_running_loop()
        remaining = expires_ms / 1000 - time.time()
        # Ask for a new token ahead of expiry, but never sooner than half its life (short test tokens).
        notice = max(remaining / 2, remaining - self._limits.token_renew_notice_s)
        self._timers.append(loop.call_later(notice, self._socket.send_frame, {"action": int(Action.AUTH)}))
        self._timers.append(loop.call_later(max(0.0, remaining), self._expire_token))

    def _expire_token(self) -> None:
        self._socket.send_frame({"action": int(Action.DISCONNECTED), "error": token_expired().to_wire()})
        self._socket.close_after_sending(linger=FATAL_FRAME_LINGER_S)

    async def _heartbeat(self) -> None:
        interval = self._limits.max_idle_interval_s
        while True:
            await asyncio.sleep(interval / 2)
            if time.monotonic() - self._socket.sent_at >= interval / 2:
                self._socket.send_frame({"action": int(Action.HEARTBEAT)})


def _ping_after(client_timeout_s: float) -> float | None:
    """aiohttp's `heartbeat`: after that long with no bytes in from the client it sends a WebSocket ping, and
    if still nothing arrives within half as long it closes the TCP connection without a close frame, which the
    session takes for a lost socket. 2/3 of the timeout makes silence for exactly `client_timeout_s` the limit.

    The pong comes from the client's WebSocket library (websockets for ably-python, ws for ably-js in Node, the
    browser), so a client whose event loop still runs answers however little it publishes; a frozen process,
    an event loop blocked past the ping's deadline (a third of the timeout) or a dead network path does not.
    """
    return client_timeout_s * 2 / 3 if client_timeout_s > 0 else None


def _ack_frame(msg_serial: int, result: PublishResult | Remembered) -> dict[str, Any]:
    """The ACK of a publish (with the serials it was given), or its NACK."""
    if isinstance(result, AblyError):
        return {"action": int(Action.NACK), "msgSerial": msg_serial, "count": 1, "error": result.to_wire()}
    return {"action": int(Action.ACK), "msgSerial": msg_serial, "count": 1, "res": [{"serials": list(result)}]}


def _rollup_window(value: str | None, default_ms: int) -> float:
    if value is None:
        return default_ms / 1000
    try:
        window = int(value)
    except ValueError:
        window = -1
    if not 0 <= window <= MAX_ROLLUP_WINDOW_MS:
        raise AblyError(40003, 400, f"appendRollupWindow must be 0 to {MAX_ROLLUP_WINDOW_MS} ms, not {value!r}")
    return window / 1000


def _is_mutation(message: Any) -> bool:
    return isinstance(message, dict) and message.get("action") in (
        MessageAction.UPDATE, MessageAction.DELETE, MessageAction.APPEND,
    )


def _list_field(frame: dict[str, Any], key: str) -> list[Any]:
    items = frame.get(key)
    if not isinstance(items, list) or not items:
        raise bad_request(f"A frame of action {frame.get('action')} needs a non-empty {key!r} list")
    return items
