"""`codec.langchain.outputs`: real LangChain streams through `ChunkTranslator`, checked against the ordering
rules the JS reducer relies on and by folding them back; and the chunk helpers around a pass (tool results,
errors, custom data, approvals)."""

from __future__ import annotations

import operator
from functools import reduce
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel, GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ToolMessage,
)

from langchain_ably_transport.codec.langchain import (
    DATA_PARTS_KEY,
    REASONING_KEY,
    ChunkTranslator,
    abort_chunk,
    data_chunk,
    error_chunk,
    langchain_to_ui_message,
    map_finish_reason,
    tool_approval_request_chunk,
    tool_output_chunk,
    tool_output_denied_chunk,
    translate_message,
    ui_message_to_langchain,
    usage_from_vercel,
    usage_to_vercel,
)
from langchain_ably_transport.errors import MessageMappingError

from .streams import (
    USAGE_FIRST,
    USAGE_LAST,
    ScriptedChatModel,
    assert_well_formed,
    calls,
    decoded_ai,
    fold,
    stream,
    tool_chunk,
    translate,
)

# --------------------------------------------------------------------------------------------------------------------
# ChunkTranslator: text, reasoning, message framing
# --------------------------------------------------------------------------------------------------------------------


def test_text_stream_from_a_fake_model() -> None:
    chunks = list(GenericFakeChatModel(messages=iter(["Hello there, friend"])).stream("hi"))
    out = translate(chunks)
    assert_well_formed(out)
    message_id = chunks[0].id
    text_id = f"{message_id}-text-1"
    assert out == [
        {"type": "start", "messageId": message_id},
        {"type": "start-step"},
        {"type": "text-start", "id": text_id},
        *({"type": "text-delta", "id": text_id, "delta": token} for token in ["Hello", " ", "there,", " ", "friend"]),
        {"type": "text-end", "id": text_id},
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "stop", "messageMetadata": {"finishReason": "stop"}},
    ]
    assert decoded_ai(out).content == "Hello there, friend"
    assert decoded_ai(out).id == message_id


def test_explicit_message_id_and_metadata() -> None:
    translator = ChunkTranslator("m-1", message_metadata={"createdAt": 5})
    out = translate(stream([AIMessageChunk(content="x")]), translator)
    assert out[0] == {"type": "start", "messageId": "m-1", "messageMetadata": {"createdAt": 5}}
    assert out[2]["id"] == "m-1-text-1"
    assert out[-1]["messageMetadata"] == {"createdAt": 5, "finishReason": "stop"}
    assert fold(out)["metadata"]["createdAt"] == 5


def test_start_can_be_sent_before_the_first_token() -> None:
    translator = ChunkTranslator("m")
    assert translator.start() == [{"type": "start", "messageId": "m"}, {"type": "start-step"}]
    assert translator.start() == []
    out = translator.feed(AIMessageChunk(content="a", id="other")) + translator.finish()
    assert [c["type"] for c in out] == ["text-start", "text-delta", "text-end", "finish-step", "finish"]


def test_empty_pass_still_frames_the_message() -> None:
    out = ChunkTranslator("m").finish()
    assert [c["type"] for c in out] == ["start", "start-step", "finish-step", "finish"]
    assert ui_message_to_langchain(fold(out)) == []


def test_empty_content_opens_no_block() -> None:
    out = translate([AIMessageChunk(content="", id="m"), AIMessageChunk(content=[{"type": "text", "text": ""}])])
    assert [c["type"] for c in out] == ["start", "start-step", "finish-step", "finish"]


