"""What more than one side of the LangChain mapping needs: the mapping error, the finish reason, usage and
model a message's metadata carries (both ways), and LangChain content read as text, reasoning and file parts.
Pure, no I/O."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from langchain_core.messages.ai import UsageMetadata

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
    """The inverse of `usage_to_vercel`; also reads usage a JS agent wrote (AI SDK 5 flat or 6 nested details).

    It comes off the wire, so counts that are not integers, and detail objects that are not objects, are left out.
    """
    if not isinstance(usage, Mapping):
        return None
    raw = usage.get("raw")
    if isinstance(raw, Mapping) and all(_count(raw.get(key)) is not None for key in _USAGE_KEYS):
        # Ours (a JS agent's `raw` is its provider's shape, e.g. Anthropic's, which has no `total_tokens`).
        details = {key: raw[key] for key in _USAGE_DETAIL_KEYS if isinstance(raw.get(key), Mapping)}
        return UsageMetadata(**{key: raw[key] for key in _USAGE_KEYS}, **details)
    input_tokens, output_tokens, total = (_count(usage.get(k)) for k in ("inputTokens", "outputTokens", "totalTokens"))
    if input_tokens is None and output_tokens is None and total is None:
        return None
    result = UsageMetadata(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        total_tokens=total or (input_tokens or 0) + (output_tokens or 0),
    )
    inputs, outputs = _object(usage.get("inputTokenDetails")), _object(usage.get("outputTokenDetails"))
    read = _count(inputs.get("cacheReadTokens", usage.get("cachedInputTokens")))
    write = _count(inputs.get("cacheWriteTokens"))
    reasoning = _count(outputs.get("reasoningTokens", usage.get("reasoningTokens")))
    if read is not None or write is not None:
        result["input_token_details"] = {
            key: value for key, value in (("cache_read", read), ("cache_creation", write)) if value is not None
        }  # type: ignore[typeddict-item]
    if reasoning is not None:
        result["output_token_details"] = {"reasoning": reasoning}
    return result


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


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


# --------------------------------------------------------------------------------------------------------------------
# Tool call errors and tool outputs, worded the same in every direction
# --------------------------------------------------------------------------------------------------------------------


def _input_error_text(tool_name: str | None) -> str:
    return "Tool call arguments are not a JSON object" if tool_name else "Tool call has no tool name"


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
