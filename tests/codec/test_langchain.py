"""The LangChain <-> Vercel mapping, pure: real LangChain chunk streams in, chunks and UIMessages out, and back.

Streams come from LangChain's own `BaseChatModel.stream` (GenericFakeChatModel, or `ScriptedChatModel` below for
shapes the fake cannot produce: split tool args, content blocks, usage), so ids, `chunk_position` and callbacks are
LangChain's. `fold` is a reference fold of chunks into a UIMessage with the AI SDK's semantics, kept here so these
tests do not depend on the codec's accumulator; the oracle for streams is LangChain's own chunk merging.
"""

from __future__ import annotations

import itertools
import json
import operator
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from functools import reduce
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel, GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.json import parse_partial_json

from langchain_ably_transport.codec.langchain import (
    DATA_PARTS_KEY,
    REASONING_KEY,
    ApprovalDecision,
    ChunkTranslator,
    HumanInput,
    MessageMappingError,
    RegenerateRequest,
    ToolResult,
    abort_chunk,
    data_chunk,
    error_chunk,
    input_to_langchain,
    langchain_to_input,
    langchain_to_ui_message,
    langchain_to_ui_messages,
    map_finish_reason,
    tool_approval_request_chunk,
    tool_output_chunk,
    tool_output_denied_chunk,
    translate_message,
    ui_message_to_langchain,
    ui_messages_to_langchain,
    usage_from_vercel,
    usage_to_vercel,
)

# --------------------------------------------------------------------------------------------------------------------
# Helpers: a scripted streaming model, a reference fold, and a well-formedness check
# --------------------------------------------------------------------------------------------------------------------


class ScriptedChatModel(BaseChatModel):
    """Streams exactly the given chunks through `BaseChatModel.stream` (which stamps ids and `chunk_position`)."""

    chunks: list[AIMessageChunk]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        merged = reduce(operator.add, self.chunks)
        return ChatResult(generations=[ChatGeneration(message=message_chunk_to_message(merged))])

    def _stream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        for message in self.chunks:
            chunk = ChatGenerationChunk(message=message)
            if run_manager:
                run_manager.on_llm_new_token(message.text, chunk=chunk)
            yield chunk


def stream(chunks: Sequence[AIMessageChunk]) -> list[AIMessageChunk]:
    """What LangChain streams for a model that produces `chunks`."""
    return list(ScriptedChatModel(chunks=list(chunks)).stream("hi"))


def translate(chunks: Sequence[AIMessage], translator: ChunkTranslator | None = None, **finish: Any) -> list[dict]:
    translator = translator or ChunkTranslator()
    out: list[dict] = []
    for chunk in chunks:
        out += translator.feed(chunk)
    return out + translator.finish(**finish)


def fold(chunks: Sequence[dict], message: dict | None = None) -> dict:
    """A reference fold of chunks into a UIMessage, with the AI SDK's `processUIMessageStream` semantics (text and
    reasoning parts without `state`, as the Ably JS reducer keeps them). Unknown chunk types fail the test."""
    message = message or {"id": "", "role": "assistant", "parts": []}
    parts, active, tools = message["parts"], {}, {}
    for chunk in chunks:
        kind = chunk["type"]
        if kind == "start":
            message["id"] = chunk.get("messageId", message["id"])
            if "messageMetadata" in chunk:
                message["metadata"] = chunk["messageMetadata"]
        elif kind == "start-step":
            parts.append({"type": "step-start"})
        elif kind == "finish-step":
            active.clear()
        elif kind in ("finish", "message-metadata"):
            if "messageMetadata" in chunk:
                message["metadata"] = chunk["messageMetadata"]
        elif kind in ("text-start", "reasoning-start"):
            part = {"type": kind.split("-")[0], "text": ""}
            active[(part["type"], chunk["id"])] = part
            parts.append(part)
        elif kind in ("text-delta", "reasoning-delta"):
            active[(kind.split("-")[0], chunk["id"])]["text"] += chunk["delta"]
        elif kind in ("text-end", "reasoning-end"):
            del active[(kind.split("-")[0], chunk["id"])]
        elif kind.startswith("tool-"):
            _fold_tool(parts, tools, chunk)
        elif kind == "file":
            parts.append({"type": "file", "mediaType": chunk["mediaType"], "url": chunk["url"]})
        elif kind.startswith("data-"):
            _fold_data(parts, chunk)
        elif kind not in ("error", "abort"):
            raise AssertionError(f"unknown chunk type {kind}")
    return message


