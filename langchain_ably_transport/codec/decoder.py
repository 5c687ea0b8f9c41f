"""`Decoder`: received `ai-input`/`ai-output` messages back into input events and UIMessageChunks (§5.4).

It is `core/codec/decoder.ts` + `define-codec.ts`'s hooks + the Vercel tables, so that this package reads
the channel exactly as a JS client does:

* create: a stream (`stream: "true"`) opens a tracker keyed by serial (its data is ignored) and emits the
  start events; anything else decodes as discrete. A duplicate create is ignored.
* append: a tracked stream takes the delta unless the delivery's `version.serial` is not newer than the
  tracker's or the tracker is closed; `status: complete` then emits the end events, `cancelled` closes
  silently. An append for an untracked serial is handled as an update (first contact).
* update: first contact emits start, the whole text as one delta, and the end if complete (history and
  mid-stream joins look like this); on a tracker, a prefix extension emits the suffix, a replacement
  replaces the state and emits nothing.
* delete: closes the tracker, emits nothing.
* Direction comes from the name: `ai-input` is input, everything else output; only streams created as
  `ai-output` emit anything. A discrete output first passes the lifecycle repair (§5.6), which
  synthesises a missing `start`/`start-step` for a reader that joined mid-message.

Two additions, both on by default and both switchable off for a byte-exact JS reading:

* `guard_replays`: the JS Tree's second guard (`wire-log.ts`): per serial, a delivery whose version is not
  newer than one already decoded is dropped, and so is a newer version of a discrete (an "edited discrete").
  Live delivery and history can then share one decoder without double-counting discrete messages.
* `merge_continuations`: a text/reasoning stream the encoder carried on in a new Ably message (codec
  `continued`/`continues`, see `encoder.py`) decodes as one stream, without the end and start between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ..wire.envelope import Headers, WireMessage
from ..wire.names import (
    AI_INPUT,
    AI_OUTPUT,
    HEADER_CODEC_MESSAGE_ID,
    HEADER_RUN_ID,
    HEADER_STATUS,
    HEADER_STREAM,
    HEADER_STREAM_ID,
    KIND,
    PROTOCOL_NAMES,
    TRUE,
    Action,
    StreamStatus,
)
from .vercel import (
    CONTINUED,
    CONTINUES,
    LifecycleTracker,
    decode_discrete_output,
    decode_input,
    decode_stream_delta,
    decode_stream_end,
    decode_stream_start,
)

Direction = Literal["input", "output"]


class DecodedEvent(NamedTuple):
    """One decoded event: `("input", input_event)` or `("output", chunk)`, and where it belongs.

    `codec_message_id` is the message the event folds into (None if the wire had none: JS drops such an
    output); `run_id` the run it belongs to (None for a run-less input); `serial` the wire's serial.
    """

    direction: Direction
    event: dict[str, Any]
    codec_message_id: str | None
    run_id: str | None
    serial: str | None


@dataclass
class _Tracker:
    """A stream message being read: what it has accumulated, up to which version, and its headers."""

    name: str
    stream_id: str
    accumulated: str
    codec: Headers
    transport: Headers
    version: str
    closed: bool = False

    def close(self) -> None:
        # A tombstone: enough to recognise replays and late deliveries, not the stream's content.
        self.closed = True
        self.accumulated = ""

    @property
    def continuation_key(self) -> tuple[str, str, str]:
        return (self.transport.get(HEADER_CODEC_MESSAGE_ID, ""), self.codec.get(KIND, ""), self.stream_id)


class _ReplayGuard:
    """Per serial, the highest version decoded; refuses replays and edited discretes (`wire-log.ts`)."""

    def __init__(self) -> None:
        self._decoded_through: dict[str, str] = {}

    def admit(self, message: WireMessage) -> bool:
        serial, version = message.serial, message.version_serial
        if serial is None:
            return True
        seen = self._decoded_through.get(serial)
        if seen is None:
            self._decoded_through[serial] = version or serial
            return True
        if version is None:
            return True
        if version <= seen or message.transport.get(HEADER_STREAM) != TRUE:
            return False
        self._decoded_through[serial] = version
        return True


class Decoder:
    """Decodes the AI Transport messages of one channel, in delivery order; live and history may share it."""

    def __init__(self, *, merge_continuations: bool = True, guard_replays: bool = True) -> None:
        self._trackers: dict[str, _Tracker] = {}
        self._lifecycle = LifecycleTracker()
        self._merge = merge_continuations
        self._awaiting_continuation: set[tuple[str, str, str]] = set()
        self._guard = _ReplayGuard() if guard_replays else None

    def has_open_streams(self) -> bool:
        """Whether a stream it decoded may still change: not closed, or closed awaiting its continuation."""
        return bool(self._awaiting_continuation) or any(not tracker.closed for tracker in self._trackers.values())

    def decode_ably(self, message: Any) -> list[DecodedEvent]:
        """Decode a received ably-python message (or its JSON dict); a foreign one decodes to nothing."""
        wire = WireMessage.from_ably(message)
        return [] if wire is None else self.decode(wire)

    def decode(self, message: WireMessage) -> list[DecodedEvent]:
        """The events of one message; a message without an action is taken as a create."""
        if message.name in PROTOCOL_NAMES or (self._guard is not None and not self._guard.admit(message)):
            return []  # the agent-protocol codec's messages are not UIMessages
        action = message.action or Action.CREATE
        if action is Action.CREATE:
            events = self._create(message)
        elif action is Action.APPEND:
            events = self._append(message)
        elif action is Action.UPDATE:
            events = self._update(message)
        elif action is Action.DELETE:
            events = self._delete(message)
        else:
            events = []
        return self._label(message, events)

    # --- Actions -------------------------------------------------------------------------------------------

    def _create(self, message: WireMessage) -> list[dict[str, Any]]:
        if message.transport.get(HEADER_STREAM) != TRUE:
            return self._discrete(message)
        serial = message.serial
        if not serial or serial in self._trackers:
            return []
        tracker = self._track(message, accumulated="")
        return self._start_events(tracker)

    def _append(self, message: WireMessage) -> list[dict[str, Any]]:
        serial = message.serial
        if not serial:
            return []
        tracker = self._trackers.get(serial)
        if tracker is None:
            return self._update(message)  # the platform may deliver a first contact as an append
        if self._already_incorporated(tracker, message.version_serial):
            return []
        events: list[dict[str, Any]] = []
        delta = message.data if isinstance(message.data, str) else ""
        if delta:
            tracker.accumulated += delta
            events += self._delta_events(tracker, delta)
        events += self._terminal(tracker, message.transport.get(HEADER_STATUS), message.codec)
        return events

    def _update(self, message: WireMessage) -> list[dict[str, Any]]:
        serial = message.serial
        if not serial:
            return []
        tracker = self._trackers.get(serial)
        if tracker is None:
            return self._first_contact(message)
        if self._already_incorporated(tracker, message.version_serial):
            return []
        data = message.data if isinstance(message.data, str) else ""
        if not data.startswith(tracker.accumulated):
            # A replacement: JS replaces its state and emits nothing (`onStreamUpdate` is not wired up).
            tracker.accumulated, tracker.codec, tracker.transport = data, dict(message.codec), dict(message.transport)
            return []
        events: list[dict[str, Any]] = []
        delta = data[len(tracker.accumulated):]
        if delta:
            tracker.accumulated = data
            events += self._delta_events(tracker, delta)
        events += self._terminal(tracker, message.transport.get(HEADER_STATUS), message.codec)
        return events

    def _first_contact(self, message: WireMessage) -> list[dict[str, Any]]:
        if message.transport.get(HEADER_STREAM) != TRUE:
            return self._discrete(message)
        data = message.data if isinstance(message.data, str) else ""
        tracker = self._track(message, accumulated=data)
        events = self._start_events(tracker)
        if data:
            events += self._delta_events(tracker, data)
        events += self._terminal(tracker, message.transport.get(HEADER_STATUS), message.codec)
        return events

    def _delete(self, message: WireMessage) -> list[dict[str, Any]]:
        tracker = self._trackers.get(message.serial or "")
        if tracker is not None:
            tracker.close()
        return []

    # --- Streams -------------------------------------------------------------------------------------------

    def _track(self, message: WireMessage, accumulated: str) -> _Tracker:
        serial = message.serial or ""
        tracker = _Tracker(
            name=message.name or "", stream_id=message.transport.get(HEADER_STREAM_ID, ""), accumulated=accumulated,
            codec=dict(message.codec), transport=dict(message.transport), version=message.version_serial or serial,
        )
        self._trackers[serial] = tracker
        return tracker

    def _already_incorporated(self, tracker: _Tracker, version: str | None) -> bool:
        if version is not None and version <= tracker.version:
            return True
        if tracker.closed:
            return True
        if version is not None:
            tracker.version = version
        return False

    def _terminal(self, tracker: _Tracker, status: str | None, closing_codec: Headers) -> list[dict[str, Any]]:
        if status == StreamStatus.COMPLETE:
            events = self._end_events(tracker, closing_codec)
            tracker.close()
            return events
        if status == StreamStatus.CANCELLED:
            tracker.close()
        return []

    def _start_events(self, tracker: _Tracker) -> list[dict[str, Any]]:
        if tracker.name != AI_OUTPUT:
            return []
        if self._merge and tracker.codec.get(CONTINUES) == TRUE:
            key = tracker.continuation_key
            if key in self._awaiting_continuation:
                self._awaiting_continuation.discard(key)
                return []
        run_id = tracker.transport.get(HEADER_RUN_ID, "")
        return self._lifecycle.on_stream_start(run_id, tracker.codec) + decode_stream_start(tracker.codec)

    def _delta_events(self, tracker: _Tracker, delta: str) -> list[dict[str, Any]]:
        return decode_stream_delta(tracker.codec, delta) if tracker.name == AI_OUTPUT else []

    def _end_events(self, tracker: _Tracker, closing_codec: Headers) -> list[dict[str, Any]]:
        if tracker.name != AI_OUTPUT:
            return []
        if self._merge and closing_codec.get(CONTINUED) == TRUE:
            self._awaiting_continuation.add(tracker.continuation_key)
            return []
        return decode_stream_end(tracker.stream_id, tracker.accumulated, tracker.codec, closing_codec)

    # --- Discrete ------------------------------------------------------------------------------------------

    def _discrete(self, message: WireMessage) -> list[dict[str, Any]]:
        if message.name == AI_INPUT:
            return decode_input(message.codec, message.transport, message.data)
        if message.name == AI_OUTPUT:
            run_id = message.transport.get(HEADER_RUN_ID, "")
            kind = message.codec.get(KIND, "")
            lead_in = self._lifecycle.on_discrete(run_id, kind, message.codec)
            return lead_in + decode_discrete_output(message.codec, message.data)
        return []

    def _label(self, message: WireMessage, events: list[dict[str, Any]]) -> list[DecodedEvent]:
        if not events:
            return []
        tracker = self._trackers.get(message.serial or "")
        headers = message.transport or (tracker.transport if tracker else {})
        direction: Direction = "input" if message.name == AI_INPUT else "output"
        codec_message_id = headers.get(HEADER_CODEC_MESSAGE_ID)
        run_id = headers.get(HEADER_RUN_ID)
        return [DecodedEvent(direction, event, codec_message_id, run_id, message.serial) for event in events]
