"""`Invocation`: exactly `{inputEventId, sessionName}` both ways (§2.3)."""

from __future__ import annotations

import json

import pytest

from langchain_ably_transport.errors import InvalidInvocationError
from langchain_ably_transport.wire import Invocation


def test_round_trip_is_exactly_the_two_keys():
    invocation = Invocation(input_event_id="E", session_name="conversations:1")
    assert invocation.to_json() == {"inputEventId": "E", "sessionName": "conversations:1"}
    assert Invocation.from_json(invocation.to_json()) == invocation


def test_reads_a_chat_transport_body_with_application_keys():
    body = {"messages": [], "model": "x", "inputEventId": "E", "sessionName": "conversations:1"}
    assert Invocation.from_json(body) == Invocation("E", "conversations:1")
    assert Invocation.from_json(json.dumps(body)) == Invocation("E", "conversations:1")
    assert Invocation.from_json(json.dumps(body).encode()) == Invocation("E", "conversations:1")


@pytest.mark.parametrize("body", [
    {}, {"inputEventId": "E"}, {"sessionName": "s"}, {"inputEventId": 1, "sessionName": "s"}, [], "[1]", "{oops",
    {"input_event_id": "E", "session_name": "s"},
])
def test_refuses_anything_else(body):
    with pytest.raises(InvalidInvocationError) as caught:
        Invocation.from_json(body)
    assert caught.value.code == 40003
