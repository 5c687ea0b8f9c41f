"""The Vercel codec's tables, one test per row of §6.2 (outputs) and §6.3 (inputs), both directions."""

from __future__ import annotations

import pytest

from langchain_ably_transport.codec import chunks
from langchain_ably_transport.codec.vercel import (
    CONTINUED,
    REASONING,
    TEXT,
    TOOL_INPUT,
    LifecycleTracker,
    decode_discrete_output,
    decode_input,
    decode_stream_delta,
    decode_stream_end,
    decode_stream_start,
    delta_text,
    encode_discrete,
    encode_input,
    end_codec,
    read_fork_seed,
    start_codec,
    stream_phase,
)
from langchain_ably_transport.errors import InvalidArgumentError, OversizeMessageError, UnsupportedChunkError

from .oracle import as_op, js_encode_inputs

META = {"openai": {"itemId": "i1"}}

# --- Streamed groups ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("group", "prefix"), [(TEXT, "text"), (REASONING, "reasoning")])
def test_text_and_reasoning_start(group, prefix):
    chunk = {"type": f"{prefix}-start", "id": "t0", "providerMetadata": META}
    codec = start_codec(group, chunk)
    assert codec == {"kind": prefix, "id": "t0", "providerMetadata": '{"openai":{"itemId":"i1"}}'}
    assert decode_stream_start(codec) == [chunk]
    assert decode_stream_start({"kind": prefix, "id": "t0"}) == [{"type": f"{prefix}-start", "id": "t0"}]


@pytest.mark.parametrize(("group", "prefix"), [(TEXT, "text"), (REASONING, "reasoning")])
def test_text_and_reasoning_delta_drops_provider_metadata(group, prefix):
    chunk = {"type": f"{prefix}-delta", "id": "t0", "delta": "Hel", "providerMetadata": META}
    assert delta_text(group, chunk) == "Hel"
    persistent = {"kind": prefix, "id": "t0", "providerMetadata": "{}"}
    assert decode_stream_delta(persistent, "Hel") == [{"type": f"{prefix}-delta", "id": "t0", "delta": "Hel"}]


@pytest.mark.parametrize(("group", "prefix"), [(TEXT, "text"), (REASONING, "reasoning")])
def test_text_and_reasoning_end_from_the_closing_headers(group, prefix):
    end = {"type": f"{prefix}-end", "id": "t0", "providerMetadata": {"a": {"b": 1}}}
    closing = {**start_codec(group, {"id": "t0"}), **end_codec(group, end)}
    assert closing == {"kind": prefix, "id": "t0", "providerMetadata": '{"a":{"b":1}}'}
    assert decode_stream_end("t0", "Hello", {"kind": prefix, "id": "t0"}, closing) == [end]
    # Without its own metadata the end repeats the start's (the closing append repeats the persistent tier).
    start = start_codec(group, {"id": "t0", "providerMetadata": META})
    closing = {**start, **end_codec(group, {"type": f"{prefix}-end", "id": "t0"})}
    assert decode_stream_end("t0", "", start, closing) == [{"type": f"{prefix}-end", "id": "t0",
                                                            "providerMetadata": META}]


def test_tool_input_start():
    chunk = {"type": "tool-input-start", "toolCallId": "c1", "toolName": "weather", "dynamic": True, "title": "W",
             "providerExecuted": False, "providerMetadata": META}
    codec = start_codec(TOOL_INPUT, chunk)
    assert codec == {"kind": "tool-input", "toolCallId": "c1", "toolName": "weather", "dynamic": "true", "title": "W",
                     "providerExecuted": "false", "providerMetadata": '{"openai":{"itemId":"i1"}}'}
    assert decode_stream_start(codec) == [chunk]


