"""AblySaver under real LangGraph graphs: durability modes, subgraphs, interrupts, time travel, encryption.

Sync runs (`graph.invoke`) use `AblySaver.connect()`, which owns its client on a loop thread of its own;
async runs (`graph.ainvoke`) use a client of the test's loop. Every thread id is fresh, and wherever a run
ends, a saver on another client (a "cold" process that only has the channel) must read the same state.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import os
import signal
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot, interrupt

from langchain_ably_transport import AblySaver
from langchain_ably_transport.checkpoint import log as log_module
from langchain_ably_transport.checkpoint import state_channel
from langchain_ably_transport.checkpoint.log import ChannelLog
from langchain_ably_transport.checkpoint.records import CHECKPOINT, RECORD_NAMES, WRITES, unpack
from langchain_ably_transport.checkpoint.saver import HOLD_CHECKPOINTS_KEY

DURABILITIES = ["sync", "async", "exit"]
# A four-node sequence saves the input checkpoint (step -1), then one per step 0..4; `exit` only the last.
CHECKPOINTS_PER_RUN = {"sync": 6, "async": 6, "exit": 1}


def new_thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": f"graphs-{uuid.uuid4().hex}"}}


@pytest.fixture(scope="module")
def sync_saver(server) -> Iterator[AblySaver]:
    with AblySaver.connect(server.key, server.url) as saver:
        yield saver


@pytest.fixture(scope="module")
def cold_sync_saver(server) -> Iterator[AblySaver]:
    """Another process's view: its own client, and it never wrote the threads it reads."""
    with AblySaver.connect(server.key, server.url) as saver:
        yield saver


# --- 1. a four-node sequence in every durability mode ---


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    count: Annotated[int, operator.add]


def sequence_graph(saver: BaseCheckpointSaver) -> CompiledStateGraph:
    """plan -> model (a fake chat model) -> act -> report, each adding one message and 1 to `count`."""
    model = FakeListChatModel(responses=["model says hi"])
    builder = StateGraph(Chat)
    builder.add_node("plan", lambda s: {"messages": [AIMessage(f"plan for {s['messages'][-1].content}")], "count": 1})
    builder.add_node("model", lambda s: {"messages": [model.invoke(s["messages"])], "count": 1})
    builder.add_node("act", lambda s: {"messages": [AIMessage("acted")], "count": 1})
    builder.add_node("report", lambda s: {"messages": [AIMessage(f"report after {s['count']}")], "count": 1})
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "model")
    builder.add_edge("model", "act")
    builder.add_edge("act", "report")
    builder.add_edge("report", END)
    return builder.compile(checkpointer=saver)


def turn(text: str, count_before: int) -> list[str]:
    return [text, f"plan for {text}", "model says hi", "acted", f"report after {count_before + 3}"]


FIRST = turn("first", 0)
BOTH = FIRST + turn("second", 4)


def check_values(values: dict[str, Any], contents: list[str], count: int) -> None:
    assert [m.content for m in values["messages"]] == contents
    assert [type(m) for m in values["messages"]] == [HumanMessage] + [AIMessage] * 4 + (
        [HumanMessage] + [AIMessage] * 4 if len(contents) > 5 else [])
    assert all(m.id for m in values["messages"]), "add_messages gives every message an id, which must survive"
    assert values["count"] == count


