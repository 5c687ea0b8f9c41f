"""`codec.langchain.messages`: whole UIMessages <-> LangChain messages; any translated stream folds back to what
LangChain itself merges it into, and the real AI SDK and the codec's own accumulator fold it the same way."""

from __future__ import annotations

import json
import operator
import shutil
import subprocess
from collections.abc import Sequence
from functools import reduce
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)

from langchain_ably_transport.codec import UIMessageAccumulator
from langchain_ably_transport.codec.langchain import (
    DATA_PARTS_KEY,
    REASONING_KEY,
    ChunkTranslator,
    abort_chunk,
    data_chunk,
    error_chunk,
    langchain_to_ui_message,
    langchain_to_ui_messages,
    map_finish_reason,
    tool_approval_request_chunk,
    tool_output_chunk,
    translate_message,
    ui_message_to_langchain,
    ui_messages_to_langchain,
)
from langchain_ably_transport.errors import MessageMappingError

from .streams import (
    USAGE_FIRST,
    USAGE_LAST,
    assert_well_formed,
    calls,
    decoded_ai,
    fold,
    llm_streams,
    stream,
    tool_chunk,
    translate,
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


# --------------------------------------------------------------------------------------------------------------------
# Properties: any stream LangChain can produce folds back to what LangChain itself merges it into
# --------------------------------------------------------------------------------------------------------------------


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
# Interop: the real AI SDK (`ai` v6, installed in tests/js) accepts and folds what the translator sends
# --------------------------------------------------------------------------------------------------------------------

JS_DIR = Path(__file__).resolve().parents[2] / "js"
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
        pytest.fail("run `npm ci --prefix tests/js`")
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
    accumulator = UIMessageAccumulator()
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
