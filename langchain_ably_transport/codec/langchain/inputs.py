"""Inputs (clients -> agent): what a JS client session publishes, as LangChain objects. `input_to_langchain` maps
the well-known inputs the wire decoder yields (`vercel.decode_input`) to them; `langchain_to_input` is its inverse.
Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

from ...errors import MessageMappingError
from .. import chunks
from ..chunks import Input
from ._shared import _output_content
from .messages import langchain_to_ui_message, ui_message_to_langchain, ui_messages_to_langchain


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
