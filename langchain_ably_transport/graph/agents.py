"""Sub-agents of a served graph: who an event belongs to, how visible it is, and their own assistant messages.

A graph streamed with `subgraphs=True` tags each event with its namespace, `("<node>:<task id>", ...)`, empty for
the root graph; a model run inside `create_agent(name=...)` also carries `lc_agent_name` in its metadata (and so do
the tasks the agent runs). `AgentScope` reads the two into an agent name: the nearest `lc_agent_name` learned for the
namespace, else the name of the compiled subgraph the namespace's first node is, else that node's name. A root
graph that is itself a named agent keeps its passes in the run's main message: a name equal to the root graph's
name is not a sub-agent.

`AgentMessages` publishes each sub-agent model pass as its own assistant message, through a `run.pipe` of its own
running beside the run's main message, so a client shows every pass labelled by its `messageMetadata`
`{"agent": ..., "namespace": [...]}` and finds it again in history after a rejoin.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, AIMessageChunk

from ..codec.langchain import ChunkTranslator
from ..errors import ConfigurationError
from ..session import PipeResult, Run

log = logging.getLogger(__name__)

Visibility = Literal["show", "hide", "summary"]
"""`show`: everything; `summary`: only the agent's `data-task` parts; `hide`: nothing of the agent at all."""

_STRICTNESS: dict[str, int] = {"show": 0, "summary": 1, "hide": 2}
_DEFAULT_GRAPH_NAME = "LangGraph"  # what `StateGraph.compile()` names a graph that was given no name


def node_name(segment: str) -> str:
    """The node of a namespace segment `"<node>:<task id>"` (a subgraph with its own checkpointer has no task id)."""
    return segment.split(":", 1)[0]


class AgentScope:
    """Names the agent behind a stream event and decides its visibility under a policy keyed by agent name.

    The policy of an event is the strictest among the names it belongs to: its `lc_agent_name`, the agents and
    nodes of every namespace enclosing it and, for a task, the task's node. So hiding an agent hides the
    subgraphs and agents nested in it, and the root-graph task that runs it when its node has the agent's name
    (as `langgraph-supervisor` names them) or is the agent's compiled graph.
    """

    def __init__(self, graph: Any, visibility: Mapping[str, Visibility] | None = None) -> None:
        self._root = getattr(graph, "name", None)
        self._visibility = dict(visibility or {})
        unknown = {k: v for k, v in self._visibility.items() if v not in _STRICTNESS}
        if unknown:
            raise ConfigurationError(f"visibility must be 'show', 'hide' or 'summary', got {unknown!r}")
        self._subgraph_names = _subgraph_names(graph)
        self._learned: dict[tuple[str, ...], str] = {}

    def learn(self, namespace: tuple[str, ...], metadata: Mapping[str, Any] | None) -> None:
        """Remember the agent a namespace runs, from a task's metadata (the first one seen wins)."""
        name = self._agent_name(metadata)
        if namespace and name:
            self._learned.setdefault(namespace, name)

    def is_sub_agent(self, namespace: tuple[str, ...], metadata: Mapping[str, Any] | None = None) -> bool:
        return bool(namespace) or self._agent_name(metadata) is not None

    def agent(self, namespace: tuple[str, ...], metadata: Mapping[str, Any] | None = None) -> str | None:
        """The agent an event belongs to; None for the root graph's own."""
        named = self._agent_name(metadata)
        if named:
            return named
        for depth in range(len(namespace), 0, -1):
            if learned := self._learned.get(namespace[:depth]):
                return learned
        if not namespace:
            return None
        first = node_name(namespace[0])
        return self._subgraph_names.get(first, first)

    def visibility(self, namespace: tuple[str, ...], metadata: Mapping[str, Any] | None = None,
                   node: str | None = None) -> Visibility:
        if not self._visibility:
            return "show"
        names = {self.agent(namespace, metadata), node, self._subgraph_names.get(node or "")}
        for depth in range(1, len(namespace) + 1):
            segment = node_name(namespace[depth - 1])
            names |= {segment, self._subgraph_names.get(segment), self._learned.get(namespace[:depth])}
        policies = [self._visibility[name] for name in names if name and name in self._visibility]
        return max(policies, key=_STRICTNESS.__getitem__, default="show")

    def _agent_name(self, metadata: Mapping[str, Any] | None) -> str | None:
        name = (metadata or {}).get("lc_agent_name")
        return name if isinstance(name, str) and name and name != self._root else None