def test_reasoning_then_text_as_anthropic_blocks() -> None:
    chunks = stream(
        [
            AIMessageChunk(content=[{"type": "thinking", "thinking": "Let me ", "index": 0}]),
            AIMessageChunk(content=[{"type": "thinking", "thinking": "think.", "index": 0}]),
            AIMessageChunk(content=[{"type": "thinking", "signature": "sig", "index": 0}]),
            AIMessageChunk(content=[{"type": "text", "text": "Answer", "index": 1}]),
            AIMessageChunk(content=[{"type": "text", "text": ": 42", "index": 1}]),
        ]
    )
    out = translate(chunks)
    assert_well_formed(out)
    kinds = [c["type"] for c in out[2:-2]]
    reasoning = ["reasoning-start", "reasoning-delta", "reasoning-delta", "reasoning-end"]
    assert kinds == [*reasoning, "text-start", "text-delta", "text-delta", "text-end"]
    assert fold(out)["parts"][1:] == [
        {"type": "reasoning", "text": "Let me think."},
        {"type": "text", "text": "Answer: 42"},
    ]
    ai = decoded_ai(out)
    assert ai.content == "Answer: 42"
    assert ai.additional_kwargs[REASONING_KEY] == "Let me think."


def test_reasoning_in_additional_kwargs_and_standard_and_openai_summary_blocks() -> None:
    deepseek = [AIMessageChunk(content="", additional_kwargs={REASONING_KEY: "hm"}), AIMessageChunk(content="ok")]
    v1 = [AIMessageChunk(content=[{"type": "reasoning", "reasoning": "hm", "index": 0}]), AIMessageChunk(content="ok")]
    summary = [{"type": "summary_text", "text": "hm", "index": 0}]
    responses = [AIMessageChunk(content=[{"type": "reasoning", "summary": summary, "index": 0}])]
    responses.append(AIMessageChunk(content=[{"type": "text", "text": "ok", "index": 1}]))
    for chunks in (deepseek, v1, responses):
        parts = fold(translate(stream(chunks)))["parts"]
        assert parts[1:] == [{"type": "reasoning", "text": "hm"}, {"type": "text", "text": "ok"}]


def test_a_new_block_index_starts_a_new_text_part() -> None:
    chunks = [
        AIMessageChunk(content=[{"type": "text", "text": "one", "index": 0}]),
        AIMessageChunk(content=[{"type": "text", "text": "two", "index": 1}]),
        AIMessageChunk(content=[{"type": "text", "text": "!", "index": 1}]),
    ]
    parts = fold(translate(stream(chunks)))["parts"]
    assert parts[1:] == [{"type": "text", "text": "one"}, {"type": "text", "text": "two!"}]


def test_feed_after_finish_is_refused_and_finish_is_idempotent() -> None:
    translator = ChunkTranslator("m")
    translator.feed(AIMessageChunk(content="a"))
    assert translator.finish()
    assert translator.closed
    assert translator.finish() == []
    with pytest.raises(MessageMappingError):
        translator.feed(AIMessageChunk(content="b"))


def test_a_pass_that_continues_a_message() -> None:
    first = ChunkTranslator("m")
    second = ChunkTranslator("m", open_message=False)
    out_first = translate([AIMessageChunk(content="a", tool_call_chunks=[])], first, close_message=False)
    out_second = translate([AIMessageChunk(content="b")], second)
    assert_well_formed(out_first, close_message=False)
    assert_well_formed(out_second, open_message=False)
    parts = fold(out_first + out_second)["parts"]
    assert [p["type"] for p in parts] == ["step-start", "text", "step-start", "text"]
    assert [m.content for m in ui_message_to_langchain(fold(out_first + out_second))] == ["a", "b"]


def test_abort_and_error() -> None:
    translator = ChunkTranslator("m")
    translator.feed(AIMessageChunk(content="partial"))
    assert translator.abort("user pressed stop") == [{"type": "abort", "reason": "user pressed stop"}]
    assert translator.closed
    assert ChunkTranslator().error(RuntimeError("boom")) == [{"type": "error", "errorText": "boom"}]
    assert error_chunk(TimeoutError()) == {"type": "error", "errorText": "TimeoutError"}
    assert error_chunk("bad") == {"type": "error", "errorText": "bad"}
    assert abort_chunk() == {"type": "abort"}


# --------------------------------------------------------------------------------------------------------------------
# ChunkTranslator: tool calls
# --------------------------------------------------------------------------------------------------------------------


