"""Helpers for the mapping's tests: a scripted streaming model, a reference fold, and a well-formedness check.

Streams come from LangChain's own `BaseChatModel.stream` (GenericFakeChatModel, or `ScriptedChatModel` below for
shapes the fake cannot produce: split tool args, content blocks, usage), so ids, `chunk_position` and callbacks are
LangChain's. `fold` is a reference fold of chunks into a UIMessage with the AI SDK's semantics, kept here so these
tests do not depend on the codec's accumulator; the oracle for streams is LangChain's own chunk merging.

`llm_streams` draws provider-like chunk lists for the property tests.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterator, Sequence
from functools import reduce
from typing import Any

from hypothesis import strategies as st
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    message_chunk_to_message,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.json import parse_partial_json

from langchain_ably_transport.codec.langchain import (
    REASONING_KEY,
    ChunkTranslator,
    ui_message_to_langchain,
)


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
