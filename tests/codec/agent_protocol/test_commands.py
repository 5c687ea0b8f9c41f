"""Commands as a client publishes them, hostile ones included, and the answers an agent gives."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_ably_transport.codec.agent_protocol import Command, Refusal, read_command, refused, success
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage


def command(data: Any, key: str | None = "nonce-1") -> WireMessage:
    transport = {} if key is None else {names.HEADER_COMMAND_KEY: key}
    return WireMessage(name=names.PROTOCOL_COMMAND, data=data, transport=transport, client_id="alice")


def test_a_well_formed_command_is_read_with_its_key_and_id() -> None:
    read = read_command(command({"id": 3, "method": "run.start", "params": {"input": {"x": 1}}}))
    assert isinstance(read, Command)
    assert (read.key, read.id, read.method, read.params) == ("nonce-1", 3, "run.start", {"input": {"x": 1}})
    answer = success(read, {"run_id": "r1"})
    assert answer.name == names.PROTOCOL_RESPONSE and answer.transport[names.HEADER_COMMAND_KEY] == "nonce-1"
    assert answer.data == {"type": "success", "id": 3, "result": {"run_id": "r1"}}


def test_a_command_sent_as_json_text_is_read_too() -> None:
    assert isinstance(read_command(command('{"id": 1, "method": "state.get", "params": {}}')), Command)


@pytest.mark.parametrize(("data", "code", "says"), [
    ("not json", "invalid_argument", "JSON object"),
    ([1, 2], "invalid_argument", "JSON object"),
    ({"id": "1", "method": "run.start"}, "invalid_argument", "non-negative integer"),
    ({"id": True, "method": "run.start"}, "invalid_argument", "non-negative integer"),
    ({"id": -1, "method": "run.start"}, "invalid_argument", "non-negative integer"),
    ({"id": 1, "method": 5}, "invalid_argument", "string method"),
    ({"id": 1, "method": "run.start", "params": []}, "invalid_argument", "object params"),
    ({"id": 1, "method": "x" * 5000}, "unknown_command", "unknown command"),
    ({"id": 1, "method": "state.fork", "params": {}}, "not_supported", "not supported"),
    ({"id": 1, "method": "input.inject", "params": {}}, "not_supported", "not supported"),
])
def test_a_malformed_or_unsupported_command_gets_an_error_answer(data: Any, code: str, says: str) -> None:
    read = read_command(command(data))
    assert isinstance(read, Refusal) and read.code == code and says in read.message
    answer = refused(read)
    assert answer is not None and answer.data["type"] == "error" and answer.data["error"] == code
    assert len(answer.data["message"]) < 200  # never echoes what it was sent


@pytest.mark.parametrize("key", [None, "", "has space", "k" * 300])
def test_a_command_without_a_usable_key_cannot_be_answered(key: str | None) -> None:
    read = read_command(command({"id": 1, "method": "run.start"}, key=key))
    assert isinstance(read, Refusal) and read.key is None and refused(read) is None
