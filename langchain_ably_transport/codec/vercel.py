"""The Vercel codec's tables (§6.2, §6.3): how each chunk and input maps to codec headers, data and ephemerality.

Pure functions over plain dicts, one per direction and construct, mirroring `vercel/codec/outputs.ts`,
`inputs.ts`, `fields.ts`, `wire-data.ts` and `decode-lifecycle.ts` of `@ably/ai-transport` 0.8.0. The
encoder and decoder cores drive these tables; nothing here touches a channel.

Lossy by design, exactly as in JS: `providerMetadata` on deltas is dropped; a decoded `finish` always has a
`finishReason` (`stop` when absent); a stream's end chunk carries the start's fields unless it overrides
them; a discrete `tool-input-available` decodes as a `tool-input-start` followed by the available chunk.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InvalidArgumentError, OversizeMessageError, UnsupportedChunkError
from ..wire.envelope import Headers, WireMessage
from ..wire.headers import (
    BoolField,
    EnumField,
    HeaderField,
    JsonField,
    StrField,
    parse_header_json,
    read_fields,
    write_fields,
)
from ..wire.names import (
    AI_INPUT,
    FALSE,
    HEADER_CODEC_MESSAGE_ID,
    HEADER_DISCRETE,
    HEADER_ROLE,
    HEADER_STREAM,
    KIND,
    PART_TYPE,
    ROLE_USER,
    TRUE,
)
from .chunks import FINISH_REASONS, Chunk, Input

ADAPTER_TAG = "vercel-ai-sdk-ui-message"

# Not in the JS codec: marks a text/reasoning stream that outgrew one Ably message (see `encoder.py`).
# JS readers ignore unknown codec headers; `Decoder(merge_continuations=True)` uses them to re-join the text.
CONTINUED = "continued"  # on the closing append of a message whose stream goes on in a later message
CONTINUES = "continues"  # on the create (and appends) of the message that carries it on

_MISSING: Any = object()

# --- Field bindings (`vercel/codec/fields.ts`) ---------------------------------------------------------------

F_ID = StrField("id")
F_META = JsonField("providerMetadata")
F_TOOL_CALL_ID = StrField("toolCallId", "")
F_TOOL_NAME = StrField("toolName", "")
F_DYNAMIC = BoolField("dynamic")
F_TITLE = StrField("title")
F_PROVIDER_EXECUTED = BoolField("providerExecuted")
F_MEDIA_TYPE = StrField("mediaType", "")
F_SOURCE_ID = StrField("sourceId", "")
F_MESSAGE_ID = StrField("messageId")
F_MESSAGE_METADATA = JsonField("messageMetadata")
F_FINISH_REASON = EnumField("finishReason", FINISH_REASONS, "stop")
F_APPROVED = BoolField("approved", False)
F_REASON = StrField("reason")

# --- Streamed groups ----------------------------------------------------------------------------------------

Phase = Literal["start", "delta", "end"]


@dataclass(frozen=True)
class StreamGroup:
    """One streamed family: a create on start, appends for deltas, a closing append on end."""

    kind: str
    start: str
    delta: str
    end: str
    id_field: str
    delta_field: str
    fields: tuple[HeaderField, ...]
    delta_fields: tuple[HeaderField, ...]
    end_keys: tuple[str, ...] | None = None  # fields the closing append writes; None = all


TEXT = StreamGroup("text", "text-start", "text-delta", "text-end", "id", "delta", (F_ID, F_META), (F_ID,))
REASONING = StreamGroup(
    "reasoning", "reasoning-start", "reasoning-delta", "reasoning-end", "id", "delta", (F_ID, F_META), (F_ID,)
)
TOOL_INPUT = StreamGroup(
    "tool-input", "tool-input-start", "tool-input-delta", "tool-input-available", "toolCallId", "inputTextDelta",
    (F_TOOL_CALL_ID, F_TOOL_NAME, F_DYNAMIC, F_TITLE, F_PROVIDER_EXECUTED, F_META), (F_TOOL_CALL_ID,),
    end_keys=("toolCallId", "toolName", "providerMetadata"),
)
STREAM_GROUPS: dict[str, StreamGroup] = {g.kind: g for g in (TEXT, REASONING, TOOL_INPUT)}
_PHASES: dict[str, tuple[StreamGroup, Phase]] = {
    t: (g, p) for g in STREAM_GROUPS.values() for t, p in ((g.start, "start"), (g.delta, "delta"), (g.end, "end"))
}


def stream_phase(chunk_type: str) -> tuple[StreamGroup, Phase] | None:
    """The stream group and phase of a chunk type, or None for a discrete chunk."""
    return _PHASES.get(chunk_type)


def stream_id_of(group: StreamGroup, chunk: Mapping[str, Any]) -> str:
    """The `stream-id` of a stream chunk: the text/reasoning `id`, or the `toolCallId`."""
    value = chunk.get(group.id_field)
    if not isinstance(value, str):
        raise InvalidArgumentError(f"a {chunk.get('type')!r} chunk needs a string {group.id_field!r}")
    return value


def start_codec(group: StreamGroup, chunk: Mapping[str, Any]) -> Headers:
    """Codec tier of a stream's create: `kind` = the group, plus the start chunk's fields."""
    return write_fields(group.fields, chunk, {KIND: group.kind})


def delta_text(group: StreamGroup, chunk: Mapping[str, Any]) -> str:
    value = chunk.get(group.delta_field)
    if not isinstance(value, str):
        raise InvalidArgumentError(f"a {chunk.get('type')!r} chunk needs a string {group.delta_field!r}")
    return value


def end_codec(group: StreamGroup, chunk: Mapping[str, Any]) -> Headers:
    """Codec fields the closing append adds over the persistent (start) ones."""
    fields = group.fields if group.end_keys is None else tuple(f for f in group.fields if f.key in group.end_keys)
    return write_fields(fields, chunk, {KIND: group.kind})


def decode_stream_start(codec: Mapping[str, str]) -> list[Chunk]:
    group = STREAM_GROUPS.get(codec.get(KIND, ""))
    if group is None:
        return []
    return [{"type": group.start, **read_fields(group.fields, codec)}]


def decode_stream_delta(codec: Mapping[str, str], delta: str) -> list[Chunk]:
    group = STREAM_GROUPS.get(codec.get(KIND, ""))
    if group is None:
        return []
    return [{"type": group.delta, **read_fields(group.delta_fields, codec), group.delta_field: delta}]


def decode_stream_end(
    stream_id: str, accumulated: str, codec: Mapping[str, str], closing_codec: Mapping[str, str]
) -> list[Chunk]:
    """End chunks from the closing headers; a tool-input end rebuilds `input` from the accumulated text."""
    group = STREAM_GROUPS.get(codec.get(KIND, ""))
    if group is None:
        return []
    if group is not TOOL_INPUT:
        return [{"type": group.end, **read_fields(group.fields, closing_codec)}]
    chunk: Chunk = {
        "type": "tool-input-available", "toolCallId": stream_id,
        "toolName": F_TOOL_NAME.read(closing_codec) or F_TOOL_NAME.read(codec),
    }
    _set(chunk, "input", parse_json_or_string(accumulated))
    _set_present(chunk, "providerMetadata", F_META.read(closing_codec))
    return [chunk]


# --- Discrete outputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """A chunk or input part ready for the wire: codec tier, data (None = no data) and ephemerality."""

    codec: Headers
    data: Any
    ephemeral: bool = False


@dataclass(frozen=True)
class EventSpec:
    """One discrete construct: its fields and how its data is encoded and decoded (`''` when it has none)."""

    fields: tuple[HeaderField, ...] = ()
    encode_data: Callable[[Mapping[str, Any]], Any] | None = None
    decode_data: Callable[[Any], dict[str, Any]] | None = None
    ephemeral: Callable[[Mapping[str, Any]], bool] | None = None


def as_string(data: Any) -> str:
    return data if isinstance(data, str) else ""


def _only(source: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The keys of `source` that are present (JSON drops an undefined key, so absent stays absent)."""
    return {k: source[k] for k in keys if k in source}


