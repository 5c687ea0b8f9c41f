"""`UIMessageAccumulator`: the Vercel reducer's folds, checked by hand and against the JS reducer itself."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_ably_transport.codec import Decoder, UIMessageAccumulator, chunks
from langchain_ably_transport.codec.vercel import encode_discrete, encode_input
from langchain_ably_transport.wire import Action, WireMessage

from .oracle import js_decode


def folded(*steps: tuple[str, dict[str, Any]] | dict[str, Any], text_state: bool = False) -> UIMessageAccumulator:
    """Fold chunks (into message "M") or `(cmid, chunk)` pairs; inputs are folded when they have a `kind`."""
    accumulator = UIMessageAccumulator(text_state=text_state)
    for step in steps:
        cmid, event = step if isinstance(step, tuple) else ("M", step)
        if "kind" in event:
            accumulator.fold_input(event, cmid)
        else:
            accumulator.fold_output(event, cmid)
    return accumulator


def parts(accumulator: UIMessageAccumulator, cmid: str = "M") -> list[dict[str, Any]]:
    message = accumulator.get(cmid)
    assert message is not None
    return message["parts"]


def tool_call(call_id: str = "c1", name: str = "weather", **extra: Any) -> list[dict[str, Any]]:
    return [{"type": "tool-input-start", "toolCallId": call_id, "toolName": name, **extra},
            {"type": "tool-input-available", "toolCallId": call_id, "toolName": name, "input": {"city": "P"}, **extra}]


# --- Lifecycle --------------------------------------------------------------------------------------------------


def test_start_sets_id_and_metadata_and_start_step_adds_a_part():
    accumulator = folded({"type": "start", "messageId": "ui-1", "messageMetadata": {"a": 1}}, {"type": "start-step"})
    assert accumulator.entries == [{"codecMessageId": "M", "message": {
        "id": "ui-1", "role": "assistant", "parts": [{"type": "step-start"}], "metadata": {"a": 1}}}]


def test_a_message_seen_first_mid_way_is_keyed_and_named_by_codec_message_id():
    accumulator = folded({"type": "text-start", "id": "t"})
    assert accumulator.messages == [{"id": "M", "role": "assistant", "parts": [{"type": "text", "text": ""}]}]


def test_metadata_from_finish_and_message_metadata_replaces():
    accumulator = folded({"type": "start"}, {"type": "message-metadata", "messageMetadata": {"a": 1}},
                         {"type": "finish", "messageMetadata": {"b": 2}})
    assert accumulator.messages[0]["metadata"] == {"b": 2}
    assert "metadata" not in folded({"type": "start"}, {"type": "finish"}).messages[0]


def test_metadata_before_any_message_is_dropped_as_are_error_and_abort():
    accumulator = folded({"type": "finish", "messageMetadata": {"a": 1}}, {"type": "error", "errorText": "x"},
                         {"type": "abort"})
    assert accumulator.messages == []


def test_chunks_without_a_codec_message_id_are_dropped():
    accumulator = UIMessageAccumulator()
    accumulator.fold_output({"type": "start"}, None)
    assert accumulator.messages == []


# --- Text and reasoning -----------------------------------------------------------------------------------------


def test_text_and_reasoning_parts_accumulate_by_stream_id():
    accumulator = folded(
        {"type": "reasoning-start", "id": "r"}, {"type": "text-start", "id": "t"},
        {"type": "reasoning-delta", "id": "r", "delta": "hm"}, {"type": "text-delta", "id": "t", "delta": "Hi"},
        {"type": "text-delta", "id": "t", "delta": "!"}, {"type": "text-end", "id": "t"},
        {"type": "text-delta", "id": "t", "delta": "after end"}, {"type": "text-delta", "id": "x", "delta": "no part"},
    )
    assert parts(accumulator) == [{"type": "reasoning", "text": "hm"}, {"type": "text", "text": "Hi!"}]


def test_finish_step_forgets_open_text_so_ids_can_be_reused():
    accumulator = folded({"type": "text-start", "id": "0"}, {"type": "text-delta", "id": "0", "delta": "a"},
                         {"type": "finish-step"}, {"type": "text-delta", "id": "0", "delta": "lost"},
                         {"type": "start-step"}, {"type": "text-start", "id": "0"},
                         {"type": "text-delta", "id": "0", "delta": "b"})
    assert parts(accumulator) == [{"type": "text", "text": "a"}, {"type": "step-start"}, {"type": "text", "text": "b"}]


def test_text_state_marks_streaming_and_done():
    accumulator = folded({"type": "text-start", "id": "t"}, {"type": "reasoning-start", "id": "r"},
                         {"type": "text-delta", "id": "t", "delta": "x"}, {"type": "text-end", "id": "t"},
                         text_state=True)
    assert parts(accumulator) == [{"type": "text", "text": "x", "state": "done"},
                                  {"type": "reasoning", "text": "", "state": "streaming"}]


# --- Tool parts -------------------------------------------------------------------------------------------------


def test_static_and_dynamic_tool_parts():
    accumulator = folded(*tool_call("c1", title="Weather", providerExecuted=False),
                         *tool_call("c2", "search", dynamic=True))
    assert parts(accumulator) == [
        {"type": "tool-weather", "toolCallId": "c1", "title": "Weather", "providerExecuted": False,
         "state": "input-available", "input": {"city": "P"}},
        {"type": "dynamic-tool", "toolCallId": "c2", "toolName": "search", "state": "input-available",
         "input": {"city": "P"}},
    ]


def test_streaming_input_is_only_shown_once_it_parses():
    accumulator = folded({"type": "tool-input-start", "toolCallId": "c", "toolName": "w"},
                         {"type": "tool-input-delta", "toolCallId": "c", "inputTextDelta": '{"a":'})
    assert parts(accumulator) == [{"type": "tool-w", "toolCallId": "c", "state": "input-streaming"}]
    accumulator.fold_output({"type": "tool-input-delta", "toolCallId": "c", "inputTextDelta": "1}"}, "M")
    assert parts(accumulator) == [{"type": "tool-w", "toolCallId": "c", "state": "input-streaming", "input": {"a": 1}}]


def test_tool_input_error_updates_or_creates_the_part():
    accumulator = folded(*tool_call("c1")[:1], {"type": "tool-input-error", "toolCallId": "c1", "toolName": "weather",
                                                "input": "{", "errorText": "bad json"},
                         {"type": "tool-input-error", "toolCallId": "c2", "toolName": "x", "dynamic": True,
                          "input": 1, "errorText": "unknown tool"})
    assert parts(accumulator) == [
        {"type": "tool-weather", "toolCallId": "c1", "state": "output-error", "input": "{", "errorText": "bad json"},
        {"type": "dynamic-tool", "toolCallId": "c2", "toolName": "x", "state": "output-error", "input": 1,
         "errorText": "unknown tool"},
    ]


def test_tool_outputs_are_found_across_messages():
    accumulator = folded(("A", {"type": "start"}), *[("A", c) for c in tool_call()],
                         ("B", {"type": "start"}),
                         ("B", {"type": "tool-output-available", "toolCallId": "c1", "output": 20,
                                "preliminary": True}))
    assert parts(accumulator, "A") == [{"type": "tool-weather", "toolCallId": "c1", "state": "output-available",
                                        "input": {"city": "P"}, "output": 20, "preliminary": True}]
    assert parts(accumulator, "B") == []
    accumulator.fold_output({"type": "tool-output-error", "toolCallId": "c1", "errorText": "late"}, "B")
    assert parts(accumulator, "A")[0]["state"] == "output-error"
    accumulator.fold_output({"type": "tool-output-available", "toolCallId": "nobody", "output": 1}, "B")
    assert [e["codecMessageId"] for e in accumulator.entries] == ["A", "B"]


def test_approval_request_and_denial_only_look_in_their_own_message():
    accumulator = folded(("A", {"type": "start"}), *[("A", c) for c in tool_call()],
                         ("B", {"type": "tool-approval-request", "toolCallId": "c1", "approvalId": "x"}))
    assert parts(accumulator, "A")[0]["state"] == "input-available" and parts(accumulator, "B") == []
    accumulator.fold_output({"type": "tool-approval-request", "toolCallId": "c1", "approvalId": "ap"}, "A")
    assert parts(accumulator, "A")[0] == {"type": "tool-weather", "toolCallId": "c1", "state": "approval-requested",
                                          "input": {"city": "P"}, "approval": {"id": "ap"}}
    accumulator.fold_output({"type": "tool-output-denied", "toolCallId": "c1"}, "A")
    assert parts(accumulator, "A")[0] == {"type": "tool-weather", "toolCallId": "c1", "state": "output-denied",
                                          "input": {"city": "P"}, "approval": {"id": "", "approved": False}}


# --- Content and data ----------------------------------------------------------------------------------------------


def test_files_and_sources_append_parts():
    accumulator = folded({"type": "file", "url": "u", "mediaType": "image/png", "providerMetadata": {}},
                         {"type": "source-url", "sourceId": "s", "url": "https://s"},
                         {"type": "source-document", "sourceId": "d", "mediaType": "text/plain", "title": "D"})
    assert parts(accumulator) == [
        {"type": "file", "mediaType": "image/png", "url": "u"},
        {"type": "source-url", "sourceId": "s", "url": "https://s"},
        {"type": "source-document", "sourceId": "d", "mediaType": "text/plain", "title": "D"},
    ]


def test_data_parts_replace_by_id_and_transient_ones_are_not_kept():
    accumulator = folded({"type": "data-w", "id": "1", "data": "old"}, {"type": "data-w", "data": "anon"},
                         {"type": "data-w", "id": "1", "data": "new"}, {"type": "data-x", "id": "1", "data": "other"},
                         {"type": "data-w", "data": "tick", "transient": True})
    assert parts(accumulator) == [{"type": "data-w", "id": "1", "data": "new"}, {"type": "data-w", "data": "anon"},
                                  {"type": "data-x", "id": "1", "data": "other"}]


# --- Inputs --------------------------------------------------------------------------------------------------------


def user_part(text: str) -> dict[str, Any]:
    return chunks.user_message({"id": "ui", "role": "user", "parts": [{"type": "text", "text": text}]})


def test_user_message_parts_merge_by_codec_message_id():
    accumulator = folded(("U", user_part("a")), ("U", user_part("b")), ("V", user_part("c")))
    assert accumulator.entries == [
        {"codecMessageId": "U", "message": {"id": "ui", "role": "user", "parts": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}},
        {"codecMessageId": "V", "message": {"id": "ui", "role": "user", "parts": [{"type": "text", "text": "c"}]}},
    ]
    accumulator.fold_input(user_part("d"))  # no codec-message-id: keyed by message id, never merged
    assert accumulator.entries[-1]["codecMessageId"] == "ui"


def test_a_client_tool_result_waits_for_its_assistant():
    accumulator = folded(("A", chunks.tool_result("A", "c1", {"t": 20})))
    assert (accumulator.pending_resolutions, accumulator.messages) == (1, [])
    accumulator.fold_output({"type": "start"}, "A")
    assert accumulator.pending_resolutions == 1
    # It applies at the first fold where the part exists (as in JS, a later input chunk would move it back).
    accumulator.fold_output(tool_call()[0], "A")
    assert accumulator.pending_resolutions == 0
    assert parts(accumulator, "A")[0] == {"type": "tool-weather", "toolCallId": "c1", "state": "output-available",
                                          "output": {"t": 20}}


def test_a_client_tool_error():
    accumulator = folded(*[("A", c) for c in tool_call()], ("A", chunks.tool_result_error("A", "c1", "no network")))
    assert parts(accumulator, "A")[0]["state"] == "output-error"
    assert parts(accumulator, "A")[0]["errorText"] == "no network"


@pytest.mark.parametrize(("approved", "reason", "expected"), [
    (True, "ok", {"state": "approval-responded", "approval": {"id": "ap", "approved": True, "reason": "ok"}}),
    (False, "no", {"state": "output-denied", "approval": {"id": "", "approved": False}}),
])
def test_approval_responses(approved, reason, expected):
    accumulator = folded(*[("A", c) for c in tool_call()],
                         ("A", {"type": "tool-approval-request", "toolCallId": "c1", "approvalId": "ap"}),
                         ("A", chunks.tool_approval_response("A", "c1", approved, reason)))
    assert parts(accumulator, "A")[0] == {"type": "tool-weather", "toolCallId": "c1", "input": {"city": "P"},
                                          **expected}


def test_a_fork_seed_rebuilds_the_suspended_run():
    seed = {"messages": [
        {"codecMessageId": "X0", "message": {"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}},
        {"codecMessageId": "X1", "message": {"id": "a", "role": "assistant", "parts": [
            {"type": "step-start"},
            {"type": "tool-weather", "toolCallId": "c1", "state": "input-available", "input": {}}]}},
    ]}
    accumulator = folded(("X1", chunks.tool_result("X1", "c1", "sunny", fork_seed=seed)))
    assert [e["codecMessageId"] for e in accumulator.entries] == ["X0", "X1"]
    assert parts(accumulator, "X1")[1] == {"type": "tool-weather", "toolCallId": "c1", "state": "output-available",
                                           "input": {}, "output": "sunny"}
    assert seed["messages"][1]["message"]["parts"][1]["state"] == "input-available"  # the seed is not modified
    accumulator.fold_input(chunks.tool_result("X1", "c1", "again", fork_seed=seed))
    assert len(accumulator.entries) == 2


def test_regenerate_folds_nothing():
    assert folded(("G", chunks.regenerate("A", "U"))).messages == []


def test_snapshot_is_independent_of_later_folds():
    accumulator = folded({"type": "text-start", "id": "t"})
    snapshot = accumulator.snapshot()
    accumulator.fold_output({"type": "text-delta", "id": "t", "delta": "x"}, "M")
    assert snapshot[0]["message"]["parts"] == [{"type": "text", "text": ""}]


# --- Parity with the JS reducer over a whole conversation -----------------------------------------------------------


def conversation() -> list[dict[str, Any]]:
    """Wires of a conversation with every input kind, as a reader receives them (creates, in serial order)."""
    wires: list[WireMessage] = []
    user = chunks.user_message({"id": "ui-1", "role": "user", "parts": [
        {"type": "text", "text": "weather?"}, {"type": "file", "url": "u", "mediaType": "image/png"},
        {"type": "data-ctx", "id": "d", "data": {"k": 1}}]})
    wires += encode_input(user, {"role": "user", "codec-message-id": "U", "event-id": "E1"})
    out = {"role": "assistant", "run-id": "R", "codec-message-id": "A", "stream": "false"}
    for chunk in [{"type": "start"}, {"type": "start-step"}, *tool_call("c1"),
                  *tool_call("c2", "search", dynamic=True),
                  {"type": "tool-approval-request", "toolCallId": "c2", "approvalId": "ap"},
                  {"type": "finish-step"}, {"type": "finish", "finishReason": "tool-calls"}]:
        if chunk["type"] == "tool-input-start":
            continue  # the stream-less tool-input carries its own start
        encoded = encode_discrete(chunk, message_id="A")
        wires.append(WireMessage(name="ai-output", data=encoded.data, transport=out, codec=encoded.codec))
    wires += encode_input(chunks.tool_approval_response("A", "c2", True), {"role": "user", "run-id": "R"})
    wires += encode_input(chunks.tool_result("Z", "c9", 1), {"role": "user", "run-id": "R"})  # never resolves
    out2 = {**out, "codec-message-id": "B"}
    for chunk in [{"type": "start"}, {"type": "start-step"},
                  {"type": "tool-output-available", "toolCallId": "c2", "output": {"hits": 3}},
                  {"type": "finish-step"}, {"type": "finish"}]:
        encoded = encode_discrete(chunk, message_id="B")
        wires.append(WireMessage(name="ai-output", data=encoded.data, transport=out2, codec=encoded.codec))
    wires += encode_input(chunks.tool_result("A", "c1", {"t": 20}), {"role": "user"})
    seed = {"messages": [{"codecMessageId": "F1", "message": {"id": "a", "role": "assistant", "parts": [
        {"type": "dynamic-tool", "toolName": "t", "toolCallId": "c7", "state": "input-available", "input": {}}]}}]}
    wires += encode_input(chunks.tool_result_error("F1", "c7", "denied by user", fork_seed=seed),
                          {"role": "assistant", "supersedes": "R"})
    wires += encode_input(chunks.regenerate("A", "U"), {"role": "user", "codec-message-id": "G"})
    return [{"action": 0, "serial": f"{i:04d}", "version": {"serial": f"{i:04d}"}, "name": w.name, "data": w.data,
             "extras": w.extras} for i, w in enumerate(wires)]


def test_a_conversation_folds_as_expected():
    accumulator = UIMessageAccumulator()
    decoder = Decoder()
    for delivery in conversation():
        accumulator.apply_all(decoder.decode_ably(delivery))
    assert [e["codecMessageId"] for e in accumulator.entries] == ["U", "A", "B", "F1"]
    assert [p["type"] for p in parts(accumulator, "U")] == ["text", "file", "data-ctx"]
    tools = {p["toolCallId"]: p for p in parts(accumulator, "A") if "toolCallId" in p}
    assert tools["c1"]["state"] == "output-available" and tools["c1"]["output"] == {"t": 20}
    assert tools["c2"]["state"] == "output-available" and tools["c2"]["output"] == {"hits": 3}
    assert parts(accumulator, "F1")[0]["state"] == "output-error"
    assert accumulator.pending_resolutions == 1


def test_a_conversation_folds_exactly_as_the_js_reducer():
    deliveries = conversation()
    accumulator = UIMessageAccumulator()
    decoder = Decoder()
    for delivery in deliveries:
        accumulator.apply_all(decoder.decode_ably(delivery))
    assert accumulator.snapshot() == js_decode(deliveries)["messages"]


def test_actions_of_the_conversation_are_creates():
    assert {d["action"] for d in conversation()} == {0}
    assert Action.CREATE.value == "message.create"
