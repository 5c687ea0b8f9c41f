"""Fix 4 of `sdk.fixes`: ably-python 3.1.4's queue of messages in flight, replaced where it breaks across reconnections.

3.1.4 gives a message its `msgSerial` when it is queued, keeps it while disconnected in both its queues (a failed
reconnection attempt then queues it twice, so it is sent twice), raises a write on a socket that just died into the
caller although the message is sent later, never resends messages in flight when a token expires yet reports them
ACKed, and after a connection that could not be resumed reuses old `msgSerial`s, which collide with the new
connection's own. `send_protocol_message` and `send_queued_messages` replace `ConnectionManager`'s.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections import deque
from typing import Any

from ably.realtime.connectionmanager import ConnectionManager, PendingMessage
from ably.transport.websockettransport import ProtocolMessageAction
from ably.types.connectionstate import ConnectionState
from ably.types.message import Message, MessageAction
from ably.types.operations import PublishResult
from ably.util.exceptions import AblyException, IncompatibleClientIdException
from ably.util.helper import validate_message_size
from msgpack import packb
from websockets.exceptions import WebSocketException
from websockets.protocol import State

from ..errors import ErrorCode

log = logging.getLogger(__name__)

_SENT_ON = "_sent_on_connection"
_WRITER = "_langchain_ably_transport_writer"
_QUEUEING_STATES = (ConnectionState.INITIALIZED, ConnectionState.DISCONNECTED, ConnectionState.CONNECTING)
_REWRITES = (MessageAction.MESSAGE_UPDATE, MessageAction.MESSAGE_DELETE)
_APPENDS_IN_DOUBT = "_appends_in_doubt"
_SENT_BEFORE = ("it was sent over a connection the server could not resume, so it may or may not have been "
                "applied, and sending it again could apply it twice")
_BEHIND_ONE_IN_DOUBT = ("an earlier append to that message is in doubt after a connection the server could not "
                        "resume; update the message with its full data, then append again")


def install() -> None:
    if ConnectionManager.send_protocol_message is not send_protocol_message:
        ConnectionManager.send_protocol_message = send_protocol_message  # type: ignore[method-assign]
        ConnectionManager.send_queued_messages = send_queued_messages  # type: ignore[method-assign]


def installed() -> bool:
    return ConnectionManager.send_protocol_message is send_protocol_message


async def send_protocol_message(self: Any, protocol_message: dict[str, Any]) -> PublishResult | None:
    """`ConnectionManager.send_protocol_message`, numbering a message when it is written, not when queued."""
    return await submit(self, protocol_message)


def submit(self: Any, protocol_message: dict[str, Any]) -> asyncio.Future[Any]:
    """`send_protocol_message` without a coroutine: the message is written (or queued) now, and the future settles
    with its ACK (or its write, for a message that takes no ACK). Raises at once what 3.1.4 raises when awaited."""
    state = self.state
    queueing = state in _QUEUEING_STATES
    if state != ConnectionState.CONNECTED and not queueing:
        raise AblyException(f"Cannot send message while connection is {state}", 400, ErrorCode.CONNECTION_NOT_READY)
    if queueing and not self.options.queue_messages:
        raise AblyException(f"Cannot send message while connection is {state}, and queue_messages is false",
                            400, ErrorCode.CONNECTION_NOT_READY)
    _give_ids(protocol_message)
    pending = PendingMessage(protocol_message)
    refusal = _refusal(self, pending)
    if refusal is not None:
        raise refusal
    written = None
    if queueing or self.transport is None:
        self.queued_messages.appendleft(pending)
    else:
        written = _write(self, pending)
    if pending.future is not None:
        return pending.future
    if written is not None:
        return written
    queued: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    queued.set_result(None)
    return queued


def publish_now(channel: Any, messages: list[Message]) -> asyncio.Future[Any]:
    """`RealtimeChannel.publish(messages)` written now, without a task: the future of its ACK (a `PublishResult`).
    3.1.4's coroutine awaits nothing before it sends, so this is the same frame after the same checks (clientId,
    encryption, size, channel state), for two turns of the event loop less per awaited publish: the task's first
    step, and its wake-up after the ACK."""
    client_id = channel.ably.auth.client_id
    for message in messages:
        if client_id and message.client_id == "*":
            raise IncompatibleClientIdException("Wildcard client_id is reserved and cannot be used when publishing "
                                                "messages", 400, 40012)
        if client_id and message.client_id is not None and not channel.ably.auth.can_assume_client_id(
                message.client_id):
            raise IncompatibleClientIdException(f"Cannot publish with client_id '{message.client_id}' as it is "
                                                f"incompatible with the current configured client_id '{client_id}'",
                                                400, 40012)
    options = channel.ably.options
    encoded = [_encoded(channel, message) for message in messages]
    validate_message_size(encoded, options.use_binary_protocol, getattr(options, "max_message_size", 65536))
    channel._throw_if_unpublishable_state()
    return _submit_to(channel, encoded)


def append_now(channel: Any, serial: str, data: Any, extras: dict[str, Any] | None) -> asyncio.Future[Any]:
    """`RealtimeChannel.append_message(Message(serial=serial, data=data, extras=extras))` (no operation, no params)
    written now, without a task: the future of its ACK. 3.1.4's coroutine awaits nothing before it sends, and copies
    the message it is given into the one it sends; this builds that one alone: the same message, sent the same way,
    for a task and a `Message` less per append."""
    if not serial:
        raise AblyException("Message serial is required for update/delete/append operations", 400, 40003)
    channel._throw_if_unpublishable_state()
    append = Message(data=data, serial=serial, action=MessageAction.MESSAGE_APPEND, extras=extras)
    return _submit_to(channel, [_encoded(channel, append)])


def _encoded(channel: Any, message: Message) -> dict[str, Any]:
    if channel.cipher:
        message.encrypt(channel.cipher)
    return message.as_dict(binary=channel.ably.options.use_binary_protocol)


def _submit_to(channel: Any, encoded: list[dict[str, Any]]) -> asyncio.Future[Any]:
    protocol_message = {"action": ProtocolMessageAction.MESSAGE, "channel": channel.name, "messages": encoded}
    return submit(channel.ably.connection.connection_manager, protocol_message)


def send_queued_messages(self: Any) -> None:
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
            written = _write(self, pending)
            if written is not None:
                written.add_done_callback(_log_write_failure)
        elif pending.future is not None and not pending.future.done():
            pending.future.set_exception(refusal)


def _write(self: Any, pending: PendingMessage) -> asyncio.Future[None] | None:
    """Write a message on the current transport; it takes a `msgSerial` on its first write over a connection
    (a resumed connection keeps the old one, so the server re-ACKs a message it had already applied). The future of
    the write for a message that takes no ACK; one that does settles with its ACK."""
    if pending.ack_required:
        if getattr(pending, _SENT_ON, None) != self.connection_id:
            pending.message["msgSerial"] = self.msg_serial
            self.msg_serial += 1
            setattr(pending, _SENT_ON, self.connection_id)
        self.pending_message_queue.push(pending)
    writer = self.transport.__dict__.get(_WRITER)
    if writer is None:
        writer = self.transport.__dict__[_WRITER] = TransportWriter(self.transport)
    return writer.write(pending)


class TransportWriter:
    """One transport's writes, in the order they were made: at once when the socket takes them (3.1.4 takes a
    task per write, which costs more than the write), else by one task while any wait. A message awaiting its ACK
    stays in flight when the socket dies under its write: the SDK requeues it when it notices, and writes it on the
    next connection (RTN19a)."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._queue: deque[tuple[PendingMessage, asyncio.Future[None] | None]] = deque()
        self._task: asyncio.Task[None] | None = None

    def write(self, pending: PendingMessage) -> asyncio.Future[None] | None:
        written = None if pending.ack_required else asyncio.get_running_loop().create_future()
        if self._task is None and _sent_at_once(self._transport, pending.message, written):
            return written
        self._queue.append((pending, written))
        if self._task is None:
            self._task = asyncio.ensure_future(self._drain())
        return written

    async def _drain(self) -> None:
        try:
            while self._queue:
                pending, written = self._queue.popleft()
                try:
                    await self._transport.send(pending.message)
                except asyncio.CancelledError:
                    self._queue.appendleft((pending, written))
                    raise
                except Exception as error:
                    _written_with(written, error)
                else:
                    _written_with(written, None)
        finally:
            self._task = None
            for _, written in self._queue:
                _written_with(written, ConnectionError("the transport closed before the message was written"))
            self._queue.clear()