def check_history(history: list[StateSnapshot], durability: str, runs: int) -> None:
    """Newest first, each run's checkpoints in step order, each linked to the one before it."""
    assert len(history) == CHECKPOINTS_PER_RUN[durability] * runs
    ids = [h.config["configurable"]["checkpoint_id"] for h in history]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    steps = [(h.metadata["source"], h.metadata["step"]) for h in history]
    # Each run's input checkpoint takes a step too, so run r's steps are 6r - 1 .. 6r + 4.
    if durability == "exit":
        assert steps == [("loop", 6 * run + 4) for run in reversed(range(runs))]
        assert history[0].next == ()
        return
    one_run = [("loop", 4), ("loop", 3), ("loop", 2), ("loop", 1), ("loop", 0), ("input", -1)]
    assert steps == [(source, 6 * run + step) for run in reversed(range(runs)) for source, step in one_run]
    assert [h.next for h in history[:6]] == [(), ("report",), ("act",), ("model",), ("plan",), ("__start__",)]
    for newer, older in itertools.pairwise(history):
        assert newer.parent_config["configurable"]["checkpoint_id"] == older.config["configurable"]["checkpoint_id"]
    for snapshot in history[:5]:  # the last run's loop checkpoints: one message and 1 more per step
        step = snapshot.metadata["step"] - 6 * (runs - 1)
        assert snapshot.values["count"] == 4 * (runs - 1) + step
        assert len(snapshot.values["messages"]) == 5 * (runs - 1) + 1 + step


@pytest.mark.parametrize("durability", DURABILITIES)
def test_sequence_with_invoke_in_each_durability_mode(sync_saver, cold_sync_saver, durability):
    graph, config = sequence_graph(sync_saver), new_thread()

    out = graph.invoke({"messages": [HumanMessage("first")], "count": 0}, config, durability=durability)
    check_values(out, FIRST, 4)
    state = graph.get_state(config)
    assert state.values == out and state.next == () and state.metadata["step"] == 4
    first_history = list(graph.get_state_history(config))
    check_history(first_history, durability, runs=1)

    out = graph.invoke({"messages": [HumanMessage("second")], "count": 0}, config, durability=durability)
    check_values(out, BOTH, 8)
    assert graph.get_state(config).values == out
    history = list(graph.get_state_history(config))
    check_history(history, durability, runs=2)
    assert history[-len(first_history):] == first_history, "the first run's checkpoints are untouched"

    cold = sequence_graph(cold_sync_saver)
    assert cold.get_state(config).values == out
    assert list(cold.get_state_history(config)) == history


@pytest.mark.parametrize("durability", DURABILITIES)
async def test_sequence_with_ainvoke_in_each_durability_mode(clients, durability):
    graph, config = sequence_graph(AblySaver(await clients())), new_thread()

    out = await graph.ainvoke({"messages": [HumanMessage("first")], "count": 0}, config, durability=durability)
    check_values(out, FIRST, 4)
    state = await graph.aget_state(config)
    assert state.values == out and state.next == () and state.metadata["step"] == 4
    first_history = [h async for h in graph.aget_state_history(config)]
    check_history(first_history, durability, runs=1)

    out = await graph.ainvoke({"messages": [HumanMessage("second")], "count": 0}, config, durability=durability)
    check_values(out, BOTH, 8)
    assert (await graph.aget_state(config)).values == out
    history = [h async for h in graph.aget_state_history(config)]
    check_history(history, durability, runs=2)
    assert history[-len(first_history):] == first_history

    cold = sequence_graph(AblySaver(await clients()))
    assert (await cold.aget_state(config)).values == out
    assert [h async for h in cold.aget_state_history(config)] == history


# --- 2. an interrupt inside a subgraph ---


class Parent(TypedDict):
    log: Annotated[list[str], operator.add]
    notes: list[str]


class Child(TypedDict):
    notes: Annotated[list[str], operator.add]


def child_graph() -> CompiledStateGraph:
    """draft -> ask (interrupts); compiled without a checkpointer, so it inherits the parent's."""

    def ask(state: Child) -> dict[str, Any]:
        answer = interrupt({"question": "ship it?", "notes": list(state["notes"])})
        return {"notes": [f"answer={answer}"]}

    builder = StateGraph(Child)
    builder.add_node("draft", lambda s: {"notes": ["drafted"]})
    builder.add_node("ask", ask)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "ask")
    builder.add_edge("ask", END)
    return builder.compile()


