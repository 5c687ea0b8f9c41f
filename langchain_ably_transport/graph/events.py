"""A served graph's events: its `tasks` and `updates` streams, and its messages taken where the model makes them.

LangGraph's `messages` stream hands each token from the model's task to its reader through `call_soon_threadsafe`
(a write to the loop's self-pipe), its stream queue and a waiter task: three turns of the event loop, about 60 to 80 µs
a token at 200 sessions (`benchmarks/graph_alone.py`), as much as the rest of our transport. `GraphEvents` keeps
what a `messages` event is, LangGraph's own `StreamMessagesHandler` (streamed chunks, and the whole messages that
nodes return, once each by id), and gives it a sink that appends to one queue with the graph's other events: one
wake-up of the reader, and none for a token that finds the reader already awake.

A reader can also take a `messages` event in the model's own task (`take`), while it waits with nothing queued:
then not even that one wake-up is needed, and a token reaches the channel without waiting for a turn of a loaded
loop.

The graph's tasks and updates still come through `astream`, which a pump task drives (LangGraph steps the graph in
it). A task's `running` event can therefore reach the reader after the first token of its task: `HeldRunningParts`
drops it then, since the text already shows the task running.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Sequence
from contextlib import aclosing
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.types import Durability

try:  # langgraph 1.x keeps it here; `stream_mode=["messages"]` is what it implements
    from langgraph.pregel._messages import StreamMessagesHandler
except ImportError:  # pragma: no cover - a LangGraph that moved it: its `messages` stream serves instead
    StreamMessagesHandler = None  # type: ignore[assignment,misc]

GraphEvent = tuple[tuple[str, ...], str, Any]
"""`(namespace, mode, data)`, as `astream(..., subgraphs=True)` yields them."""
Take = Callable[[GraphEvent], GraphEvent | None]
"""A reader's hook for a `messages` event in the model's task: what it leaves for `next` (None: nothing)."""


class GraphEvents:
    """One run of a graph, streamed with `subgraphs=True` in `modes`, as batches of `GraphEvent`s in arrival order.

    `async with GraphEvents(...) as events:` starts the graph; `await events.next(timeout)` is the events that came
    since the last call (an empty list when `timeout` passed first, None once the graph is done); the graph's error,
    if it failed, raises from `next` after its last events. Leaving the block early cancels the graph and waits for
    it to stop. `take`, if given, is offered each `messages` event made on the loop's thread while the reader waits
    in `next` with nothing queued, so that order is kept; what it returns is queued instead.
    """

    def __init__(self, graph: Any, graph_input: Any, config: RunnableConfig, modes: Sequence[str],
                 durability: Durability | None, *, take: Take | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._intake: collections.deque[GraphEvent] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._take = take
        stream_modes = list(modes)
        if "messages" in stream_modes and StreamMessagesHandler is not None:
            stream_modes.remove("messages")
            config = merge_configs(config, {"callbacks": [StreamMessagesHandler(self._put, subgraphs=True)]})
        self._stream = graph.astream(graph_input, config, stream_mode=stream_modes, subgraphs=True,
                                     durability=durability)
        self._pump: asyncio.Future[None] | None = None

    async def __aenter__(self) -> GraphEvents:
        self._pump = asyncio.ensure_future(self._drive())
        self._pump.add_done_callback(lambda _: self._wake())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._pump is None:
            return
        if not self._pump.done():
            self._pump.cancel()
            await asyncio.wait({self._pump})
        if not self._pump.cancelled():
            self._pump.exception()  # marked retrieved: a reader that left early has its own outcome to report

    async def next(self, timeout: float | None = None) -> list[GraphEvent] | None:
        """The events that came since the last call, waiting up to `timeout` seconds (None: until one comes)."""
        assert self._pump is not None, "next() outside `async with`"
        if not self._intake and not self._pump.done():
            self._waiter = self._loop.create_future()
            timer = self._loop.call_later(timeout, self._wake) if timeout is not None else None
            try:
                await self._waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        if self._intake:  # popped one by one: a worker thread may append meanwhile
            return [self._intake.popleft() for _ in range(len(self._intake))]
        if self._pump.done():
            self._pump.result()  # the graph's error, after every event it sent
            return None
        return []

    async def _drive(self) -> None:
        async with aclosing(self._stream) as stream:
            async for event in stream:
                self._intake.append(event)
                self._wake()

    def _put(self, event: GraphEvent) -> None:
        """`StreamMessagesHandler`'s sink: called in the model's task, or on a worker thread for a sync node."""
        if threading.get_ident() != self._loop_thread:
            self._intake.append(event)
            self._loop.call_soon_threadsafe(self._wake)
            return
        if self._take is not None and not self._intake and self._waiter is not None and not self._waiter.done():
            left = self._take(event)
            if left is None:
                return
            event = left
        self._intake.append(event)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
