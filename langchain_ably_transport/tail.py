"""`langchain-ably-transport tail SESSION`: a session in the terminal, from its history and then live.

Everything shown is first a *record*, a JSON-able dict with a `type`, made by pure functions from the
conversation tree (history) or from what the session folds (live); `--json` prints the records one per line and
`TextRenderer` turns them into terminal text. Only `tail()` does I/O.

| type | fields | when |
| --- | --- | --- |
| `message` | codecMessageId, runId, role, agent, text, message (the UIMessage) | history; a user input live |
| `run` | runId, status, event (live: started/resumed/suspended/ended), reason, error | history; lifecycle live |
| `delta` | codecMessageId, runId, agent, kind (text/reasoning), delta | live streamed text |
| `tool-call` / `tool-result` | codecMessageId, runId, toolCallId, toolName, input / output or errorText | live |
| `task` | codecMessageId, runId, id, node, namespace, status, agent | live `data-task` parts |
| `tool-approval` | codecMessageId, runId, toolCallId, toolName, approved, reason | live approval answer |
| `message-end` | codecMessageId, runId, reason | live: a streamed message finished or was aborted |
| `error` | codecMessageId, runId, errorText | live `error` chunk |
| `cancel` | runId, inputCodecMessageId | live `ai-cancel` |
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

from .codec import DecodedEvent
from .codec.accumulator import is_tool_part
from .connection import connect
from .errors import AblyTransportError
from .session.client import ClientSession
from .session.core import node_messages
from .session.tree import Node
from .wire import names
from .wire.envelope import WireMessage
from .wire.headers import parse_run_lifecycle

Record = dict[str, Any]

TASK_PART = "data-task"
_LIFECYCLE_EVENT = {"start": "started", "resume": "resumed", "suspend": "suspended", "end": "ended"}
_BRIEF = 80

# --- pure: UIMessages and parts -----------------------------------------------------------------------------


def message_text(message: Mapping[str, Any]) -> str:
    return "".join(part.get("text", "") for part in message.get("parts") or [] if part.get("type") == "text")


def message_agent(message: Mapping[str, Any]) -> str | None:
    """The sub-agent a message belongs to (`metadata.agent`, set by `serve_graph`), None for the main agent."""
    metadata = message.get("metadata")
    agent = metadata.get("agent") if isinstance(metadata, Mapping) else None
    return str(agent) if agent else None


def brief(value: Any, limit: int = _BRIEF) -> str:
    """A one-line rendering of a tool input or output, cut at `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_name(part: Mapping[str, Any]) -> str:
    part_type = str(part.get("type", ""))
    return str(part.get("toolName") or part_type.removeprefix("tool-"))


def format_tool(name: str, tool_input: Any = None, *, output: Any = None, error: str | None = None,
                state: str | None = None) -> str:
    """`tool weather({"city": "Paris"}) → sunny`; the state when there is no outcome yet."""
    line = f"  tool {name}({'' if tool_input is None else brief(tool_input)})"
    if error is not None:
        return f"{line} ✗ {brief(error)}"
    if output is not None:
        return f"{line} → {brief(output)}"
    return f"{line} [{state}]" if state and state != "input-available" else line


def format_tool_part(part: Mapping[str, Any]) -> str:
    state = part.get("state")
    if state == "output-denied":
        return format_tool(tool_name(part), part.get("input"), error="denied")
    return format_tool(tool_name(part), part.get("input"), output=part.get("output"), error=part.get("errorText"),
                       state=str(state) if state else None)


def format_task(data: Mapping[str, Any]) -> str:
    """A graph task as one line: `  task researcher/search done` (namespace segments without their task ids)."""
    path = [str(segment).split(":", 1)[0] for segment in data.get("namespace") or []]
    agent = data.get("agent")
    label = "/".join([*path, str(data.get("node"))])
    suffix = f" [{agent}]" if agent and agent not in path else ""
    return f"  task {label} {data.get('status')}{suffix}"


def format_message(message: Mapping[str, Any]) -> list[str]:
    """A UIMessage as terminal lines: `role [agent]: text`, then its tool calls and graph tasks, one each."""
    agent = message_agent(message)
    lines = [f"{message.get('role')}{f' [{agent}]' if agent else ''}: {message_text(message)}"]
    for part in message.get("parts") or []:
        if is_tool_part(part):
            lines.append(format_tool_part(part))
        elif part.get("type") == TASK_PART and isinstance(part.get("data"), Mapping):
            lines.append(format_task(part["data"]))
    return lines


def format_run(record: Mapping[str, Any]) -> str:
    """`run <id> complete`, `run <id> ended: error: boom (code 50000)`, `run <id> suspended`."""
    head = f"run {record['runId']}"
    event = record.get("event")
    if event == "ended":
        head += f" ended: {record.get('reason') or 'complete'}"
    elif event:
        head += f" {event}"
    else:
        head += f" {record.get('status')}"
    error = record.get("error")
    if error:
        head += f": {error['message']} (code {error['code']})"
    return head


# --- pure: records ------------------------------------------------------------------------------------------


def message_record(entry: Mapping[str, Any], run_id: str | None = None) -> Record:
    message = entry["message"]
    return {"type": "message", "codecMessageId": entry["codecMessageId"], "runId": run_id,
            "role": message.get("role"), "agent": message_agent(message), "text": message_text(message),
            "message": message}


def run_record(node: Node) -> Record:
    record: Record = {"type": "run", "runId": node.key, "status": str(node.status)}
    if node.end_reason:
        record["reason"] = node.end_reason
    if node.error is not None:
        record["error"] = {"message": node.error.message, "code": node.error.code}
    return record


def history_records(chain: Iterable[Node]) -> list[Record]:
    """The selected branch: every message, and after a run's messages the run's state."""
    records: list[Record] = []
    for node in chain:
        run_id = node.key if node.kind == "run" else None
        records.extend(message_record(entry, run_id) for entry in node_messages(node))
        if node.kind == "run":
            records.append(run_record(node))
    return records


class LiveRecords:
    """Turns each live message and its decoded events into records. Pure: it only remembers, per codec message,
    the agent it speaks for and, per tool call, the tool's name (both told once, at the start)."""

    def __init__(self) -> None:
        self._agents: dict[str, str | None] = {}
        self._tools: dict[str, str] = {}

    def remember(self, records: Iterable[Record]) -> None:
        """Learn agents and tool names from history, for streams that continue live."""
        for record in records:
            if record["type"] != "message":
                continue
            self._agents[record["codecMessageId"]] = record["agent"]
            for part in record["message"].get("parts") or []:
                if is_tool_part(part):
                    self._tools[part["toolCallId"]] = tool_name(part)

    def feed(self, wire: WireMessage, events: Iterable[DecodedEvent]) -> list[Record]:
        if wire.name in names.RUN_LIFECYCLE_NAMES:
            return self._lifecycle(wire)
        if wire.name == names.CANCEL:
            return [{"type": "cancel", "runId": wire.transport.get(names.HEADER_RUN_ID),
                     "inputCodecMessageId": wire.transport.get(names.HEADER_INPUT_CODEC_MESSAGE_ID)}]
        records: list[Record] = []
        for event in events:
            if event.direction == "input":
                records.extend(self._input(event))
            else:
                records.extend(self._output(event))
        return records

    def _lifecycle(self, wire: WireMessage) -> list[Record]:
        event = parse_run_lifecycle(wire.name, wire.transport)
        if event is None:
            return []
        record: Record = {"type": "run", "runId": event.run_id, "event": _LIFECYCLE_EVENT[event.type]}
        if event.type == "end":
            record["reason"] = event.reason or names.RunEndReason.COMPLETE.value
            if event.error is not None and record["reason"] == names.RunEndReason.ERROR:
                record["error"] = {"message": event.error.message, "code": event.error.code}
        return [record]

    def _input(self, event: DecodedEvent) -> list[Record]:
        data = event.event
        kind = data.get("kind")
        if kind == "user-message" and isinstance(data.get("message"), Mapping):
            entry = {"codecMessageId": event.codec_message_id or data["message"].get("id"), "message": data["message"]}
            return [message_record(entry, event.run_id)]
        payload = data.get("payload") or {}
        call_id = payload.get("toolCallId")
        base = {"type": "tool-result", "codecMessageId": data.get("codecMessageId"), "runId": event.run_id,
                "toolCallId": call_id, "toolName": self._tools.get(call_id or "")}
        if kind == "tool-result":
            return [{**base, "output": payload.get("output")}]
        if kind == "tool-result-error":
            return [{**base, "errorText": payload.get("message")}]
        if kind == "tool-approval-response":
            return [{**base, "type": "tool-approval", "approved": payload.get("approved"),
                     "reason": payload.get("reason")}]
        return []

    def _output(self, event: DecodedEvent) -> list[Record]:
        chunk, cmid = event.event, event.codec_message_id
        kind = chunk.get("type")
        where = {"codecMessageId": cmid, "runId": event.run_id}
        if kind == "start":
            metadata = chunk.get("messageMetadata")
            agent = metadata.get("agent") if isinstance(metadata, Mapping) else None
            self._agents[cmid or ""] = str(agent) if agent else None
            return []
        if kind in ("text-delta", "reasoning-delta"):
            return [{"type": "delta", **where, "agent": self._agents.get(cmid or ""),
                     "kind": kind.removesuffix("-delta"), "delta": chunk.get("delta", "")}]
        if kind in ("tool-input-available", "tool-input-error"):
            self._tools[chunk.get("toolCallId", "")] = chunk.get("toolName", "")
            record = {"type": "tool-call", **where, "toolCallId": chunk.get("toolCallId"),
                      "toolName": chunk.get("toolName"), "input": chunk.get("input")}
            return [{**record, "errorText": chunk["errorText"]} if "errorText" in chunk else record]
        if kind in ("tool-output-available", "tool-output-error", "tool-output-denied"):
            call_id = chunk.get("toolCallId", "")
            record = {"type": "tool-result", **where, "toolCallId": call_id, "toolName": self._tools.get(call_id)}
            if kind == "tool-output-available":
                return [{**record, "output": chunk.get("output")}]
            return [{**record, "errorText": chunk.get("errorText", "denied")}]
        if kind == TASK_PART and isinstance(chunk.get("data"), Mapping):
            return [{"type": "task", **where, "id": chunk.get("id"), **chunk["data"]}]
        if kind in ("finish", "abort"):
            return [{"type": "message-end", **where,
                     "reason": chunk.get("finishReason") if kind == "finish" else "aborted"}]
        if kind == "error":
            return [{"type": "error", **where, "errorText": chunk.get("errorText")}]
        return []


class TextRenderer:
    """Records as terminal text. Streamed text stays on the line it began (`assistant: Hel` `lo`) until something
    else is shown; a delta of another message, interleaved, starts a line of its own under its own label."""

    def __init__(self) -> None:
        self._open: str | None = None

    def render(self, record: Mapping[str, Any]) -> str:
        kind = record["type"]
        if kind == "delta":
            if record["kind"] != "text":
                return ""
            if self._open == record["codecMessageId"]:
                return record["delta"]
            agent = record.get("agent")
            prefix = self._close() + f"assistant{f' [{agent}]' if agent else ''}: "
            self._open = record["codecMessageId"]
            return prefix + record["delta"]
        if kind == "message-end":
            return self._close() if self._open == record["codecMessageId"] else ""
        lines = self._lines(record)
        return self._close() + "".join(line + "\n" for line in lines) if lines else ""

    def _close(self) -> str:
        opened, self._open = self._open, None
        return "\n" if opened is not None else ""

    def _lines(self, record: Mapping[str, Any]) -> list[str]:
        kind = record["type"]
        if kind == "message":
            return format_message(record["message"])
        if kind == "run":
            return [format_run(record)]
        if kind == "tool-call":
            return [format_tool(record.get("toolName") or "?", record.get("input"), error=record.get("errorText"))]
        if kind == "tool-result":
            return [format_tool(record.get("toolName") or "?", output=record.get("output"),
                                error=record.get("errorText"))]
        if kind == "tool-approval":
            verdict = "approved" if record.get("approved") else f"denied ({record.get('reason') or 'no reason'})"
            return [f"  tool {record.get('toolName') or '?'} {verdict}"]
        if kind == "task":
            return [format_task(record)]
        if kind == "cancel":
            return [f"cancel requested for run {record.get('runId') or record.get('inputCodecMessageId')}"]
        if kind == "error":
            return [f"  error: {record.get('errorText')}"]
        return []


def json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


# --- I/O ----------------------------------------------------------------------------------------------------


async def tail(session_name: str, *, key: str | None = None, endpoint: str | None = None,
               history_pages: int | None = None, follow: bool = True, as_json: bool = False,
               out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
    """Print `session_name`'s selected branch from history, then (with `follow`) what happens on it, until
    cancelled."""
    render: Callable[[Record], str] = json_line if as_json else TextRenderer().render

    def emit(records: Iterable[Record]) -> None:
        text = "".join(render(record) for record in records)
        if text:
            out.write(text)
            out.flush()

    print("loading history…", file=err, flush=True)
    async with connect(key, endpoint) as client, ClientSession(client, session_name,
                                                               history_pages=history_pages) as session:
        history = history_records(session.branch())
        count = sum(record["type"] == "message" for record in history)
        older = " (older history not loaded)" if session.has_older else ""
        print(f"{count} messages{older}", file=err, flush=True)
        emit(history)
        if not follow:
            return
        live = LiveRecords()
        live.remember(history)
        async for wire, events in session.events():
            emit(live.feed(wire, events))


def run(session_name: str, **options: Any) -> int:
    """Run `tail()` until it returns or SIGINT/SIGTERM arrives; the exit status (0, or 1 on a failure)."""

    async def until_interrupted() -> None:
        task = asyncio.ensure_future(tail(session_name, **options))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(until_interrupted())
    except AblyTransportError as exc:
        print(f"tail: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C while closing
        pass
    return 0