def test_tool_call_from_a_fake_model_after_text() -> None:
    tool_calls = [{"index": 0, "id": "call_1", "type": "function"}]
    tool_calls[0]["function"] = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    message = AIMessage(content="Let me check", additional_kwargs={"tool_calls": tool_calls})
    out = translate(list(GenericFakeChatModel(messages=iter([message])).stream("hi")))
    assert_well_formed(out)
    kinds = [c["type"] for c in out]
    assert kinds.index("text-end") < kinds.index("tool-input-start")
    assert out[-3] == {
        "type": "tool-input-available",
        "toolCallId": "call_1",
        "toolName": "get_weather",
        "input": {"city": "Paris"},
    }
    assert out[-1]["finishReason"] == "tool-calls"
    assert calls(decoded_ai(out)) == [("call_1", "get_weather", {"city": "Paris"})]


def test_parallel_tool_calls_interleaved_with_split_args() -> None:
    chunks = stream(
        [
            AIMessageChunk(content="Checking both."),
            tool_chunk(0, "call_a", "get_weather", '{"ci'),
            tool_chunk(1, "call_b", "get_time", ""),
            tool_chunk(0, args='ty": "Pa'),
            tool_chunk(1, args='{"tz": '),
            tool_chunk(1, args='"CET"}'),
            tool_chunk(0, args='ris"}'),
        ]
    )
    out = translate(chunks)
    assert_well_formed(out)
    deltas: dict[str, str] = {}
    for chunk in out:
        if chunk["type"] == "tool-input-delta":
            deltas[chunk["toolCallId"]] = deltas.get(chunk["toolCallId"], "") + chunk["inputTextDelta"]
    assert deltas == {"call_a": '{"city": "Paris"}', "call_b": '{"tz": "CET"}'}
    available = [c for c in out if c["type"] == "tool-input-available"]
    assert [(c["toolCallId"], c["input"]) for c in available] == [
        ("call_a", {"city": "Paris"}),
        ("call_b", {"tz": "CET"}),
    ]
    merged = reduce(operator.add, chunks)
    assert calls(decoded_ai(out)) == calls(merged)


def test_tool_call_whose_id_comes_after_its_first_args() -> None:
    out = translate(
        [tool_chunk(0, name="search", args='{"q"'), tool_chunk(0, id="call_9", args=': "x"'), tool_chunk(0, args="}")]
    )
    assert_well_formed(out)
    start = out.index({"type": "tool-input-start", "toolCallId": "call_9", "toolName": "search"})
    assert out[start + 1] == {"type": "tool-input-delta", "toolCallId": "call_9", "inputTextDelta": '{"q": "x"'}
    assert out[start + 2] == {"type": "tool-input-delta", "toolCallId": "call_9", "inputTextDelta": "}"}


def test_tool_call_without_id_gets_a_derived_one() -> None:
    out = translate([tool_chunk(0, name="noop", args="")], ChunkTranslator("m"))
    assert_well_formed(out)
    assert out[-3] == {"type": "tool-input-available", "toolCallId": "m-tool-0", "toolName": "noop", "input": {}}


def test_whole_calls_sent_as_index_zero_are_separate_calls() -> None:
    out = translate([tool_chunk(0, "c1", "a", '{"x": 1}'), tool_chunk(0, "c2", "b", '{"y": 2}')])
    assert_well_formed(out)
    assert calls(decoded_ai(out)) == [("c1", "a", {"x": 1}), ("c2", "b", {"y": 2})]


def test_calls_without_index_are_matched_by_id() -> None:
    out = translate([tool_chunk(None, "c1", "a", '{"x"'), tool_chunk(None, "c1", None, ": 1}")])
    assert calls(decoded_ai(out)) == [("c1", "a", {"x": 1})]


