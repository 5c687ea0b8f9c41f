"""LangGraph's in-process v3 event stream as JSON events of LangChain's agent streaming protocol (pure).

`graph.astream_events(version="v3")` yields protocol-shaped events, but not yet wire events: `messages` data is a
`(payload, metadata)` pair and a message returned whole arrives as an `AIMessage`; `values` and `tools` hold
LangChain objects; a subgraph's `lifecycle` comes at the root with its namespace inside the data; interrupts sit
in `values`' `params.interrupts`; `updates` and `checkpoints` keep LangGraph's older shapes; and nothing says
that the run itself started or ended. `EventNormalizer` turns each into what the protocol's CDDL describes, as
JSON-ready dicts, and adds the root `lifecycle` and one `input.requested` per interrupt. `seq` and `event_id`
are stamped where events are published (`batch`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.language_models._compat_bridge import message_to_events
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.stream import StreamTransformer
from langgraph.types import Interrupt
from pydantic import BaseModel

log = logging.getLogger(__name__)

Event = dict[str, Any]
LIFECYCLE_KEYS = ("event", "graph_name", "cause", "error", "checkpoint")
TASK_KEYS = ("id", "name", "triggers", "error", "interrupts")  # a task's input and result are in `values`/`updates`
ROOT: list[str] = []


def event(method: str, namespace: Iterable[str], data: Any, *, timestamp: int | None = None,
          node: str | None = None) -> Event:
    """A protocol event without its `seq` and `event_id`. `node`: the graph node a `messages` event comes from; the
    SDK keys a streaming message by its namespace and node."""
    params: dict[str, Any] = {"namespace": list(namespace), "timestamp": timestamp or _now_ms(), "data": data}
    if node is not None:
        params["node"] = node
    return {"type": "event", "method": method, "params": params}


class EventNormalizer:
    """One run's v3 events, normalised; it remembers which interrupts it has already asked for."""

    def __init__(self, graph_name: str) -> None:
        self.graph_name = graph_name
        self._asked: dict[str, Any] = {}
        self._tasks: list[Mapping[str, Any]] = []

    @property
    def interrupts(self) -> dict[str, Any]:
        """`{interrupt id: payload}` of every interrupt this run asked for."""
        return dict(self._asked)

    def running(self) -> Event:
        """The root run's first event, for a fresh run and a resumed one alike (the SDK reads a run's start, and
        its id, from it)."""
        return event("lifecycle", ROOT, {"event": "running", "graph_name": self.graph_name})

    def answered(self, interrupt_ids: Iterable[str]) -> Event:
        """`input.answered`: the interrupts a resume answers, so that every other client stops showing them."""
        return event("input.answered", ROOT, {"interrupt_ids": list(interrupt_ids)})

    def finished(self, status: str, error: str | None = None) -> Event:
        """The root run's last lifecycle event: `completed`, `interrupted` or `failed` (with `error`)."""
        data: dict[str, Any] = {"event": status, "graph_name": self.graph_name}
        if error is not None:
            data["error"] = error
        return event("lifecycle", ROOT, data)

    def transformers(self) -> list[Any]:
        """What the v3 stream needs besides its defaults: `updates` and `checkpoints`, and a tap on `tasks`."""
        from langgraph.stream import CheckpointsTransformer, UpdatesTransformer

        return [UpdatesTransformer, CheckpointsTransformer, lambda scope: _TaskTap(scope, self._tasks)]

    def normalize(self, raw: Mapping[str, Any]) -> list[Event]:
        """`raw` as protocol events, after the tasks that started or ended before it."""
        tasks, self._tasks[:] = list(self._tasks), []
        return [*(self._event(task) for task in tasks), *self._normalized(raw)]

    def flush(self) -> list[Event]:
        """The tasks tapped since the last event (the last ones of a run)."""
        return self.normalize({})

    def _event(self, task: Mapping[str, Any]) -> Event:
        params = task.get("params") or {}
        data = params.get("data") if isinstance(params.get("data"), Mapping) else {}
        return event("tasks", params.get("namespace") or [], {k: to_json(data[k]) for k in TASK_KEYS if k in data},
                     timestamp=params.get("timestamp"))

    def _normalized(self, raw: Mapping[str, Any]) -> list[Event]:
        method = raw.get("method")
        params = raw.get("params") or {}
        namespace = list(params.get("namespace") or [])
        data = params.get("data")
        timestamp = params.get("timestamp")
        if method == "messages":
            node = _node(data)
            return [event("messages", namespace, payload, timestamp=timestamp, node=node)
                    for payload in _message_events(data)]
        if method == "values":
            return [event("values", namespace, to_json(data), timestamp=timestamp),
                    *self._requested(namespace, params.get("interrupts") or ())]
        if method == "updates":
            return [event("updates", namespace, update, timestamp=timestamp) for update in _updates(data)]
        if method == "lifecycle" and isinstance(data, Mapping):
            where = data.get("namespace", namespace)
            return [event("lifecycle", where, {k: to_json(data[k]) for k in LIFECYCLE_KEYS if k in data},
                          timestamp=timestamp)]
        if method == "checkpoints" and isinstance(data, Mapping):
            return [event("checkpoints", namespace, _checkpoint(data), timestamp=timestamp)]
        if method in ("tools", "custom") or (isinstance(method, str) and method.startswith("custom:")):
            return [event(method, namespace, to_json(data), timestamp=timestamp)]
        if method is not None:
            log.debug("v3 event %r not mapped to the protocol", method)
        return []

    def _requested(self, namespace: list[str], interrupts: Iterable[Any]) -> list[Event]:
        """One `input.requested` per interrupt, the first time it shows (a subgraph's shows again at the root)."""
        asked = []
        for interrupt in interrupts:
            if isinstance(interrupt, Interrupt) and interrupt.id not in self._asked:
                self._asked[interrupt.id] = payload = to_json(interrupt.value)
                asked.append(event("input.requested", namespace, {"interrupt_id": interrupt.id, "payload": payload}))
        return asked


