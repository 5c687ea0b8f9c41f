"""Whole messages (history): `ui_message_to_langchain` and `langchain_to_ui_message` map them both ways, so an
agent can rebuild its prompt from what the accumulator holds. Pure, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from ...errors import MessageMappingError
from ._shared import (
    REASONING_KEY,
    _content_pieces,
    _final_metadata,
    _input_error_text,
    _output_content,
    _response_metadata_fields,
    map_finish_reason,
    usage_from_vercel,
)

UIMessage = dict[str, Any]
"""A `UIMessage` as a plain dict (`chunks.UIMessage` describes its keys)."""

DATA_PARTS_KEY = "data_parts"
"""`additional_kwargs` key holding a message's `data-<name>` parts, which have no LangChain content equivalent."""


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
