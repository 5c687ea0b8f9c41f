"""Ably realtime protocol vocabulary: actions, flags, errors and frame (de)serialisation.

Pure: no I/O. Everything the other dev-server modules say on the wire is named here.
"""

from __future__ import annotations

import base64
import json
import re
from enum import IntEnum
from typing import Any

import msgpack


class Action(IntEnum):
    """Protocol message actions (Ably realtime protocol, v5/v6)."""

    HEARTBEAT = 0
    ACK = 1
    NACK = 2
    CONNECT = 3
    CONNECTED = 4
    DISCONNECT = 5
    DISCONNECTED = 6
    CLOSE = 7
    CLOSED = 8
    ERROR = 9
    ATTACH = 10
    ATTACHED = 11
    DETACH = 12
    DETACHED = 13
    PRESENCE = 14
    MESSAGE = 15
    SYNC = 16
    AUTH = 17


class MessageAction(IntEnum):
    """`Message.action`: what a channel message does to the message identified by its serial."""

    CREATE = 0
    UPDATE = 1
    DELETE = 2
    META = 3
    SUMMARY = 4
    APPEND = 5


class PresenceAction(IntEnum):
    ABSENT = 0
    PRESENT = 1
    ENTER = 2
    LEAVE = 3
    UPDATE = 4


class Flag:
    """ATTACH/ATTACHED flag bits; the mode bits double as the channel modes granted."""

    HAS_PRESENCE = 1 << 0
    HAS_BACKLOG = 1 << 1
    RESUMED = 1 << 2
    ATTACH_RESUME = 1 << 5
    PRESENCE = 1 << 16
    PUBLISH = 1 << 17
    SUBSCRIBE = 1 << 18
    PRESENCE_SUBSCRIBE = 1 << 19
    ANNOTATION_PUBLISH = 1 << 21
    ANNOTATION_SUBSCRIBE = 1 << 22

    ALL_MODES = PRESENCE | PUBLISH | SUBSCRIBE | PRESENCE_SUBSCRIBE | ANNOTATION_PUBLISH | ANNOTATION_SUBSCRIBE
    DEFAULT_MODES = PRESENCE | PUBLISH | SUBSCRIBE | PRESENCE_SUBSCRIBE


MODE_NAMES = {
    "presence": Flag.PRESENCE,
    "publish": Flag.PUBLISH,
    "subscribe": Flag.SUBSCRIBE,
    "presence_subscribe": Flag.PRESENCE_SUBSCRIBE,
    "annotation_publish": Flag.ANNOTATION_PUBLISH,
    "annotation_subscribe": Flag.ANNOTATION_SUBSCRIBE,
}