def parent_graph(saver: BaseCheckpointSaver, style: str) -> CompiledStateGraph:
    """prep -> child -> finish, the child added as a node or awaited from a node's function."""
    child = child_graph()
    builder = StateGraph(Parent)
    builder.add_node("prep", lambda s: {"log": ["prep"], "notes": []})
    if style == "node":
        builder.add_node("child", child)
    else:

        async def call_child(state: Parent) -> dict[str, Any]:
            out = await child.ainvoke({"notes": state["notes"]})
            return {"notes": out["notes"]}

        builder.add_node("child", call_child)
    builder.add_node("finish", lambda s: {"log": [f"finish with {len(s['notes'])} notes"]})
    builder.add_edge(START, "prep")
    builder.add_edge("prep", "child")
    builder.add_edge("child", "finish")
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=saver)


async def check_suspended_in_child(graph: CompiledStateGraph, config: dict[str, Any], interrupt_id: str) -> None:
    state = await graph.aget_state(config, subgraphs=True)
    assert state.values == {"log": ["start", "prep"], "notes": []}
    assert state.next == ("child",)
    assert [(i.id, i.value["question"]) for i in state.interrupts] == [(interrupt_id, "ship it?")]
    (task,) = state.tasks
    assert task.name == "child" and [i.id for i in task.interrupts] == [interrupt_id]
    child = task.state
    assert isinstance(child, StateSnapshot), "subgraphs=True loads the child's own snapshot"
    assert child.values == {"notes": ["drafted"]}
    assert child.next == ("ask",)
    assert child.config["configurable"]["checkpoint_ns"].startswith("child:")
    assert [i.id for i in child.interrupts] == [interrupt_id]
    assert [i.value for i in child.interrupts] == [{"question": "ship it?", "notes": ["drafted"]}]
    shallow = await graph.aget_state(config)
    assert shallow.tasks[0].state["configurable"]["checkpoint_ns"] == child.config["configurable"]["checkpoint_ns"]


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize("style", ["node", "call"])
async def test_interrupt_inside_a_subgraph_is_visible_and_resumes(clients, style, durability):
    writer = parent_graph(AblySaver(await clients()), style)
    config = new_thread()

    out = await writer.ainvoke({"log": ["start"]}, config, durability=durability)
    (pending,) = out["__interrupt__"]
    assert pending.value == {"question": "ship it?", "notes": ["drafted"]}
    assert out["log"] == ["start", "prep"]
    await check_suspended_in_child(writer, config, pending.id)

    resumer = parent_graph(AblySaver(await clients()), style)  # another process with only the channel
    await check_suspended_in_child(resumer, config, pending.id)
    final = await resumer.ainvoke(Command(resume="yes"), config, durability=durability)
    assert final == {"log": ["start", "prep", "finish with 2 notes"], "notes": ["drafted", "answer=yes"]}
    assert "__interrupt__" not in final

    for graph in (resumer, writer):  # the writer's warm cache sees the other process's resume
        state = await graph.aget_state(config, subgraphs=True)
        assert state.values == final and state.next == () and state.interrupts == () and state.tasks == ()


# --- 3. interrupt() and Command(resume=...) ---


class Review(TypedDict):
    log: Annotated[list[str], operator.add]


def review_graph(saver: BaseCheckpointSaver) -> CompiledStateGraph:
    """draft -> review (two interrupts in one task) -> publish."""

    def review(state: Review) -> dict[str, Any]:
        verdict = interrupt({"question": "approve?", "draft": state["log"][-1]})
        note = interrupt({"question": "note?"})
        return {"log": [f"review:{verdict}:{note}"]}

    builder = StateGraph(Review)
    builder.add_node("draft", lambda s: {"log": ["draft v1"]})
    builder.add_node("review", review)
    builder.add_node("publish", lambda s: {"log": ["published"]})
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", "publish")
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=saver)


