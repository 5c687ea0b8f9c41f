"""`UIMessageAccumulator`: decoded events folded into Vercel `UIMessage`s, as a JS client's view holds them.

A port of `@ably/ai-transport` 0.8.0's Vercel reducer (`vercel/codec/reducer.ts` and its `fold-*.ts`),
which is what `view.getMessages()` returns in JS, so the same events give the same dicts:

* Messages are keyed by codec-message-id, never by `message.id` (which a `start` chunk may set). A chunk
  without a codec-message-id has nowhere to land and is dropped.
* Text and reasoning parts are `{type, text}`; tool parts are `tool-<toolName>` for a static tool and
  `dynamic-tool` (with `toolName`) for a dynamic one, in the AI SDK's states.
* `tool-output-available`/`-error` find their tool part by `toolCallId` across every message folded here
  (the second pass after an approval has a fresh codec-message-id); `tool-approval-request` and
  `tool-output-denied` only look in their own message.
* The parts of a user message (one wire each) are merged by codec-message-id, in fold order.
* A client tool result, error or approval addresses its assistant by codec-message-id and waits in a
  pending list if that message or part has not arrived yet; a fork's `forkSeed` rebuilds the suspended
  run's messages when the target is absent.

Fold events in canonical order (ascending serial, decode order within a wire), as the JS Tree does; one
accumulator corresponds to one JS projection (a run, or whatever the caller chooses to group).
`text_state=True` adds the AI SDK's `state: "streaming"|"done"` to text and reasoning parts, as
`readUIMessageStream` (useChat) shows them; the JS view does not carry it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .chunks import CodecMessage, UIMessage
from .decoder import DecodedEvent
from .vercel import is_data_type, is_missing, parse_json

_ABSENT: Any = object()


@dataclass
class _ToolTracker:
    part_index: int
    input_text: str = ""


@dataclass
class _Trackers:
    text: dict[str, int] = field(default_factory=dict)
    reasoning: dict[str, int] = field(default_factory=dict)
    tools: dict[str, _ToolTracker] = field(default_factory=dict)


@dataclass
class _Pending:
    """A client tool resolution whose assistant message or tool part has not been folded yet."""

    target: str
    tool_call_id: str
    kind: str
    value: dict[str, Any]


def is_tool_part(part: Mapping[str, Any]) -> bool:
    part_type = part.get("type")
    return (isinstance(part_type, str) and (part_type == "dynamic-tool" or part_type.startswith("tool-"))
            and "toolCallId" in part and "state" in part)


def tool_base(source: Mapping[str, Any]) -> dict[str, Any]:
    """Identity of a new tool part from a chunk: `dynamic-tool` if `dynamic`, else `tool-<toolName>`."""
    if source.get("dynamic"):
        base = {"type": "dynamic-tool", "toolCallId": source.get("toolCallId"), "toolName": source.get("toolName")}
    else:
        base = {"type": f"tool-{source.get('toolName')}", "toolCallId": source.get("toolCallId")}
    return _with(base, title=source.get("title", _ABSENT), providerExecuted=source.get("providerExecuted", _ABSENT))


def tool_identity(part: Mapping[str, Any]) -> dict[str, Any]:
    """Identity of an existing tool part, keeping its representation through a state change."""
    base = {"type": part["type"], "toolCallId": part["toolCallId"]}
    if part["type"] == "dynamic-tool":
        base["toolName"] = part.get("toolName")
    return _with(base, title=part.get("title", _ABSENT), providerExecuted=part.get("providerExecuted", _ABSENT))


def transition_tool_part(part: Mapping[str, Any], chunk: Mapping[str, Any]) -> dict[str, Any]:
    """`transitionToolPart`: a tool part moved by an output, error, denial or approval request."""
    base = tool_identity(part)
    kind = chunk["type"]
    if kind == "tool-output-available":
        return _with(base, state="output-available", input=part.get("input", _ABSENT),
                     output=chunk.get("output", _ABSENT), preliminary=chunk.get("preliminary", _ABSENT))
    if kind == "tool-output-error":
        return _with(base, state="output-error", input=part.get("input", _ABSENT),
                     errorText=chunk.get("errorText", _ABSENT))
    if kind == "tool-output-denied":
        return _with(base, state="output-denied", input=part.get("input", _ABSENT),
                     approval={"id": "", "approved": False})
    return _with(base, state="approval-requested", input=part.get("input", _ABSENT),
                 approval={"id": chunk.get("approvalId")})


def approval_transition(part: Mapping[str, Any], approved: bool, reason: str | None) -> dict[str, Any]:
    """An approval moves the part to `approval-responded` (keeping the approval id); a denial to `output-denied`."""
    if not approved:
        return transition_tool_part(part, {"type": "tool-output-denied", "toolCallId": part["toolCallId"]})
    approval = part.get("approval")
    response: dict[str, Any] = {"id": approval.get("id", "") if isinstance(approval, Mapping) else "",
                                "approved": True}
    if reason is not None:
        response["reason"] = reason
    return _with(tool_identity(part), state="approval-responded", input=part.get("input", _ABSENT), approval=response)


class UIMessageAccumulator:
    """Folds decoded input events and output chunks into UIMessages keyed by codec-message-id."""

    def __init__(self, *, text_state: bool = False) -> None:
        self._entries: list[CodecMessage] = []
        self._by_id: dict[str, CodecMessage] = {}
        self._trackers: dict[str, _Trackers] = {}
        self._pending: list[_Pending] = []
        self._text_state = text_state

    # --- Reading -------------------------------------------------------------------------------------------

    @property
    def entries(self) -> list[CodecMessage]:
        """`{codecMessageId, message}` pairs in the order their messages first appeared (live, not copies)."""
        return list(self._entries)

    @property
    def messages(self) -> list[UIMessage]:
        return [entry["message"] for entry in self._entries]

    def get(self, codec_message_id: str) -> UIMessage | None:
        entry = self._by_id.get(codec_message_id)
        return entry["message"] if entry else None

    def snapshot(self) -> list[CodecMessage]:
        """A deep copy of the entries, safe to keep while folding goes on."""
        return copy.deepcopy(self._entries)

    @property
    def pending_resolutions(self) -> int:
        """Client tool resolutions still waiting for their assistant message or tool part."""
        return len(self._pending)

    # --- Folding -------------------------------------------------------------------------------------------

    def apply(self, event: DecodedEvent) -> None:
        self.fold(event.direction, event.event, event.codec_message_id)

    def apply_all(self, events: Iterable[DecodedEvent]) -> None:
        for event in events:
            self.apply(event)

    def fold(self, direction: str, event: Mapping[str, Any], codec_message_id: str | None) -> None:
        if direction == "input":
            self.fold_input(event, codec_message_id)
        else:
            self.fold_output(event, codec_message_id)

    def fold_input(self, event: Mapping[str, Any], codec_message_id: str | None = None) -> None:
        kind = event.get("kind")
        if kind == "user-message":
            self._fold_user_message(event.get("message") or {}, codec_message_id)
        elif kind in ("tool-result", "tool-result-error", "tool-approval-response"):
            self._fold_resolution(kind, event)
        self._retry_pending()

    def fold_output(self, chunk: Mapping[str, Any], codec_message_id: str | None) -> None:
        if codec_message_id is not None:
            self._fold_chunk(chunk, codec_message_id)
        self._retry_pending()

    def _fold_chunk(self, chunk: Mapping[str, Any], cmid: str) -> None:
        kind = chunk.get("type")
        if not isinstance(kind, str):
            return
        if kind in ("start", "start-step", "finish-step", "finish", "abort", "error", "message-metadata"):
            self._fold_lifecycle(kind, chunk, cmid)
        elif kind.startswith(("text-", "reasoning-")) and kind.rsplit("-", 1)[-1] in ("start", "delta", "end"):
            self._fold_text(kind, chunk, cmid)
        elif kind in ("tool-input-start", "tool-input-delta", "tool-input-available", "tool-input-error"):
            self._fold_tool_input(kind, chunk, cmid)
        elif kind in ("tool-output-available", "tool-output-error", "tool-output-denied", "tool-approval-request"):
            self._fold_tool_output(kind, chunk, cmid)
        elif kind in ("file", "source-url", "source-document"):
            self._fold_content(kind, chunk, cmid)
        elif is_data_type(kind):
            self._fold_data(kind, chunk, cmid)

    # --- Output folds (`fold-lifecycle.ts`, `fold-text.ts`, `fold-tool-*.ts`, `fold-content.ts`, `fold-data.ts`)

    def _fold_lifecycle(self, kind: str, chunk: Mapping[str, Any], cmid: str) -> None:
        if kind == "start":
            message = self._ensure(cmid)
            if "messageId" in chunk:
                message["id"] = chunk["messageId"]
            if "messageMetadata" in chunk:
                message["metadata"] = chunk["messageMetadata"]
        elif kind == "start-step":
            self._ensure(cmid)["parts"].append({"type": "step-start"})
        elif kind == "finish-step":
            trackers = self._trackers.get(cmid)
            if trackers:
                trackers.text.clear()
                trackers.reasoning.clear()
        elif kind in ("finish", "message-metadata") and "messageMetadata" in chunk:
            entry = self._by_id.get(cmid)
            if entry:
                entry["message"]["metadata"] = chunk["messageMetadata"]

    def _fold_text(self, kind: str, chunk: Mapping[str, Any], cmid: str) -> None:
        message, trackers = self._ensure(cmid), self._ensure_trackers(cmid)
        part_type, phase = kind.rsplit("-", 1)
        active = trackers.text if part_type == "text" else trackers.reasoning
        stream_id = chunk.get("id")
        if phase == "start":
            active[stream_id] = len(message["parts"])
            part: dict[str, Any] = {"type": part_type, "text": ""}
            if self._text_state:
                part["state"] = "streaming"
            message["parts"].append(part)
            return
        index = active.get(stream_id)
        if index is None:
            return
        part = message["parts"][index]
        if phase == "delta" and part.get("type") == part_type:
            part["text"] += chunk.get("delta", "")
        elif phase == "end":
            del active[stream_id]
            if self._text_state and part.get("type") == part_type:
                part["state"] = "done"

    def _fold_tool_input(self, kind: str, chunk: Mapping[str, Any], cmid: str) -> None:
        message, trackers = self._ensure(cmid), self._ensure_trackers(cmid)
        tool_call_id = chunk.get("toolCallId")
        parts = message["parts"]
        if kind == "tool-input-start":
            trackers.tools[tool_call_id] = _ToolTracker(len(parts))
            parts.append({**tool_base(chunk), "state": "input-streaming"})
            return
        if kind == "tool-input-delta":
            tracker = trackers.tools.get(tool_call_id)
            if tracker is None:
                return
            tracker.input_text += chunk.get("inputTextDelta", "")
            found = self._tool_part(message, trackers, tool_call_id)
            if found is not None:
                parsed = parse_json(tracker.input_text)
                parts[found] = _with(tool_identity(parts[found]), state="input-streaming",
                                     input=_ABSENT if is_missing(parsed) else parsed)
            return
        found = self._tool_part(message, trackers, tool_call_id)
        if kind == "tool-input-available":
            if found is not None:
                parts[found] = _with(tool_identity(parts[found]), state="input-available",
                                     input=chunk.get("input", _ABSENT))
            return
        fields = {"state": "output-error", "input": chunk.get("input", _ABSENT),
                  "errorText": chunk.get("errorText", _ABSENT)}
        if found is not None:
            parts[found] = _with(tool_identity(parts[found]), **fields)
        else:
            trackers.tools[tool_call_id] = _ToolTracker(len(parts))
            parts.append(_with(tool_base(chunk), **fields))

    def _fold_tool_output(self, kind: str, chunk: Mapping[str, Any], cmid: str) -> None:
        tool_call_id = chunk.get("toolCallId")
        if kind in ("tool-output-available", "tool-output-error"):
            owner = self._find_tool_owner(tool_call_id)  # across every message: see the module docstring
            if owner is not None:
                message, index = owner
                message["parts"][index] = transition_tool_part(message["parts"][index], chunk)
            return
        message, trackers = self._ensure(cmid), self._ensure_trackers(cmid)
        found = self._tool_part(message, trackers, tool_call_id)
        if found is not None:
            message["parts"][found] = transition_tool_part(message["parts"][found], chunk)

    def _fold_content(self, kind: str, chunk: Mapping[str, Any], cmid: str) -> None:
        if kind == "file":
            keys: tuple[str, ...] = ("mediaType", "url")
        elif kind == "source-url":
            keys = ("sourceId", "url", "title")
        else:
            keys = ("sourceId", "mediaType", "title", "filename")
        part = _with({"type": kind}, **{key: chunk.get(key, _ABSENT) for key in keys})
        self._ensure(cmid)["parts"].append(part)

    def _fold_data(self, kind: str, chunk: Mapping[str, Any], cmid: str) -> None:
        if chunk.get("transient"):
            return  # transient data is for the live stream only
        parts = self._ensure(cmid)["parts"]
        part = _with({"type": kind}, id=chunk.get("id", _ABSENT), data=chunk.get("data", _ABSENT))
        if chunk.get("id") is not None:
            for index, existing in enumerate(parts):
                if existing.get("type") == kind and "id" in existing and existing["id"] == chunk["id"]:
                    parts[index] = part
                    return
        parts.append(part)

    # --- Input folds (`fold-input.ts`) ---------------------------------------------------------------------

    def _fold_user_message(self, message: Mapping[str, Any], cmid: str | None) -> None:
        copied: UIMessage = {**message, "parts": list(message.get("parts") or [])}  # type: ignore[typeddict-item]
        key = cmid if cmid is not None else copied.get("id")
        existing = self._by_id.get(key) if cmid is not None else None
        if existing is not None:
            existing["message"]["parts"].extend(copied["parts"])
        else:
            self._push(str(key), copied)

    def _fold_resolution(self, kind: str, event: Mapping[str, Any]) -> None:
        payload = event.get("payload") or {}
        target = event.get("codecMessageId")
        tool_call_id = payload.get("toolCallId")
        if not isinstance(target, str):
            return
        if kind != "tool-approval-response":
            self._seed_fork(target, payload.get("forkSeed"))
        resolution = _Pending(target, tool_call_id, kind, dict(payload))
        if not self._resolve(resolution):
            self._pending.append(resolution)

    def _seed_fork(self, target: str, seed: Any) -> None:
        """Rebuild the suspended run's messages from a fork's seed, unless the target is already here."""
        if not isinstance(seed, Mapping) or target in self._by_id:
            return
        for entry in seed.get("messages") or []:
            cmid, message = entry.get("codecMessageId"), entry.get("message") or {}
            if cmid in self._by_id:
                continue
            parts = list(message.get("parts") or [])
            self._push(cmid, {**message, "parts": parts})
            trackers = self._ensure_trackers(cmid)
            for index, part in enumerate(parts):
                if isinstance(part, Mapping) and is_tool_part(part):
                    trackers.tools[part["toolCallId"]] = _ToolTracker(index)

    def _resolve(self, pending: _Pending) -> bool:
        entry = self._by_id.get(pending.target)
        if entry is None:
            return False
        message = entry["message"]
        found = self._tool_part(message, self._ensure_trackers(pending.target), pending.tool_call_id)
        if found is None:
            return False
        part, value = message["parts"][found], pending.value
        if pending.kind == "tool-result":
            chunk = _with({"type": "tool-output-available", "toolCallId": pending.tool_call_id},
                          output=value.get("output", _ABSENT))
            message["parts"][found] = transition_tool_part(part, chunk)
        elif pending.kind == "tool-result-error":
            message["parts"][found] = transition_tool_part(
                part, {"type": "tool-output-error", "errorText": value.get("message", _ABSENT)})
        else:
            message["parts"][found] = approval_transition(part, bool(value.get("approved")), value.get("reason"))
        return True

    def _retry_pending(self) -> None:
        if self._pending:
            self._pending = [pending for pending in self._pending if not self._resolve(pending)]

    # --- State helpers -------------------------------------------------------------------------------------

    def _push(self, cmid: str, message: Any) -> None:
        entry: CodecMessage = {"codecMessageId": cmid, "message": message}
        self._entries.append(entry)
        self._by_id.setdefault(cmid, entry)

    def _ensure(self, cmid: str) -> dict[str, Any]:
        entry = self._by_id.get(cmid)
        if entry is None:
            self._push(cmid, {"id": cmid, "role": "assistant", "parts": []})
            entry = self._by_id[cmid]
        return entry["message"]  # type: ignore[return-value]

    def _ensure_trackers(self, cmid: str) -> _Trackers:
        return self._trackers.setdefault(cmid, _Trackers())

    def _tool_part(self, message: Mapping[str, Any], trackers: _Trackers, tool_call_id: Any) -> int | None:
        tracker = trackers.tools.get(tool_call_id)
        if tracker is None or tracker.part_index >= len(message["parts"]):
            return None
        return tracker.part_index if is_tool_part(message["parts"][tracker.part_index]) else None

    def _find_tool_owner(self, tool_call_id: Any) -> tuple[dict[str, Any], int] | None:
        for entry in self._entries:
            trackers = self._trackers.get(entry["codecMessageId"])
            if trackers is None:
                continue
            found = self._tool_part(entry["message"], trackers, tool_call_id)
            if found is not None:
                return entry["message"], found  # type: ignore[return-value]
        return None


def _with(base: dict[str, Any], **values: Any) -> dict[str, Any]:
    """`base` plus each value that is not absent (JSON drops undefined keys; None is JSON null and stays)."""
    return {**base, **{k: v for k, v in values.items() if v is not _ABSENT}}

