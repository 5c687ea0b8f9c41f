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

One module per concern: `outputs`, `messages` (history) and `inputs`; `_shared` holds what more than one of them
needs (the mapping error, message metadata both ways, reading LangChain content). Import from here, not from the
modules.
"""

from ._shared import REASONING_KEY, map_finish_reason, usage_from_vercel, usage_to_vercel
from .inputs import (
    AgentInput,
    ApprovalDecision,
    HumanInput,
    RegenerateRequest,
    ToolResult,
    input_to_langchain,
    langchain_to_input,
)
from .messages import (
    DATA_PARTS_KEY,
    UIMessage,
    langchain_to_ui_message,
    langchain_to_ui_messages,
    ui_message_to_langchain,
    ui_messages_to_langchain,
)
from .outputs import (
    ChunkTranslator,
    abort_chunk,
    data_chunk,
    error_chunk,
    tool_approval_request_chunk,
    tool_output_chunk,
    tool_output_denied_chunk,
    translate_message,
)

__all__ = [
    "DATA_PARTS_KEY",
    "REASONING_KEY",
    "AgentInput",
    "ApprovalDecision",
    "ChunkTranslator",
    "HumanInput",
    "RegenerateRequest",
    "ToolResult",
    "UIMessage",
    "abort_chunk",
    "data_chunk",
    "error_chunk",
    "input_to_langchain",
    "langchain_to_input",
    "langchain_to_ui_message",
    "langchain_to_ui_messages",
    "map_finish_reason",
    "tool_approval_request_chunk",
    "tool_output_chunk",
    "tool_output_denied_chunk",
    "translate_message",
    "ui_message_to_langchain",
    "ui_messages_to_langchain",
    "usage_from_vercel",
    "usage_to_vercel",
]
