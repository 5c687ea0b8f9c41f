"""The LangChain side of the Vercel codec: LangChain messages <-> `UIMessageChunk`s and `UIMessage`s. Pure, no I/O.

Chunks and UIMessages are plain dicts in the Vercel AI SDK 6 JSON shapes (`chunks`) that `@ably/ai-transport`
0.8.0's Vercel codec carries, so the encoder can publish them as they are and a JS `useChat` renders them unchanged.

- Outputs (agent -> clients): `ChunkTranslator` turns one LLM pass (a stream of `AIMessageChunk`s) into the chunks
  of one assistant message; `tool_output_chunk`, `error_chunk`, `abort_chunk`, `data_chunk` and the approval
  helpers cover what happens around it.
- Inputs (clients -> agent): `input_to_langchain` maps the well-known inputs the wire decoder yields
  (`vercel.decode_input`) to LangChain objects; `langchain_to_input` is its inverse.
- History: `ui_message_to_langchain` and `langchain_to_ui_message` map whole messages both ways, so an agent can
  rebuild its prompt from what the accumulator holds.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.utils.json import parse_partial_json

from . import chunks
from .chunks import Chunk, Input
from .errors import CodecError

UIMessage = dict[str, Any]
"""A `UIMessage` as a plain dict (`chunks.UIMessage` describes its keys)."""

DATA_PARTS_KEY = "data_parts"
"""`additional_kwargs` key holding a message's `data-<name>` parts, which have no LangChain content equivalent."""
REASONING_KEY = "reasoning_content"
"""`additional_kwargs` key for reasoning text: where DeepSeek-style integrations put it, and ignored by the request
builders of providers that would reject unsigned reasoning if it were sent back as a content block."""

# Provider finish reasons (OpenAI, Anthropic, Gemini, Ollama, Bedrock, Mistral), lower-cased, `-` read as `_`.
_FINISH_REASON_MAP = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "complete": "stop",
    "eos": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",
    "model_context_window_exceeded": "length",
    "content_filter": "content-filter",
    "content_filtered": "content-filter",
    "guardrail_intervened": "content-filter",
    "safety": "content-filter",
    "recitation": "content-filter",
    "blocklist": "content-filter",
    "prohibited_content": "content-filter",
    "spii": "content-filter",
    "image_safety": "content-filter",
    "refusal": "content-filter",
    "tool_calls": "tool-calls",
    "tool_call": "tool-calls",
    "function_call": "tool-calls",
    "tool_use": "tool-calls",
    "error": "error",
    "malformed_function_call": "error",
}
_FINISH_REASON_KEYS = ("finish_reason", "stop_reason", "done_reason")
_MODEL_NAME_KEYS = ("model_name", "model", "model_id")
_FILE_BLOCK_TYPES = frozenset({"image", "audio", "video", "file"})
_USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens")
_USAGE_DETAIL_KEYS = ("input_token_details", "output_token_details")


class MessageMappingError(CodecError, ValueError):
    """A payload that cannot be mapped between LangChain and Vercel shapes: an unknown role or input kind, or a
    missing required field. Usually a client on another codec or version; check the channel's adapter tag."""


# --------------------------------------------------------------------------------------------------------------------
# Usage, finish reasons and message metadata
# --------------------------------------------------------------------------------------------------------------------


def map_finish_reason(reason: str | None, *, has_tool_calls: bool = False) -> str:
    """Map a provider's (or Vercel's own) finish reason to Vercel's enum.

    A model that called tools is reported as `tool-calls` even when the provider says `stop` (Gemini and Ollama do),
    because that is what the AI SDK's own providers report and what a client keys "the agent will continue" on.
    """
    if reason is None:
        mapped = "stop"
    else:
        key = reason.strip().lower().replace("-", "_").removeprefix("finish_reason_")
        mapped = _FINISH_REASON_MAP.get(key, "other")
    return "tool-calls" if has_tool_calls and mapped == "stop" else mapped


def usage_to_vercel(usage: Mapping[str, Any]) -> dict[str, Any]:
    """A LangChain `UsageMetadata` as the AI SDK 6 `LanguageModelUsage` a client expects in `metadata.usage`.

    The LangChain dict also travels as `raw` (the SDK's slot for the un-normalised usage), so details the SDK has no
    field for (audio tokens) survive the round trip through `usage_from_vercel`.
    """
    out: dict[str, Any] = {
        "inputTokens": usage.get("input_tokens", 0),
        "outputTokens": usage.get("output_tokens", 0),
        "totalTokens": usage.get("total_tokens", 0),
    }
    inputs = usage.get("input_token_details") or {}
    read, write = inputs.get("cache_read"), inputs.get("cache_creation")
    # Both detail objects are always there, as in the SDK's type; a count LangChain does not know is absent.
    out["inputTokenDetails"] = {}
    if read is not None or write is not None:
        out["inputTokenDetails"]["noCacheTokens"] = out["inputTokens"] - (read or 0) - (write or 0)
    for key, value in (("cacheReadTokens", read), ("cacheWriteTokens", write)):
        if value is not None:
            out["inputTokenDetails"][key] = value
    reasoning = (usage.get("output_token_details") or {}).get("reasoning")
    out["outputTokenDetails"] = {}
    if reasoning is not None:
        out["outputTokenDetails"] = {"textTokens": out["outputTokens"] - reasoning, "reasoningTokens": reasoning}
    out["raw"] = json.loads(json.dumps(dict(usage)))
    return out


