"""The Vercel AI SDK's JSON shapes as plain dicts: `UIMessageChunk`s, `UIMessage`s, and the codec's inputs.

Chunks and messages stay plain dicts, key for key what the AI SDK (v6) and `@ably/ai-transport` put in
JSON, so they can be compared with what a JS client holds and handed to any JSON serialiser. The
TypedDicts are hints only. An optional key the AI SDK leaves `undefined` is *absent* here, never None:
None would serialise as `null`, which JS treats as a value.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

JSONValue = Any
ProviderMetadata = dict[str, dict[str, JSONValue]]
FINISH_REASONS = ("stop", "length", "content-filter", "tool-calls", "error", "other")
FinishReason = Literal["stop", "length", "content-filter", "tool-calls", "error", "other"]

# --- UIMessageChunk (`ai` v6 `ui-message-chunks.ts`) ---------------------------------------------------------


class TextStartChunk(TypedDict):
    type: Literal["text-start", "reasoning-start"]
    id: str
    providerMetadata: NotRequired[ProviderMetadata]


class TextDeltaChunk(TypedDict):
    type: Literal["text-delta", "reasoning-delta"]
    id: str
    delta: str
    providerMetadata: NotRequired[ProviderMetadata]


class TextEndChunk(TypedDict):
    type: Literal["text-end", "reasoning-end"]
    id: str
    providerMetadata: NotRequired[ProviderMetadata]


class ToolInputStartChunk(TypedDict):
    type: Literal["tool-input-start"]
    toolCallId: str
    toolName: str
    dynamic: NotRequired[bool]
    title: NotRequired[str]
    providerExecuted: NotRequired[bool]
    providerMetadata: NotRequired[ProviderMetadata]


class ToolInputDeltaChunk(TypedDict):
    type: Literal["tool-input-delta"]
    toolCallId: str
    inputTextDelta: str


class ToolInputAvailableChunk(TypedDict):
    type: Literal["tool-input-available"]
    toolCallId: str
    toolName: str
    input: NotRequired[JSONValue]
    dynamic: NotRequired[bool]
    title: NotRequired[str]
    providerExecuted: NotRequired[bool]
    providerMetadata: NotRequired[ProviderMetadata]


class ToolInputErrorChunk(TypedDict):
    type: Literal["tool-input-error"]
    toolCallId: str
    toolName: str
    input: NotRequired[JSONValue]
    errorText: str
    dynamic: NotRequired[bool]
    title: NotRequired[str]
    providerExecuted: NotRequired[bool]
    providerMetadata: NotRequired[ProviderMetadata]


class ToolOutputAvailableChunk(TypedDict):
    type: Literal["tool-output-available"]
    toolCallId: str
    output: NotRequired[JSONValue]
    dynamic: NotRequired[bool]
    providerExecuted: NotRequired[bool]
    preliminary: NotRequired[bool]


class ToolOutputErrorChunk(TypedDict):
    type: Literal["tool-output-error"]
    toolCallId: str
    errorText: str
    dynamic: NotRequired[bool]
    providerExecuted: NotRequired[bool]


class ToolApprovalRequestChunk(TypedDict):
    type: Literal["tool-approval-request"]
    approvalId: str
    toolCallId: str


class ToolOutputDeniedChunk(TypedDict):
    type: Literal["tool-output-denied"]
    toolCallId: str


class StartChunk(TypedDict):
    type: Literal["start"]
    messageId: NotRequired[str]
    messageMetadata: NotRequired[JSONValue]


class StepChunk(TypedDict):
    type: Literal["start-step", "finish-step"]


class FinishChunk(TypedDict):
    type: Literal["finish"]
    finishReason: NotRequired[FinishReason]
    messageMetadata: NotRequired[JSONValue]


class MessageMetadataChunk(TypedDict):
    type: Literal["message-metadata"]
    messageMetadata: JSONValue


class ErrorChunk(TypedDict):
    type: Literal["error"]
    errorText: str


class AbortChunk(TypedDict):
    type: Literal["abort"]
    reason: NotRequired[str]


class FileChunk(TypedDict):
    type: Literal["file"]
    url: str
    mediaType: str
    providerMetadata: NotRequired[ProviderMetadata]


class SourceUrlChunk(TypedDict):
    type: Literal["source-url"]
    sourceId: str
    url: str
    title: NotRequired[str]
    providerMetadata: NotRequired[ProviderMetadata]


class SourceDocumentChunk(TypedDict):
    type: Literal["source-document"]
    sourceId: str
    mediaType: str
    title: str
    filename: NotRequired[str]
    providerMetadata: NotRequired[ProviderMetadata]


class DataChunk(TypedDict):
    """`data-<name>`; `type` is the concrete name, e.g. `data-weather`."""

    type: str
    data: JSONValue
    id: NotRequired[str]
    transient: NotRequired[bool]


UIMessageChunk = (
    TextStartChunk | TextDeltaChunk | TextEndChunk | ToolInputStartChunk | ToolInputDeltaChunk
    | ToolInputAvailableChunk | ToolInputErrorChunk | ToolOutputAvailableChunk | ToolOutputErrorChunk
    | ToolApprovalRequestChunk | ToolOutputDeniedChunk | StartChunk | StepChunk | FinishChunk
    | MessageMetadataChunk | ErrorChunk | AbortChunk | FileChunk | SourceUrlChunk | SourceDocumentChunk | DataChunk
)
Chunk = dict[str, Any]
"""What the codec functions take and return: a UIMessageChunk as a plain dict."""

# --- UIMessage (`ai` v6 `ui-messages.ts`, as `@ably/ai-transport`'s Vercel reducer builds it) ---------------

ToolState = Literal[
    "input-streaming", "input-available", "approval-requested", "approval-responded", "output-available",
    "output-error", "output-denied",
]


class TextPart(TypedDict):
    type: Literal["text", "reasoning"]
    text: str
    state: NotRequired[Literal["streaming", "done"]]


class StepStartPart(TypedDict):
    type: Literal["step-start"]


class ToolApproval(TypedDict):
    id: str
    approved: NotRequired[bool]
    reason: NotRequired[str]


class ToolPart(TypedDict):
    """`tool-<toolName>` for a static tool (no `toolName` key), `dynamic-tool` (with `toolName`) for a dynamic one."""

    type: str
    toolCallId: str
    state: ToolState
    toolName: NotRequired[str]
    title: NotRequired[str]
    providerExecuted: NotRequired[bool]
    input: NotRequired[JSONValue]
    output: NotRequired[JSONValue]
    errorText: NotRequired[str]
    preliminary: NotRequired[bool]
    approval: NotRequired[ToolApproval]


class FilePart(TypedDict):
    type: Literal["file"]
    mediaType: str
    url: str


class SourceUrlPart(TypedDict):
    type: Literal["source-url"]
    sourceId: str
    url: str
    title: NotRequired[str]


class SourceDocumentPart(TypedDict):
    type: Literal["source-document"]
    sourceId: str
    mediaType: str
    title: str
    filename: NotRequired[str]


class DataPart(TypedDict):
    type: str
    data: NotRequired[JSONValue]
    id: NotRequired[str]


UIMessagePart = TextPart | StepStartPart | ToolPart | FilePart | SourceUrlPart | SourceDocumentPart | DataPart


class UIMessage(TypedDict):
    """A message as a JS client's view holds it: id, role, ordered parts, optional metadata."""

    id: str
    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]]
    metadata: NotRequired[JSONValue]


