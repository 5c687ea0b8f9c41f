"""`codec.langchain.inputs`: the inputs a JS client session publishes <-> LangChain objects."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    ToolMessage,
)

from langchain_ably_transport.codec.langchain import (
    ApprovalDecision,
    HumanInput,
    RegenerateRequest,
    ToolResult,
    input_to_langchain,
    langchain_to_input,
)
from langchain_ably_transport.errors import MessageMappingError

# --------------------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------------------


def test_decode_user_message_input() -> None:
    ui = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hello"}]}
    decoded = input_to_langchain({"kind": "user-message", "message": ui})
    assert decoded == HumanInput(HumanMessage(content="Hello", id="u1"), ui)
    no_role = input_to_langchain(
        {"kind": "user-message", "message": {"id": "", "parts": [{"type": "text", "text": ""}]}}
    )
    assert isinstance(no_role, HumanInput) and no_role.message == HumanMessage(content="")
    assert langchain_to_input(decoded) == {"kind": "user-message", "message": ui}
    assert langchain_to_input(HumanMessage(content="Hello", id="u1")) == {"kind": "user-message", "message": ui}


def test_decode_regenerate_input() -> None:
    event = {"kind": "regenerate", "target": "a1", "parent": "u1"}
    assert input_to_langchain(event) == RegenerateRequest("a1", "u1")
    assert langchain_to_input(input_to_langchain(event)) == event
    assert langchain_to_input(RegenerateRequest("a1")) == {"kind": "regenerate", "target": "a1"}


def test_decode_tool_result_inputs() -> None:
    seed_message = {"id": "a1", "role": "assistant", "parts": [{"type": "text", "text": "hi"}]}
    seed = {"messages": [{"codecMessageId": "a1", "message": seed_message}]}
    event = {"kind": "tool-result", "codecMessageId": "a1", "payload": {"toolCallId": "c1", "output": {"ok": True}}}
    event["payload"]["forkSeed"] = seed
    decoded = input_to_langchain(event)
    assert isinstance(decoded, ToolResult)
    assert decoded.message == ToolMessage(content='{"ok": true}', tool_call_id="c1")
    assert (decoded.codec_message_id, decoded.output) == ("a1", {"ok": True})
    assert decoded.fork_seed_messages() == [AIMessage(content="hi", id="a1")]
    assert langchain_to_input(decoded) == event

    text = input_to_langchain(
        {"kind": "tool-result", "codecMessageId": "a1", "payload": {"toolCallId": "c1", "output": "sunny"}}
    )
    assert isinstance(text, ToolResult) and text.message.content == "sunny" and text.fork_seed_messages() == []

    error_event = {
        "kind": "tool-result-error",
        "codecMessageId": "a1",
        "payload": {"toolCallId": "c2", "message": "denied"},
    }
    failed = input_to_langchain(error_event)
    assert isinstance(failed, ToolResult)
    assert failed.message == ToolMessage(content="denied", tool_call_id="c2", status="error")
    assert langchain_to_input(failed) == error_event


def test_decode_approval_response() -> None:
    approve = {
        "kind": "tool-approval-response",
        "codecMessageId": "a1",
        "payload": {"toolCallId": "c1", "approved": True},
    }
    decision = input_to_langchain(approve)
    assert decision == ApprovalDecision("c1", True, None, "a1")
    assert isinstance(decision, ApprovalDecision) and decision.to_hitl_decision() == {"type": "approve"}
    assert langchain_to_input(decision) == approve
    deny = {"kind": "tool-approval-response", "codecMessageId": "a1"}
    deny["payload"] = {"toolCallId": "c1", "approved": False, "reason": "no"}
    decision = input_to_langchain(deny)
    assert isinstance(decision, ApprovalDecision)
    assert decision.to_hitl_decision() == {"type": "reject", "message": "no"}
    assert langchain_to_input(decision) == deny
    as_header = input_to_langchain(
        {"kind": "tool-approval-response", "payload": {"toolCallId": "c1", "approved": "true"}}
    )
    assert isinstance(as_header, ApprovalDecision) and as_header.approved
    missing = input_to_langchain({"kind": "tool-approval-response", "payload": {"toolCallId": "c1"}})
    assert isinstance(missing, ApprovalDecision) and not missing.approved
    assert ApprovalDecision("c1", False).to_hitl_decision() == {"type": "reject"}
    assert langchain_to_input(ApprovalDecision("c1", False)) == {
        "kind": "tool-approval-response",
        "payload": {"toolCallId": "c1", "approved": False},
    }


@pytest.mark.parametrize(
    "event",
    [
        {"kind": "something-else"},
        {"kind": "user-message"},
        {"kind": "tool-result", "payload": {"output": 1}},
        {"kind": "tool-approval-response", "payload": {}},
    ],
)
def test_bad_inputs(event: dict) -> None:
    with pytest.raises(MessageMappingError):
        input_to_langchain(event)


@pytest.mark.parametrize(
    ("output", "content"),
    [("plain", "plain"), ({"a": 1}, '{"a": 1}'), ([], "[]"), (None, "null"), ([{"type": "text", "text": "t"}], None)],
)
def test_tool_outputs_as_tool_message_content(output: Any, content: Any) -> None:
    event = {"kind": "tool-result", "codecMessageId": "a", "payload": {"toolCallId": "c", "output": output}}
    decoded = input_to_langchain(event)
    assert isinstance(decoded, ToolResult)
    assert decoded.message.content == (output if content is None else content)