def usage_from_vercel(usage: Any) -> UsageMetadata | None:
    """The inverse of `usage_to_vercel`; also reads usage a JS agent wrote (AI SDK 5 flat or 6 nested details)."""
    if not isinstance(usage, Mapping):
        return None
    raw = usage.get("raw")
    if isinstance(raw, Mapping) and all(isinstance(raw.get(key), int) for key in _USAGE_KEYS):
        # Ours (a JS agent's `raw` is its provider's shape, e.g. Anthropic's, which has no `total_tokens`).
        return UsageMetadata(**{key: raw[key] for key in _USAGE_KEYS + _USAGE_DETAIL_KEYS if key in raw})
    if not any(isinstance(usage.get(key), int) for key in ("inputTokens", "outputTokens", "totalTokens")):
        return None
    input_tokens, output_tokens = usage.get("inputTokens") or 0, usage.get("outputTokens") or 0
    result = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=usage.get("totalTokens") or input_tokens + output_tokens,
    )
    inputs, outputs = usage.get("inputTokenDetails") or {}, usage.get("outputTokenDetails") or {}
    read = inputs.get("cacheReadTokens", usage.get("cachedInputTokens"))
    write = inputs.get("cacheWriteTokens")
    reasoning = outputs.get("reasoningTokens", usage.get("reasoningTokens"))
    if read is not None or write is not None:
        result["input_token_details"] = {
            key: value for key, value in (("cache_read", read), ("cache_creation", write)) if value is not None
        }  # type: ignore[typeddict-item]
    if reasoning is not None:
        result["output_token_details"] = {"reasoning": reasoning}
    return result


def _response_metadata_fields(response_metadata: Mapping[str, Any]) -> dict[str, str]:
    """The finish reason, model name and provider a chunk's `response_metadata` names, under our own keys."""
    found: dict[str, str] = {}
    for name, keys in (("finish_reason", _FINISH_REASON_KEYS), ("model", _MODEL_NAME_KEYS)):
        value = next((response_metadata[k] for k in keys if isinstance(response_metadata.get(k), str)), None)
        if value:
            found[name] = value
    if isinstance(provider := response_metadata.get("model_provider"), str) and provider:
        found["provider"] = provider
    return found


def _final_metadata(
    base: Mapping[str, Any], fields: Mapping[str, str], usage: UsageMetadata | None, finish_reason: str
) -> dict[str, Any]:
    """The assistant message's `metadata`: the caller's own keys plus `model`, `provider`, `usage` and
    `finishReason`. The whole dict is resent on `finish` because the JS reducer replaces (not merges) metadata."""
    metadata = dict(base)
    for key in ("model", "provider"):
        if key in fields:
            metadata[key] = fields[key]
    if usage is not None:
        metadata["usage"] = usage_to_vercel(usage)
    metadata["finishReason"] = finish_reason
    return metadata


# --------------------------------------------------------------------------------------------------------------------
# Reading LangChain content
# --------------------------------------------------------------------------------------------------------------------

_Piece = tuple[Literal["text", "reasoning", "file"], Any, int | str | None]


def _content_pieces(message: BaseMessage) -> Iterator[_Piece]:
    """The text, reasoning and file pieces of a message (or chunk) in order, with the block index providers use to
    tell one streamed block from the next. Tool-use blocks are skipped: `tool_call_chunks` carry the same calls in
    a provider-independent form."""
    reasoning = message.additional_kwargs.get(REASONING_KEY)
    if isinstance(reasoning, str) and reasoning:
        yield "reasoning", reasoning, None
    content = message.content
    if isinstance(content, str):
        if content:
            yield "text", content, None
        return
    for block in content:
        if isinstance(block, str):
            if block:
                yield "text", block, None
        elif isinstance(block, dict) and (piece := _block_piece(block)) is not None:
            yield piece


def _block_piece(block: Mapping[str, Any]) -> _Piece | None:
    """One content block as a piece; `None` for blocks with nothing to show (tool use, citations, empty text)."""
    kind, index = block.get("type"), block.get("index")
    if kind == "text":
        text = block.get("text") or ""
        return ("text", text, index) if text else None
    if kind in ("reasoning", "thinking"):
        # Standard v1 blocks carry `reasoning`; Anthropic `thinking`; OpenAI Responses a list of summary parts.
        text = block.get("reasoning") or block.get("thinking") or ""
        summary = block.get("summary")
        if not text and isinstance(summary, list):
            text = "".join(s.get("text") or "" for s in summary if isinstance(s, dict))
        return ("reasoning", text, index) if text else None
    if (file_part := _block_to_file_part(block)) is not None:
        return "file", file_part, index
    return None