class CodecMessage(TypedDict):
    """A UIMessage paired with the codec-message-id it is correlated by (`message.id` is never the key)."""

    codecMessageId: str
    message: UIMessage


# --- Inputs (`core/codec/well-known-inputs.ts`, Vercel payloads in `vercel/codec/events.ts`) --------------


class ForkSeed(TypedDict):
    """The suspended run's messages under fresh codec-message-ids, carried by a tool-result fork."""

    messages: list[CodecMessage]


class UserMessageInput(TypedDict):
    kind: Literal["user-message"]
    message: UIMessage


class RegenerateInput(TypedDict):
    kind: Literal["regenerate"]
    target: str
    parent: NotRequired[str]


class ToolResultPayload(TypedDict):
    toolCallId: str
    output: NotRequired[JSONValue]
    forkSeed: NotRequired[ForkSeed]


class ToolResultErrorPayload(TypedDict):
    toolCallId: str
    message: str
    forkSeed: NotRequired[ForkSeed]


class ToolApprovalResponsePayload(TypedDict):
    toolCallId: str
    approved: bool
    reason: NotRequired[str]


class ToolResultInput(TypedDict):
    kind: Literal["tool-result"]
    codecMessageId: str
    payload: ToolResultPayload


class ToolResultErrorInput(TypedDict):
    kind: Literal["tool-result-error"]
    codecMessageId: str
    payload: ToolResultErrorPayload


class ToolApprovalResponseInput(TypedDict):
    kind: Literal["tool-approval-response"]
    codecMessageId: str
    payload: ToolApprovalResponsePayload


InputEvent = (
    UserMessageInput | RegenerateInput | ToolResultInput | ToolResultErrorInput | ToolApprovalResponseInput
)
Input = dict[str, Any]
"""What the codec functions take and return: an input event as a plain dict."""


def user_message(message: UIMessage | dict[str, Any]) -> Input:
    """`codec.createUserMessage(message)`; the message's `role` becomes the transport `role`."""
    return {"kind": "user-message", "message": message}


def regenerate(target: str, parent: str | None = None) -> Input:
    """`codec.createRegenerate(target, parent)`: wire-only; the session writes `msg-regenerate`/`parent`."""
    event: Input = {"kind": "regenerate", "target": target}
    if parent is not None:
        event["parent"] = parent
    return event


def tool_result(codec_message_id: str, tool_call_id: str, output: Any, fork_seed: ForkSeed | None = None) -> Input:
    """A client tool's result for the assistant message `codec_message_id` holding the call."""
    payload: dict[str, Any] = {"toolCallId": tool_call_id, "output": output}
    if fork_seed is not None:
        payload["forkSeed"] = fork_seed
    return {"kind": "tool-result", "codecMessageId": codec_message_id, "payload": payload}


def tool_result_error(
    codec_message_id: str, tool_call_id: str, message: str, fork_seed: ForkSeed | None = None
) -> Input:
    """A client tool's failure, for the assistant message `codec_message_id` that called it."""
    payload: dict[str, Any] = {"toolCallId": tool_call_id, "message": message}
    if fork_seed is not None:
        payload["forkSeed"] = fork_seed
    return {"kind": "tool-result-error", "codecMessageId": codec_message_id, "payload": payload}


def tool_approval_response(
    codec_message_id: str, tool_call_id: str, approved: bool, reason: str | None = None
) -> Input:
    """The user's decision on a `tool-approval-request` of the assistant message `codec_message_id`."""
    payload: dict[str, Any] = {"toolCallId": tool_call_id, "approved": approved}
    if reason is not None:
        payload["reason"] = reason
    return {"kind": "tool-approval-response", "codecMessageId": codec_message_id, "payload": payload}
