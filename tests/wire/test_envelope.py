"""`WireMessage`: extras as the SDK writes them, ably-python publish arguments, received messages, sizes."""

from __future__ import annotations

import json

import pytest
from ably.types.message import Message, MessageAction, MessageVersion

from langchain_ably_transport.devserver.protocol import message_size
from langchain_ably_transport.wire import Action, WireMessage, from_ably


def test_extras_hold_both_tiers_and_omit_an_empty_codec_tier():
    full = WireMessage(name="ai-output", data="", transport={"run-id": "R"}, codec={"kind": "start"})
    bare = WireMessage(name="ai-run-end", transport={"run-id": "R"})
    ephemeral = WireMessage(name="ai-output", data=1, transport={}, codec={"kind": "data-x"}, ephemeral=True)
    assert full.extras == {"ai": {"transport": {"run-id": "R"}, "codec": {"kind": "start"}}}
    assert bare.extras == {"ai": {"transport": {"run-id": "R"}}}
    assert ephemeral.extras["ephemeral"] is True


@pytest.mark.parametrize("data", ["", "hello", {"output": [1, 2]}, [1, "a"], b"\x00\x01"])
def test_to_publish_passes_data_ably_python_sends_natively(data):
    kwargs = WireMessage(name="ai-output", data=data, transport={"a": "b"}).to_publish()
    assert kwargs == {"name": "ai-output", "data": data, "extras": {"ai": {"transport": {"a": "b"}}}}
    Message(**kwargs).as_dict(binary=True)


@pytest.mark.parametrize(("data", "text"), [(42, "42"), (1.5, "1.5"), (True, "true"), (False, "false")])
def test_to_publish_sends_other_json_values_as_json_text(data, text):
    kwargs = WireMessage(name="ai-output", data=data, transport={}).to_publish()
    assert (kwargs["data"], kwargs["encoding"]) == (text, "json")
    sent = Message(**kwargs).as_dict(binary=False)
    assert (sent["data"], sent["encoding"]) == (text, "json")
    assert Message.decode(sent["data"], sent["encoding"])["data"] == data


def test_to_publish_of_an_append_has_no_name_and_lifecycle_has_no_data():
    assert "name" not in WireMessage(data="tok", transport={}).to_publish()
    assert "data" not in WireMessage(name="ai-run-start", transport={"run-id": "R"}).to_publish()


def test_from_ably_reads_an_ably_python_message():
    received = Message(
        name=None, data="lo", extras={"ai": {"transport": {"stream": "true", "n": 5}, "codec": {"kind": "text"}}},
        serial="01-a", action=MessageAction.MESSAGE_APPEND, version=MessageVersion(serial="01-b"), client_id="agent",
        timestamp=7,
    )
    wire = from_ably(received)
    assert wire == WireMessage(name=None, data="lo", transport={"stream": "true"}, codec={"kind": "text"},
                               action=Action.APPEND, serial="01-a", version_serial="01-b", client_id="agent",
                               timestamp=7)


def test_from_ably_reads_a_json_dict():
    wire = WireMessage.from_ably({
        "name": "ai-input", "data": "hi", "action": 0, "serial": "s", "version": {"serial": "s"},
        "clientId": "alice", "extras": {"ai": {"transport": {"role": "user"}}, "ephemeral": True},
    })
    assert wire is not None
    assert (wire.action, wire.client_id, wire.transport, wire.codec, wire.ephemeral) == (
        Action.CREATE, "alice", {"role": "user"}, {}, True)


@pytest.mark.parametrize("extras", [None, {}, {"headers": {"a": "b"}}, {"ai": "x"}, {"ai": None}])
def test_foreign_messages_read_as_none(extras):
    assert from_ably({"name": "chat", "data": "x", "extras": extras}) is None
    assert from_ably(Message(name="chat", data="x", extras=extras)) is None


@pytest.mark.parametrize(("action", "expected"), [
    (1, Action.UPDATE), (2, Action.DELETE), (5, Action.APPEND), ("message.update", Action.UPDATE), (9, None),
    ("bogus", None), (None, None),
])
def test_actions(action, expected):
    assert WireMessage.from_ably({"action": action, "extras": {"ai": {}}}).action == expected


def test_size_is_ablys_measure():
    wire = WireMessage(name="ai-output", data={"output": "é" * 10}, transport={"run-id": "R"}, codec={"kind": "x"},
                       client_id="agent")
    as_sent = {"name": wire.name, "data": wire.data, "clientId": "agent", "extras": wire.extras}
    assert wire.size() == message_size(as_sent)
    assert WireMessage(name="n", data="é").size() == len("n") + 2 + len(json.dumps({"ai": {"transport": {}}},
                                                                                   separators=(",", ":")))
