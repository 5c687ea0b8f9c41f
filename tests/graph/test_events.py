"""GraphEvents: a graph's messages taken in the model's task, beside its tasks and updates, with no network."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_ably_transport.graph import events as graph_events
from langchain_ably_transport.graph.agents import node_name
from langchain_ably_transport.graph.events import GraphEvent, GraphEvents

from .graphs import chat_node

INPUT = {"messages": [HumanMessage(content="hi", id="user-1")]}


def _config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def layered_graph(threads: set[int]) -> Any:
    """START -> chat (streams) -> note (sync, so LangGraph runs it on a worker thread) -> team (a subgraph whose
    node streams) -> END."""

    def note(state: MessagesState) -> dict[str, Any]:
        threads.add(threading.get_ident())
        return {"messages": [AIMessage(content="a note, returned whole", id="note-1")]}

    inner = StateGraph(MessagesState)
    inner.add_node("member", chat_node(lambda state: "from the team"))
    inner.add_edge(START, "member")
    inner.add_edge("member", END)
    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat_node(lambda state: "streamed in words"))
    graph.add_node("note", note)
    graph.add_node("team", inner.compile())
    for source, target in [(START, "chat"), ("chat", "note"), ("note", "team"), ("team", END)]:
        graph.add_edge(source, target)
    return graph.compile(checkpointer=InMemorySaver())


async def _all(events: GraphEvents) -> list[GraphEvent]:
    seen: list[GraphEvent] = []
    while (batch := await events.next()) is not None:
        seen += batch
    return seen


def _messages(events: list[GraphEvent]) -> list[tuple[tuple[str, ...], str, Any]]:
    """The `messages` events, namespaces without task ids (they differ from run to run)."""
    return [(tuple(node_name(s) for s in ns), type(data[0]).__name__, data[0].content)
            for ns, mode, data in events if mode == "messages"]


@pytest.mark.parametrize("handler", ["inline", "langgraph's stream"])
async def test_its_messages_are_those_of_langgraphs_messages_stream_in_the_same_order(handler, monkeypatch):
    """Inline, with LangGraph's handler; and through LangGraph's `messages` stream, what serves when a LangGraph
    version no longer has the handler where `events` imports it from."""
    if handler != "inline":
        monkeypatch.setattr(graph_events, "StreamMessagesHandler", None)
    threads: set[int] = set()
    expected = [event async for event in layered_graph(threads).astream(
        INPUT, _config("reference"), stream_mode="messages", subgraphs=True)]
    async with GraphEvents(layered_graph(threads), INPUT, _config("ours"), ["messages", "tasks"], None) as events:
        seen = await _all(events)
    assert _messages(seen) == [(tuple(node_name(s) for s in ns), type(message).__name__, message.content)
                               for ns, (message, _) in expected]
    assert ((), "AIMessage", "a note, returned whole") in _messages(seen), "a message a node returns whole comes"
    assert ("team",) in {ns for ns, _, _ in _messages(seen)}, "the subgraph's tokens come, in its namespace"
    assert threading.get_ident() not in threads, "the sync node ran on a worker thread, whose message still came"
    tasks = [(data["name"], "result" in data) for _, mode, data in seen if mode == "tasks"]
    assert ("chat", False) in tasks and ("chat", True) in tasks and ("member", True) in tasks


async def test_a_quiet_graph_gives_an_empty_batch_when_the_timeout_passes_then_the_rest():
    release = asyncio.Event()

    async def wait(state: MessagesState) -> dict[str, Any]:
        await release.wait()
        return {"messages": [AIMessage(content="done waiting", id="done-1")]}

    graph = StateGraph(MessagesState)
    graph.add_node("wait", wait)
    graph.add_edge(START, "wait")
    async with GraphEvents(graph.compile(), INPUT, {}, ["messages", "tasks"], None) as events:
        batches = [await events.next(0.05) for _ in range(3)]
        assert [] in batches, "no event while the node waits: the timeout returns an empty batch"
        release.set()
        rest = await _all(events)
    assert [content for _, _, content in _messages(rest)] == ["done waiting"]


async def test_a_failing_graph_raises_after_the_events_it_sent():
    async def fail(state: MessagesState) -> dict[str, Any]:
        model = GenericFakeChatModel(messages=iter([AIMessage(content="partial")]))
        async for _ in model.astream(state["messages"]):
            pass
        raise ValueError("the node failed")

    graph = StateGraph(MessagesState)
    graph.add_node("fail", fail)
    graph.add_edge(START, "fail")
    seen: list[GraphEvent] = []
    with pytest.raises(ValueError, match="the node failed"):
        async with GraphEvents(graph.compile(), INPUT, {}, ["messages"], None) as events:
            while (batch := await events.next()) is not None:
                seen += batch
    assert "partial" in [content for _, _, content in _messages(seen)]


async def test_leaving_early_cancels_the_graph_and_waits_for_it():
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def forever(state: MessagesState) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    graph = StateGraph(MessagesState)
    graph.add_node("forever", forever)
    graph.add_edge(START, "forever")
    async with GraphEvents(graph.compile(), INPUT, {}, ["tasks"], None) as events:
        await events.next()
        await asyncio.wait_for(started.wait(), 5)
    assert cancelled.is_set(), "the node was cancelled before the block was left"


async def test_a_graph_that_fails_after_the_reader_left_leaves_no_unretrieved_error(caplog):
    """asyncio logs a task's exception that nobody retrieved, as an error, when the task is collected."""
    async def fail(state: MessagesState) -> dict[str, Any]:
        raise ValueError("failed while nobody read")

    graph = StateGraph(MessagesState)
    graph.add_node("fail", fail)
    graph.add_edge(START, "fail")
    async with GraphEvents(graph.compile(), INPUT, {}, ["tasks"], None) as events:
        await asyncio.sleep(0.2)  # the graph fails meanwhile; the reader leaves without reading it
    del events
    gc.collect()
    assert "exception was never retrieved" not in caplog.text



async def test_take_has_the_messages_made_while_the_reader_waits_and_what_it_leaves_keeps_its_place():
    """`take` runs in the model's task; one event in two it takes, the other it leaves (as a new event) for `next`.
    Read together, in the order each side saw them, they are LangGraph's `messages` stream."""
    threads: set[int] = set()
    expected = [event async for event in layered_graph(threads).astream(
        INPUT, _config("reference"), stream_mode="messages", subgraphs=True)]
    arrivals: list[GraphEvent] = []
    offered: list[tuple[int, str | None]] = []

    def take(event: GraphEvent) -> GraphEvent | None:
        namespace, _, data = event
        offered.append((threading.get_ident(), data[0].id))
        if len(offered) % 2 == 0:
            return namespace, "left", data
        arrivals.append(event)
        return None

    async with GraphEvents(layered_graph(threads), INPUT, _config("ours"), ["messages", "tasks"], None,
                           take=take) as events:
        while (batch := await events.next()) is not None:
            arrivals.extend((ns, "messages" if mode == "left" else mode, data) for ns, mode, data in batch)
    assert _messages(arrivals) == [(tuple(node_name(s) for s in ns), type(message).__name__, message.content)
                                   for ns, (message, _) in expected]
    assert len(offered) >= 2, "tokens that came while the reader waited were offered"
    assert {thread for thread, _ in offered} == {threading.get_ident()}, "only on the loop's thread"
