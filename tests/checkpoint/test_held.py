"""Held puts: a run whose owner flushes the saver before the run ends (`serve_graph`) has a burst of super-steps
stored in one message, and every reader, warm or cold, sees what it would have seen had each put been a message.

Runs here ask for holding as `serve_graph` does (`HOLD_CHECKPOINTS_KEY` in `configurable`), then flush.
"""

from __future__ import annotations

import asyncio
import operator
import os
import time
import zlib
from typing import Annotated, Any, TypedDict

import pytest
import uvloop
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from langchain_ably_transport import AblySaver, connect
from langchain_ably_transport.checkpoint.log import ChannelLog
from langchain_ably_transport.checkpoint.records import CHECKPOINT, unpack
from langchain_ably_transport.checkpoint.saver import HOLD_CHECKPOINTS_KEY
from langchain_ably_transport.errors import CheckpointStorageError

from .test_graphs import (
    BOTH,
    FIRST,
    channel_records,
    check_history,
    check_suspended_in_child,
    check_values,
    new_thread,
    parent_graph,
    sequence_graph,
)


def held(config: dict[str, Any]) -> dict[str, Any]:
    return {"configurable": {**config["configurable"], HOLD_CHECKPOINTS_KEY: True}}


def thread_of(config: dict[str, Any]) -> str:
    return config["configurable"]["thread_id"]


