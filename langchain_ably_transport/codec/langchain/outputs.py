"""Outputs (agent -> clients): `ChunkTranslator` turns one LLM pass (a stream of `AIMessageChunk`s) into the
chunks of one assistant message; `tool_output_chunk`, `error_chunk`, `abort_chunk`, `data_chunk` and the approval
helpers cover what happens around it. Pure, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.utils.json import parse_partial_json

from ...errors import MessageMappingError
from ..chunks import Chunk
from ._shared import (
    _content_pieces,
    _final_metadata,
    _input_error_text,
    _response_metadata_fields,
    map_finish_reason,
)

# --------------------------------------------------------------------------------------------------------------------
# Outputs: one LLM pass -> the chunks of one assistant message
# --------------------------------------------------------------------------------------------------------------------


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
        if message.response_metadata:  # most chunks of a stream carry none: only read it when there is some
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
