"""`WireMessage`: one Ably message of the AI Transport protocol, both as published and as received.

The protocol keeps everything it needs in `extras.ai` (transport tier and codec tier) and leaves
`extras.headers` to the application (§0). A message without `extras.ai` is foreign, e.g. the application's
own traffic on a shared channel, and `from_ably` returns None for it so nothing downstream ever sees it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

import msgpack

from .names import ACTION_BY_NUMBER, Action

Headers = dict[str, str]


@dataclass(slots=True)  # no __dict__: a session keeps every message it folded, and the collector walks them
class WireMessage:
    """An `ai-*` message: what to publish (name, data, tiers, ephemeral) and, when received, where it sits.

    `data` is None when the message has none (lifecycle, step and cancel messages, and appends that carry no
    delta); creates of streams carry `""`. The received-only fields are None on messages built to publish.
    """

    name: str | None = None
    data: Any = None
    transport: Headers = field(default_factory=dict)
    codec: Headers = field(default_factory=dict)
    ephemeral: bool = False
    action: Action | None = None
    serial: str | None = None
    version_serial: str | None = None
    client_id: str | None = None
    connection_id: str | None = None
    timestamp: int | None = None

    @property
    def extras(self) -> dict[str, Any]:
        """`extras` as the SDK writes it: the codec tier is omitted when empty (`encoder.ts` `_aiExtras`)."""
        ai: dict[str, Any] = {"transport": dict(self.transport)}
        if self.codec:
            ai["codec"] = dict(self.codec)
        extras: dict[str, Any] = {"ai": ai}
        if self.ephemeral:
            extras["ephemeral"] = True
        return extras

    def to_publish(self) -> dict[str, Any]:
        """Keyword arguments for `ably.types.message.Message` (add `serial=` for an append or update).

        ably-python sends str, dict, list and bytes natively but rejects other JSON values (40011), which the
        Vercel codec does carry (a `data-*` payload or a tool input may be a number); those travel as JSON text
        with `encoding="json"`, exactly what ably-js sends for them, and every SDK decodes them back.
        """
        kwargs: dict[str, Any] = {"extras": self.extras}
        if self.name is not None:
            kwargs["name"] = self.name
        if self.data is not None:
            if isinstance(self.data, str | bytes | bytearray | dict | list):
                kwargs["data"] = self.data
            else:
                kwargs["data"] = json.dumps(self.data, separators=(",", ":"), allow_nan=False)
                kwargs["encoding"] = "json"
        return kwargs

    def size(self) -> int:
        """Ably's measure of this message in bytes: data + name + clientId + the JSON of extras.

        Ably rejects a message over the account's limit (40009, 64 KiB by default), and for a message that
        is appended to, the limit applies to the whole aggregate (name, concatenated data, last extras).
        """
        return data_size(self.data) + _text_size(self.name) + _text_size(self.client_id) + extras_size(self.extras)

    @classmethod
    def from_ably(cls, message: Any) -> WireMessage | None:
        """Read a received message (an ably-python `Message` or its JSON dict); None for a foreign one.

        Fields of the wrong type (only a foreign or hostile writer produces them) read as absent.
        """
        mapping = isinstance(message, Mapping)
        get = message.get if mapping else partial(getattr, message)  # one type check, not one per field
        extras = get("extras", None)
        ai = extras.get("ai") if isinstance(extras, Mapping) else None
        if not isinstance(ai, Mapping):
            return None
        version = get("version", None)
        client_id = get("clientId" if mapping else "client_id", None)
        connection_id = get("connectionId" if mapping else "connection_id", None)
        timestamp = get("timestamp", None)
        return cls(
            name=_text(get("name", None)),
            data=get("data", None),
            transport=_tier(ai.get("transport")),
            codec=_tier(ai.get("codec")),
            ephemeral=extras.get("ephemeral") is True,
            action=_action(get("action", None)),
            serial=_text(get("serial", None)),
            version_serial=_text(_get(version, "serial")) if version is not None else None,
            client_id=_text(client_id),
            connection_id=_text(connection_id),
            timestamp=timestamp if isinstance(timestamp, int) and not isinstance(timestamp, bool) else None,
        )


_FIELDS = tuple(f.name for f in fields(WireMessage))


def packed(messages: list[WireMessage]) -> bytes:
    """`messages` as one bytes object: a few hundred bytes each, and nothing for the collector to walk (for what a
    process keeps for long, such as the messages of sessions it closed)."""
    return msgpack.packb([[getattr(message, name) for name in _FIELDS] for message in messages], use_bin_type=True)


def unpacked(data: bytes) -> list[WireMessage]:
    """The messages `packed` made."""
    messages = [WireMessage(*row) for row in msgpack.unpackb(data, raw=False)]
    for message in messages:
        if message.action is not None:
            message.action = Action(message.action)
    return messages


def from_ably(message: Any) -> WireMessage | None:
    """`WireMessage.from_ably`, as a function."""
    return WireMessage.from_ably(message)


def data_size(data: Any) -> int:
    """Bytes of a message's data as Ably counts them: UTF-8 for text, the JSON text for structured data."""
    if data is None:
        return 0
    if isinstance(data, bytes | bytearray):
        return len(data)
    if isinstance(data, str):
        return len(data.encode("utf-8"))
    # ably-python JSON-encodes structured data with json.dumps' default separators before sending.
    return len(json.dumps(data).encode("utf-8"))


def extras_size(extras: Mapping[str, Any]) -> int:
    """Bytes of `extras` as Ably counts them: its compact JSON."""
    return len(json.dumps(extras, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _text_size(text: str | None) -> int:
    return len(text.encode("utf-8")) if text else 0


def _get(source: Any, key: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(key)
    return getattr(source, key, None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _tier(value: Any) -> Headers:
    """A header tier; non-string values (only a foreign writer produces them) are left out."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _action(value: Any) -> Action | None:
    """The action by ably-js name or protocol number (ably-python's `MessageAction` is an int); else None."""
    if isinstance(value, str):
        try:
            return Action(value)
        except ValueError:
            return None
    if isinstance(value, int) and not isinstance(value, bool):
        return ACTION_BY_NUMBER.get(int(value))
    return None