class _TaskTap(StreamTransformer):
    """LangGraph's v3 stream turns `tasks` events into subgraph lifecycle and keeps them off its main log: this keeps
    a copy of each, at the root scope (which sees every namespace), for the protocol's `tasks` channel."""

    required_stream_modes = ("tasks",)

    def __init__(self, scope: tuple[str, ...], sink: list[Mapping[str, Any]]) -> None:
        super().__init__(scope)
        self._sink = sink if not scope else None

    def init(self) -> dict[str, Any]:
        return {}

    def process(self, event: Any) -> bool:
        if self._sink is not None and event.get("method") == "tasks":
            self._sink.append(event)
        return True


def _message_events(data: Any) -> list[Any]:
    """The protocol `messages` data in one v3 `messages` item: a streamed event as it is, a whole message (one a
    node returned without streaming it) replayed as the events a live call would have given."""
    payload = data[0] if isinstance(data, tuple | list) and data else data
    if isinstance(payload, AIMessage):
        return [to_json(dict(item)) for item in message_to_events(payload)]
    if isinstance(payload, BaseMessage):
        return []  # a tool's result is the `tools` channel's, and the bridge can only say `ai`: `values` tells them
    return [to_json(payload)] if isinstance(payload, Mapping) else []


def _node(data: Any) -> str | None:
    metadata = data[1] if isinstance(data, tuple | list) and len(data) > 1 else None
    node = metadata.get("langgraph_node") if isinstance(metadata, Mapping) else None
    return node if isinstance(node, str) else None


def _updates(data: Any) -> list[dict[str, Any]]:
    """`{node: delta}` as one `{node, values}` per node; interrupts are told as `input.requested` instead."""
    if not isinstance(data, Mapping):
        return []
    return [{"node": str(node), "values": delta if isinstance(delta, dict) else {"value": delta}}
            for node, delta in ((n, to_json(v)) for n, v in data.items() if n != "__interrupt__")]


def _checkpoint(data: Mapping[str, Any]) -> dict[str, Any]:
    config = (data.get("config") or {}).get("configurable") or {}
    parent = (data.get("parent_config") or {}).get("configurable") or {}
    metadata = data.get("metadata") or {}
    checkpoint: dict[str, Any] = {"id": config.get("checkpoint_id"), "step": metadata.get("step", -1),
                                  "source": metadata.get("source", "loop")}
    if parent.get("checkpoint_id"):
        checkpoint["parent_id"] = parent["checkpoint_id"]
    return checkpoint


def to_json(value: Any) -> Any:
    """`value` as JSON data: a LangChain message as its dict (`type`, `content`, `id`, ...), which is how LangGraph's
    server sends state; any other pydantic model or dataclass as its fields; an `Interrupt` as `{id, value}`."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item) for item in value]
    if isinstance(value, Interrupt):
        return {"id": value.id, "value": to_json(value.value)}
    if isinstance(value, BaseModel):
        return to_json(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(dataclasses.asdict(value))
    return str(value)


def _now_ms() -> int:
    return int(time.time() * 1000)