def _sent_at_once(transport: Any, message: dict[str, Any], written: asyncio.Future[None] | None) -> bool:
    """Write `message` as 3.1.4's `WebSocketTransport.send` does, without its coroutines, when the socket takes it
    at once (open, not paused for a full buffer, no fragmented message being sent: then its `send` awaits
    nothing); False when it must wait its turn. A socket that fails the write is aborted, as `send` aborts it."""
    websocket = transport.websocket
    if websocket is None or websocket.protocol.state is not State.OPEN or websocket.paused \
            or websocket.fragmented_send_waiter is not None or websocket.transport.is_closing():
        return False
    try:
        if transport.format == "msgpack":
            websocket.protocol.send_binary(packb(message, use_bin_type=True))
        else:
            websocket.protocol.send_text(json.dumps(message).encode())
        websocket.send_data()
    except Exception as error:
        websocket.transport.abort()
        _written_with(written, error)
    else:
        _written_with(written, None)
    return True


def _written_with(written: asyncio.Future[None] | None, error: BaseException | None) -> None:
    """Settle a write; a failed write of a message awaiting its ACK is logged, as the ACK decides its fate."""
    if written is None:
        if error is not None and not isinstance(error, WebSocketException | OSError):
            log.warning("a message awaiting its ACK was not written: %r", error)
    elif not written.done():
        if error is None:
            written.set_result(None)
        else:
            written.set_exception(error)


def _log_write_failure(written: asyncio.Future[None]) -> None:
    if not written.cancelled() and written.exception() is not None:
        log.info("a queued protocol message was not written: %s", written.exception())


def _refusal(self: Any, pending: PendingMessage) -> AblyException | None:
    """Why `pending` must not be written now (see `send_queued_messages`), or None."""
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
    return AblyException(f"{what} was not sent: {why}", 400, ErrorCode.CONNECTION_NOT_RECOVERED)


def _give_ids(protocol_message: dict[str, Any]) -> None:
    """Give each create without an id one (`<random>:<index>`, as Ably's REST SDKs do for idempotent
    publishing), so that a server that already applied it recognises it when it is sent again."""
    if protocol_message.get("action") != ProtocolMessageAction.MESSAGE:
        return
    base = None  # drawn for the first create without an id: an append (most of a stream's messages) needs none
    for index, item in enumerate(protocol_message.get("messages") or ()):
        if item.get("action") in (None, MessageAction.MESSAGE_CREATE) and not item.get("id"):
            base = base or base64.urlsafe_b64encode(os.urandom(9)).decode("ascii")
            item["id"] = f"{base}:{index}"
