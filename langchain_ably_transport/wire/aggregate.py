"""Messages as Ably's history returns them: each message once, in its latest version.

Ably keeps one message per serial. An append concatenates its data onto the message and carries its own name and
extras onto it; an update replaces them; either way the message keeps its place, its timestamp and its creator, and
becomes an update. A session that followed a stream live folded its create and every append; `as_history` turns
that log into what a session opening afresh would have read, a message per stream instead of one per append.
"""

from __future__ import annotations

from dataclasses import replace

from .envelope import WireMessage
from .names import Action


def as_history(log: list[WireMessage]) -> list[WireMessage]:
    """`log` (messages in the order a session folded them) with each message's changes folded into it, at its
    place; as it was if an append's data is not text (Ably would concatenate bytes, which no stream here sends)."""
    if any(wire.action is Action.APPEND and not isinstance(wire.data, str | None) for wire in log):
        return list(log)
    history: list[WireMessage] = []
    place: dict[str, int] = {}
    for wire in log:
        serial = wire.serial
        if serial is None:
            history.append(wire)
        elif serial not in place:
            place[serial] = len(history)
            history.append(wire)
        elif wire.action in (Action.APPEND, Action.UPDATE):
            history[place[serial]] = _changed(history[place[serial]], wire)
        # else: the same message again (a replay), which history holds once
    return history


def _changed(message: WireMessage, change: WireMessage) -> WireMessage:
    """`message` after `change`: an append's data concatenated, an update's in its place (if it carries any)."""
    if change.action is Action.APPEND:
        data = message.data if change.data is None else (message.data or "") + change.data
    else:
        data = message.data if change.data is None else change.data
    return replace(message, data=data, name=change.name or message.name, transport=change.transport,
                   codec=change.codec, ephemeral=change.ephemeral, action=Action.UPDATE,
                   version_serial=change.version_serial)