def test_invalid_args_and_nameless_calls_are_tool_input_errors() -> None:
    out = translate([tool_chunk(0, "c1", "a", "[1, 2]"), tool_chunk(1, "c2", None, '{"x": 1}')])
    assert_well_formed(out)
    errors = [c for c in out if c["type"] == "tool-input-error"]
    assert errors == [
        {
            "type": "tool-input-error",
            "toolCallId": "c1",
            "toolName": "a",
            "input": "[1, 2]",
            "errorText": "Tool call arguments are not a JSON object",
        },
        {
            "type": "tool-input-error",
            "toolCallId": "c2",
            "toolName": "",
            "input": '{"x": 1}',
            "errorText": "Tool call has no tool name",
        },
    ]
    assert "c2" not in [c.get("toolCallId") for c in out if c["type"] == "tool-input-start"]
    messages = ui_message_to_langchain(fold(out))
    assert isinstance(messages[0], AIMessage) and messages[0].invalid_tool_calls[0]["args"] == "[1, 2]"
    assert [m.status for m in messages[1:]] == ["error", "error"]


def test_invalid_calls_of_a_whole_message() -> None:
    message = AIMessage(
        content="",
        id="m",
        invalid_tool_calls=[{"type": "invalid_tool_call", "id": "c1", "name": "a", "args": "[1", "error": "bad"}],
    )
    out = translate_message(message)
    assert_well_formed(out)
    assert fold(out) == langchain_to_ui_message(message)
    ai, error = ui_message_to_langchain(fold(out))
    assert isinstance(ai, AIMessage) and [(c["id"], c["name"], c["args"]) for c in ai.invalid_tool_calls] == [
        ("c1", "a", "[1")
    ]
    assert error == ToolMessage(
        content="Tool call arguments are not a JSON object", tool_call_id="c1", name="a", status="error"
    )


def test_truncated_args_are_read_as_langchain_reads_them() -> None:
    chunks = stream([tool_chunk(0, "c1", "a", '{"q": "unfinish')])
    assert calls(decoded_ai(translate(chunks))) == calls(reduce(operator.add, chunks))


def test_dynamic_tools() -> None:
    out = translate([tool_chunk(0, "c1", "mcp_tool", "{}")], ChunkTranslator(dynamic_tools=True))
    assert out[2] == {"type": "tool-input-start", "toolCallId": "c1", "toolName": "mcp_tool", "dynamic": True}
    part = fold(out)["parts"][1]
    assert part["type"] == "dynamic-tool" and part["toolName"] == "mcp_tool"
    assert calls(decoded_ai(out)) == [("c1", "mcp_tool", {})]


def test_chunks_seen_by_a_callback_handler() -> None:
    """The path the callback layer takes: `on_llm_new_token(chunk=...)` during a plain `invoke`."""

    class Collect(BaseCallbackHandler):
        def __init__(self) -> None:
            self.translator = ChunkTranslator()
            self.out: list[dict] = []

        def on_llm_new_token(self, token: str, *, chunk: Any = None, **kwargs: Any) -> None:
            self.out += self.translator.feed(chunk.message)

    handler = Collect()
    model = ScriptedChatModel(chunks=[AIMessageChunk(content="a"), tool_chunk(0, "c", "t", '{"k": 1}')])
    result = model.invoke("hi", config={"callbacks": [handler]}, stream=True)
    out = handler.out + handler.translator.finish()
    assert_well_formed(out)
    ai = decoded_ai(out)
    assert (ai.content, calls(ai), ai.id) == (result.content, calls(result), result.id)


# --------------------------------------------------------------------------------------------------------------------
# Finish reasons, usage, model
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("stop", "stop"),
        ("end_turn", "stop"),
        ("STOP", "stop"),
        ("stop_sequence", "stop"),
        ("length", "length"),
        ("max_tokens", "length"),
        ("MAX_TOKENS", "length"),
        ("content_filter", "content-filter"),
        ("SAFETY", "content-filter"),
        ("refusal", "content-filter"),
        ("tool_calls", "tool-calls"),
        ("tool_use", "tool-calls"),
        ("function_call", "tool-calls"),
        ("error", "error"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("weird", "other"),
        ("content-filter", "content-filter"),
        ("tool-calls", "tool-calls"),
        (None, "stop"),
    ],
)
def test_finish_reason_mapping(reason: str | None, expected: str) -> None:
    assert map_finish_reason(reason) == expected


