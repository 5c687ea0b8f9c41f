"""`MessageEncoder`: one assistant message (one codec-message-id) written to the channel chunk by chunk.

It is `core/codec/encoder.ts` + the Vercel output table, with three additions the JS SDK does not have:

* Coalescing. A stream sends at most one message per `coalesce_window` (40 ms: at most 25 messages per
  second per stream, its create included, Ably's own append rollup rate). Deltas wait for the window and go
  out as one append; what the window still holds when the stream ends rides on the closing append (a JS
  decoder applies it as a last delta). `coalesce_window=0` sends one append per delta. The window counts from
  when the create was sent. Writing does not wait for a stream's create: its deltas are held until the create's
  ACK brings its serial, and the ACK's own callback sends them together (once the window allows), so a reply's
  first tokens wait for no task's turn of the event loop. A delta that comes after a window ended, before the
  window's timer had its turn, sends what it held at once.
* Size. Ably refuses a message, or an append making an aggregate, over the account's limit (40009).
  A text or reasoning stream that would outgrow `max_message_bytes` ends that Ably message (`complete`)
  and goes on in a new one with the same `stream-id` and codec `id`; see `sizing.py` for where it splits.
  A JS reader shows the continuation as a new text part right after the first (its reducer pushes a part
  per stream start; there is no way around that in 0.8.0); this package's `Decoder` re-joins them, using
  the codec headers `continued`/`continues` that JS ignores. A tool result (`tool-output-available`, or a
  `tool-output-error`'s text) that would not fit is cut to fit and ends with a marker naming its whole size
  and the limit (`sizing.truncated_tool_output`): the agent already has it whole (graph state, the model's
  context), so the run goes on and the client sees that, and how much, was left out. Everything else that
  would not fit raises `OversizeMessageError` before it is sent, never silently: another discrete chunk
  (e.g. a huge data part) and a tool-input stream (JS parses the input from one message's text).
* Terminal statuses on every exit. `close()` ends streams still open with `status: "cancelled"`, so a
  reader and history always see a terminal; JS leaves them `streaming` when the source throws (open
  question 6). A JS reader closes a cancelled stream silently, so it renders the text received so far.

Appends are pipelined: `ChannelWriter.append` is called without awaiting, and the encoder awaits them all
when a stream closes, on `cancel()` and on `close()`. A failed append is repaired by an `update` carrying
the message's full text and terminal status (§5.3); if that fails too, `EncoderRecoveryFailedError`. Once an
append to a message is known to have failed, the encoder sends that message no more appends (the closing one
included): one landing after the gap would leave a live reader with text it cannot repair, whereas the update
at the stream's end extends what the reader has by exactly the rest. An append in doubt after a connection
that could not be resumed fails this way (`sdk/outbox.py`), and so does every later one to that message.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, Protocol, TypeVar

from ..errors import (
    EncoderClosedError,
    EncoderRecoveryFailedError,
    MissingSerialError,
    OversizeMessageError,
    StreamNotOpenError,
    UnsupportedChunkError,
)
from ..wire.envelope import Headers, WireMessage
from ..wire.names import (
    AI_OUTPUT,
    FALSE,
    HEADER_CODEC_MESSAGE_ID,
    HEADER_STATUS,
    HEADER_STREAM,
    HEADER_STREAM_ID,
    KIND,
    TRUE,
    StreamStatus,
)
from .sizing import (
    SOFT_FRACTION,
    TOOL_OUTPUT_TYPES,
    TextTail,
    split_point,
    tool_output_text,
    truncated_tool_output,
    utf8_len,
)
from .step_markers import STEP_MARKERS, MarkerFate, RunPhases, held_marker_fate
from .vercel import (
    CONTINUED,
    CONTINUES,
    TOOL_INPUT,
    StreamGroup,
    delta_text,
    encode_discrete,
    end_codec,
    start_codec,
    stream_id_of,
    stream_phase,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_COALESCE_WINDOW = 0.040
DEFAULT_MAX_MESSAGE_BYTES = 65536
# Ably measures data + name + clientId + extras; the SDK's own client-side check (publish only) measures
# the whole encoded message with its field names, a few dozen bytes more. The reserve covers that.
DEFAULT_ENVELOPE_RESERVE = 512


class ChannelWriter(Protocol):
    """Where an encoder's messages go; the session implements it over an Ably channel.

    Order matters: the channel must see messages in the order these methods are *called*. `append` and `publish`
    are called without being awaited, so they must take their place in the connection's outgoing order when called,
    or at the latest in the first step of the coroutine they return (ably-python's `append_message` and `publish`
    assign the `msgSerial` there), which the encoder runs as a task: tasks take their first steps in call order.
    """

    def publish(self, message: WireMessage) -> Awaitable[str | None]:
        """Publish a create; what it returns settles with its serial from the ACK (`PublishResult.serials[0]`)."""
        ...

    def append(self, serial: str, message: WireMessage) -> Awaitable[Any]:
        """Start appending to message `serial`; the awaitable settles with the ACK or the failure."""
        ...

    async def update(self, serial: str, message: WireMessage) -> Any:
        """Replace message `serial`'s data and extras (recovery only)."""
        ...


