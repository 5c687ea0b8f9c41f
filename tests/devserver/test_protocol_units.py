"""Pure parts of the dev server: frames, data normalisation, sizes, serials, capabilities, clientIds."""

from __future__ import annotations

import json

import pytest

from langchain_ably_transport.devserver.auth import WILDCARD_CLIENT, Authenticator, Capability, Identity
from langchain_ably_transport.devserver.channel import SerialClock, validate_channel_name
from langchain_ably_transport.devserver.config import ApiKey, ServerConfig
from langchain_ably_transport.devserver.protocol import (
    AblyError,
    Flag,
    Outbound,
    coalesce,
    decode_frame,
    encode_frame,
    message_size,
    normalise_data,
)


def test_binary_data_round_trips_between_json_and_msgpack_subscribers():
    held = normalise_data({"data": "AAH/", "encoding": "utf-8/base64"})
    assert held == {"data": b"\x00\x01\xff", "encoding": "utf-8"}
    as_json = json.loads(encode_frame({"action": 15, "messages": [held]}, "json"))
    assert as_json["messages"][0] == {"data": "AAH/", "encoding": "utf-8/base64"}
    assert decode_frame(encode_frame({"action": 15, "messages": [held]}, "msgpack"), "msgpack")["messages"] == [held]


@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
def test_neighbouring_acks_and_one_publishers_messages_leave_as_one_frame_each(wire_format):
    frames = [
        {"action": 1, "msgSerial": 4, "count": 1, "res": [{"serials": ["a"]}]},
        {"action": 1, "msgSerial": 5, "count": 2, "res": [{"serials": ["b"]}, {"serials": ["c"]}]},
        {"action": 1, "msgSerial": 9, "count": 1, "res": [{"serials": ["d"]}]},  # not the next msgSerial
        {"action": 15, "channel": "x", "channelSerial": "s1", "id": "conn:4", "connectionId": "conn",
         "timestamp": 7, "messages": [{"data": b"\x00"}, {"id": "own", "data": "b"}]},
        {"action": 15, "channel": "x", "channelSerial": "s2", "connectionId": "conn", "timestamp": 8,
         "messages": [{"data": "c"}]},
        {"action": 15, "channel": "x", "channelSerial": "s3", "connectionId": "other", "messages": [{"data": "d"}]},
        {"action": 15, "channel": "y", "channelSerial": "s4", "connectionId": "other", "messages": [{"data": "e"}]},
    ]
    sent = [decode_frame(payload, wire_format) for payload in coalesce([Outbound(f) for f in frames], wire_format)]
    assert [(f["action"], f.get("msgSerial"), f.get("count"), f.get("channel")) for f in sent] == [
        (1, 4, 3, None), (1, 9, 1, None), (15, None, None, "x"), (15, None, None, "x"), (15, None, None, "y")]
    assert [r["serials"] for r in sent[0]["res"]] == [["a"], ["b"], ["c"]]
    merged = sent[2]
    assert merged["channelSerial"] == "s2", "the merged frame resumes from its last frame's serial"
    binary = {"data": "AA==", "encoding": "base64"} if wire_format == "json" else {"data": b"\x00"}
    assert merged["messages"] == [  # what each message inherited from its frame travels with it
        {"id": "conn:4:0", "connectionId": "conn", "timestamp": 7, **binary},
        {"id": "own", "connectionId": "conn", "timestamp": 7, "data": "b"},
        {"connectionId": "conn", "timestamp": 8, "data": "c"},
    ]
    assert [m["data"] for m in sent[3]["messages"]] == ["d"], "another publisher's frame stays its own"


def test_message_size_counts_data_name_client_id_and_extras():
    assert message_size({"name": "ab", "data": "é", "clientId": "c", "extras": {"k": 1}}) == 2 + 2 + 1 + 7


def test_serials_sort_in_mint_order_even_within_one_millisecond():
    clock = SerialClock("series", None)
    serials = [clock.next() for _ in range(2500)]
    assert serials == sorted(serials) and len(set(serials)) == 2500
    resumed = SerialClock("series", serials[-1])
    assert resumed.next() > serials[-1]


@pytest.mark.parametrize("name", ["chat", "ns:chat", "a/b c", "conversations:42:state"])
def test_valid_channel_names(name):
    assert validate_channel_name(name) == name


@pytest.mark.parametrize("name", ["", ":x", "[meta]x", "a\x00b", 5, None])
def test_invalid_channel_names(name):
    with pytest.raises(AblyError) as error:
        validate_channel_name(name)
    assert error.value.code == 40010


def test_capability_patterns_and_intersection():
    key = Capability({"*": ["*"]})
    token = Capability({"conversations:*": ["subscribe", "publish"], "conversations:42:state": ["history"]})
    identity = Identity("k", (key, token), "alice")
    assert identity.permits("conversations:42", "publish")
    assert not identity.permits("conversations:42", "history")
    assert identity.permits("conversations:42:state", "history")
    assert not identity.permits("other", "subscribe")
    assert identity.modes("conversations:1") == Flag.SUBSCRIBE | Flag.PRESENCE_SUBSCRIBE | Flag.PUBLISH


def test_client_id_rules():
    concrete = Identity("k", (), "alice")
    assert concrete.acts_as(None) == "alice" and concrete.acts_as("alice") == "alice"
    with pytest.raises(AblyError) as forged:
        concrete.acts_as("bob")
    assert forged.value.code == 40012
    wildcard = Identity("k", (), WILDCARD_CLIENT)
    assert wildcard.acts_as("bob") == "bob" and wildcard.acts_as(None) is None


def test_token_client_id_against_connection_parameter():
    key = ApiKey.parse("app.key:a-secret-long-enough-for-hs256-signing")
    auth = Authenticator(ServerConfig(keys=(key,)))
    from langchain_ably_transport.devserver.auth import mint_jwt

    assert auth.from_token(mint_jwt(key, client_id="*"), "carol").client_id == "carol"
    assert auth.from_token(mint_jwt(key, client_id="alice"), None).client_id == "alice"
    with pytest.raises(AblyError) as mismatch:
        auth.from_token(mint_jwt(key, client_id="alice"), "bob")
    assert mismatch.value.code == 40102
    with pytest.raises(AblyError) as bad_capability:
        auth.from_token(mint_jwt(key, capability={"*": ["fly"]}), None)
    assert bad_capability.value.code == 40000