def _block_to_file_part(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """A LangChain image/audio/video/file block (v1 standard, v0 `source_type`, or OpenAI `image_url`) as a
    Vercel file part. Blocks that only name a provider-side file id have no URL to give and map to `None`."""
    kind = block.get("type")
    if kind == "image_url":
        image_url = block.get("image_url")
        url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
        return _file_part(url, None) if isinstance(url, str) and url else None
    if kind not in _FILE_BLOCK_TYPES:
        return None
    mime_type = block.get("mime_type")
    data = block.get("base64") or (block.get("data") if block.get("source_type") == "base64" else None)
    if isinstance(data, str) and data:
        url = f"data:{mime_type or 'application/octet-stream'};base64,{data}"
    elif isinstance(block.get("url"), str) and block["url"]:
        url = block["url"]
    else:
        return None
    part = _file_part(url, mime_type)
    filename = (block.get("extras") or {}).get("filename") or block.get("filename")
    if isinstance(filename, str) and filename:
        part["filename"] = filename
    return part


def _file_part(url: str, mime_type: str | None) -> dict[str, Any]:
    """A Vercel file part; its `mediaType` is required, so it is read from a data URL or guessed from the path."""
    if not mime_type and url.startswith("data:"):
        mime_type = url[5:].split(";", 1)[0].split(",", 1)[0]
    if not mime_type:
        mime_type = mimetypes.guess_type(url)[0]
    return {"type": "file", "mediaType": mime_type or "application/octet-stream", "url": url}


def _file_part_to_block(part: Mapping[str, Any]) -> dict[str, Any]:
    """A Vercel file part as a LangChain v1 data block: `image`/`audio`/`video` by media type, else `file`; a data
    URL becomes inline `base64`, anything else stays a `url` for the provider to fetch."""
    media_type = part.get("mediaType") or "application/octet-stream"
    url = part.get("url") or ""
    kind = media_type.split("/", 1)[0]
    block: dict[str, Any] = {"type": kind if kind in ("image", "audio", "video") else "file", "mime_type": media_type}
    if url.startswith("data:") and ";base64," in url:
        block["base64"] = url.split(",", 1)[1]
    else:
        block["url"] = url
    if part.get("filename"):
        block["extras"] = {"filename": part["filename"]}
    return block


def _tool_call_fragments(message: AIMessage) -> list[dict[str, Any]]:
    """The tool calls of a chunk as LangChain streams them (`tool_call_chunks`), or of a whole `AIMessage` as
    equivalent one-fragment-per-call chunks, so both paths share one state machine."""
    if isinstance(message, AIMessageChunk):
        return [dict(c) for c in message.tool_call_chunks]
    fragments = [
        {"index": i, "id": c.get("id"), "name": c.get("name"), "args": json.dumps(c.get("args") or {})}
        for i, c in enumerate(message.tool_calls)
    ]
    offset = len(fragments)
    fragments += [
        {"index": offset + i, "id": c.get("id"), "name": c.get("name"), "args": c.get("args") or ""}
        for i, c in enumerate(message.invalid_tool_calls)
    ]
    return fragments


# --------------------------------------------------------------------------------------------------------------------
# Outputs: one LLM pass -> the chunks of one assistant message
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class _Block:
    kind: Literal["text", "reasoning"]
    id: str
    index: int | str | None


@dataclass
class _ToolCall:
    index: int | str | None
    id: str | None = None
    name: str | None = None
    args: str = ""
    started: bool = False


class ChunkTranslator:
    """Turns one LLM pass, streamed as LangChain `AIMessageChunk`s, into the `UIMessageChunk`s of one assistant
    message, in an order the JS reducer and `useChat` fold correctly.

    `feed` returns the chunks each LangChain chunk produces; `finish` closes what is open. The sequence is `start`,
    `start-step`, then text/reasoning blocks (`*-start`, `*-delta`..., `*-end`) and tool calls (`tool-input-start`
    once the call's id and name are known, `tool-input-delta` per args fragment), then at `finish` the open block's
    end, one `tool-input-available` (or `tool-input-error` for args that are not a JSON object) per call in the
    order the calls began, `finish-step` and `finish`. At most one text or reasoning block is open: a new block
    index, a change of kind or a tool call closes it, so the parts keep the order the model produced them in.

    Tool calls are keyed by their `index` (parallel calls interleave by index); an id or name that arrives later
    than the first fragment is picked up, and args are buffered until the call can be announced. Args are parsed at
    the end exactly as LangChain parses them (`parse_partial_json`), so the client sees the same input a `ToolNode`
    will run with.

    `message_id` becomes the `start` chunk's `messageId`; left out, it is the first chunk's LangChain id (so the
    client's message and the graph state's `AIMessage` share an id). Pass `open_message=False` for a second pass
    that continues a message already started, and `finish(close_message=False)` to end a pass without ending the
    message (a `finish` closes the client's stream).
    """

    def __init__(
        self,
        message_id: str | None = None,
        *,
        message_metadata: Mapping[str, Any] | None = None,
        dynamic_tools: bool = False,
        open_message: bool = True,
    ) -> None:
        self.message_id = message_id
        self._metadata = dict(message_metadata or {})
        self._dynamic = dynamic_tools
        self._started = not open_message
        self._step_started = False
        self._closed = False
        self._open: _Block | None = None
        self._blocks = 0
        self._calls: list[_ToolCall] = []
        self._usage: UsageMetadata | None = None
        self._fields: dict[str, str] = {}

    @property
    def closed(self) -> bool:
        """True once `finish`, `abort` or `error` has been called; the translator accepts nothing more."""
        return self._closed

    @property
    def usage(self) -> UsageMetadata | None:
        """The pass's token usage so far, summed over chunks the way LangChain sums them."""
        return self._usage

    def start(self) -> list[Chunk]:
        """`start` (unless continuing a message) and `start-step`, once; call it early to show the message
        before the first token. `feed` and `finish` call it for you."""
        out: list[Chunk] = []
        if not self._started:
            self._started = True
            start: Chunk = {"type": "start"}
            if self.message_id:
                start["messageId"] = self.message_id
            if self._metadata:
                start["messageMetadata"] = dict(self._metadata)
            out.append(start)
        if not self._step_started:
            self._step_started = True
            out.append({"type": "start-step"})
        return out

    def feed(self, message: AIMessageChunk | AIMessage) -> list[Chunk]:
        """The chunks one streamed `AIMessageChunk` produces. A whole `AIMessage` (a model that did not stream)
        is accepted too and translated as a single chunk."""
        self._ensure_open()
        if self.message_id is None and message.id:
            self.message_id = message.id
        out = self.start()
        for kind, value, index in _content_pieces(message):
            out += self._file(value) if kind == "file" else self._content(kind, value, index)
        for fragment in _tool_call_fragments(message):
            out += self._tool_fragment(fragment)
        if message.usage_metadata:
            self._usage = add_usage(self._usage, message.usage_metadata)
        self._fields.update(_response_metadata_fields(message.response_metadata))
        return out

    def finish(self, finish_reason: str | None = None, *, close_message: bool = True) -> list[Chunk]:
        """Close the pass: end the open block, make every tool call's input available, `finish-step`, and (unless
        `close_message` is false) `finish` with the mapped finish reason and metadata carrying usage and model.

        `finish_reason` overrides the one the chunks reported; either may be a provider's or Vercel's. Calling
        `finish` again returns nothing.
        """
        if self._closed:
            return []
        out = self.start() + self._close_block()
        for position, call in enumerate(self._calls):
            out += self._complete_call(call, position)
        out.append({"type": "finish-step"})
        self._closed = True
        if close_message:
            reason = self._finish_reason(finish_reason)
            metadata = _final_metadata(self._metadata, self._fields, self._usage, reason)
            out.append({"type": "finish", "finishReason": reason, "messageMetadata": metadata})
        return out

    def abort(self, reason: str | None = None) -> list[Chunk]:
        """The run was cancelled: an `abort` chunk, as the AI SDK sends. Open blocks are left to the encoder, which
        closes their Ably streams with status `cancelled`."""
        self._closed = True
        return [abort_chunk(reason)]

    def error(self, error: BaseException | str) -> list[Chunk]:
        """The model failed mid-pass: an `error` chunk, which ends the client's stream. Open blocks are left to the
        encoder, as for `abort`."""
        self._closed = True
        return [error_chunk(error)]

    def message_metadata(self, finish_reason: str | None = None) -> dict[str, Any]:
        """The metadata `finish` would send, for a caller that ends the message itself (`close_message=False`)."""
        return _final_metadata(self._metadata, self._fields, self._usage, self._finish_reason(finish_reason))

    def _finish_reason(self, override: str | None) -> str:
        return map_finish_reason(override or self._fields.get("finish_reason"), has_tool_calls=bool(self._calls))

    def _ensure_open(self) -> None:
        if self._closed:
            raise MessageMappingError("This ChunkTranslator has finished; start a new one for the next LLM pass.")

    def _content(self, kind: Literal["text", "reasoning"], text: str, index: int | str | None) -> list[Chunk]:
        out: list[Chunk] = []
        block = self._open
        if block is None or block.kind != kind or (None not in (index, block.index) and index != block.index):
            out += self._close_block()
            block = self._open = _Block(kind, self._next_block_id(kind), index)
            out.append({"type": f"{kind}-start", "id": block.id})
        elif block.index is None:
            block.index = index
        out.append({"type": f"{kind}-delta", "id": block.id, "delta": text})
        return out

    def _file(self, part: Mapping[str, Any]) -> list[Chunk]:
        return [*self._close_block(), {"type": "file", "url": part["url"], "mediaType": part["mediaType"]}]

    def _next_block_id(self, kind: str) -> str:
        """Ids unique within the message (the reducer keys open parts on them), and stable, so a replay of the
        same LangChain stream produces the same chunks."""
        self._blocks += 1
        return f"{self.message_id}-{kind}-{self._blocks}" if self.message_id else f"{kind}-{self._blocks}"

    def _close_block(self) -> list[Chunk]:
        if self._open is None:
            return []
        block, self._open = self._open, None
        return [{"type": f"{block.kind}-end", "id": block.id}]

    def _tool_fragment(self, fragment: Mapping[str, Any]) -> list[Chunk]:
        index, call_id, name, args = (
            fragment.get("index"),
            fragment.get("id"),
            fragment.get("name"),
            fragment.get("args"),
        )
        if args is not None and not isinstance(args, str):
            args = json.dumps(args)
        call = self._find_call(index, call_id)
        if call is None:
            call = _ToolCall(index)
            self._calls.append(call)
        call.id = call.id or call_id or None
        call.name = call.name or name or None
        call.args += args or ""
        if not call.started and call.id and call.name:
            return self._start_call(call)
        if call.started and args:
            return [{"type": "tool-input-delta", "toolCallId": call.id, "inputTextDelta": args}]
        return []

    def _find_call(self, index: int | str | None, call_id: str | None) -> _ToolCall | None:
        """The call a fragment continues: the latest with its index, unless that one already has a different id
        (providers that send each whole call as index 0); by id when there is no index; else the latest call."""
        if index is not None:
            call = next((c for c in reversed(self._calls) if c.index == index), None)
            return None if call and call_id and call.id and call.id != call_id else call
        if call_id:
            return next((c for c in self._calls if c.id == call_id), None)
        return self._calls[-1] if self._calls else None

    def _start_call(self, call: _ToolCall) -> list[Chunk]:
        call.started = True
        start: Chunk = {"type": "tool-input-start", "toolCallId": call.id, "toolName": call.name}
        if self._dynamic:
            start["dynamic"] = True
        out = [*self._close_block(), start]
        if call.args:
            out.append({"type": "tool-input-delta", "toolCallId": call.id, "inputTextDelta": call.args})
        return out

    def _complete_call(self, call: _ToolCall, position: int) -> list[Chunk]:
        """The input of a call whose args are complete. A call whose id never came gets a derived one; a call with
        no name cannot be announced as a stream and is reported as a discrete `tool-input-error`."""
        out: list[Chunk] = []
        if call.id is None:
            call.id = f"{self.message_id or 'call'}-tool-{position}"
        if not call.started and call.name:
            out += self._start_call(call)
        try:  # LangChain's own reading of streamed args (`AIMessageChunk.init_tool_calls`), errors included.
            parsed = parse_partial_json(call.args) if call.args else {}
        except Exception:
            parsed = None
        identity: Chunk = {"toolCallId": call.id, "toolName": call.name or ""}
        if self._dynamic:
            identity["dynamic"] = True
        if isinstance(parsed, dict) and call.name:
            out.append({"type": "tool-input-available", **identity, "input": parsed})
        else:
            error = _input_error_text(call.name)
            out.append({"type": "tool-input-error", **identity, "input": call.args, "errorText": error})
        return out


def _input_error_text(tool_name: str | None) -> str:
    return "Tool call arguments are not a JSON object" if tool_name else "Tool call has no tool name"


def translate_message(message: AIMessage, message_id: str | None = None, **options: Any) -> list[Chunk]:
    """Every chunk of a whole (non-streamed) `AIMessage`, from `start` to `finish`; options as `ChunkTranslator`."""
    translator = ChunkTranslator(message_id, **options)
    return translator.feed(message) + translator.finish()


# --------------------------------------------------------------------------------------------------------------------
# Outputs around a pass: tool results, errors, custom data, approvals
# --------------------------------------------------------------------------------------------------------------------


def tool_output_chunk(message: ToolMessage) -> Chunk:
    """A tool's result: `tool-output-available {toolCallId, output}`, or `tool-output-error {toolCallId,
    errorText}` when the `ToolMessage` has `status == "error"` (how `ToolNode` reports a tool that raised).

    The output is the message's content as it is (a string, or a list of content blocks), so the model sees the
    same result after a round trip; the JS reducer finds the tool part by `toolCallId` across the whole run.
    """
    if message.status == "error":
        return {"type": "tool-output-error", "toolCallId": message.tool_call_id, "errorText": message.text}
    return {"type": "tool-output-available", "toolCallId": message.tool_call_id, "output": message.content}


def error_chunk(error: BaseException | str) -> Chunk:
    """An `error` chunk, which ends the client's stream. An exception is shown as its message (its type name when
    it has none); mask it yourself if its text must not reach the client."""
    text = error if isinstance(error, str) else (str(error) or type(error).__name__)
    return {"type": "error", "errorText": text}


def abort_chunk(reason: str | None = None) -> Chunk:
    """An `abort` chunk, which ends the client's stream as cancelled."""
    return {"type": "abort", "reason": reason} if reason else {"type": "abort"}


def data_chunk(name: str, data: Any, *, id: str | None = None, transient: bool = False) -> Chunk:
    """A custom `data-<name>` chunk. A persistent one becomes a part of the message (replaced in place when a later
    one has the same `id`); a `transient` one reaches live clients only and is never folded into history."""
    if not name:
        raise MessageMappingError("A data chunk needs a name: its type is 'data-<name>'.")
    chunk: Chunk = {"type": f"data-{name}", "data": data}
    if id is not None:
        chunk["id"] = id
    if transient:
        chunk["transient"] = True
    return chunk


def tool_approval_request_chunk(approval_id: str, tool_call_id: str) -> Chunk:
    """Ask the client to approve a tool call; publish it under the codec-message-id of the message holding the
    call. The answer comes back as a `tool-approval-response` input (`ApprovalDecision`)."""
    return {"type": "tool-approval-request", "approvalId": approval_id, "toolCallId": tool_call_id}


def tool_output_denied_chunk(tool_call_id: str) -> Chunk:
    """Mark a tool call as denied (same codec-message-id rule as `tool_approval_request_chunk`)."""
    return {"type": "tool-output-denied", "toolCallId": tool_call_id}


# --------------------------------------------------------------------------------------------------------------------
# UIMessage -> LangChain
# --------------------------------------------------------------------------------------------------------------------


def ui_message_to_langchain(ui_message: Mapping[str, Any]) -> list[BaseMessage]:
    """The LangChain messages one `UIMessage` stands for.

    - `user` -> one `HumanMessage`: text parts joined with newlines, or, when there are files, a list of text and
      v1 data blocks (`image`/`audio`/`video`/`file`, a data URL inlined as `base64`).
    - `system` -> one `SystemMessage` of the joined text.
    - `assistant` -> per step (parts between `step-start`s), an `AIMessage` (content = the concatenated text,
      reasoning in `additional_kwargs["reasoning_content"]`, `tool_calls` from tool parts) followed by one
      `ToolMessage` per finished tool part: `output-available` (status success), `output-error` and
      `output-denied` (status error). Tool parts still `input-streaming` (a cut-off pass) are dropped, since a
      provider rejects a call without complete args; pending ones (input-available, approval-*) stay as calls
      without results. `metadata.usage`/`model`/`finishReason` go to the last `AIMessage`. An assistant message
      with no content at all yields nothing, because providers reject empty assistant turns.

    `data-<name>` parts are kept in `additional_kwargs["data_parts"]`; sources are dropped.
    """
    role, parts = ui_message.get("role"), list(ui_message.get("parts") or [])
    message_id = ui_message.get("id") or None
    if role == "assistant":
        return _assistant_to_langchain(message_id, parts, ui_message.get("metadata"))
    if role == "user":
        content = _user_content(parts)
        return [HumanMessage(content=content, id=message_id, additional_kwargs=_data_kwargs(parts))]
    if role == "system":
        return [SystemMessage(content=_joined_text(parts), id=message_id)]
    raise MessageMappingError(f"UIMessage role {role!r} is not one of user, assistant or system.")


def ui_messages_to_langchain(ui_messages: Sequence[Mapping[str, Any]]) -> list[BaseMessage]:
    """A conversation of `UIMessage`s as a LangChain message list, ready for a prompt or a graph's state."""
    return [message for ui_message in ui_messages for message in ui_message_to_langchain(ui_message)]


def _joined_text(parts: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(p.get("text") or "" for p in parts if p.get("type") == "text")


def _data_kwargs(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    data_parts = [dict(p) for p in parts if str(p.get("type", "")).startswith("data-")]
    return {DATA_PARTS_KEY: data_parts} if data_parts else {}


def _user_content(parts: Sequence[Mapping[str, Any]]) -> str | list[str | dict]:
    if not any(p.get("type") == "file" for p in parts):
        return _joined_text(parts)
    blocks: list[str | dict] = []
    for part in parts:
        if part.get("type") == "text" and part.get("text"):
            blocks.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "file":
            blocks.append(_file_part_to_block(part))
    return blocks


def _steps(parts: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    steps: list[list[Mapping[str, Any]]] = [[]]
    for part in parts:
        if part.get("type") == "step-start":
            if steps[-1]:
                steps.append([])
        else:
            steps[-1].append(part)
    return steps


def _assistant_to_langchain(message_id: str | None, parts: list[Any], metadata: Any) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    last_ai: AIMessage | None = None
    for number, step in enumerate(s for s in _steps(parts) if s):
        step_id = message_id if number == 0 or message_id is None else f"{message_id}-{number}"
        ai, results = _assistant_step(step_id, step)
        if ai is None:
            continue
        out += [ai, *results]
        last_ai = ai
    if last_ai is not None and isinstance(metadata, Mapping):
        _apply_metadata(last_ai, metadata)
    return out


def _assistant_step(step_id: str | None, parts: Sequence[Mapping[str, Any]]) -> tuple[AIMessage | None, list]:
    text, reasoning, files = [], [], []
    tool_calls, invalid_calls, results = [], [], []
    for part in parts:
        kind = str(part.get("type", ""))
        if kind == "text":
            text.append(part.get("text") or "")
        elif kind == "reasoning":
            reasoning.append(part.get("text") or "")
        elif kind == "file":
            files.append(_file_part_to_block(part))
        elif kind == "dynamic-tool" or (kind.startswith("tool-") and "toolCallId" in part):
            _tool_part(part, tool_calls, invalid_calls, results)
    joined = "".join(text)
    if not (joined or reasoning or files or tool_calls or invalid_calls):
        return None, []
    content: str | list[str | dict] = joined
    if files:
        content = ([{"type": "text", "text": joined}] if joined else []) + files
    kwargs = {REASONING_KEY: "".join(reasoning)} if reasoning else {}
    kwargs.update(_data_kwargs(parts))
    ai = AIMessage(
        content=content, id=step_id, tool_calls=tool_calls, invalid_tool_calls=invalid_calls, additional_kwargs=kwargs
    )
    return ai, results


def _tool_part(part: Mapping[str, Any], tool_calls: list, invalid_calls: list, results: list) -> None:
    """Sort one tool part into a tool call (or an invalid one, for input that is not an object) and its result."""
    state, call_id = part.get("state"), part.get("toolCallId")
    if state == "input-streaming":
        return
    name = part.get("toolName") if part.get("type") == "dynamic-tool" else str(part["type"])[len("tool-") :]
    value = part.get("input")
    if value is None and state == "output-error":  # the AI SDK keeps unparseable static-tool input as `rawInput`
        value = part.get("rawInput")
    if value is None or isinstance(value, Mapping):
        tool_calls.append({"type": "tool_call", "id": call_id, "name": name, "args": dict(value or {})})
    else:
        args = value if isinstance(value, str) else json.dumps(value)
        invalid_calls.append(
            {"type": "invalid_tool_call", "id": call_id, "name": name, "args": args, "error": part.get("errorText")}
        )
    if state == "output-available":
        results.append(ToolMessage(content=_output_content(part.get("output")), tool_call_id=call_id, name=name))
    elif state == "output-error":
        results.append(
            ToolMessage(content=part.get("errorText") or "", tool_call_id=call_id, name=name, status="error")
        )
    elif state == "output-denied":
        reason = (part.get("approval") or {}).get("reason")
        text = "The user denied this tool call." + (f" Reason: {reason}" if reason else "")
        results.append(ToolMessage(content=text, tool_call_id=call_id, name=name, status="error"))


def _output_content(output: Any) -> str | list[str | dict]:
    """A tool output as `ToolMessage` content: strings and lists of content blocks as they are, any other JSON
    value serialised (the model reads text)."""
    if isinstance(output, str):
        return output
    if (
        isinstance(output, list)
        and output
        and all(isinstance(b, str) or (isinstance(b, dict) and "type" in b) for b in output)
    ):
        return list(output)
    return json.dumps(output, ensure_ascii=False)


def _apply_metadata(ai: AIMessage, metadata: Mapping[str, Any]) -> None:
    ai.usage_metadata = usage_from_vercel(metadata.get("usage"))
    for source, target in (("model", "model_name"), ("provider", "model_provider"), ("finishReason", "finish_reason")):
        if isinstance(metadata.get(source), str):
            ai.response_metadata[target] = metadata[source]


# --------------------------------------------------------------------------------------------------------------------
# LangChain -> UIMessage
# --------------------------------------------------------------------------------------------------------------------


def langchain_to_ui_message(
    message: BaseMessage, *, message_id: str | None = None, dynamic_tools: bool = False
) -> UIMessage:
    """One LangChain message as a `UIMessage`; the id is `message_id`, else the message's own, else `""`.

    - `HumanMessage` -> the `user` message a JS client sends as a `user-message` input: text parts and file parts
      (data blocks with a URL or inline base64, the latter as a data URL), plus `additional_kwargs["data_parts"]`.
      An empty message still has one empty text part, as the JS codec sends.
    - `SystemMessage` -> a `system` message with one text part.
    - `AIMessage` -> an `assistant` message shaped as `ChunkTranslator` + a fold would produce it: `step-start`,
      reasoning/text/file parts in content order, then tool parts in state `input-available`, and metadata with
      usage, model and finish reason. Use `langchain_to_ui_messages` to fold `ToolMessage` results in.
    """
    ui_id = message_id or message.id or ""
    if isinstance(message, AIMessage):
        return _assistant_ui_message(message, ui_id, dynamic_tools)
    if isinstance(message, HumanMessage | SystemMessage):
        parts = [
            p
            for p in _content_parts(message, allow_files=isinstance(message, HumanMessage))
            if p["type"] != "reasoning"
        ]
        parts += [dict(p) for p in message.additional_kwargs.get(DATA_PARTS_KEY) or []]
        parts = parts or [{"type": "text", "text": ""}]
        return {"id": ui_id, "role": "user" if isinstance(message, HumanMessage) else "system", "parts": parts}
    raise MessageMappingError(
        f"{type(message).__name__} has no UIMessage of its own; use langchain_to_ui_messages to fold tool results."
    )


def langchain_to_ui_messages(messages: Sequence[BaseMessage], *, dynamic_tools: bool = False) -> list[UIMessage]:
    """A LangChain conversation as `UIMessage`s: one per human/system/AI message, each `ToolMessage` folded into the
    tool part it answers (`output-available`, or `output-error` for status error). A result whose call is not in
    an earlier message is dropped: a client has nowhere to show it."""
    out: list[UIMessage] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            _fold_tool_result(out, message)
        else:
            out.append(langchain_to_ui_message(message, dynamic_tools=dynamic_tools))
    return out


def _content_parts(message: BaseMessage, *, allow_files: bool = True) -> list[dict[str, Any]]:
    """Consecutive pieces of one kind merged into one part, as the translator streams them into one block."""
    parts: list[dict[str, Any]] = []
    for kind, value, _ in _content_pieces(message):
        if kind == "file":
            if allow_files:
                parts.append(dict(value))
        elif parts and parts[-1]["type"] == kind:
            parts[-1]["text"] += value
        else:
            parts.append({"type": kind, "text": value})
    return parts


def _assistant_ui_message(message: AIMessage, ui_id: str, dynamic_tools: bool) -> UIMessage:
    parts: list[dict[str, Any]] = [{"type": "step-start"}, *_content_parts(message)]
    for call in [*message.tool_calls, *message.invalid_tool_calls]:
        name = call.get("name") or ""
        part = {"type": "dynamic-tool", "toolName": name} if dynamic_tools else {"type": f"tool-{name}"}
        part.update(toolCallId=call.get("id"), state="input-available", input=call.get("args"))
        if call.get("type") == "invalid_tool_call":  # as the translator's `tool-input-error` leaves it
            part.update(state="output-error", errorText=_input_error_text(name))
        parts.append(part)
    fields = _response_metadata_fields(message.response_metadata)
    has_calls = bool(message.tool_calls or message.invalid_tool_calls)
    reason = map_finish_reason(fields.get("finish_reason"), has_tool_calls=has_calls)
    metadata = _final_metadata({}, fields, message.usage_metadata, reason)
    return {"id": ui_id, "role": "assistant", "metadata": metadata, "parts": parts}


def _fold_tool_result(ui_messages: list[UIMessage], result: ToolMessage) -> None:
    for ui_message in reversed(ui_messages):
        for part in ui_message["parts"]:
            if part.get("toolCallId") == result.tool_call_id and "state" in part:
                part.pop("output", None)
                part.pop("errorText", None)
                if result.status == "error":
                    part.update(state="output-error", errorText=result.text)
                else:
                    part.update(state="output-available", output=result.content)
                return


# --------------------------------------------------------------------------------------------------------------------
# Inputs: what a JS client session publishes, as LangChain objects
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HumanInput:
    """A `user-message` input: the user's turn as a `HumanMessage` (a `SystemMessage` for role `system`), with the
    `UIMessage` it came from, whose id is the client's message id."""

    message: BaseMessage
    ui_message: Mapping[str, Any]


@dataclass(frozen=True)
class RegenerateRequest:
    """A `regenerate` input: replace assistant message `target`, answering the message `parent` again. Both are
    codec-message-ids; on the wire they travel as the transport headers `msg-regenerate` and `parent`."""

    target: str
    parent: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """A client-side tool's result (`tool-result`) or failure (`tool-result-error`) as the `ToolMessage` the graph
    appends; `codec_message_id` is the assistant message holding the call, `output` the raw JSON value (the
    error text for a failure), and `fork_seed` the client's copy of the suspended run's messages, if sent."""

    message: ToolMessage
    codec_message_id: str | None = None
    output: Any = None
    fork_seed: Mapping[str, Any] | None = field(default=None, compare=False)

    def fork_seed_messages(self) -> list[BaseMessage]:
        """The fork seed's messages in LangChain form, oldest first (empty without a seed)."""
        seeds = (self.fork_seed or {}).get("messages") or []
        return ui_messages_to_langchain([seed["message"] for seed in seeds if isinstance(seed.get("message"), dict)])


@dataclass(frozen=True)
class ApprovalDecision:
    """A `tool-approval-response` input: the user's answer to a `tool-approval-request`."""

    tool_call_id: str
    approved: bool
    reason: str | None = None
    codec_message_id: str | None = None

    def to_hitl_decision(self) -> dict[str, Any]:
        """The decision in the shape LangChain's `HumanInTheLoopMiddleware` resumes with (one entry of
        `Command(resume={"decisions": [...]})`): approve, or reject with the reason as the message to the model."""
        if self.approved:
            return {"type": "approve"}
        return {"type": "reject", "message": self.reason} if self.reason else {"type": "reject"}


AgentInput = HumanInput | RegenerateRequest | ToolResult | ApprovalDecision


def input_to_langchain(event: Mapping[str, Any]) -> AgentInput:
    """One decoded JS input (`{kind, ...}` as the wire layer reads it off an `ai-input`) as a LangChain object.

    - `user-message {message: UIMessage}` -> `HumanInput` (`message` is the `HumanMessage`). The wire decoder
      yields one such event per part (one Ably message each); map the message the accumulator merged them into,
      or the user's files and text arrive as separate turns;
    - `regenerate {target, parent}` -> `RegenerateRequest` (the wire carries it only as the `msg-regenerate` and
      `parent` transport headers, so a session builds the event from those);
    - `tool-result {codecMessageId, payload: {toolCallId, output, forkSeed?}}` -> `ToolResult` with a
      success `ToolMessage` (content: a string output as is, other JSON serialised);
    - `tool-result-error {codecMessageId, payload: {toolCallId, message, forkSeed?}}` -> `ToolResult` with an
      error `ToolMessage` whose content is the client's message;
    - `tool-approval-response {codecMessageId, payload: {toolCallId, approved, reason?}}` -> `ApprovalDecision`.
    """
    kind = event.get("kind")
    payload = event.get("payload") or {}
    codec_message_id = event.get("codecMessageId")
    if kind == "user-message":
        ui_message = event.get("message")
        if not isinstance(ui_message, Mapping):
            raise MessageMappingError("A user-message input carries no message.")
        messages = ui_message_to_langchain({**ui_message, "role": ui_message.get("role") or "user"})
        if len(messages) != 1:
            raise MessageMappingError(f"A user-message input must be a user or system message, not {ui_message}.")
        return HumanInput(messages[0], ui_message)
    if kind == "regenerate":
        return RegenerateRequest(str(event.get("target") or ""), event.get("parent") or None)
    tool_call_id = payload.get("toolCallId")
    if kind in ("tool-result", "tool-result-error", "tool-approval-response") and not tool_call_id:
        raise MessageMappingError(f"A {kind} input has no toolCallId.")
    if kind == "tool-result":
        output = payload.get("output")
        message = ToolMessage(content=_output_content(output), tool_call_id=tool_call_id)
        return ToolResult(message, codec_message_id, output, payload.get("forkSeed"))
    if kind == "tool-result-error":
        text = str(payload.get("message") or "")
        message = ToolMessage(content=text, tool_call_id=tool_call_id, status="error")
        return ToolResult(message, codec_message_id, text, payload.get("forkSeed"))
    if kind == "tool-approval-response":
        approved = payload.get("approved") in (True, "true")
        return ApprovalDecision(tool_call_id, approved, payload.get("reason") or None, codec_message_id)
    raise MessageMappingError(f"Input kind {kind!r} is not one the Vercel codec sends.")


def langchain_to_input(value: AgentInput | HumanMessage) -> Input:
    """The inverse of `input_to_langchain`: the well-known input a client (e.g. a Python one) publishes, built with
    the `chunks` factories. A bare `HumanMessage` is sent as a `user-message`."""
    if isinstance(value, HumanMessage):
        return chunks.user_message(langchain_to_ui_message(value))
    if isinstance(value, HumanInput):
        return chunks.user_message(dict(value.ui_message))
    if isinstance(value, RegenerateRequest):
        return chunks.regenerate(value.target, value.parent)
    if isinstance(value, ApprovalDecision):
        codec_id = value.codec_message_id or ""
        event = chunks.tool_approval_response(codec_id, value.tool_call_id, value.approved, value.reason)
    else:
        event = _tool_result_input(value)
    if value.codec_message_id is None:  # absent, never null: the JS reads a missing one back as ''
        del event["codecMessageId"]
    return event


def _tool_result_input(value: ToolResult) -> Input:
    codec_id, call_id = value.codec_message_id or "", value.message.tool_call_id
    seed: Any = dict(value.fork_seed) if value.fork_seed is not None else None
    if value.message.status == "error":
        return chunks.tool_result_error(codec_id, call_id, value.message.text, seed)
    output = value.message.content if value.output is None else value.output
    return chunks.tool_result(codec_id, call_id, output, seed)