@pytest.mark.parametrize("durability", DURABILITIES)
def test_interrupt_then_resume_with_command(sync_saver, cold_sync_saver, durability):
    graph, config = review_graph(sync_saver), new_thread()

    out = graph.invoke({"log": ["start"]}, config, durability=durability)
    (first,) = out["__interrupt__"]
    assert first.value == {"question": "approve?", "draft": "draft v1"}
    state = graph.get_state(config)
    assert state.values == {"log": ["start", "draft v1"]} and state.next == ("review",)
    assert [(i.id, i.value) for i in state.interrupts] == [(first.id, first.value)]
    assert [i.id for i in state.tasks[0].interrupts] == [first.id]
    assert [(i.id, i.value) for i in review_graph(cold_sync_saver).get_state(config).interrupts] == \
        [(first.id, first.value)]

    out = graph.invoke(Command(resume="approved"), config, durability=durability)
    (second,) = out["__interrupt__"]
    assert second.value == {"question": "note?"} and second.id != first.id
    state = graph.get_state(config)
    assert [i.id for i in state.interrupts] == [second.id], "the answered interrupt is no longer pending"
    assert state.next == ("review",) and state.values == {"log": ["start", "draft v1"]}

    out = graph.invoke(Command(resume={second.id: "ship"}), config, durability=durability)
    assert out == {"log": ["start", "draft v1", "review:approved:ship", "published"]}
    for saver in (sync_saver, cold_sync_saver):
        state = review_graph(saver).get_state(config)
        assert state.values == out and state.next == () and state.interrupts == ()


# --- 4. parallel interrupts ---


def parallel_graph(saver: BaseCheckpointSaver) -> CompiledStateGraph:
    """START fans out to `a` and `b`, which both interrupt; `join` runs once both are answered."""

    def asking(name: str):
        def node(state: Review) -> dict[str, Any]:
            return {"log": [f"{name}={interrupt(f'{name}?')}"]}

        return node

    builder = StateGraph(Review)
    builder.add_node("a", asking("a"))
    builder.add_node("b", asking("b"))
    builder.add_node("join", lambda s: {"log": ["join"]})
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    builder.add_edge(["a", "b"], "join")
    builder.add_edge("join", END)
    return builder.compile(checkpointer=saver)


def pending_ids(state: StateSnapshot) -> dict[str, str]:
    ids = {i.value: i.id for i in state.interrupts}
    assert len(ids) == len(state.interrupts)
    return ids


@pytest.mark.parametrize("durability", DURABILITIES)
async def test_parallel_interrupts_resumed_together(clients, durability):
    graph, config = parallel_graph(AblySaver(await clients())), new_thread()

    out = await graph.ainvoke({"log": []}, config, durability=durability)
    assert sorted(i.value for i in out["__interrupt__"]) == ["a?", "b?"]
    state = await graph.aget_state(config)
    ids = pending_ids(state)
    assert set(ids) == {"a?", "b?"} and ids["a?"] != ids["b?"]
    assert ids == {i.value: i.id for i in out["__interrupt__"]}
    assert set(state.next) == {"a", "b"} and state.values == {"log": []}

    with pytest.raises(RuntimeError, match="multiple pending interrupts"):
        await graph.ainvoke(Command(resume="ambiguous"), config, durability=durability)
    cold = parallel_graph(AblySaver(await clients()))
    assert pending_ids(await cold.aget_state(config)) == ids, "the refused resume changed nothing"

    out = await cold.ainvoke(Command(resume={ids["a?"]: "A", ids["b?"]: "B"}), config, durability=durability)
    assert out == {"log": ["a=A", "b=B", "join"]}
    state = await graph.aget_state(config)
    assert state.values == out and state.interrupts == () and state.next == ()