def test_finish_reason_sources() -> None:
    length = [AIMessageChunk(content="a"), AIMessageChunk(content="", response_metadata={"finish_reason": "length"})]
    assert translate(length)[-1]["finishReason"] == "length"
    assert (
        translate([AIMessageChunk(content="a", response_metadata={"stop_reason": "end_turn"})])[-1]["finishReason"]
        == "stop"
    )
    assert translate([AIMessageChunk(content="a")], finish_reason="content_filter")[-1]["finishReason"] == (
        "content-filter"
    )
    # Gemini and Ollama say "stop" when they call tools.
    with_tools = [tool_chunk(0, "c", "t", "{}"), AIMessageChunk(content="", response_metadata={"done_reason": "stop"})]
    assert translate(with_tools)[-1]["finishReason"] == "tool-calls"
    assert map_finish_reason("error", has_tool_calls=True) == "error"


def test_usage_and_model_are_summed_and_carried_in_finish_metadata() -> None:
    chunks = stream(
        [
            AIMessageChunk(content="Hi", usage_metadata=USAGE_FIRST, response_metadata={"model_name": "gpt-x"}),
            AIMessageChunk(
                content="",
                usage_metadata=USAGE_LAST,
                response_metadata={"finish_reason": "stop", "model_name": "gpt-x", "model_provider": "openai"},
            ),
        ]
    )
    translator = ChunkTranslator()
    out = translate(chunks, translator)
    metadata = out[-1]["messageMetadata"]
    assert metadata["model"] == "gpt-x"
    assert metadata["provider"] == "openai"
    assert metadata["finishReason"] == "stop"
    assert {k: metadata["usage"][k] for k in ("inputTokens", "outputTokens", "totalTokens")} == {
        "inputTokens": 12,
        "outputTokens": 30,
        "totalTokens": 42,
    }
    assert translator.usage == reduce(operator.add, chunks).usage_metadata
    assert translator.message_metadata() == metadata
    ai = decoded_ai(out)
    assert ai.usage_metadata == {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42}
    assert ai.response_metadata == {"model_name": "gpt-x", "model_provider": "openai", "finish_reason": "stop"}


def test_usage_details_round_trip_and_js_shapes() -> None:
    usage = {
        "input_tokens": 100,
        "output_tokens": 50,
        "total_tokens": 150,
        "input_token_details": {"cache_read": 60, "cache_creation": 10, "audio": 3},
        "output_token_details": {"reasoning": 20},
    }
    vercel = usage_to_vercel(usage)
    assert vercel["inputTokenDetails"] == {"noCacheTokens": 30, "cacheReadTokens": 60, "cacheWriteTokens": 10}
    assert vercel["outputTokenDetails"] == {"textTokens": 30, "reasoningTokens": 20}
    assert usage_from_vercel(vercel) == usage
    ai_sdk_6 = {k: v for k, v in vercel.items() if k != "raw"}
    assert usage_from_vercel(ai_sdk_6) == {
        "input_tokens": 100,
        "output_tokens": 50,
        "total_tokens": 150,
        "input_token_details": {"cache_read": 60, "cache_creation": 10},
        "output_token_details": {"reasoning": 20},
    }
    ai_sdk_5 = {"inputTokens": 5, "outputTokens": 7, "reasoningTokens": 2, "cachedInputTokens": 1}
    assert usage_from_vercel(ai_sdk_5) == {
        "input_tokens": 5,
        "output_tokens": 7,
        "total_tokens": 12,
        "input_token_details": {"cache_read": 1},
        "output_token_details": {"reasoning": 2},
    }
    bare = usage_to_vercel({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})
    assert {k: v for k, v in bare.items() if k != "raw"} == {
        "inputTokens": 1,
        "outputTokens": 2,
        "totalTokens": 3,
        "inputTokenDetails": {},
        "outputTokenDetails": {},
    }
    anthropic_raw = {"inputTokens": 5, "outputTokens": 7, "raw": {"input_tokens": 5, "output_tokens": 7}}
    assert usage_from_vercel(anthropic_raw) == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}
    assert usage_from_vercel(None) is None
    assert usage_from_vercel({"other": 1}) is None


# --------------------------------------------------------------------------------------------------------------------
# Whole messages, tool results, custom data, approvals
# --------------------------------------------------------------------------------------------------------------------