def _subgraph_names(graph: Any) -> dict[str, str]:
    """Node name -> the name its compiled subgraph was given (`create_agent(name=...)` names its graph)."""
    try:
        found = list(graph.get_subgraphs(recurse=True))
    except Exception:  # not a Pregel graph, or one whose nodes cannot be inspected: names come from the stream
        return {}
    names: dict[str, str] = {}
    for path, subgraph in found:
        name = getattr(subgraph, "name", None)
        if isinstance(name, str) and name and name != _DEFAULT_GRAPH_NAME:
            names.setdefault(path.split("|")[-1], name)
    return names


_END = object()


@dataclass
class _Pass:
    namespace: tuple[str, ...]
    translator: ChunkTranslator
    pipe: asyncio.Future[PipeResult]
    queue: asyncio.Queue[Any]


class AgentMessages:
    """Sub-agent model passes, each published as its own assistant message by a concurrent `run.pipe`.

    `feed` starts a pass's message at its first chunk and closes it at the chunk LangChain marks
    `chunk_position="last"` (a whole `AIMessage` is a pass by itself); `settle` closes whatever is still open and
    waits for every message to be published. A pass is keyed by its `langgraph_checkpoint_ns`, which names the
    node run the model was called from.
    """

    def __init__(self, run: Run) -> None:
        self._run = run
        self._open: dict[str, _Pass] = {}
        self._closed: list[asyncio.Future[PipeResult]] = []

    def feed(self, key: str, namespace: tuple[str, ...], message: AIMessage, metadata: Mapping[str, Any]) -> None:
        """Publish `message` in the pass `key` of the agent at `namespace`, whose message carries `metadata`."""
        current = self._open.get(key)
        if current is None:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            pipe = asyncio.ensure_future(self._run.pipe(_drain(queue)))
            current = self._open[key] = _Pass(namespace, ChunkTranslator(message_metadata=metadata), pipe, queue)
        current.queue.put_nowait(current.translator.feed(message))
        if not isinstance(message, AIMessageChunk) or message.chunk_position == "last":
            self.close(key)

    def close(self, key: str, error: BaseException | None = None) -> None:
        closing = self._open.pop(key, None)
        if closing is not None:
            translator = closing.translator
            closing.queue.put_nowait(translator.error(error) if error is not None else translator.finish())
            closing.queue.put_nowait(_END)
            self._closed.append(closing.pipe)

    def close_within(self, namespace: tuple[str, ...]) -> None:
        """Close the passes still open in `namespace` (a tool result there means its model pass is over)."""
        for key, open_pass in list(self._open.items()):
            if open_pass.namespace == namespace:
                self.close(key)

    async def flush(self) -> None:
        """Wait until the passes already closed are published: a tool result must not overtake its call."""
        closed, self._closed = self._closed, []
        for result in await asyncio.gather(*closed):
            if result.reason == "error":
                log.warning("run %s: a sub-agent message failed: %s", self._run.run_id, result.error)

    async def settle(self, error: BaseException | None = None) -> None:
        """Close every open pass (with `error`, when the graph failed) and wait for all to be published."""
        for key in list(self._open):
            self.close(key, error)
        await self.flush()


async def _drain(queue: asyncio.Queue[Any]) -> AsyncIterator[dict[str, Any]]:
    while (chunks := await queue.get()) is not _END:
        for chunk in chunks:
            yield chunk