class AblyError(Exception):
    """An error the server reports to a client, carrying Ably's code and HTTP status."""

    def __init__(self, code: int, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def to_wire(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "statusCode": self.status,
            "message": self.message,
            "href": f"https://help.ably.io/error/{self.code}",
        }


def bad_request(message: str) -> AblyError:
    return AblyError(40000, 400, message)


def invalid_channel(name: object) -> AblyError:
    return AblyError(40010, 400, f"Invalid channel name: {name!r}")


def not_permitted(what: str) -> AblyError:
    return AblyError(40160, 401, f"Action not permitted by capability: {what}")


def too_large(size: int, limit: int) -> AblyError:
    return AblyError(40009, 400, f"Maximum message size exceeded: {size} bytes > {limit} bytes")


def not_found(what: str) -> AblyError:
    return AblyError(40400, 404, f"Not found: {what}")


def token_expired() -> AblyError:
    return AblyError(40142, 401, "Key/token expired")


def unrecoverable_connection() -> AblyError:
    return AblyError(80008, 400, "Unable to recover connection: unknown or expired connection key")


class WireFormat:
    """One of the two frame encodings the SDKs use, chosen by the `format` query parameter."""

    JSON = "json"
    MSGPACK = "msgpack"

    @staticmethod
    def parse(value: str | None) -> str:
        if value in (None, "", WireFormat.JSON):
            return WireFormat.JSON
        if value == WireFormat.MSGPACK:
            return WireFormat.MSGPACK
        raise bad_request(f"Unsupported format {value!r}; use json or msgpack")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def decode_frame(payload: str | bytes, wire_format: str) -> dict[str, Any]:
    """Parse one inbound frame; binary data in JSON frames stays base64 until `normalise_data`."""
    try:
        if wire_format == WireFormat.MSGPACK and isinstance(payload, bytes):
            frame = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        else:
            frame = json.loads(payload)
            if isinstance(payload, str) and _SURROGATE_ESCAPE.search(payload):
                json.dumps(frame, ensure_ascii=False).encode("utf-8")  # a lone surrogate is not text
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise bad_request(f"Malformed {wire_format} frame: {exc}") from None
    if not isinstance(frame, dict):
        raise bad_request("A protocol message must be an object")
    return frame


def encode_frame(frame: dict[str, Any], wire_format: str) -> str | bytes:
    """Serialise one outbound frame; bytes become base64 in JSON (with the encoding step recorded)."""
    if wire_format == WireFormat.MSGPACK:
        return msgpack.packb(frame, use_bin_type=True)
    return json.dumps(_json_safe(frame), separators=(",", ":"))


class Outbound:
    """An outbound frame encoded at most once per wire format, however many connections it fans out to.

    A MESSAGE frame's messages are also kept encoded one by one, each with the frame's `id`, `connectionId` and
    `timestamp` filled in as an SDK would derive them, so that `coalesce` can put several frames in one.
    """

    __slots__ = ("_encoded", "_items", "frame")

    def __init__(self, frame: dict[str, Any]) -> None:
        self.frame = frame
        self._encoded: dict[str, str | bytes] = {}
        self._items: dict[str, list[Any]] = {}

    def encoded(self, wire_format: str) -> str | bytes:
        payload = self._encoded.get(wire_format)
        if payload is None:
            frame = self.frame
            payload = self._encoded[wire_format] = encode_frame(frame, wire_format) \
                if frame.get("action") != Action.MESSAGE else \
                _message_frame({k: v for k, v in frame.items() if k != "messages"}, self.items(wire_format),
                               wire_format)
        return payload

    def items(self, wire_format: str) -> list[Any]:
        """The frame's messages, each encoded on its own with what it inherits from the frame."""
        items = self._items.get(wire_format)
        if items is None:
            encode = _json_item if wire_format != WireFormat.MSGPACK else _msgpack_item
            items = self._items[wire_format] = [encode(message) for message in self._inherited()]
        return items

    def _inherited(self) -> list[dict[str, Any]]:
        frame = self.frame
        parent = {key: frame[key] for key in _INHERITED if frame.get(key) is not None}
        return [message if parent.keys() <= message.keys() else
                {**{k: f"{v}:{index}" if k == "id" else v for k, v in parent.items()}, **message}
                for index, message in enumerate(frame["messages"])]


_INHERITED = ("id", "connectionId", "timestamp")
"""What a message takes from its frame when it has none (an SDK derives a message's `id` as `<frame id>:<index>`)."""


def coalesce(outbounds: list[Outbound], wire_format: str) -> list[str | bytes]:
    """`outbounds` as payloads to send in order, with neighbours merged as Ably's own frames bundle them: ACKs of
    consecutive msgSerials into one ACK (with `count` and one `res` entry each), and MESSAGE frames of one channel
    from one connection into one MESSAGE frame (the last one's `channelSerial`). A socket writes one frame where it
    would write many."""
    payloads: list[str | bytes] = []
    start = 0
    while start < len(outbounds):
        end = start + 1
        while end < len(outbounds) and _follows(outbounds[end - 1].frame, outbounds[end].frame):
            end += 1
        run = outbounds[start:end]
        if len(run) == 1:
            payloads.append(run[0].encoded(wire_format))
        elif run[0].frame["action"] == Action.ACK:
            payloads.append(encode_frame(_merged_ack([o.frame for o in run]), wire_format))
        else:
            payloads.append(_merged_messages(run, wire_format))
        start = end
    return payloads


def _follows(previous: dict[str, Any], frame: dict[str, Any]) -> bool:
    action = frame.get("action")
    if action != previous.get("action"):
        return False
    if action == Action.ACK:
        return frame.get("msgSerial") == previous.get("msgSerial", 0) + previous.get("count", 1)
    # One publisher's messages only: an SDK that cannot decode one message of a frame may drop the whole frame
    # (ably-python does), so a client's malformed message must not take another publisher's with it.
    return (action == Action.MESSAGE and frame.get("channel") == previous.get("channel")
            and frame.get("connectionId") is not None and frame.get("connectionId") == previous.get("connectionId"))


def _merged_ack(frames: list[dict[str, Any]]) -> dict[str, Any]:
    return {"action": int(Action.ACK), "msgSerial": frames[0]["msgSerial"],
            "count": sum(frame.get("count", 1) for frame in frames),
            "res": [result for frame in frames for result in frame.get("res") or [{}]]}


def _merged_messages(run: list[Outbound], wire_format: str) -> str | bytes:
    last = run[-1].frame
    head = {"action": int(Action.MESSAGE), "channel": last["channel"], "channelSerial": last.get("channelSerial")}
    return _message_frame(head, [item for outbound in run for item in outbound.items(wire_format)], wire_format)


def _message_frame(head: dict[str, Any], items: list[Any], wire_format: str) -> str | bytes:
    """A MESSAGE frame from its fields and its messages, already encoded."""
    if wire_format == WireFormat.MSGPACK:
        pairs = [_PACKER.pack(part) for key, value in head.items() for part in (key, value)]
        return b"".join([_PACKER.pack_map_header(len(head) + 1), *pairs, _PACKER.pack("messages"),
                         _PACKER.pack_array_header(len(items)), *items])
    fields = json.dumps(head, separators=(",", ":"))[1:-1]
    return f'{{{fields}{"," if fields else ""}"messages":[{",".join(items)}]}}'


def _json_item(message: dict[str, Any]) -> str:
    return json.dumps(base64_data(message), separators=(",", ":"))


def _msgpack_item(message: dict[str, Any]) -> bytes:
    return _PACKER.pack(message)


_PACKER = msgpack.Packer(use_bin_type=True)


def _json_safe(frame: dict[str, Any]) -> dict[str, Any]:
    """Replace binary `data` in message lists with base64, appending the step to `encoding`."""
    for key in ("messages", "presence"):
        items = frame.get(key)
        if items and any(isinstance(item.get("data"), bytes) for item in items):
            frame = {**frame, key: [base64_data(item) for item in items]}
    return frame


def base64_data(item: dict[str, Any]) -> dict[str, Any]:
    """`item` with binary `data` as base64 text, the step appended to its `encoding` (for JSON clients)."""
    data = item.get("data")
    if not isinstance(data, bytes):
        return item
    encoding = item.get("encoding")
    return {
        **item,
        "data": base64.b64encode(data).decode("ascii"),
        "encoding": f"{encoding}/base64" if encoding else "base64",
    }


def normalise_data(item: dict[str, Any]) -> dict[str, Any]:
    """Hold binary payloads as bytes whatever the publisher's format, so any subscriber can get them."""
    encoding = item.get("encoding")
    data = item.get("data")
    if not encoding or not isinstance(data, str):
        return item
    steps = encoding.split("/")
    if steps[-1] != "base64":
        return item
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise bad_request("Message data is not valid base64") from None
    rest = "/".join(steps[:-1])
    normalised = {**item, "data": raw}
    if rest:
        normalised["encoding"] = rest
    else:
        normalised.pop("encoding", None)
    return normalised


def without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def message_size(message: dict[str, Any]) -> int:
    """Ably's size of a message: data + name + clientId + JSON of extras, in bytes."""
    size = 0
    data = message.get("data")
    if isinstance(data, bytes):
        size += len(data)
    elif isinstance(data, str):
        size += len(data.encode("utf-8"))
    elif data is not None:
        size += len(json.dumps(data).encode("utf-8"))
    for key in ("name", "clientId"):
        value = message.get(key)
        if isinstance(value, str):
            size += len(value.encode("utf-8"))
    extras = message.get("extras")
    if extras is not None:
        size += len(json.dumps(extras, separators=(",", ":")).encode("utf-8"))
    return size