def test_a_non_streamed_message_from_fake_messages_list_model() -> None:
    message = AIMessage(
        content="Result:",
        tool_calls=[{"id": "c1", "name": "calc", "args": {"x": 2}, "type": "tool_call"}],
        usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        response_metadata={"finish_reason": "tool_calls", "model_name": "m"},
    )
    invoked = FakeMessagesListChatModel(responses=[message]).invoke("hi")
    out = translate_message(invoked)
    assert_well_formed(out)
    assert out[0]["messageId"] == invoked.id
    ai = decoded_ai(out)
    assert (ai.id, ai.content, calls(ai), ai.usage_metadata) == (
        invoked.id,
        "Result:",
        [("c1", "calc", {"x": 2})],
        invoked.usage_metadata,
    )
    assert fold(out) == langchain_to_ui_message(invoked)


def test_output_files_become_file_chunks() -> None:
    image = {"type": "image", "base64": "iVBORw0=", "mime_type": "image/png"}
    out = translate_message(AIMessage(content=[{"type": "text", "text": "Here"}, image], id="m"))
    assert {"type": "file", "url": "data:image/png;base64,iVBORw0=", "mediaType": "image/png"} in out
    ai = decoded_ai(out)
    assert ai.content == [
        {"type": "text", "text": "Here"},
        {"type": "image", "mime_type": "image/png", "base64": "iVBORw0="},
    ]


def test_tool_results() -> None:
    ok = ToolMessage(content="22C", tool_call_id="c1")
    failed = ToolMessage(content="Error: city not found", tool_call_id="c2", status="error")
    blocks = ToolMessage(content=[{"type": "text", "text": "t"}], tool_call_id="c3")
    assert tool_output_chunk(ok) == {"type": "tool-output-available", "toolCallId": "c1", "output": "22C"}
    assert tool_output_chunk(failed) == {
        "type": "tool-output-error",
        "toolCallId": "c2",
        "errorText": "Error: city not found",
    }
    assert tool_output_chunk(blocks)["output"] == [{"type": "text", "text": "t"}]


def test_data_chunks() -> None:
    assert data_chunk("weather", {"t": 1}) == {"type": "data-weather", "data": {"t": 1}}
    assert data_chunk("progress", 0.5, id="p", transient=True) == {
        "type": "data-progress",
        "data": 0.5,
        "id": "p",
        "transient": True,
    }
    with pytest.raises(MessageMappingError):
        data_chunk("", 1)
    out = [
        *translate([AIMessageChunk(content="a", id="m")]),
        data_chunk("status", "one", id="s"),
        data_chunk("status", "two", id="s"),
        data_chunk("tick", 1, transient=True),
    ]
    ui = fold(out)
    assert [p for p in ui["parts"] if p["type"].startswith("data-")] == [
        {"type": "data-status", "id": "s", "data": "two"}
    ]
    assert ui_message_to_langchain(ui)[0].additional_kwargs[DATA_PARTS_KEY] == [
        {"type": "data-status", "id": "s", "data": "two"}
    ]


def test_approval_chunks_and_denied_tool_calls() -> None:
    assert tool_approval_request_chunk("a1", "c1") == {
        "type": "tool-approval-request",
        "approvalId": "a1",
        "toolCallId": "c1",
    }
    assert tool_output_denied_chunk("c1") == {"type": "tool-output-denied", "toolCallId": "c1"}
    out = translate([tool_chunk(0, "c1", "delete", '{"path": "/"}')], ChunkTranslator("m"))
    ui = fold([*out, tool_approval_request_chunk("a1", "c1")])
    assert ui["parts"][1]["state"] == "approval-requested"
    ai, *rest = ui_message_to_langchain(ui)
    assert calls(ai) == [("c1", "delete", {"path": "/"})] and rest == []
    ui = fold([tool_output_denied_chunk("c1")], ui)
    ui["parts"][1]["approval"]["reason"] = "too risky"
    _, denied = ui_message_to_langchain(ui)
    assert denied == ToolMessage(
        content="The user denied this tool call. Reason: too risky", tool_call_id="c1", name="delete", status="error"
    )
