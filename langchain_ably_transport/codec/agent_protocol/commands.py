"""The command side of the protocol on a channel: `lg-command` in, `lg-response` out (pure).

A client publishes `{id, method, params}` as an `lg-command`. The SDK numbers its commands from 1 per client, so
ids collide across devices: the client heads the message with a `command-key` that it makes unique (a nonce of
its own and the id), and the agent heads its answer with the same key. Anything a client publishes is untrusted:
a command out of shape is refused with an `invalid_argument` error naming what is wrong, and one without a key
cannot be answered at all, so it is only logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...wire import names
from ...wire.envelope import WireMessage
from ...wire.ids import describe_invalid, is_valid_id

ErrorCode = Literal["invalid_argument", "unknown_command", "unknown_error", "no_such_run", "no_such_interrupt",
                    "permission_denied", "not_supported"]
SUPPORTED = frozenset({"run.start", "input.respond", "state.get"})
# The protocol's other methods, answered `not_supported` rather than `unknown_command`.
KNOWN = SUPPORTED | {"input.inject", "subscription.subscribe", "subscription.unsubscribe", "subscription.reconnect",
                     "state.listCheckpoints", "state.fork", "agent.getTree"}


@dataclass(frozen=True)
class Command:
    """One client command as received: its unique `key`, the SDK's `id`, and who sent it (`wire.client_id`)."""

    key: str
    id: int
    method: str
    params: dict[str, Any]
    wire: WireMessage


@dataclass(frozen=True)
class Refusal:
    """A command that cannot be served as sent; `key` None when it cannot even be answered."""

    key: str | None
    id: int | None
    message: str
    code: ErrorCode = "invalid_argument"


def read_command(wire: WireMessage) -> Command | Refusal:
    key = wire.transport.get(names.HEADER_COMMAND_KEY)
    if not is_valid_id(key):
        return Refusal(None, None, describe_invalid(names.HEADER_COMMAND_KEY, key or "") if key else
                       f"no {names.HEADER_COMMAND_KEY} header: the command cannot be answered")
    assert key is not None
    body = _body(wire.data)
    if body is None:
        return Refusal(key, None, "a command is a JSON object {id, method, params}")
    command_id, method, params = body.get("id"), body.get("method"), body.get("params", {})
    if not isinstance(command_id, int) or isinstance(command_id, bool) or command_id < 0:
        return Refusal(key, None, "a command's id is a non-negative integer")
    if not isinstance(method, str) or not isinstance(params, dict):
        return Refusal(key, command_id, "a command has a string method and object params")
    if method not in KNOWN:
        return Refusal(key, command_id, f"unknown command {method[:64]!r}", "unknown_command")
    if method not in SUPPORTED:
        return Refusal(key, command_id, f"{method} is not supported on an Ably session", "not_supported")
    return Command(key, command_id, method, params, wire)


def success(command: Command, result: Mapping[str, Any] | None = None) -> WireMessage:
    return _response(command.key, {"type": "success", "id": command.id, "result": dict(result or {})})


def failure(key: str, command_id: int | None, code: ErrorCode, message: str) -> WireMessage:
    return _response(key, {"type": "error", "id": command_id, "error": code, "message": message})


def refused(refusal: Refusal) -> WireMessage | None:
    """The error response to `refusal`; None when it has no key to answer."""
    return None if refusal.key is None else failure(refusal.key, refusal.id, refusal.code, refusal.message)


def _response(key: str, body: dict[str, Any]) -> WireMessage:
    return WireMessage(name=names.PROTOCOL_RESPONSE, data=body, transport={names.HEADER_COMMAND_KEY: key})


def _body(data: Any) -> dict[str, Any] | None:
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    return data if isinstance(data, dict) else None