@pytest.mark.parametrize("durability", DURABILITIES)
def test_parallel_interrupts_resumed_one_by_one(sync_saver, cold_sync_saver, durability):
    graph, config = parallel_graph(sync_saver), new_thread()

    graph.invoke({"log": []}, config, durability=durability)
    ids = pending_ids(graph.get_state(config))
    assert set(ids) == {"a?", "b?"} and ids["a?"] != ids["b?"]

    out = graph.invoke(Command(resume={ids["b?"]: "B"}), config, durability=durability)
    assert [i.id for i in out["__interrupt__"]] == [ids["a?"]]
    assert out["log"] == ["b=B"]
    for saver in (sync_saver, cold_sync_saver):
        state = parallel_graph(saver).get_state(config)
        assert pending_ids(state) == {"a?": ids["a?"]}, "b's answer is stored; only a is still pending"
        assert state.next == ("a",) and state.values == {"log": ["b=B"]}

    out = parallel_graph(cold_sync_saver).invoke(Command(resume={ids["a?"]: "A"}), config, durability=durability)
    # The super-step's writes apply in task order once both are done, as with InMemorySaver.
    assert out == {"log": ["a=A", "b=B", "join"]}
    state = graph.get_state(config)
    assert state.values == out and state.interrupts == () and state.next == ()


# --- 5. time travel: replay and fork ---


def steps_graph(saver: BaseCheckpointSaver, calls: list[str]) -> CompiledStateGraph:
    def step(name: str):
        def node(state: Review) -> dict[str, Any]:
            calls.append(name)
            return {"log": [name]}

        return node

    builder = StateGraph(Review)
    for name in ("step1", "step2", "step3"):
        builder.add_node(name, step(name))
    builder.add_edge(START, "step1")
    builder.add_edge("step1", "step2")
    builder.add_edge("step2", "step3")
    builder.add_edge("step3", END)
    return builder.compile(checkpointer=saver)


def ancestry(history: list[StateSnapshot], snapshot: StateSnapshot) -> list[str]:
    """Checkpoint ids from `snapshot` back to the thread's first checkpoint, via parent links."""
    by_id = {h.config["configurable"]["checkpoint_id"]: h for h in history}
    chain = []
    while snapshot is not None:
        chain.append(snapshot.config["configurable"]["checkpoint_id"])
        parent = snapshot.parent_config
        snapshot = by_id[parent["configurable"]["checkpoint_id"]] if parent else None
    return chain


def test_time_travel_replay_and_fork(sync_saver, cold_sync_saver):
    calls: list[str] = []
    graph, config = steps_graph(sync_saver, calls), new_thread()
    original = graph.invoke({"log": ["start"]}, config)
    assert original == {"log": ["start", "step1", "step2", "step3"]}
    history = list(graph.get_state_history(config))
    original_head = history[0]
    (before_step2,) = [h for h in history if h.next == ("step2",)]
    assert before_step2.values == {"log": ["start", "step1"]}

    calls.clear()
    replayed = graph.invoke(None, before_step2.config)
    assert replayed == original and calls == ["step2", "step3"], "replay re-runs only what came after"

    fork_config = graph.update_state(before_step2.config, {"log": ["edited"]})
    fork_point = graph.get_state(fork_config)
    assert fork_point.values == {"log": ["start", "step1", "edited"]} and fork_point.next == ("step2",)
    assert fork_point.metadata["source"] == "update"
    assert fork_point.parent_config["configurable"]["checkpoint_id"] == \
        before_step2.config["configurable"]["checkpoint_id"]

    calls.clear()
    forked = graph.invoke(None, fork_config)
    assert forked == {"log": ["start", "step1", "edited", "step2", "step3"]} and calls == ["step2", "step3"]

    for saver in (sync_saver, cold_sync_saver):
        reader = steps_graph(saver, [])
        assert reader.get_state(config).values == forked, "the newest branch is the thread's state"
        assert reader.get_state(original_head.config).values == original, "the original branch is intact"
        everything = list(reader.get_state_history(config))
        assert everything[-len(history):] == history, "the original history is unchanged"
        fork_chain = ancestry(everything, everything[0])
        original_chain = ancestry(everything, original_head)
        assert fork_point.config["configurable"]["checkpoint_id"] in fork_chain
        assert original_head.config["configurable"]["checkpoint_id"] not in fork_chain
        shared = [cid for cid in fork_chain if cid in original_chain]
        assert shared[0] == before_step2.config["configurable"]["checkpoint_id"], "they part at the fork point"


# --- 6. an encrypting serde: no plaintext on the channel ---