OnMessage = Callable[[WireMessage], None]
"""A hook that sees, and may amend, each message an encoder is about to write (JS `onAblyMessage`)."""


@dataclass
class _Segment:
    """One Ably message of a stream: a long stream is carried by several, one after another."""

    stream_id: str
    transport: Headers
    codec: Headers
    base_bytes: int
    created_at: float = 0.0  # when its create was sent (the loop's clock)
    serial: str | None = None  # from its create's ACK: until then its deltas wait in its stream's buffer
    text: list[str] = field(default_factory=list)
    planned_bytes: int = 0
    status: StreamStatus = StreamStatus.STREAMING
    closing_codec: Headers | None = None
    failed: bool = False
    recovered: bool = False

    @property
    def accumulated(self) -> str:
        return "".join(self.text)


@dataclass
class _Stream:
    group: StreamGroup
    stream_id: str
    start_codec: Headers
    segment: _Segment = field(init=False)
    tail: TextTail = field(default_factory=TextTail)
    buffer: list[str] = field(default_factory=list)
    last_sent: float = -math.inf
    timer: asyncio.Handle | None = None
    opening: bool = True  # no append sent yet: the first gathers every delta of the loop turn it comes in


class MessageEncoder:
    """Writes the chunks of ONE assistant message as `ai-output` messages; `close()` it when done.

    `transport` is the full transport tier stamped on every message (`build_transport_headers` with
    role `assistant`, run id, codec-message-id, …); the encoder adds `stream`, `status` and `stream-id`.
    `on_message` sees (and may amend) every message just before it is written, as the JS `onAblyMessage`
    hook does, e.g. to stamp a `step-start-serial` learnt after the encoder was made. `write` calls must
    not overlap: await each before the next.

    `phases`, shared by every encoder of one run, lets the encoder leave out the step markers every reader does
    without (`step_markers.py`): a `start-step` waits for the next chunk, and is dropped when a stream start
    follows it; a `finish-step` waits for the next chunk but a data part, and is dropped when it is `finish`.
    Without it, every chunk goes out.
    """

    def __init__(
        self,
        writer: ChannelWriter,
        transport: Mapping[str, str],
        *,
        coalesce_window: float = DEFAULT_COALESCE_WINDOW,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        envelope_reserve: int = DEFAULT_ENVELOPE_RESERVE,
        on_message: OnMessage | None = None,
        phases: RunPhases | None = None,
    ) -> None:
        self._writer = writer
        self._transport: Headers = dict(transport)
        self._window = max(0.0, coalesce_window)
        self._max_message_bytes = max_message_bytes
        self._limit = max_message_bytes - envelope_reserve
        self._on_message = on_message
        self._phases = phases
        self._held_marker: str | None = None
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._segments: list[_Segment] = []
        self._closed_tool_calls: set[str] = set()
        self._pending: set[asyncio.Future[Any]] = set()  # appends not settled yet (a settled one is let go)
        self._discretes: list[asyncio.Future[Any]] = []
        self._creating: list[asyncio.Future[Any]] = []  # stream creates whose ACKs are still to come
        self._failed_create: BaseException | None = None  # raised by the next write (a delta's too), or by close
        self._closed = False

    @property
    def codec_message_id(self) -> str | None:
        return self._transport.get(HEADER_CODEC_MESSAGE_ID)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def open_stream_ids(self) -> list[str]:
        return [stream.stream_id for stream in self._streams.values()]

    async def __aenter__(self) -> MessageEncoder:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- Public operations ---------------------------------------------------------------------------------

    async def write(self, chunk: Mapping[str, Any]) -> None:
        """Publish one UIMessageChunk: a discrete create, a stream create, an append or a stream close."""
        if self._closed:
            raise EncoderClosedError()
        chunk_type = chunk.get("type")
        if not isinstance(chunk_type, str):
            raise UnsupportedChunkError(chunk_type)
        self._raise_failed_create()
        phase = stream_phase(chunk_type)
        if phase is None or phase[1] != "delta" or self._held_marker is not None:
            await self._creates_settled()  # a message after a stream's create goes after its held-back deltas
        if self._phases is not None and self._holds_marker(chunk, phase):
            return
        if phase is None:
            self._publish_discrete(chunk)
            return
        group, step = phase
        if step == "start":
            await self._start_stream(group, chunk)
        elif step == "delta":
            await self._delta(group, chunk)
        elif group is TOOL_INPUT and (group.kind, stream_id_of(group, chunk)) not in self._streams:
            if stream_id_of(group, chunk) in self._closed_tool_calls:
                # JS sends a second closing append, which every reader drops; a discrete would duplicate the part.
                log.warning("tool-input-available for closed tool call %r ignored", chunk.get("toolCallId"))
                return
            self._publish_discrete(chunk)  # tool-input-available with no open stream (§6.2)
        else:
            await self._end_stream(group, chunk)

    def write_now(self, chunk: Mapping[str, Any]) -> bool:
        """Write `chunk` without awaiting anything, if it is a delta of an open stream that fits in the stream's
        current message and no step marker is held before it; whether it did (nothing changes when it did not,
        and the chunk then goes through `write`). A producer can so hand tokens over in its own task."""
        if self._closed or self._held_marker is not None or self._failed_create is not None \
                or not isinstance(chunk.get("type"), str):
            return False
        phase = stream_phase(chunk["type"])
        if phase is None or phase[1] != "delta":
            return False
        group = phase[0]
        stream = self._streams.get((group.kind, stream_id_of(group, chunk)))
        if stream is None:
            return False
        text = delta_text(group, chunk)
        if self._cut(stream, text) != len(text):
            return False
        if text:
            self._enqueue(stream, text)
        return True

    async def cancel(self) -> None:
        """Close every open stream with `status: "cancelled"` and empty data, then await every pending publish."""
        if self._closed:
            return
        await self._creates_settled(raising=False)
        self._send_held_marker()
        self._flush_buffers()
        for stream in list(self._streams.values()):
            if stream.segment.serial is not None:
                self._close_segment(stream.segment, StreamStatus.CANCELLED, dict(stream.segment.codec))
        self._streams.clear()
        await self._settle()

    async def close(self) -> None:
        """Cancel what is still open, await every pending publish (repairing failed appends); idempotent."""
        if self._closed:
            return
        try:
            await self.cancel()
        finally:
            self._closed = True

    # --- Step markers ------------------------------------------------------------------------------------

    def _holds_marker(self, chunk: Mapping[str, Any], phase: tuple[StreamGroup, str] | None) -> bool:
        """Settle the held step marker before `chunk`; hold `chunk` if it is one (True)."""
        chunk_type = str(chunk["type"])
        if self._held_marker is not None and self._phases is not None:
            fate = held_marker_fate(self._held_marker, chunk_type, starts_step=self._starts_step(chunk, phase),
                                    step_open=self._phases.step_open)
            if fate is MarkerFate.SEND:
                self._send_held_marker()
            elif fate is MarkerFate.DROP:
                self._held_marker = None
        if chunk_type in STEP_MARKERS:
            self._held_marker = chunk_type
            return True
        return False

    def _starts_step(self, chunk: Mapping[str, Any], phase: tuple[StreamGroup, str] | None) -> bool:
        """`chunk` goes out as a stream start or a discrete `tool-input`, before which readers put a missing
        `start-step`."""
        if phase is None:
            return False
        group, step = phase
        if step == "start":
            return True
        if group is not TOOL_INPUT or step != "end":
            return False
        stream_id = stream_id_of(group, chunk)
        return (group.kind, stream_id) not in self._streams and stream_id not in self._closed_tool_calls

    def _send_held_marker(self) -> None:
        if self._held_marker is not None:
            marker, self._held_marker = self._held_marker, None
            self._publish_discrete({"type": marker})

    # --- Discrete ------------------------------------------------------------------------------------------

    def _publish_discrete(self, chunk: Mapping[str, Any]) -> None:
        """Send a discrete create without waiting for its ACK (no one needs its serial): a turn's `start`,
        `start-step`, `finish-step`, `finish` and data parts would otherwise each cost a round trip, on a loaded
        agent several times the network's, before the first token and after the last. `_settle` awaits them
        and raises the first failure."""
        message = self._discrete_message(chunk)
        if message.size() > self._limit and chunk.get("type") in TOOL_OUTPUT_TYPES:
            message = self._fitted_tool_output(chunk, message.size())
        self._hook(message)
        self._check_size(message, f"the {chunk.get('type')!r} chunk")
        self._flush_buffers()
        self._discretes.append(self._started(self._writer.publish(message)))
        if self._phases is not None:
            self._phases.sent_discrete(message.codec.get(KIND, ""), message.codec)

    def _discrete_message(self, chunk: Mapping[str, Any]) -> WireMessage:
        encoded = encode_discrete(chunk, message_id=self.codec_message_id)
        message = WireMessage(name=AI_OUTPUT, data=encoded.data, transport={**self._transport, HEADER_STREAM: FALSE},
                              codec=encoded.codec, ephemeral=encoded.ephemeral)
        return message

    def _fitted_tool_output(self, chunk: Mapping[str, Any], size: int) -> WireMessage:
        """The tool result cut to fit the limit, with its marker. Escaping makes a byte of text cost more than
        one on the wire, so each try scales the text by how far the last one was off."""
        budget = utf8_len(tool_output_text(chunk))
        for _ in range(8):
            budget = int(budget * self._limit / size * 0.99)
            message = self._discrete_message(truncated_tool_output(chunk, budget, self._max_message_bytes))
            size = message.size()
            if size <= self._limit:
                log.warning("tool output of call %r is over the %d-byte message limit: the client gets it cut to "
                            "fit, with a marker", chunk.get("toolCallId"), self._max_message_bytes)
                break
        return message

    # --- Streams -------------------------------------------------------------------------------------------

    async def _start_stream(self, group: StreamGroup, chunk: Mapping[str, Any]) -> None:
        stream_id = stream_id_of(group, chunk)
        codec = start_codec(group, chunk)
        previous = self._streams.pop((group.kind, stream_id), None)
        if previous is not None:  # a restarted id: give the old message its terminal first
            self._flush_stream(previous)
            self._close_segment(previous.segment, StreamStatus.CANCELLED, dict(previous.segment.codec))
        stream = _Stream(group, stream_id, codec)
        self._open_segment(stream, codec)
        self._streams[(group.kind, stream_id)] = stream

    def _open_segment(self, stream: _Stream, codec: Headers) -> None:
        """Send the create of the stream's next message without awaiting its ACK: its deltas wait in the stream's
        buffer until the ACK brings its serial, and go out from the ACK's callback (`_on_created`), so a reply's
        first tokens wait for no task's turn of the event loop. Anything else written meanwhile waits for the ACK
        (`_creates_settled`), so the wire keeps the chunks' order."""
        stream_id = stream.stream_id
        transport = {**self._transport, HEADER_STREAM: TRUE, HEADER_STATUS: StreamStatus.STREAMING.value,
                     HEADER_STREAM_ID: stream_id}
        message = WireMessage(name=AI_OUTPUT, data="", transport=transport, codec=dict(codec))
        self._hook(message)
        # The aggregate keeps the create's name and the last append's extras; budget for the largest of
        # those an append will carry (a terminal status and the continuation flag).
        closing = WireMessage(name=AI_OUTPUT, transport={**message.transport, HEADER_STATUS: "cancelled"},
                              codec={**message.codec, CONTINUED: TRUE})
        base = closing.size()
        if base >= self._limit:
            raise OversizeMessageError(f"the headers of stream {stream_id!r}", base, self._limit)
        if self._phases is not None:
            self._phases.sent_stream_start(message.codec)
        self._flush_buffers()
        created_at = asyncio.get_running_loop().time()
        segment = _Segment(stream_id, message.transport, message.codec, base, created_at)
        creating = self._started(self._writer.publish(message))
        creating.add_done_callback(partial(self._on_created, stream, segment))
        self._creating.append(creating)
        self._segments.append(segment)
        # The create counts against the stream's rate, so the window's clock starts when it was sent: at the default
        # 40 ms no second of a stream holds more than 25 of its messages.
        stream.segment, stream.last_sent, stream.opening = segment, created_at, True

    def _on_created(self, stream: _Stream, segment: _Segment, created: asyncio.Future[Any]) -> None:
        """The create's ACK: the segment has its serial, and what its stream held back goes out now, as one append."""
        error = asyncio.CancelledError() if created.cancelled() else created.exception()
        if error is None and not created.result():
            error = MissingSerialError(segment.stream_id)
        if error is not None:
            if self._failed_create is None:
                self._failed_create = error
            return
        segment.serial = created.result()
        if stream.segment is not segment or not stream.buffer or self._closed:
            return
        if self._window > 0:
            loop = asyncio.get_running_loop()
            if loop.time() >= stream.last_sent + self._window:
                self._flush_stream(stream)
            elif stream.timer is None:
                stream.timer = loop.call_at(stream.last_sent + self._window, self._flush_stream, stream)
            return
        held, stream.buffer = stream.buffer, []
        for text in held:  # no window: one append per delta
            self._send_append(segment, text)

    async def _creates_settled(self, raising: bool = True) -> None:
        """Await the creates whose ACKs are still to come (their callbacks have run by then: registered first);
        with `raising`, raise the first that failed (nothing can repair a message that does not exist)."""
        creating, self._creating = self._creating, []
        if creating:
            await asyncio.gather(*creating, return_exceptions=True)
        if raising:
            self._raise_failed_create()

    def _raise_failed_create(self) -> None:
        """Raise a failed create's error, once."""
        if self._failed_create is not None:
            error, self._failed_create = self._failed_create, None
            raise error

    async def _delta(self, group: StreamGroup, chunk: Mapping[str, Any]) -> None:
        stream = self._open_stream(group, chunk)
        text = delta_text(group, chunk)
        while text:
            segment = stream.segment
            cut = self._cut(stream, text)
            if group is TOOL_INPUT and cut < len(text):
                needed = segment.base_bytes + segment.planned_bytes + utf8_len(text)
                raise OversizeMessageError(f"the input of tool call {stream.stream_id!r}", needed, self._limit)
            if cut == 0 and segment.planned_bytes == 0:
                raise OversizeMessageError(f"a message of stream {stream.stream_id!r}", segment.base_bytes,
                                           self._limit)
            head, text = text[:cut], text[cut:]
            if head:
                self._enqueue(stream, head)
            if text:
                await self._continue_in_new_message(stream)

    def _cut(self, stream: _Stream, text: str) -> int:
        """How much of `text` the stream's current message takes: all of it, or less (a tool input: none) when the
        rest must go on in a new message (`sizing.split_point`)."""
        segment = stream.segment
        room = self._limit - segment.base_bytes - segment.planned_bytes
        if stream.group is TOOL_INPUT:
            return len(text) if utf8_len(text) <= room else 0
        soft_room = room - (self._limit - segment.base_bytes) // SOFT_FRACTION
        return split_point(text, room=room, soft_room=soft_room, tail=stream.tail, has_data=segment.planned_bytes > 0)

    async def _end_stream(self, group: StreamGroup, chunk: Mapping[str, Any]) -> None:
        stream = self._open_stream(group, chunk)
        closing_codec = {**stream.segment.codec, **end_codec(group, chunk)}
        if self._closing_size(stream.segment, closing_codec) > self._limit:
            if group is TOOL_INPUT or stream.segment.planned_bytes == 0:
                size = self._closing_size(stream.segment, closing_codec)
                raise OversizeMessageError(f"the end of stream {stream.stream_id!r}", size, self._limit)
            await self._continue_in_new_message(stream)
            await self._creates_settled()
            closing_codec = {**stream.segment.codec, **end_codec(group, chunk)}
            size = self._closing_size(stream.segment, closing_codec)
            if size > self._limit:
                raise OversizeMessageError(f"the end of stream {stream.stream_id!r}", size, self._limit)
        del self._streams[(group.kind, stream.stream_id)]
        if group is TOOL_INPUT:
            self._closed_tool_calls.add(stream.stream_id)
        # Text still held by the coalescing window rides on the closing append (a JS decoder applies a closing
        # append's data as a last delta): one message fewer per stream, and no burst at the end.
        self._close_segment(stream.segment, StreamStatus.COMPLETE, closing_codec, self._take_buffer(stream))
        await self._settle()

    async def _continue_in_new_message(self, stream: _Stream) -> None:
        """End the stream's current Ably message `complete` and carry the stream on in a new one."""
        await self._creates_settled()
        self._flush_stream(stream)
        ending = stream.segment
        self._close_segment(ending, StreamStatus.COMPLETE, {**ending.codec, CONTINUED: TRUE})
        self._open_segment(stream, {**stream.start_codec, CONTINUES: TRUE})

    def _open_stream(self, group: StreamGroup, chunk: Mapping[str, Any]) -> _Stream:
        stream_id = stream_id_of(group, chunk)
        stream = self._streams.get((group.kind, stream_id))
        if stream is None:
            raise StreamNotOpenError(str(chunk.get("type")), stream_id)
        return stream

    def _closing_size(self, segment: _Segment, codec: Headers) -> int:
        closing = WireMessage(name=AI_OUTPUT, transport={**segment.transport, HEADER_STATUS: "complete"}, codec=codec)
        return closing.size() + segment.planned_bytes

    # --- Appends and coalescing ----------------------------------------------------------------------------

    def _enqueue(self, stream: _Stream, text: str) -> None:
        """Account for `text` in the stream's message and send it now or when the window allows."""
        stream.segment.planned_bytes += utf8_len(text)
        stream.tail.advance(text)
        if stream.segment.serial is None:  # its create's ACK sends it (`_on_created`)
            stream.buffer.append(text)
            return
        if self._window <= 0:
            self._send_append(stream.segment, text)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() - stream.last_sent >= self._window
        if due and not stream.opening:
            # A window whose timer has not had its turn yet (a busy loop runs it late) goes out with this delta.
            self._flush_stream(stream, text)
            return
        stream.buffer.append(text)
        if stream.timer is None:
            # The stream's first deltas: those its create's round trip held back come in this turn, all of them.
            stream.timer = (loop.call_soon(self._flush_stream, stream) if due else
                            loop.call_at(stream.last_sent + self._window, self._flush_stream, stream))

    def _flush_stream(self, stream: _Stream, text: str = "") -> None:
        if stream.segment.serial is None:
            return
        text = self._take_buffer(stream) + text
        stream.opening = False
        if text:
            stream.last_sent = asyncio.get_running_loop().time()
            self._send_append(stream.segment, text)

    @staticmethod
    def _take_buffer(stream: _Stream) -> str:
        """The text the window holds for `stream`, no longer held (its timer cancelled)."""
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        text = "".join(stream.buffer)
        stream.buffer.clear()
        return text

    def _flush_buffers(self) -> None:
        for stream in self._streams.values():
            self._flush_stream(stream)

    def _send_append(self, segment: _Segment, text: str) -> None:
        message = WireMessage(data=text, transport=dict(segment.transport), codec=dict(segment.codec))
        self._hook(message)
        segment.text.append(text)
        self._pipeline(segment, message)

    def _close_segment(self, segment: _Segment, status: StreamStatus, codec: Headers, text: str = "") -> None:
        message = WireMessage(data=text, transport={**segment.transport, HEADER_STATUS: status.value}, codec=codec)
        self._hook(message)
        if text:
            segment.text.append(text)
        segment.status = status
        segment.closing_codec = codec
        self._pipeline(segment, message)

    def _pipeline(self, segment: _Segment, message: WireMessage) -> None:
        if segment.failed:  # no appends after a failed one: they could land after a gap; the update will carry all
            return
        future = self._started(self._writer.append(segment.serial, message))
        future.add_done_callback(lambda done: self._on_appended(segment, done))
        self._pending.add(future)

    @staticmethod
    def _started(sending: Awaitable[T]) -> asyncio.Future[T]:
        """A write not awaited now, as a future (a coroutine as a task, which takes its first step in call order)."""
        return asyncio.ensure_future(sending)

    def _on_appended(self, segment: _Segment, done: asyncio.Future[Any]) -> None:
        self._pending.discard(done)
        error = asyncio.CancelledError() if done.cancelled() else done.exception()
        if error is not None and not segment.failed:
            log.warning("append to %s failed (%s: %s); the message will be repaired by an update",
                        segment.serial, getattr(error, "code", type(error).__name__), error)
            segment.failed = True

    # --- Settling and recovery -----------------------------------------------------------------------------

    async def _settle(self) -> None:
        """Await every pending append and discrete create; repair the terminated messages whose appends failed
        (§5.3); raise a discrete create's failure (nothing can repair it)."""
        pending, self._pending = self._pending, set()
        discretes, self._discretes = self._discretes, []
        # Each append's own callback (registered before gather's) has marked its failure by the time this returns.
        await asyncio.gather(*pending, *discretes, return_exceptions=True)
        await self._recover()
        for sent in discretes:
            if not sent.cancelled() and (error := sent.exception()) is not None:
                raise error
        self._raise_failed_create()

    async def _recover(self) -> None:
        failures: list[tuple[_Segment, BaseException]] = []
        for segment in self._segments:
            if not segment.failed or segment.recovered or segment.status is StreamStatus.STREAMING:
                continue
            message = WireMessage(data=segment.accumulated,
                                  transport={**segment.transport, HEADER_STATUS: segment.status.value},
                                  codec=dict(segment.closing_codec or segment.codec))
            self._hook(message)
            try:
                await self._writer.update(segment.serial, message)
                segment.recovered = True
            except Exception as error:
                failures.append((segment, error))
        if failures:
            raise EncoderRecoveryFailedError([s.stream_id for s, _ in failures], failures[0][1])

    # --- Helpers -------------------------------------------------------------------------------------------

    def _hook(self, message: WireMessage) -> None:
        if self._on_message is None:
            return
        try:
            self._on_message(message)
        except Exception:
            log.exception("on_message hook raised; the message is written as it stands")

    def _check_size(self, message: WireMessage, what: str) -> None:
        size = message.size()
        if size > self._limit:
            raise OversizeMessageError(what, size, self._limit)

