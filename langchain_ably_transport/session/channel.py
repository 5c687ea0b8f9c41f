"""The session's I/O over one Ably channel: publishing wire messages and reading history before attach."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ably import AblyRealtime
from ably.types.message import Message
from ably.util.exceptions import AblyException

from ..ledger import MessageKind, Publication
from ..sdk.channels import attach_serial
from ..sdk.outbox import append_now, publish_now
from ..sdk.pacer import pacer_for, retry_rate_limited
from ..sdk.states import connection_id
from ..wire import names
from ..wire.envelope import WireMessage
from ..wire.names import Action

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 100


class ChannelWriter:
    """`codec.ChannelWriter` over an ably-python channel: creates awaited, appends pipelined, all paced, and each
    written when the pacer starts it (`sdk.outbox`), so the wire keeps the call order.

    Every message goes through the connection's `PublishPacer`, so a busy connection (many streams, a
    checkpoint's chunks) stays under Ably's publish rate instead of having appends refused. Appends to one
    message that wait their turn are sent as one append when it comes (their texts joined, the last one's
    headers), as Ably's own rollup would: a saturated connection coalesces more instead of queueing more.

    On a connection that Ably does not echo (`echo=false`, as a pool's are), `on_sent` is handed each message as
    the echo would have brought it, once its ACK is in, and the `time.monotonic()` from before it was written: the
    session folds what it published without Ably sending every message back to the process that wrote it.
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self._pacer = pacer_for(channel.ably)
        self._waiting_appends: dict[str, _WaitingAppend] = {}
        self.on_sent: Callable[[WireMessage, float], None] | None = None

    def publish(self, message: WireMessage) -> asyncio.Future[str | None]:
        """The serial of `message`, published: written when called (or queued in the pacer, in call order), so a
        publish no one awaits at once still goes out in the caller's step."""
        publication = self._publication(_KINDS.get(message.name or "", MessageKind.OUTPUT_CREATE), message)
        return self._pacer.start_retried(lambda: self._published([message]), _first_serial, publication)

    async def publish_all(self, messages: list[WireMessage]) -> list[str | None]:
        """One atomic publish of several messages (the parts of a user message)."""
        publication = self._publication(MessageKind.INPUT, messages[0])
        result = await retry_rate_limited(lambda: self._pacer.start(
            lambda: self._published(messages), count=len(messages), publication=publication))
        return list(result.serials)

    def _published(self, messages: list[WireMessage]) -> Awaitable[Any]:
        sent_at = time.monotonic()
        sent = publish_now(self.channel, [Message(**m.to_publish()) for m in messages])
        return self._echoed_at_ack(sent_at, sent, lambda result: [self._as_echoed(message, Action.CREATE, serial)
                                                          for message, serial in zip(messages, result.serials,
                                                                                     strict=False)])

    def _publication(self, kind: MessageKind, message: WireMessage) -> Publication:
        return Publication(kind, self.channel.name, message.transport.get(names.HEADER_RUN_ID) or None)

    def append(self, serial: str, message: WireMessage) -> Awaitable[Any]:
        # Paced, so the server accepts it. One refused anyway (42911, for traffic of the caller's own on the
        # connection) is not retried, which could reorder it: the encoder repairs the message with an update
        # carrying its whole text when the stream ends (history then has it all; a live reader keeps the gap).
        waiting = self._waiting_appends.get(serial)
        if waiting is not None and waiting.joins(message):
            waiting.messages.append(message)
            return waiting.sent
        waiting = _WaitingAppend([message])
        self._waiting_appends[serial] = waiting
        waiting.sent = self._pacer.start(lambda: self._send_append(serial, waiting),
                                         publication=self._publication(MessageKind.OUTPUT_APPEND, message))
        return waiting.sent

    def _send_append(self, serial: str, waiting: _WaitingAppend) -> Awaitable[Any]:
        if self._waiting_appends.get(serial) is waiting:
            del self._waiting_appends[serial]
        merged, sent_at = waiting.merged(), time.monotonic()
        sent = append_now(self.channel, serial, merged.data, merged.extras)
        return self._echoed_at_ack(sent_at, sent, lambda result: [self._as_echoed(merged, Action.APPEND, serial)])

    async def update(self, serial: str, message: WireMessage) -> Any:
        publication = self._publication(MessageKind.OUTPUT_UPDATE, message)
        return await retry_rate_limited(lambda: self._pacer.start(
            lambda: self._updated(serial, message), publication=publication))

    def _updated(self, serial: str, message: WireMessage) -> Awaitable[Any]:
        sent_at = time.monotonic()
        sent = self.channel.update_message(Message(serial=serial, **_mutation(message)))
        return self._echoed_at_ack(sent_at, sent, lambda result: [self._as_echoed(message, Action.UPDATE, serial)])

    # --- what Ably would echo, on a connection that does not ---

    def _echoed_at_ack(self, sent_at: float, sent: Awaitable[Any],
                       echoed: Callable[[Any], list[WireMessage]]) -> Awaitable[Any]:
        """`sent`, whose ACK hands `on_sent` what `echoed` makes of its result; before any caller awaiting it
        resumes, so that a caller finds its message folded, as the echo, ahead of the ACK, would have left it."""
        if self.on_sent is None:
            return sent
        future = asyncio.ensure_future(sent)
        future.add_done_callback(partial(self._acked, sent_at, echoed))
        return future

    def _acked(self, sent_at: float, echoed: Callable[[Any], list[WireMessage]], done: asyncio.Future[Any]) -> None:
        if self.on_sent is None or done.cancelled() or done.exception() is not None:
            return  # refused or lost: Ably echoes nothing either
        for wire in echoed(done.result()):
            self.on_sent(wire, sent_at)

    def _as_echoed(self, message: WireMessage, action: Action, serial: str | None) -> WireMessage:
        """`message` as its echo would read. Without its version's serial: Ably's rollup gives the appends of one
        window the version of the one it publishes, and a session that folds them in ACK order needs none."""
        ably = self.channel.ably
        client_id = message.client_id or ably.auth.client_id
        return WireMessage(name=message.name, data=message.data, transport=message.transport, codec=message.codec,
                           ephemeral=message.ephemeral, action=action, serial=serial,
                           client_id=client_id if client_id != "*" else None, connection_id=connection_id(ably))


_KINDS = {name: MessageKind.LIFECYCLE for name in names.RUN_LIFECYCLE_NAMES | names.STEP_LIFECYCLE_NAMES} | {
    names.AI_INPUT: MessageKind.INPUT, names.CANCEL: MessageKind.INPUT, names.AI_OUTPUT: MessageKind.OUTPUT_CREATE,
    names.PROTOCOL_COMMAND: MessageKind.INPUT, names.PROTOCOL_EVENTS: MessageKind.PROTOCOL_EVENTS,
    names.PROTOCOL_RESPONSE: MessageKind.PROTOCOL_RESPONSE}


@dataclass
class _WaitingAppend:
    """Appends to one message not sent yet: they go out as one, and settle together."""

    messages: list[WireMessage]
    sent: asyncio.Future[Any] = field(init=False)

    def joins(self, message: WireMessage) -> bool:
        return not self.sent.done() and all(isinstance(m.data, str | None) for m in (*self.messages, message))

    def merged(self) -> WireMessage:
        last = self.messages[-1]
        text = "".join(m.data for m in self.messages if m.data)
        return WireMessage(name=last.name, data=text or None, transport=last.transport, codec=last.codec)


def _first_serial(result: Any) -> str | None:
    return result.serials[0] if result.serials else None


def _mutation(message: WireMessage) -> dict[str, Any]:
    fields = message.to_publish()
    fields.pop("name", None)
    return fields


def history_before_attach(client: AblyRealtime, channel: Any, page_size: int = HISTORY_PAGE_SIZE) -> HistoryPages:
    """Pages of the channel's messages up to its attach point, newest first, as ably-python Messages."""
    return HistoryPages(client, channel, page_size, attach_serial(channel))


def recent_history(client: AblyRealtime, channel: Any, page_size: int = HISTORY_PAGE_SIZE) -> HistoryPages:
    """Pages of the channel's messages from the newest the server has, newest first, as ably-python Messages."""
    return HistoryPages(client, channel, page_size, None)


def history_since(client: AblyRealtime, channel: Any, timestamp: int,
                  page_size: int = HISTORY_PAGE_SIZE) -> HistoryPages:
    """Pages of the channel's messages up to its attach point and no older than `timestamp` (ms), newest first: what
    came after a message already held, and the few of its millisecond (Ably bills each message a page returns)."""
    return HistoryPages(client, channel, page_size, attach_serial(channel), start=timestamp)


def history_before(client: AblyRealtime, channel: Any, timestamp: int,
                   page_size: int = HISTORY_PAGE_SIZE) -> HistoryPages:
    """Pages of the channel's messages no newer than `timestamp` (ms), newest first: what lies before the oldest
    message already held, and the few of its millisecond (the reader drops those it holds)."""
    return HistoryPages(client, channel, page_size, None, end=timestamp)


class HistoryPages:
    """A channel's history, one page per `anext`, requested when asked for.

    A session keeps its reader for its life, to page back on demand. So the reader holds no page it handed out:
    only the way to the next one, and nothing once the last is out (a generator would keep the last page's
    messages alive in its frame, and every session's collector would walk them).
    """

    def __init__(self, client: AblyRealtime, channel: Any, page_size: int, from_serial: str | None, *,
                 start: int | None = None, end: int | None = None) -> None:
        params: dict[str, Any] = {"limit": page_size, "direction": "backwards"}
        if from_serial:
            params["from_serial"] = from_serial
        params.update({name: bound for name, bound in (("start", start), ("end", end)) if bound is not None})
        path = f"/channels/{urllib.parse.quote(channel.name, safe='')}/messages"
        self._next: Callable[[], Awaitable[Any]] | None = lambda: client.request("GET", path, "5", params=params)

    def __aiter__(self) -> HistoryPages:
        return self

    async def __anext__(self) -> list[Message]:
        if self._next is None:
            raise StopAsyncIteration
        fetch, self._next = self._next, None
        page = await fetch()
        if page.has_next():
            self._next = page.next
        return [message for message in map(_decoded, page.items) if message is not None]


def _decoded(item: dict[str, Any]) -> Message | None:
    """A history item as a Message, or None (logged) when its data cannot be decoded: any publisher may claim an
    encoding its data does not have (`json` on invalid JSON, `vcdiff`), and ably-python drops such a message
    from live delivery too, so one of them must not stop every session on the channel from opening."""
    try:
        return Message.from_encoded(item)
    except (AblyException, ValueError, TypeError) as error:
        log.warning("history message %s skipped: its data does not decode as %r (%s)", item.get("serial"),
                    item.get("encoding"), error)
        return None