async def channel_records(client, thread_id: str) -> list[tuple[str, bytes]]:
    """(name, decompressed bytes) of every saver message on the thread's channel (a chunk may be partial)."""
    channel = client.channels.get(state_channel(thread_id))
    page = await channel.history(limit=1000)
    records = []
    while True:
        records += [(m.name, zlib.decompressobj().decompress(bytes(m.data)))
                    for m in page.items if m.name in RECORD_NAMES]
        if not page.has_next():
            return records
        page = await page.next()


def secret_graph(saver: BaseCheckpointSaver, marker: str) -> CompiledStateGraph:
    def confide(state: Review) -> dict[str, Any]:
        answer = interrupt(f"reveal {marker}?")
        return {"log": [f"{answer}: {marker}"]}

    builder = StateGraph(Review)
    builder.add_node("confide", confide)
    builder.add_edge(START, "confide")
    builder.add_edge("confide", END)
    return builder.compile(checkpointer=saver)


async def test_encrypted_serde_keeps_plaintext_off_the_channel(clients):
    key = os.urandom(32)
    marker = f"PLAINTEXT-MARKER-{uuid.uuid4().hex}"
    encrypted_client = await clients()
    graph = secret_graph(AblySaver(encrypted_client, serde=EncryptedSerializer.from_pycryptodome_aes(key=key)), marker)
    config = new_thread()
    out = await graph.ainvoke({"log": [f"input {marker}"]}, config)
    assert out["__interrupt__"][0].value == f"reveal {marker}?"

    cold = secret_graph(AblySaver(await clients(), serde=EncryptedSerializer.from_pycryptodome_aes(key=key)), marker)
    state = await cold.aget_state(config)
    assert state.values == {"log": [f"input {marker}"]} and state.interrupts[0].value == f"reveal {marker}?"
    final = await cold.ainvoke(Command(resume="yes"), config)
    assert final == {"log": [f"input {marker}", f"yes: {marker}"]}
    assert (await graph.aget_state(config)).values == final

    records = await channel_records(encrypted_client, config["configurable"]["thread_id"])
    assert {CHECKPOINT, WRITES} <= {name for name, _ in records}
    assert not [name for name, raw in records if marker.encode() in raw], "plaintext state reached the channel"
    checkpoints = [unpack(zlib.compress(raw)) for name, raw in records if name == CHECKPOINT]
    assert {c["checkpoint"][0] for c in checkpoints} == {"msgpack+aes"}
    assert {c["metadata"][0] for c in checkpoints} == {"msgpack+aes"}

    wrong_key = secret_graph(AblySaver(await clients(), serde=EncryptedSerializer.from_pycryptodome_aes(
        key=os.urandom(32))), marker)
    with pytest.raises(ValueError, match="MAC check failed"):
        await wrong_key.aget_state(config)

    # The control: the same run without encryption does put the marker on the channel.
    plain_client = await clients()
    plain, plain_config = secret_graph(AblySaver(plain_client), marker), new_thread()
    await plain.ainvoke({"log": [f"input {marker}"]}, plain_config)
    plain_records = await channel_records(plain_client, plain_config["configurable"]["thread_id"])
    assert any(marker.encode() in raw for _, raw in plain_records)


# --- 7. sync methods on the client's own loop ---