def _is_record(data: Any) -> bool:
    """JS `typeof data === 'object' && data !== null`, which arrays pass too."""
    return isinstance(data, dict | list)


def _field(data: Any, key: str) -> Any:
    return data.get(key, _MISSING) if isinstance(data, dict) else _MISSING


def _optional_string(data: Any, key: str) -> bool:
    value = _field(data, key)
    return _is_record(data) and (value is _MISSING or isinstance(value, str))


def _decode_tool_input_error(data: Any) -> dict[str, Any]:
    if not _optional_string(data, "errorText"):
        return {"errorText": ""}
    out: dict[str, Any] = {"errorText": _or_empty(_field(data, "errorText"))}
    _set(out, "input", _field(data, "input"))
    return out


def _decode_output(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if _is_record(data):
        _set(out, "output", _field(data, "output"))
    return out


def _decode_error_text(data: Any) -> dict[str, Any]:
    return {"errorText": _or_empty(_field(data, "errorText")) if _optional_string(data, "errorText") else ""}


def _decode_data(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _set_present(out, "data", data)
    return out


EVENTS: dict[str, EventSpec] = {
    "start": EventSpec((F_MESSAGE_ID, F_MESSAGE_METADATA)),
    "start-step": EventSpec(),
    "finish-step": EventSpec(),
    "finish": EventSpec((F_FINISH_REASON, F_MESSAGE_METADATA)),
    "message-metadata": EventSpec((F_MESSAGE_METADATA,)),
    "error": EventSpec(encode_data=lambda c: c.get("errorText"),
                       decode_data=lambda d: {"errorText": as_string(d)}),
    "abort": EventSpec(encode_data=lambda c: c.get("reason") or "",
                       decode_data=lambda d: {"reason": d} if isinstance(d, str) and d else {}),
    "file": EventSpec((F_MEDIA_TYPE, F_META), encode_data=lambda c: c.get("url"),
                      decode_data=lambda d: {"url": as_string(d)}),
    "source-url": EventSpec((F_SOURCE_ID, F_TITLE, F_META), encode_data=lambda c: c.get("url"),
                            decode_data=lambda d: {"url": as_string(d)}),
    "source-document": EventSpec((F_SOURCE_ID, F_MEDIA_TYPE, StrField("title", ""), StrField("filename"), F_META)),
    "tool-input-error": EventSpec(TOOL_INPUT.fields, encode_data=lambda c: _only(c, "errorText", "input"),
                                  decode_data=_decode_tool_input_error),
    "tool-output-available": EventSpec((F_TOOL_CALL_ID, F_DYNAMIC, F_PROVIDER_EXECUTED, BoolField("preliminary")),
                                       encode_data=lambda c: _only(c, "output"), decode_data=_decode_output),
    "tool-output-error": EventSpec((F_TOOL_CALL_ID, F_DYNAMIC, F_PROVIDER_EXECUTED),
                                   encode_data=lambda c: _only(c, "errorText"), decode_data=_decode_error_text),
    "tool-approval-request": EventSpec((F_TOOL_CALL_ID, StrField("approvalId", ""))),
    "tool-output-denied": EventSpec((F_TOOL_CALL_ID,)),
}
DATA_EVENT = EventSpec((F_ID, BoolField("transient")), encode_data=lambda c: c.get("data"),
                       decode_data=_decode_data, ephemeral=lambda c: c.get("transient") is True)
DATA_PREFIX = "data-"


def is_data_type(chunk_type: str) -> bool:
    return chunk_type.startswith(DATA_PREFIX)


def encode_discrete(chunk: Mapping[str, Any], *, message_id: str | None = None) -> Encoded:
    """Codec tier, data and ephemerality of a discrete chunk (one `message.create` with `stream: "false"`).

    `message_id` is the pipe's codec-message-id, the fallback `messageId` of a `start` chunk. A
    `tool-input-available` here is the no-open-stream case: a discrete `kind: tool-input` with all six
    fields and the input as data. Raises `UnsupportedChunkError` for a type outside the tables.
    """
    chunk_type = chunk.get("type")
    if not isinstance(chunk_type, str):
        raise UnsupportedChunkError(chunk_type)
    if chunk_type == TOOL_INPUT.end:
        return Encoded(start_codec(TOOL_INPUT, chunk), chunk.get("input"))
    if chunk_type == "start" and chunk.get("messageId") is None:
        chunk = {**chunk, "messageId": message_id}
    spec = EVENTS.get(chunk_type) or (DATA_EVENT if is_data_type(chunk_type) else None)
    if spec is None:
        raise UnsupportedChunkError(chunk_type)
    codec = write_fields(spec.fields, chunk, {KIND: chunk_type})
    data = spec.encode_data(chunk) if spec.encode_data else ""
    return Encoded(codec, data, bool(spec.ephemeral and spec.ephemeral(chunk)))


def decode_discrete_output(codec: Mapping[str, str], data: Any) -> list[Chunk]:
    """Chunks of a discrete `ai-output` by its `kind`; an unknown kind decodes to nothing, as in JS."""
    kind = codec.get(KIND, "")
    spec = EVENTS.get(kind)
    if spec is None and kind == TOOL_INPUT.kind:
        return _decode_tool_input_discrete(codec, data)
    if spec is None and is_data_type(kind):
        spec = DATA_EVENT
    if spec is None:
        return []
    chunk: Chunk = {"type": kind, **read_fields(spec.fields, codec)}
    if spec.decode_data:
        chunk.update(spec.decode_data(data))
    return [chunk]


def _decode_tool_input_discrete(codec: Mapping[str, str], data: Any) -> list[Chunk]:
    start: Chunk = {"type": TOOL_INPUT.start, **read_fields(TOOL_INPUT.fields, codec)}
    available: Chunk = {"type": TOOL_INPUT.end, "toolCallId": F_TOOL_CALL_ID.read(codec),
                        "toolName": F_TOOL_NAME.read(codec)}
    _set_present(available, "input", data)
    _set_present(available, "providerMetadata", F_META.read(codec))
    return [start, available]


# --- Inputs (§6.3, `vercel/codec/inputs.ts`) ------------------------------------------------------------------

INPUT_KINDS = ("user-message", "regenerate", "tool-result", "tool-result-error", "tool-approval-response")
_EMPTY_PARTS: list[dict[str, Any]] = [{"type": "text", "text": ""}]


def _is_encodable_part(part: Mapping[str, Any]) -> bool:
    part_type = part.get("type")
    return isinstance(part_type, str) and (part_type in ("text", "file") or is_data_type(part_type))


def _encode_part(part: Mapping[str, Any]) -> Encoded:
    part_type = part["type"]
    if part_type == "text":
        return Encoded({}, part.get("text"))
    if part_type == "file":
        return Encoded(write_fields((F_MEDIA_TYPE,), part), part.get("url"))
    return Encoded(write_fields((F_ID,), part), part.get("data"))


def _decode_part(part_type: str, codec: Mapping[str, str], data: Any) -> dict[str, Any] | None:
    if part_type == "text":
        return {"text": as_string(data), "type": part_type}
    if part_type == "file":
        return {**read_fields((F_MEDIA_TYPE,), codec), "url": as_string(data), "type": part_type}
    if is_data_type(part_type):
        part = {**read_fields((F_ID,), codec), "type": part_type}
        _set_present(part, "data", data)
        return part
    return None


def encode_input_parts(event: Mapping[str, Any]) -> list[Encoded]:
    """Codec tier and data of each Ably message an input publishes (several only for a user message)."""
    kind = event.get("kind")
    if kind == "user-message":
        return _encode_user_message(event.get("message") or {})
    if kind == "regenerate":
        return [Encoded({KIND: kind}, "")]
    payload = event.get("payload")
    if kind not in INPUT_KINDS or not isinstance(payload, Mapping):
        raise InvalidArgumentError(f"unable to publish; unsupported input kind {kind!r} or no payload object")
    if kind == "tool-approval-response":
        return [Encoded(write_fields((F_TOOL_CALL_ID, F_APPROVED, F_REASON), payload, {KIND: kind}), "")]
    body = _only(payload, "output" if kind == "tool-result" else "message")
    if payload.get("forkSeed") is not None:
        body["forkSeed"] = payload["forkSeed"]
    return [Encoded(write_fields((F_TOOL_CALL_ID,), payload, {KIND: kind}), body)]


def _encode_user_message(message: Mapping[str, Any]) -> list[Encoded]:
    parts = [p for p in message.get("parts") or [] if isinstance(p, Mapping) and _is_encodable_part(p)]
    shared = write_fields((F_MESSAGE_ID,), {"messageId": message.get("id")})
    encoded = []
    for part in parts or _EMPTY_PARTS:
        body = _encode_part(part)
        encoded.append(Encoded({KIND: "user-message", **body.codec, **shared, PART_TYPE: part["type"]}, body.data))
    return encoded


def encode_input(
    event: Mapping[str, Any], transport: Mapping[str, str], *, max_message_bytes: int | None = None
) -> list[WireMessage]:
    """The `ai-input` messages of one input, to publish in order (a user message: ONE array publish).

    `transport` is the session's tier (`build_transport_headers`); a tool input's own `codecMessageId`
    (the target assistant) overrides its `codec-message-id`, a user message's `role` overrides `role`, and
    a missing `codec-message-id` gets a fresh uuid. With `max_message_bytes`, a publish Ably would refuse
    (for a batch: the parts together) raises `OversizeMessageError` instead.
    """
    headers: Headers = dict(transport)
    kind = event.get("kind")
    message = event.get("message") if kind == "user-message" else None
    if isinstance(message, Mapping) and isinstance(message.get("role"), str):
        headers[HEADER_ROLE] = message["role"]
    if isinstance(event.get("codecMessageId"), str):
        headers[HEADER_CODEC_MESSAGE_ID] = event["codecMessageId"]
    headers.setdefault(HEADER_CODEC_MESSAGE_ID, str(uuid.uuid4()))
    headers[HEADER_STREAM] = FALSE
    if kind == "user-message":
        headers[HEADER_DISCRETE] = TRUE
    wires = [WireMessage(name=AI_INPUT, data=e.data, transport=dict(headers), codec=e.codec)
             for e in encode_input_parts(event)]
    if max_message_bytes is not None:
        size = sum(w.size() for w in wires)
        if size > max_message_bytes:
            raise OversizeMessageError(f"the {kind} input", size, max_message_bytes)
    return wires


def decode_input(codec: Mapping[str, str], transport: Mapping[str, str], data: Any) -> list[Input]:
    """Input events of one `ai-input` message by `kind`; a regenerate (wire-only) decodes to nothing."""
    kind = codec.get(KIND, "")
    if kind == "user-message":
        part = _decode_part(codec.get(PART_TYPE, ""), codec, data)
        if part is None:
            return []
        message = {"id": F_MESSAGE_ID.read(codec) or "", "role": transport.get(HEADER_ROLE, ROLE_USER),
                   "parts": [part]}
        return [{"kind": kind, "message": message}]
    if kind not in INPUT_KINDS or kind == "regenerate":
        return []
    payload: dict[str, Any] = {"toolCallId": F_TOOL_CALL_ID.read(codec)}
    if kind == "tool-approval-response":
        payload.update(read_fields((F_APPROVED, F_REASON), codec))
    else:
        if kind == "tool-result":
            payload.update(_decode_output(data))
        else:
            ok = _optional_string(data, "message")
            payload["message"] = _or_empty(_field(data, "message")) if ok else ""
        _set_present(payload, "forkSeed", read_fork_seed(data))
    return [{"kind": kind, "codecMessageId": transport.get(HEADER_CODEC_MESSAGE_ID, ""), "payload": payload}]


def read_fork_seed(data: Any) -> dict[str, Any] | None:
    """`readForkSeedWireData`: the validated seed, malformed messages dropped and parts filtered, or None.

    Stricter than JS on purpose: a seed is a client's word for what an agent said, and the view and the agent's
    prompt are built from it, so a message must be one they can read (`is_ui_message`) and so must each part.
    """
    seed = _field(data, "forkSeed")
    if not isinstance(seed, dict) or not isinstance(seed.get("messages"), list):
        return None
    messages = []
    for entry in seed["messages"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("codecMessageId"), str):
            continue
        message = entry.get("message")
        if not is_ui_message(message):
            continue
        parts = [p for p in message["parts"] if is_ui_part(p)]
        messages.append({"codecMessageId": entry["codecMessageId"], "message": {**message, "parts": parts}})
    return {"messages": messages}


UI_ROLES = ("user", "assistant", "system")
# The fields of a UIMessage part that readers take for a string or an object, by the type they must have.
_PART_FIELD_TYPES: dict[str, type] = {
    "type": str, "text": str, "url": str, "mediaType": str, "filename": str, "title": str, "sourceId": str,
    "toolCallId": str, "toolName": str, "state": str, "errorText": str, "approval": dict, "providerMetadata": dict,
}


def is_ui_message(message: Any) -> bool:
    """A dict with a known role, a list of parts, and a string id and an object metadata when present."""
    return (isinstance(message, dict) and message.get("role") in UI_ROLES and isinstance(message.get("parts"), list)
            and isinstance(message.get("id", ""), str) and isinstance(message.get("metadata", {}), dict))


def is_ui_part(part: Any) -> bool:
    """A dict with a string `type` whose known fields have the types readers expect."""
    return (isinstance(part, dict) and "type" in part
            and all(key not in part or isinstance(part[key], kind) for key, kind in _PART_FIELD_TYPES.items()))


# --- Decode lifecycle repair (§5.6, `vercel/codec/decode-lifecycle.ts`) ---------------------------------------

PHASES = ("start", "start-step")


class LifecycleTracker:
    """Per run, which of `start` and `start-step` a reader has seen, to synthesise them on a mid-stream join.

    A discrete `start`/`start-step` marks its phase, `finish-step` resets `start-step`, `finish`/`error`/
    `abort` clear the run; every stream start and a discrete `tool-input` prepend whichever are missing.
    """

    def __init__(self) -> None:
        self._seen: dict[str, set[str]] = {}

    def on_discrete(self, run_id: str, kind: str, codec: Mapping[str, str]) -> list[Chunk]:
        if kind in PHASES:
            self._seen.setdefault(run_id, set()).add(kind)
        elif kind == "finish-step":
            self._seen.get(run_id, set()).discard("start-step")
        elif kind in ("finish", "error", "abort"):
            self._seen.pop(run_id, None)
        elif kind == TOOL_INPUT.kind:
            return self.ensure(run_id, F_MESSAGE_ID.read(codec))
        return []

    def has(self, run_id: str, phase: str) -> bool:
        """The run's `phase` has been seen and not reset."""
        return phase in self._seen.get(run_id, ())

    def on_stream_start(self, run_id: str, codec: Mapping[str, str]) -> list[Chunk]:
        return self.ensure(run_id, F_MESSAGE_ID.read(codec))

    def ensure(self, run_id: str, message_id: str | None) -> list[Chunk]:
        seen = self._seen.setdefault(run_id, set())
        lead_in: list[Chunk] = []
        for phase in PHASES:
            if phase not in seen:
                seen.add(phase)
                chunk: Chunk = {"type": phase}
                if phase == "start" and message_id is not None:
                    chunk["messageId"] = message_id
                lead_in.append(chunk)
        return lead_in


# --- JSON helpers --------------------------------------------------------------------------------------------


def parse_json(text: str) -> Any:
    """`JSON.parse` or `_MISSING` (JS undefined) when the text is not complete JSON."""
    if not text:
        return _MISSING
    value = parse_header_json(text)
    if value is None and text.strip() != "null":
        return _MISSING
    return value


def parse_json_or_string(text: str) -> Any:
    """`parseJsonOrString`: JSON when it parses, else the raw text; `_MISSING` for empty text."""
    value = parse_json(text)
    return text if value is _MISSING and text else value


def is_missing(value: Any) -> bool:
    return value is _MISSING


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    """Set a key unless the value is undefined (`_MISSING`); None is JSON `null` here and is kept."""
    if value is not _MISSING:
        target[key] = value


def _set_present(target: dict[str, Any], key: str, value: Any) -> None:
    """Set a key unless absent: None too, where it stands for no header or no Ably data (JS undefined)."""
    if value is not _MISSING and value is not None:
        target[key] = value


def _or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""