async def checkpoint_messages(client: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The checkpoint messages on the thread's channel, unpacked, oldest first."""
    records = await channel_records(client, thread_of(config))
    return [unpack(zlib.compress(raw)) for name, raw in reversed(records) if name == CHECKPOINT]


async def test_a_runs_held_puts_share_one_message_and_read_back_cold(clients):
    writer_client = await clients()
    saver = AblySaver(writer_client, checkpoint_wait_s=30)
    graph, config = sequence_graph(saver), new_thread()

    out = await graph.ainvoke({"messages": [HumanMessage("first")], "count": 0}, held(config))
    assert await checkpoint_messages(writer_client, config) == [], "held: nothing is published before the flush"
    await saver.aflush(thread_of(config))
    out = await graph.ainvoke({"messages": [HumanMessage("second")], "count": 0}, held(config))
    await saver.aflush(thread_of(config))

    check_values(out, BOTH, 8)
    messages = await checkpoint_messages(writer_client, config)
    assert [len(m["batch"]) for m in messages] == [6, 6], "each run's six checkpoints in one message"
    for message in messages:
        keys = [key for record in message["batch"] for key in record["blobs"]]
        assert len(keys) == len(set(keys)), "blob keys differ within a message"

    history = [h async for h in graph.aget_state_history(config)]
    check_history(history, "async", runs=2)
    cold = sequence_graph(AblySaver(await clients()))
    assert (await cold.aget_state(config)).values == out
    assert [h async for h in cold.aget_state_history(config)] == history
    check_values((await cold.aget_state(history[6].config)).values, FIRST, 4)


async def test_held_puts_are_published_within_checkpoint_wait_s_without_a_flush(clients):
    wait_s = 1.0
    graph, config = sequence_graph(AblySaver(await clients(), checkpoint_wait_s=wait_s)), new_thread()
    cold = sequence_graph(AblySaver(await clients()))

    started = time.monotonic()
    out = await graph.ainvoke({"messages": [HumanMessage("first")], "count": 0}, held(config))
    if time.monotonic() - started < wait_s / 2:  # a slow machine may have passed the deadline already
        assert (await cold.aget_state(config)).values == {}, "held, not yet published"
    deadline = started + wait_s + 5
    while (await cold.aget_state(config)).values != out and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert (await cold.aget_state(config)).values == out
    check_history([h async for h in cold.aget_state_history(config)], "async", runs=1)


def test_flushes_asked_for_at_once_twice_work_on_uvloop(server):
    """uvloop (which uvicorn runs on when it is installed) answers `call_at` for a time already past with a plain
    `Handle`, which has no `when()`: asking twice for the held puts to go at once, as `serve_graph` may while a run's
    output starts, must publish them, not raise."""

    async def scenario() -> None:
        async with connect(server.key, server.url) as client:
            saver = AblySaver(client, checkpoint_wait_s=30)
            graph, config = sequence_graph(saver), new_thread()
            out = await graph.ainvoke({"messages": [HumanMessage("first")], "count": 0}, held(config))
            saver.flush_soon(thread_of(config))
            saver.flush_soon(thread_of(config))
            deadline = time.monotonic() + 10
            while not await checkpoint_messages(client, config) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert [len(m["batch"]) for m in await checkpoint_messages(client, config)] == [6]
            cold = sequence_graph(AblySaver(client))
            assert (await cold.aget_state(config)).values == out

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def test_sync_durability_is_never_held(clients):
    graph, config = sequence_graph(AblySaver(await clients(), checkpoint_wait_s=30)), new_thread()
    out = await graph.ainvoke({"messages": [HumanMessage("first")], "count": 0}, held(config), durability="sync")
    cold = sequence_graph(AblySaver(await clients()))
    assert (await cold.aget_state(config)).values == out, "stored before invoke returned"
    check_history([h async for h in cold.aget_state_history(config)], "sync", runs=1)


async def test_an_interrupt_publishes_the_held_puts_before_the_run_suspends(clients):
    """A special write (here an interrupt) may end the run: it and everything held are published at once."""
    writer = parent_graph(AblySaver(await clients(), checkpoint_wait_s=30), "node")
    config = new_thread()
    out = await writer.ainvoke({"log": ["start"]}, held(config))
    (pending,) = out["__interrupt__"]

    resumer = parent_graph(AblySaver(await clients(), checkpoint_wait_s=30), "node")  # no flush: the interrupt did
    await check_suspended_in_child(resumer, config, pending.id)
    final = await resumer.ainvoke(Command(resume="yes"), held(config))
    assert final == {"log": ["start", "prep", "finish with 2 notes"], "notes": ["drafted", "answer=yes"]}
    await resumer.checkpointer.aflush(thread_of(config))
    state = await writer.aget_state(config, subgraphs=True)
    assert state.values == final and state.next == () and state.interrupts == ()


class Notes(TypedDict):
    notes: Annotated[list[str], operator.add]


def noisy_graph(saver: AblySaver, steps: int, size: int) -> CompiledStateGraph:
    """`steps` nodes in a row, each appending `size` bytes that do not compress."""
    builder = StateGraph(Notes)
    names = [f"n{i}" for i in range(steps)]
    for name in names:
        builder.add_node(name, lambda s: {"notes": [os.urandom(size // 2).hex()]})
    for a, b in zip([START, *names], [*names, END], strict=True):
        builder.add_edge(a, b)
    return builder.compile(checkpointer=saver)


async def test_held_puts_too_large_for_one_message_go_in_several_that_each_fit(clients):
    limit = 8 * 1024
    client = await clients()
    graph, config = noisy_graph(AblySaver(client, max_message_size=limit, checkpoint_wait_s=30), 8, 3000), new_thread()
    out = await graph.ainvoke({"notes": []}, held(config))
    await graph.checkpointer.aflush(thread_of(config))

    records = await channel_records(client, thread_of(config))
    sizes = [len(raw) for name, raw in records if name == CHECKPOINT]
    assert len(sizes) > 1, "eight 3 KB appends do not fit in one 8 KiB message"
    assert len(sizes) < 10, "yet puts still share messages"
    cold = noisy_graph(AblySaver(await clients(), max_message_size=limit), 8, 3000)
    assert (await cold.aget_state(config)).values == out and len(out["notes"]) == 8
    history = [h async for h in cold.aget_state_history(config)]
    assert [len(h.values.get("notes", [])) for h in history] == [8, 7, 6, 5, 4, 3, 2, 1, 0, 0]


async def test_held_puts_whose_message_failed_stay_held_and_are_published_by_the_next_flush(clients, monkeypatch):
    """Nothing is dropped: a refused message raises to the flusher, and its puts and writes wait for the next."""
    publish, refused = ChannelLog.publish, []

    async def refuse_the_first_checkpoint(self: ChannelLog, name: str, data: bytes) -> str:
        if name == CHECKPOINT and not refused:
            refused.append(name)
            raise CheckpointStorageError("refused, as a full rate limit would")
        return await publish(self, name, data)

    monkeypatch.setattr(ChannelLog, "publish", refuse_the_first_checkpoint)
    saver = AblySaver(await clients(), checkpoint_wait_s=30, writes_wait_s=30)
    graph, config = sequence_graph(saver), new_thread()
    out = await graph.ainvoke({"messages": [HumanMessage("first")], "count": 0}, held(config))
    with pytest.raises(CheckpointStorageError, match="refused"):
        await saver.aflush(thread_of(config))
    await saver.aflush(thread_of(config))

    cold = sequence_graph(AblySaver(await clients()))
    assert (await cold.aget_state(config)).values == out
    check_history([h async for h in cold.aget_state_history(config)], "async", runs=1)