def test_tool_input_delta():
    chunk = {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"ci'}
    assert delta_text(TOOL_INPUT, chunk) == '{"ci'
    assert decode_stream_delta({"kind": "tool-input", "toolCallId": "c1", "toolName": "w"}, '{"ci') == [chunk]


def test_tool_input_available_with_an_open_stream_closes_it():
    chunk = {"type": "tool-input-available", "toolCallId": "c1", "toolName": "weather", "input": {"city": "P"},
             "dynamic": True, "title": "ignored on close", "providerMetadata": META}
    assert end_codec(TOOL_INPUT, chunk) == {"kind": "tool-input", "toolCallId": "c1", "toolName": "weather",
                                            "providerMetadata": '{"openai":{"itemId":"i1"}}'}
    persistent = start_codec(TOOL_INPUT, {"toolCallId": "c1", "toolName": "weather"})
    closing = {**persistent, **end_codec(TOOL_INPUT, chunk)}
    assert decode_stream_end("c1", '{"city":"P"}', persistent, closing) == [
        {"type": "tool-input-available", "toolCallId": "c1", "toolName": "weather", "input": {"city": "P"},
         "providerMetadata": META},
    ]


@pytest.mark.parametrize(("accumulated", "decoded"), [
    ('{"a":1}', {"input": {"a": 1}}), ("not json", {"input": "not json"}), ("", {}), ("null", {"input": None}),
])
def test_tool_input_available_input_is_parsed_from_the_accumulated_text(accumulated, decoded):
    codec = {"kind": "tool-input", "toolCallId": "c1", "toolName": "w"}
    closing = {"kind": "tool-input", "toolCallId": "c1"}  # no toolName on the close: the start's is used
    assert decode_stream_end("stream-id", accumulated, codec, closing) == [
        {"type": "tool-input-available", "toolCallId": "stream-id", "toolName": "w", **decoded}]


def test_tool_input_available_without_a_stream_is_discrete():
    chunk = {"type": "tool-input-available", "toolCallId": "c1", "toolName": "weather", "input": {"city": "P"},
             "dynamic": False, "title": "W", "providerExecuted": True, "providerMetadata": META}
    encoded = encode_discrete(chunk)
    assert encoded.codec == {"kind": "tool-input", "toolCallId": "c1", "toolName": "weather", "dynamic": "false",
                             "title": "W", "providerExecuted": "true", "providerMetadata": '{"openai":{"itemId":"i1"}}'}
    assert (encoded.data, encoded.ephemeral) == ({"city": "P"}, False)
    assert decode_discrete_output(encoded.codec, encoded.data) == [
        {"type": "tool-input-start", "toolCallId": "c1", "toolName": "weather", "dynamic": False, "title": "W",
         "providerExecuted": True, "providerMetadata": META},
        {"type": "tool-input-available", "toolCallId": "c1", "toolName": "weather", "input": {"city": "P"},
         "providerMetadata": META},
    ]


def test_stream_phases():
    assert stream_phase("text-delta") == (TEXT, "delta")
    assert stream_phase("reasoning-end") == (REASONING, "end")
    assert stream_phase("tool-input-available") == (TOOL_INPUT, "end")
    assert stream_phase("finish") is None
    with pytest.raises(InvalidArgumentError):
        delta_text(TEXT, {"type": "text-delta", "id": "t0"})


def test_unknown_stream_kinds_decode_to_nothing():
    assert decode_stream_start({"kind": "audio"}) == []
    assert decode_stream_delta({"kind": "audio"}, "x") == []
    assert decode_stream_end("s", "x", {"kind": "audio"}, {CONTINUED: "true"}) == []


# --- Discrete events: chunk -> (codec, data, ephemeral) -> chunk ----------------------------------------------

DISCRETE_ROWS = [
    # chunk, codec besides kind, data, decoded (None: same as the chunk)
    ({"type": "start", "messageId": "m1", "messageMetadata": {"k": 1}},
     {"messageId": "m1", "messageMetadata": '{"k":1}'}, "", None),
    ({"type": "start"}, {"messageId": "CMID"}, "", {"type": "start", "messageId": "CMID"}),
    ({"type": "start-step"}, {}, "", None),
    ({"type": "finish-step"}, {}, "", None),
    ({"type": "finish", "finishReason": "tool-calls", "messageMetadata": [1]},
     {"finishReason": "tool-calls", "messageMetadata": "[1]"}, "", None),
    ({"type": "finish"}, {}, "", {"type": "finish", "finishReason": "stop"}),
    ({"type": "message-metadata", "messageMetadata": {"usage": 3}}, {"messageMetadata": '{"usage":3}'}, "", None),
    ({"type": "error", "errorText": "boom"}, {}, "boom", None),
    ({"type": "abort", "reason": "user"}, {}, "user", None),
    ({"type": "abort"}, {}, "", None),
    ({"type": "file", "url": "https://x/y.png", "mediaType": "image/png", "providerMetadata": META},
     {"mediaType": "image/png", "providerMetadata": '{"openai":{"itemId":"i1"}}'}, "https://x/y.png", None),
    ({"type": "source-url", "sourceId": "s1", "url": "https://a", "title": "A"},
     {"sourceId": "s1", "title": "A"}, "https://a", None),
    ({"type": "source-url", "sourceId": "s1", "url": "https://a"}, {"sourceId": "s1"}, "https://a", None),
    ({"type": "source-document", "sourceId": "d1", "mediaType": "application/pdf", "title": "T", "filename": "t.pdf"},
     {"sourceId": "d1", "mediaType": "application/pdf", "title": "T", "filename": "t.pdf"}, "", None),
    ({"type": "tool-input-error", "toolCallId": "c1", "toolName": "w", "input": {"x": 1}, "errorText": "bad",
      "dynamic": True, "title": "W", "providerExecuted": False},
     {"toolCallId": "c1", "toolName": "w", "dynamic": "true", "title": "W", "providerExecuted": "false"},
     {"errorText": "bad", "input": {"x": 1}}, None),
    ({"type": "tool-output-available", "toolCallId": "c1", "output": {"t": 20}, "dynamic": False,
      "providerExecuted": True, "preliminary": True},
     {"toolCallId": "c1", "dynamic": "false", "providerExecuted": "true", "preliminary": "true"},
     {"output": {"t": 20}}, None),
    ({"type": "tool-output-available", "toolCallId": "c1", "output": None}, {"toolCallId": "c1"}, {"output": None},
     None),
    ({"type": "tool-output-error", "toolCallId": "c1", "errorText": "failed", "providerExecuted": True},
     {"toolCallId": "c1", "providerExecuted": "true"}, {"errorText": "failed"}, None),
    ({"type": "tool-approval-request", "approvalId": "a1", "toolCallId": "c1"},
     {"toolCallId": "c1", "approvalId": "a1"}, "", None),
    ({"type": "tool-output-denied", "toolCallId": "c1"}, {"toolCallId": "c1"}, "", None),
    ({"type": "data-weather", "id": "w1", "data": {"temp": 20}}, {"id": "w1"}, {"temp": 20}, None),
    ({"type": "data-weather", "data": [1, 2]}, {}, [1, 2], None),
]


@pytest.mark.parametrize(("chunk", "fields", "data", "decoded"), DISCRETE_ROWS,
                         ids=[row[0]["type"] + str(i) for i, row in enumerate(DISCRETE_ROWS)])
def test_discrete_row(chunk, fields, data, decoded):
    encoded = encode_discrete(chunk, message_id="CMID")
    assert encoded.codec == {"kind": chunk["type"], **fields}
    assert (encoded.data, encoded.ephemeral) == (data, False)
    assert decode_discrete_output(encoded.codec, encoded.data) == [decoded or chunk]


def test_transient_data_is_ephemeral():
    encoded = encode_discrete({"type": "data-progress", "data": 0.5, "transient": True})
    assert (encoded.codec, encoded.data, encoded.ephemeral) == ({"kind": "data-progress", "transient": "true"}, 0.5,
                                                                True)
    assert decode_discrete_output(encoded.codec, 0.5) == [{"type": "data-progress", "transient": True, "data": 0.5}]


@pytest.mark.parametrize("chunk", [{"type": "tool-call"}, {"type": "text"}, {"type": 5}, {}])
def test_unsupported_chunks_raise(chunk):
    with pytest.raises(UnsupportedChunkError) as caught:
        encode_discrete(chunk)
    assert caught.value.code == 40003


@pytest.mark.parametrize(("codec", "data", "decoded"), [
    ({"kind": "tool-output-available", "toolCallId": "c"}, "oops", {"toolCallId": "c"}),
    ({"kind": "tool-output-available", "toolCallId": "c"}, {}, {"toolCallId": "c"}),
    ({"kind": "tool-input-error"}, 5, {"toolCallId": "", "toolName": "", "errorText": ""}),
    ({"kind": "tool-input-error"}, {"errorText": None, "input": 1}, {"toolCallId": "", "toolName": "",
                                                                      "errorText": ""}),
    ({"kind": "tool-output-error"}, {"errorText": 3}, {"toolCallId": "", "errorText": ""}),
    ({"kind": "error"}, {"not": "text"}, {"errorText": ""}),
    ({"kind": "abort"}, "", {}),
    ({"kind": "file"}, None, {"mediaType": "", "url": ""}),
    ({"kind": "source-document"}, "", {"sourceId": "", "mediaType": "", "title": ""}),
    ({"kind": "tool-approval-request"}, "", {"toolCallId": "", "approvalId": ""}),
    ({"kind": "finish", "finishReason": "bogus"}, "", {"finishReason": "stop"}),
    ({"kind": "data-x"}, None, {}),
])
def test_malformed_or_missing_values_decode_as_js_does(codec, data, decoded):
    assert decode_discrete_output(codec, data) == [{"type": codec["kind"], **decoded}]


@pytest.mark.parametrize("kind", ["", "text", "reasoning", "tool-call", "toString", "user-message"])
def test_unknown_kinds_decode_to_nothing(kind):
    assert decode_discrete_output({"kind": kind}, "") == []


# --- Inputs (§6.3) -----------------------------------------------------------------------------------------

SESSION = {"role": "user", "codec-message-id": "U", "event-id": "E", "parent": "A"}


def test_user_message_is_one_wire_per_part():
    message = {"id": "ui-1", "role": "user", "parts": [
        {"type": "text", "text": "hi"}, {"type": "step-start"}, {"type": "file", "url": "u", "mediaType": "image/png"},
        {"type": "tool-x", "toolCallId": "c", "state": "input-available"},
        {"type": "data-ctx", "id": "d", "data": {"k": 1}},
        {"type": "reasoning", "text": "no"},
    ]}
    wires = encode_input(chunks.user_message(message), SESSION)
    assert [(w.name, w.codec, w.data) for w in wires] == [
        ("ai-input", {"kind": "user-message", "messageId": "ui-1", "partType": "text"}, "hi"),
        ("ai-input", {"kind": "user-message", "mediaType": "image/png", "messageId": "ui-1", "partType": "file"}, "u"),
        ("ai-input", {"kind": "user-message", "id": "d", "messageId": "ui-1", "partType": "data-ctx"}, {"k": 1}),
    ]
    assert all(w.transport == {**SESSION, "stream": "false", "discrete": "true"} for w in wires)
    decoded = [decode_input(w.codec, w.transport, w.data) for w in wires]
    assert decoded == [
        [{"kind": "user-message", "message": {"id": "ui-1", "role": "user", "parts": [
            {"type": "text", "text": "hi"}]}}],
        [{"kind": "user-message", "message": {"id": "ui-1", "role": "user", "parts": [
            {"type": "file", "mediaType": "image/png", "url": "u"}]}}],
        [{"kind": "user-message", "message": {"id": "ui-1", "role": "user", "parts": [
            {"type": "data-ctx", "id": "d", "data": {"k": 1}}]}}],
    ]


def test_user_message_without_sendable_parts_sends_one_empty_text():
    wires = encode_input(chunks.user_message({"id": "m", "role": "system", "parts": [{"type": "step-start"}]}),
                         {"codec-message-id": "U"})
    assert [(w.codec, w.data, w.transport["role"]) for w in wires] == [
        ({"kind": "user-message", "messageId": "m", "partType": "text"}, "", "system")]


def test_input_without_codec_message_id_gets_a_fresh_one():
    wires = encode_input(chunks.user_message({"id": "m", "role": "user", "parts": []}), {"role": "user"})
    assert len(wires[0].transport["codec-message-id"]) == 36


def test_regenerate_is_wire_only():
    wires = encode_input(chunks.regenerate("A1", "U"), {**SESSION, "msg-regenerate": "A1"})
    assert [(w.codec, w.data) for w in wires] == [({"kind": "regenerate"}, "")]
    assert "discrete" not in wires[0].transport
    assert decode_input(wires[0].codec, wires[0].transport, "") == []


def test_tool_result_targets_the_assistant():
    seed = {"messages": [{"codecMessageId": "X1", "message": {"id": "a", "role": "assistant", "parts": []}}]}
    [wire] = encode_input(chunks.tool_result("A1", "c1", {"ok": True}, fork_seed=seed),
                          {"role": "assistant", "codec-message-id": "fresh", "supersedes": "R"})
    assert (wire.codec, wire.data, wire.transport["codec-message-id"]) == (
        {"kind": "tool-result", "toolCallId": "c1"}, {"output": {"ok": True}, "forkSeed": seed}, "A1")
    assert decode_input(wire.codec, wire.transport, wire.data) == [
        {"kind": "tool-result", "codecMessageId": "A1", "payload": {"toolCallId": "c1", "output": {"ok": True},
                                                                     "forkSeed": seed}}]


def test_tool_result_error():
    [wire] = encode_input(chunks.tool_result_error("A1", "c1", "it broke"), SESSION)
    assert (wire.codec, wire.data) == ({"kind": "tool-result-error", "toolCallId": "c1"}, {"message": "it broke"})
    assert decode_input(wire.codec, wire.transport, wire.data) == [
        {"kind": "tool-result-error", "codecMessageId": "A1", "payload": {"toolCallId": "c1", "message": "it broke"}}]


@pytest.mark.parametrize(("approved", "reason"), [(True, None), (False, "too risky")])
def test_tool_approval_response(approved, reason):
    [wire] = encode_input(chunks.tool_approval_response("A1", "c1", approved, reason), {**SESSION, "run-id": "R"})
    expected = {"kind": "tool-approval-response", "toolCallId": "c1", "approved": "true" if approved else "false"}
    if reason:
        expected["reason"] = reason
    assert (wire.codec, wire.data, wire.transport["run-id"]) == (expected, "", "R")
    payload = {"toolCallId": "c1", "approved": approved, **({"reason": reason} if reason else {})}
    assert decode_input(wire.codec, wire.transport, "") == [
        {"kind": "tool-approval-response", "codecMessageId": "A1", "payload": payload}]


@pytest.mark.parametrize(("codec", "transport", "data", "decoded"), [
    ({"kind": "tool-approval-response"}, {}, "", [{"kind": "tool-approval-response", "codecMessageId": "",
                                                   "payload": {"toolCallId": "", "approved": False}}]),
    ({"kind": "tool-result", "toolCallId": "c"}, {"codec-message-id": "A"}, "text",
     [{"kind": "tool-result", "codecMessageId": "A", "payload": {"toolCallId": "c"}}]),
    ({"kind": "tool-result-error", "toolCallId": "c"}, {}, {"message": None},
     [{"kind": "tool-result-error", "codecMessageId": "", "payload": {"toolCallId": "c", "message": ""}}]),
    ({"kind": "user-message", "partType": "audio"}, {}, "x", []),
    ({"kind": "user-message", "partType": "text"}, {}, 5,
     [{"kind": "user-message", "message": {"id": "", "role": "user", "parts": [{"type": "text", "text": ""}]}}]),
    ({"kind": "bogus"}, {}, "", []),
])
def test_inputs_decode_defensively(codec, transport, data, decoded):
    assert decode_input(codec, transport, data) == decoded


def test_fork_seed_is_validated_and_filtered():
    data = {"forkSeed": {"messages": [
        {"codecMessageId": "X1", "message": {"id": "a", "role": "assistant", "parts": [{"type": "text", "text": "t"},
                                                                                     {}, None, {"type": 3}]}},
        {"codecMessageId": 5, "message": {"parts": []}},
        {"codecMessageId": "X2", "message": {"parts": "nope"}},
        "junk",
    ]}}
    assert read_fork_seed(data) == {"messages": [
        {"codecMessageId": "X1", "message": {"id": "a", "role": "assistant", "parts": [
            {"type": "text", "text": "t"}]}}]}
    assert read_fork_seed({"forkSeed": []}) is None
    assert read_fork_seed("x") is None


def test_unknown_input_kinds_are_refused():
    with pytest.raises(InvalidArgumentError):
        encode_input({"kind": "steer", "payload": {}}, SESSION)
    with pytest.raises(InvalidArgumentError):
        encode_input({"kind": "tool-result", "codecMessageId": "A"}, SESSION)


def test_an_input_over_the_size_limit_raises_before_publishing():
    seed = {"messages": [{"codecMessageId": "X", "message": {"id": "a", "role": "assistant",
                                                             "parts": [{"type": "text", "text": "x" * 70000}]}}]}
    with pytest.raises(OversizeMessageError) as caught:
        encode_input(chunks.tool_result("A", "c", 1, fork_seed=seed), SESSION, max_message_bytes=65536)
    assert caught.value.size > caught.value.limit == 65536
    parts = [{"type": "text", "text": letter * 23000} for letter in "yzw"]
    with pytest.raises(OversizeMessageError):  # a batch counts as one publish
        encode_input(chunks.user_message({"id": "m", "role": "user", "parts": parts}), SESSION, max_message_bytes=65536)


# --- Lifecycle repair policy (§5.6) --------------------------------------------------------------------------


def test_lifecycle_tracker_policy():
    tracker = LifecycleTracker()
    assert tracker.on_stream_start("R", {"kind": "text", "messageId": "m"}) == [
        {"type": "start", "messageId": "m"}, {"type": "start-step"}]
    assert tracker.on_stream_start("R", {"kind": "text"}) == []
    assert tracker.on_discrete("R", "finish-step", {}) == []
    assert tracker.on_discrete("R", "tool-input", {}) == [{"type": "start-step"}]
    assert tracker.on_discrete("R", "finish", {}) == []
    assert tracker.on_stream_start("R", {}) == [{"type": "start"}, {"type": "start-step"}]
    assert tracker.on_discrete("R2", "start", {}) == []
    assert tracker.on_discrete("R2", "start-step", {}) == []
    assert tracker.on_stream_start("R2", {}) == []
    for kind in ("error", "abort"):
        tracker.on_discrete("R2", kind, {})
        assert tracker.on_discrete("R2", "tool-input", {}) == [{"type": "start"}, {"type": "start-step"}]


# --- Parity with the JS codec's input encoder ----------------------------------------------------------------


def test_inputs_encode_exactly_as_the_js_codec_does():
    seed = {"messages": [{"codecMessageId": "X1", "message": {"id": "a", "role": "assistant", "parts": [
        {"type": "dynamic-tool", "toolName": "t", "toolCallId": "c1", "state": "input-available", "input": {}}]}}]}
    cases = [
        (chunks.user_message({"id": "ui", "role": "user", "parts": [
            {"type": "text", "text": "hi é"}, {"type": "file", "url": "data:x", "mediaType": "text/plain"},
            {"type": "step-start"}, {"type": "data-ctx", "id": "d1", "data": [1, {"a": None}]}]}), "U1"),
        (chunks.user_message({"id": "ui2", "role": "user", "parts": []}), "U2"),
        (chunks.regenerate("A1", "U1"), "U3"),
        (chunks.tool_result("A1", "c1", {"ok": True}, fork_seed=seed), "A1"),
        (chunks.tool_result("A1", "c2", None), "A1"),
        (chunks.tool_result_error("A1", "c3", "nope"), "A1"),
        (chunks.tool_approval_response("A1", "c4", True), "A1"),
        (chunks.tool_approval_response("A1", "c5", False, "no"), "A1"),
    ]
    headers = {"role": "user", "event-id": "E", "parent": "P"}
    ours, serial = [], 0
    for event, cmid in cases:
        wires = encode_input(event, {**headers, "codec-message-id": cmid})
        for wire in wires:
            serial += 1
            ours.append(as_op("publish", f"{serial:012d}@fake", wire))
    theirs = js_encode_inputs([{"input": event, "headers": headers, "messageId": cmid} for event, cmid in cases])
    assert ours == theirs