def _tool_part_base(chunk: dict) -> dict:
    if chunk.get("dynamic"):
        return {"type": "dynamic-tool", "toolName": chunk["toolName"], "toolCallId": chunk["toolCallId"]}
    return {"type": f"tool-{chunk['toolName']}", "toolCallId": chunk["toolCallId"]}


def _fold_tool(parts: list, tools: dict, chunk: dict) -> None:
    kind, call_id = chunk["type"], chunk["toolCallId"]
    part = next((p for p in parts if p.get("toolCallId") == call_id), None)
    if kind == "tool-input-start" or (part is None and kind in ("tool-input-available", "tool-input-error")):
        part = {**_tool_part_base(chunk), "state": "input-streaming", "input": None}
        parts.append(part)
    if part is None:
        raise AssertionError(f"{kind} for unknown tool call {call_id}")
    if kind == "tool-input-start":
        return
    if kind == "tool-input-delta":
        tools[call_id] = tools.get(call_id, "") + chunk["inputTextDelta"]
        part["input"] = parse_partial_json(tools[call_id])
    elif kind == "tool-input-available":
        part.update(state="input-available", input=chunk["input"])
    elif kind == "tool-input-error":
        part.update(state="output-error", input=chunk["input"], errorText=chunk["errorText"])
    elif kind == "tool-output-available":
        part.update(state="output-available", output=chunk["output"])
    elif kind == "tool-output-error":
        part.update(state="output-error", errorText=chunk["errorText"])
    elif kind == "tool-approval-request":
        part.update(state="approval-requested", approval={"id": chunk["approvalId"]})
    elif kind == "tool-output-denied":
        part.update(state="output-denied", approval={**part.get("approval", {}), "approved": False})
    else:
        raise AssertionError(f"unknown chunk type {kind}")


def _fold_data(parts: list, chunk: dict) -> None:
    if chunk.get("transient"):
        return
    part = {key: chunk[key] for key in ("type", "id", "data") if key in chunk}
    for i, existing in enumerate(parts):
        if "id" in part and existing.get("type") == part["type"] and existing.get("id") == part["id"]:
            parts[i] = part
            return
    parts.append(part)


def assert_well_formed(chunks: Sequence[dict], *, open_message: bool = True, close_message: bool = True) -> None:
    """The ordering rules the JS reducer and useChat rely on."""
    kinds = [c["type"] for c in chunks]
    assert all(value is not None for chunk in chunks for value in chunk.values()), "absent, never null"
    lead = ["start", "start-step"] if open_message else ["start-step"]
    assert kinds[: len(lead)] == lead
    assert kinds.count("start") == (1 if open_message else 0)
    assert kinds.count("start-step") == kinds.count("finish-step") == 1
    assert kinds[-1] == ("finish" if close_message else "finish-step")
    if close_message:
        assert kinds[-2] == "finish-step"
        assert chunks[-1]["finishReason"] in {"stop", "length", "content-filter", "tool-calls", "error", "other"}
    open_blocks: set[str] = set()
    closed_blocks: set[str] = set()
    started_calls: list[str] = []
    done_calls: list[str] = []
    for chunk in chunks:
        kind = chunk["type"]
        if kind.endswith("-start") and kind.split("-")[0] in ("text", "reasoning"):
            assert chunk["id"] not in open_blocks | closed_blocks
            assert not open_blocks, "at most one text/reasoning block is open"
            open_blocks.add(chunk["id"])
        elif kind.endswith("-delta") and kind.split("-")[0] in ("text", "reasoning"):
            assert chunk["id"] in open_blocks and chunk["delta"]
        elif kind.endswith("-end") and kind.split("-")[0] in ("text", "reasoning"):
            open_blocks.remove(chunk["id"])
            closed_blocks.add(chunk["id"])
        elif kind == "tool-input-start":
            assert chunk["toolCallId"] not in started_calls and chunk["toolName"]
            assert not open_blocks
            started_calls.append(chunk["toolCallId"])
        elif kind == "tool-input-delta":
            assert chunk["toolCallId"] in started_calls and chunk["toolCallId"] not in done_calls
        elif kind in ("tool-input-available", "tool-input-error"):
            assert chunk["toolCallId"] not in done_calls
            done_calls.append(chunk["toolCallId"])
        elif kind == "finish-step":
            assert not open_blocks
            assert set(started_calls) <= set(done_calls)
    assert [c for c in done_calls if c in started_calls] == started_calls, "inputs complete in the order calls began"