@contextmanager
def fails_instead_of_hanging(seconds: float) -> Iterator[None]:
    """Turn a block of more than `seconds` on the main thread into a TimeoutError (a deadlock detector)."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"blocked for {seconds}s: deadlocked")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def test_sync_methods_on_the_clients_loop_raise_instead_of_deadlocking(clients):
    saver = AblySaver(await clients())
    graph, config = review_graph(saver), new_thread()
    await graph.ainvoke({"log": ["start"]}, config)
    latest = await saver.aget_tuple(config)
    message = "sync methods were called on its client's event loop, which would deadlock"

    with fails_instead_of_hanging(10):
        with pytest.raises(RuntimeError, match=message):
            saver.get_tuple(config)
        with pytest.raises(RuntimeError, match=message):
            next(saver.list(config))
        with pytest.raises(RuntimeError, match=message):
            saver.put(latest.config, empty_checkpoint(), {"source": "loop", "step": 9}, {})
        with pytest.raises(RuntimeError, match=message):
            saver.put_writes(latest.config, [("log", ["x"])], task_id="t")
        with pytest.raises(RuntimeError, match=message):
            graph.invoke(Command(resume="no"), config)

    after = await graph.aget_state(config)
    assert after.values == {"log": ["start", "draft v1"]} and after.next == ("review",), "nothing was written"
    assert after.config == latest.config and len(after.interrupts) == 1
    # The same sync methods work from a worker thread while the loop is free.
    assert (await asyncio.to_thread(saver.get_tuple, config)).config == latest.config


# --- 8. a slow network: acks arrive late, and a cold reader pages back one message at a time ---


@pytest.fixture
def slow_network(monkeypatch):
    """Ably stores each record at once but its ack reaches the saver late (writes later than checkpoints),
    as over a real network; history pages hold one message, so a cold read stops right at a checkpoint."""
    publish = ChannelLog.publish

    async def publish_with_late_ack(self: ChannelLog, name: str, data: bytes) -> str:
        serial = await publish(self, name, data)
        await asyncio.sleep(0.3 if name == WRITES else 0.1)
        return serial

    monkeypatch.setattr(ChannelLog, "publish", publish_with_late_ack)
    monkeypatch.setattr(log_module, "PAGE_SIZE", 1)


def summary(state: StateSnapshot) -> tuple[Any, ...]:
    """What a resumer needs to agree on, subgraph snapshots included."""
    return (state.values, state.next, [(i.id, i.value) for i in state.interrupts],
            [(t.name, summary(t.state) if isinstance(t.state, StateSnapshot) else None) for t in state.tasks])


@pytest.mark.parametrize("held", [False, True], ids=["each-put", "held"])
@pytest.mark.parametrize("scenario", ["interrupt", "parallel", "subgraph-node", "subgraph-call"])
async def test_a_cold_reader_on_a_slow_network_sees_what_the_writer_sees(clients, slow_network, scenario, held):
    """`held`: as `serve_graph` runs a graph, whose saver holds puts to share messages, and flushes at the end."""
    def build(saver: BaseCheckpointSaver) -> CompiledStateGraph:
        if scenario == "interrupt":
            return review_graph(saver)
        if scenario == "parallel":
            return parallel_graph(saver)
        return parent_graph(saver, scenario.removeprefix("subgraph-"))

    writer, config = build(AblySaver(await clients(), checkpoint_wait_s=30)), new_thread()
    if held:
        config["configurable"][HOLD_CHECKPOINTS_KEY] = True
    out = await writer.ainvoke({"log": ["start"]}, config, durability="async")
    assert out["__interrupt__"]
    expected = summary(await writer.aget_state(config, subgraphs=True))
    cold = build(AblySaver(await clients(), checkpoint_wait_s=30))
    assert summary(await cold.aget_state(config, subgraphs=True)) == expected

    for _ in range(3):  # the cold process answers whatever is pending until the run completes
        pending = (await cold.aget_state(config)).interrupts
        if not pending:
            break
        out = await cold.ainvoke(Command(resume={i.id: "ok" for i in pending}), config, durability="async")
    assert "__interrupt__" not in out
    await cold.checkpointer.aflush(config["configurable"]["thread_id"])  # what serve_graph does as a run ends
    subgraph_final = {"log": ["start", "prep", "finish with 2 notes"], "notes": ["drafted", "answer=ok"]}
    assert out == {
        "interrupt": {"log": ["start", "draft v1", "review:ok:ok", "published"]},
        "parallel": {"log": ["start", "a=ok", "b=ok", "join"]},
        "subgraph-node": subgraph_final,
        "subgraph-call": subgraph_final,
    }[scenario]
    assert (await writer.aget_state(config)).values == out