def decoded_ai(chunks: Sequence[dict]) -> AIMessage:
    messages = ui_message_to_langchain(fold(chunks))
    assert isinstance(messages[0], AIMessage)
    return messages[0]


def calls(message: AIMessage) -> list[tuple[Any, str, dict]]:
    return [(c["id"], c["name"], c["args"]) for c in message.tool_calls]


def tool_chunk(index: int | None, id: str | None = None, name: str | None = None, args: str = "") -> AIMessageChunk:
    return AIMessageChunk(content="", tool_call_chunks=[{"index": index, "id": id, "name": name, "args": args}])


USAGE_FIRST = {"input_tokens": 12, "output_tokens": 0, "total_tokens": 12}
USAGE_LAST = {"input_tokens": 0, "output_tokens": 30, "total_tokens": 30}


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


def test_round_trip_with_tool_results() -> None:
    """A pass with two calls, then their results: one UIMessage, back to the AIMessage and its ToolMessages."""
    chunks = stream(
        [
            AIMessageChunk(content="Let me look.", usage_metadata=USAGE_FIRST),
            tool_chunk(0, "c1", "weather", '{"city": "Paris"}'),
            tool_chunk(1, "c2", "weather", '{"city": "Oslo"}'),
            AIMessageChunk(content="", usage_metadata=USAGE_LAST, response_metadata={"finish_reason": "tool_calls"}),
        ]
    )
    results = [
        ToolMessage(content="22C", tool_call_id="c1", name="weather"),
        ToolMessage(content="city not found", tool_call_id="c2", name="weather", status="error"),
    ]
    out = translate(chunks) + [tool_output_chunk(r) for r in results]
    ai, *tool_messages = ui_message_to_langchain(fold(out))
    merged = message_chunk_to_message(reduce(operator.add, chunks))
    assert isinstance(ai, AIMessage)
    assert (ai.id, ai.content, calls(ai), ai.usage_metadata) == (
        merged.id,
        merged.content,
        calls(merged),
        merged.usage_metadata,
    )
    assert tool_messages == results
    assert langchain_to_ui_messages([merged, *results]) == [fold(out)]


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


# --------------------------------------------------------------------------------------------------------------------
# UIMessage -> LangChain, LangChain -> UIMessage
# --------------------------------------------------------------------------------------------------------------------


def test_user_message_text_files_and_data() -> None:
    ui = {
        "id": "u1",
        "role": "user",
        "parts": [
            {"type": "text", "text": "What is in these?"},
            {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,AAAA"},
            {"type": "file", "mediaType": "application/pdf", "url": "https://x.test/a.pdf", "filename": "a.pdf"},
            {"type": "data-context", "id": "d", "data": {"page": 3}},
        ],
    }
    (human,) = ui_message_to_langchain(ui)
    assert isinstance(human, HumanMessage) and human.id == "u1"
    assert human.content == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "mime_type": "image/png", "base64": "AAAA"},
        {
            "type": "file",
            "mime_type": "application/pdf",
            "url": "https://x.test/a.pdf",
            "extras": {"filename": "a.pdf"},
        },
    ]
    assert human.additional_kwargs == {DATA_PARTS_KEY: [{"type": "data-context", "id": "d", "data": {"page": 3}}]}
    assert langchain_to_ui_message(human) == ui
    text_only = {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    assert ui_message_to_langchain(text_only) == [HumanMessage(content="a\nb", id="u2")]


def test_langchain_to_user_ui_message() -> None:
    assert langchain_to_ui_message(HumanMessage(content="hi", id="h")) == {
        "id": "h",
        "role": "user",
        "parts": [{"type": "text", "text": "hi"}],
    }
    assert langchain_to_ui_message(HumanMessage(content=""), message_id="x")["parts"] == [{"type": "text", "text": ""}]
    legacy = HumanMessage(
        content=[
            {"type": "text", "text": "see"},
            {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
            {"type": "image", "source_type": "base64", "data": "QUJD", "mime_type": "image/gif"},
            {"type": "file", "file_id": "file-123"},
        ]
    )
    assert langchain_to_ui_message(legacy)["parts"] == [
        {"type": "text", "text": "see"},
        {"type": "file", "mediaType": "image/jpeg", "url": "https://x.test/cat.jpg"},
        {"type": "file", "mediaType": "image/gif", "url": "data:image/gif;base64,QUJD"},
    ]
    assert langchain_to_ui_message(SystemMessage(content="be brief", id="s")) == {
        "id": "s",
        "role": "system",
        "parts": [{"type": "text", "text": "be brief"}],
    }
    assert ui_message_to_langchain(langchain_to_ui_message(SystemMessage(content="be brief", id="s"))) == [
        SystemMessage(content="be brief", id="s")
    ]
    with pytest.raises(MessageMappingError):
        langchain_to_ui_message(ToolMessage(content="x", tool_call_id="c"))


def test_assistant_with_several_steps_and_every_tool_state() -> None:
    ui = {
        "id": "a1",
        "role": "assistant",
        "metadata": {"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}, "model": "claude"},
        "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "text": "plan"},
            {"type": "text", "text": "Working."},
            {
                "type": "tool-search",
                "toolCallId": "t1",
                "state": "output-available",
                "input": {"q": "a"},
                "output": {"n": 1},
            },
            {
                "type": "dynamic-tool",
                "toolName": "mcp",
                "toolCallId": "t2",
                "state": "output-error",
                "input": {},
                "errorText": "x",
            },
            {"type": "tool-search", "toolCallId": "t3", "state": "input-streaming", "input": {"q": "par"}},
            {"type": "source-url", "sourceId": "s", "url": "https://x.test"},
            {"type": "step-start"},
            {"type": "text", "text": "Done"},
            {"type": "text", "text": "."},
            {"type": "tool-ask", "toolCallId": "t4", "state": "input-available", "input": {"question": "ok?"}},
        ],
    }
    first, search, mcp, second = ui_message_to_langchain(ui)
    assert isinstance(first, AIMessage) and isinstance(second, AIMessage)
    assert (first.id, first.content, first.additional_kwargs) == ("a1", "Working.", {REASONING_KEY: "plan"})
    assert calls(first) == [("t1", "search", {"q": "a"}), ("t2", "mcp", {})]
    assert search == ToolMessage(content='{"n": 1}', tool_call_id="t1", name="search")
    assert mcp == ToolMessage(content="x", tool_call_id="t2", name="mcp", status="error")
    assert (second.id, second.content, calls(second)) == ("a1-1", "Done.", [("t4", "ask", {"question": "ok?"})])
    assert first.usage_metadata is None
    assert second.usage_metadata == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    assert second.response_metadata == {"model_name": "claude"}


def test_ui_messages_to_langchain_and_bad_roles() -> None:
    conversation = [
        {"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]},
        {"id": "a", "role": "assistant", "parts": [{"type": "step-start"}, {"type": "text", "text": "hello"}]},
        {"id": "empty", "role": "assistant", "parts": [{"type": "step-start"}]},
    ]
    assert ui_messages_to_langchain(conversation) == [
        HumanMessage(content="hi", id="u"),
        AIMessage(content="hello", id="a"),
    ]
    with pytest.raises(MessageMappingError):
        ui_message_to_langchain({"id": "x", "role": "tool", "parts": []})


def test_langchain_to_ui_messages_folds_results() -> None:
    ai = AIMessage(content="", id="a", tool_calls=[{"id": "c1", "name": "t", "args": {}, "type": "tool_call"}])
    conversation: list[BaseMessage] = [
        HumanMessage(content="go", id="h"),
        ai,
        ToolMessage(content="done", tool_call_id="c1"),
        ToolMessage(content="orphan", tool_call_id="nope"),
    ]
    ui = langchain_to_ui_messages(conversation)
    assert [m["role"] for m in ui] == ["user", "assistant"]
    assert ui[1]["parts"][1] == {
        "type": "tool-t",
        "toolCallId": "c1",
        "state": "output-available",
        "input": {},
        "output": "done",
    }
    human, ai_back, result = ui_messages_to_langchain(ui)
    assert human == conversation[0]
    assert isinstance(ai_back, AIMessage) and (ai_back.id, calls(ai_back)) == ("a", calls(ai))
    assert ai_back.response_metadata == {"finish_reason": "tool-calls"}
    assert result == ToolMessage(content="done", tool_call_id="c1", name="t")


def test_text_after_a_tool_call_is_a_new_part_after_it() -> None:
    out = translate([AIMessageChunk(content="a"), tool_chunk(0, "c", "t", "{}"), AIMessageChunk(content="b")])
    assert_well_formed(out)
    assert [p["type"] for p in fold(out)["parts"]] == ["step-start", "text", "tool-t", "text"]
    assert decoded_ai(out).content == "ab"


@pytest.mark.parametrize(
    ("output", "content"),
    [("plain", "plain"), ({"a": 1}, '{"a": 1}'), ([], "[]"), (None, "null"), ([{"type": "text", "text": "t"}], None)],
)
def test_tool_outputs_as_tool_message_content(output: Any, content: Any) -> None:
    event = {"kind": "tool-result", "codecMessageId": "a", "payload": {"toolCallId": "c", "output": output}}
    decoded = input_to_langchain(event)
    assert isinstance(decoded, ToolResult)
    assert decoded.message.content == (output if content is None else content)


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


# --------------------------------------------------------------------------------------------------------------------
# Properties: any stream LangChain can produce folds back to what LangChain itself merges it into
# --------------------------------------------------------------------------------------------------------------------

_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8))
_args = st.dictionaries(
    st.text("abcxyz_", min_size=1, max_size=5),
    st.one_of(_json_scalars, st.lists(_json_scalars, max_size=3)),
    max_size=4,
)
_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


def _split(draw: Any, text: str) -> list[str]:
    """`text` cut at arbitrary points (empty pieces included, as providers send them)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def llm_streams(draw: Any) -> tuple[list[AIMessageChunk], str]:
    """A provider-like chunk list: optional reasoning, then text, then parallel tool calls whose fragments
    interleave by index with the id and name only in the first, then usage spread over the first and last chunk.
    Returns the chunks and the reasoning text they carry."""
    blocks = draw(st.booleans())  # Anthropic-style indexed content blocks, else OpenAI-style strings.
    reasoning, text = draw(_text), draw(_text)
    chunks: list[AIMessageChunk] = []
    for piece in _split(draw, reasoning) if reasoning else []:
        if blocks:
            chunks.append(AIMessageChunk(content=[{"type": "thinking", "thinking": piece, "index": 0}]))
        else:
            chunks.append(AIMessageChunk(content="", additional_kwargs={REASONING_KEY: piece}))
    for piece in _split(draw, text):
        chunks.append(AIMessageChunk(content=[{"type": "text", "text": piece, "index": 1}] if blocks else piece))
    queues = []
    for n, args in enumerate(draw(st.lists(_args, max_size=3))):
        pieces = _split(draw, json.dumps(args))
        index = n + 2 if blocks else n
        first = tool_chunk(index, f"call_{n}", draw(st.sampled_from(["search", "get_weather", "calc"])), pieces[0])
        queues.append([first, *(tool_chunk(index, args=p) for p in pieces[1:])])
    while any(queues):
        chunks.append(draw(st.sampled_from([q for q in queues if q])).pop(0))
    usage_in = {"input_tokens": draw(st.integers(0, 500)), "output_tokens": 0}
    usage_out = {"input_tokens": 0, "output_tokens": draw(st.integers(0, 500))}
    chunks.insert(0, AIMessageChunk(content="", usage_metadata={**usage_in, "total_tokens": usage_in["input_tokens"]}))
    metadata = {"finish_reason": draw(st.sampled_from(["stop", "length", "tool_calls", "end_turn"]))}
    last_usage = {**usage_out, "total_tokens": usage_out["output_tokens"]}
    chunks.append(AIMessageChunk(content="", usage_metadata=last_usage, response_metadata=metadata))
    return chunks, reasoning


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(llm_streams())
def test_any_stream_round_trips_to_what_langchain_merges(case: tuple[list[AIMessageChunk], str]) -> None:
    script, reasoning = case
    chunks = stream(script)
    out = translate(chunks)
    assert_well_formed(out)
    merged = message_chunk_to_message(reduce(operator.add, chunks))
    assert isinstance(merged, AIMessage)
    messages = ui_message_to_langchain(fold(out))
    has_content = merged.text or reasoning or merged.tool_calls
    if not has_content:
        assert messages == []
        return
    (ai,) = messages
    assert isinstance(ai, AIMessage)
    assert ai.id == merged.id
    assert ai.content == merged.text
    assert ai.additional_kwargs.get(REASONING_KEY, "") == reasoning
    assert calls(ai) == calls(merged)
    assert ai.usage_metadata == merged.usage_metadata
    assert out[-1]["finishReason"] == map_finish_reason(
        merged.response_metadata.get("finish_reason"), has_tool_calls=bool(merged.tool_calls)
    )


@settings(max_examples=75, deadline=None)
@given(llm_streams())
def test_a_whole_message_translates_like_its_stream(case: tuple[list[AIMessageChunk], str]) -> None:
    """The non-streamed path and `langchain_to_ui_message` agree with the streamed path, part for part."""
    script, _ = case
    chunks = stream(script)
    merged = message_chunk_to_message(reduce(operator.add, chunks))
    assert isinstance(merged, AIMessage)
    streamed = fold(translate(chunks))
    whole = fold(translate_message(merged))
    assert whole == streamed
    assert langchain_to_ui_message(merged) == streamed


# --------------------------------------------------------------------------------------------------------------------
# Interop: the real AI SDK (`ai` v6, when tests/js has it installed) accepts and folds what the translator sends
# --------------------------------------------------------------------------------------------------------------------

JS_DIR = Path(__file__).resolve().parents[1] / "js"
AI_SDK_SCRIPT = """
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
const ai = createRequire(process.argv[2] + '/')('ai');
const input = JSON.parse(readFileSync(0, 'utf8'));
const out = { cases: [], messages: [] };
for (const chunks of input.cases) {
  const errors = [];
  for (const chunk of chunks) {
    const result = await ai.uiMessageChunkSchema().validate(chunk);
    if (!result.success) errors.push({ chunk, error: String(result.error) });
  }
  const stream = new ReadableStream({ start(c) { for (const x of chunks) c.enqueue(x); c.close(); } });
  let message = null;
  for await (const m of ai.readUIMessageStream({ stream, onError: (e) => errors.push(String(e)) })) message = m;
  out.cases.push({ errors, message });
}
for (const m of input.messages) {
  try { await ai.validateUIMessages({ messages: [m] }); out.messages.push(true); }
  catch (e) { out.messages.push(String(e)); }
}
console.log(JSON.stringify(out));
"""


def run_ai_sdk(tmp_path: Path, cases: list[list[dict]], messages: list[dict]) -> dict:
    if shutil.which("node") is None or not (JS_DIR / "node_modules" / "ai").is_dir():
        pytest.skip("needs node and the `ai` package in tests/js/node_modules")
    script = tmp_path / "ai_sdk.mjs"
    script.write_text(AI_SDK_SCRIPT)
    payload = json.dumps({"cases": cases, "messages": messages})
    result = subprocess.run(
        ["node", str(script), str(JS_DIR)], input=payload, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def without_sdk_extras(message: dict) -> dict:
    """The AI SDK's fold adds `state` to text/reasoning parts, keeps the reasoning id, and moves a static tool's
    unparseable input to `rawInput`; the Ably reducer (and `fold`) does none of that."""
    parts = []
    for part in message["parts"]:
        if part["type"] in ("text", "reasoning"):
            part = {"type": part["type"], "text": part["text"]}
        elif "rawInput" in part:
            part = {**{k: v for k, v in part.items() if k != "rawInput"}, "input": part["rawInput"]}
        parts.append(part)
    return {**message, "parts": parts}


def test_the_ai_sdk_accepts_and_folds_translated_streams(tmp_path: Path) -> None:
    streams = [
        stream([AIMessageChunk(content="Hello"), AIMessageChunk(content=" world")]),
        stream(
            [
                AIMessageChunk(
                    content=[{"type": "thinking", "thinking": "hm", "index": 0}], usage_metadata=USAGE_FIRST
                ),
                AIMessageChunk(content=[{"type": "text", "text": "Calling", "index": 1}]),
                tool_chunk(2, "c1", "get_weather", '{"city": '),
                tool_chunk(3, "c2", "get_time", "{}"),
                tool_chunk(2, args='"Paris"}'),
                AIMessageChunk(content="", usage_metadata=USAGE_LAST, response_metadata={"stop_reason": "tool_use"}),
            ]
        ),
        stream(
            [
                tool_chunk(0, "c1", "broken", "[1]"),
                AIMessageChunk(content="", response_metadata={"finish_reason": "length"}),
            ]
        ),
    ]
    cases = [translate(chunks, ChunkTranslator(message_metadata={"createdAt": 1})) for chunks in streams]
    cases[1] += [
        tool_output_chunk(ToolMessage(content="22C", tool_call_id="c1")),
        tool_output_chunk(ToolMessage(content="no clock", tool_call_id="c2", status="error")),
        data_chunk("weather", {"t": 22}, id="w"),
        data_chunk("progress", 1, transient=True),
    ]
    cases.append(
        [
            *translate([tool_chunk(0, "c9", "delete", "{}")], ChunkTranslator("m9")),
            tool_approval_request_chunk("a", "c9"),
        ]
    )
    cases.append([*ChunkTranslator("m").start(), abort_chunk("stopped")])
    cases.append([*ChunkTranslator("m").start(), error_chunk("boom")])
    human = HumanMessage(
        content=[{"type": "text", "text": "see"}, {"type": "image", "url": "https://x.test/a.png"}], id="h"
    )
    messages = [langchain_to_ui_message(human), *(fold(chunks) for chunks in cases[:4])]
    messages.append(langchain_to_ui_message(SystemMessage(content="be brief", id="s")))

    result = run_ai_sdk(tmp_path, cases, messages)

    for chunks, folded in zip(cases, result["cases"], strict=True):
        if chunks[-1]["type"] == "error":  # useChat surfaces it through onError
            assert folded["errors"] == ["Error: boom"]
            continue
        assert folded["errors"] == [], folded["errors"]
        if chunks[-1]["type"] == "abort":
            continue
        assert without_sdk_extras(folded["message"]) == fold(chunks)
        assert ui_message_to_langchain(folded["message"]) == ui_message_to_langchain(fold(chunks))
    assert result["messages"] == [True] * len(messages)


def test_the_ai_sdk_folds_generated_streams_like_the_reference_fold(tmp_path: Path) -> None:
    """Hypothesis draws the streams; one node process checks them all."""
    cases: list[list[dict]] = []

    @settings(max_examples=60, deadline=None, database=None)
    @given(llm_streams())
    def collect(case: tuple[list[AIMessageChunk], str]) -> None:
        cases.append(translate(stream(case[0])))

    collect()
    result = run_ai_sdk(tmp_path, cases, [fold(chunks) for chunks in cases])
    for chunks, folded in zip(cases, result["cases"], strict=True):
        assert folded["errors"] == [], folded["errors"]
        assert without_sdk_extras(folded["message"]) == fold(chunks)
    assert result["messages"] == [True] * len(cases)


# --------------------------------------------------------------------------------------------------------------------
# The codec's own accumulator (the port of the JS reducer) folds translated chunks as the reference fold does
# --------------------------------------------------------------------------------------------------------------------


def accumulate(chunks: Sequence[dict], codec_message_id: str = "cmid") -> dict:
    accumulator_module = pytest.importorskip("langchain_ably_transport.codec.accumulator")
    accumulator = accumulator_module.UIMessageAccumulator()
    for chunk in chunks:
        accumulator.fold_output(chunk, codec_message_id)
    message = accumulator.get(codec_message_id)
    assert message is not None
    return message


@settings(max_examples=75, deadline=None)
@given(llm_streams())
def test_the_accumulator_folds_translated_streams_like_the_reference_fold(
    case: tuple[list[AIMessageChunk], str],
) -> None:
    out = translate(stream(case[0]))
    accumulated = accumulate(out)
    assert accumulated == fold(out)
    assert ui_message_to_langchain(accumulated) == ui_message_to_langchain(fold(out))


def test_the_accumulator_folds_tool_outcomes_like_the_reference_fold() -> None:
    script = [tool_chunk(0, "c1", "a", "{}"), tool_chunk(1, "c2", "b", "[1]"), tool_chunk(2, "c3", "c", "{}")]
    out = translate(script, ChunkTranslator("m"))
    out += [
        tool_output_chunk(ToolMessage(content="ok", tool_call_id="c1")),
        tool_approval_request_chunk("ap", "c3"),
        data_chunk("note", {"n": 1}, id="n1"),
        data_chunk("note", {"n": 2}, id="n1"),
    ]
    assert accumulate(out) == fold(out)
