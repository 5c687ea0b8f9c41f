"""The message ledger: counts by kind, per process, run and channel (pure), and a served turn's counts against
what its channels actually carried (live, through the dev server)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from langchain_ably_transport import AblySaver, ClientSession, MessageCounts, MessageKind, MessageLedger, ledger
from langchain_ably_transport.checkpoint import state_channel
from langchain_ably_transport.devserver import RunningServer, spawn
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.ledger import Publication, attributed_to, current_run
from langchain_ably_transport.session.liveness import LIVENESS_CHANNEL

from .graph.graphs import chat_graph

K = MessageKind


def test_counts_by_kind_for_the_process_each_run_and_each_channel():
    book = MessageLedger()
    book.record(K.OUTPUT_CREATE, channel="c1", run_id="r1")
    book.record(K.OUTPUT_APPEND, 3, channel="c1", run_id="r1")
    book.record(K.CHECKPOINT_RECORD, channel="state:c1")
    assert book.process().as_dict() == {"output-create": 1, "output-append": 3, "checkpoint-record": 1}
    assert book.run("r1").total == 4 and book.run("r2").total == 0
    assert book.channel("state:c1")[K.CHECKPOINT_RECORD] == 1 and book.channel("c1")[K.PRESENCE] == 0
    book.reset()
    assert book.process().total == 0


def test_only_the_newest_runs_and_channels_are_kept_and_the_process_total_never_drops():
    book = MessageLedger(scopes_kept=2)
    for run in ("a", "b", "c"):
        book.record(K.LIFECYCLE, run_id=run)
    book.record(K.LIFECYCLE, run_id="b")
    book.record(K.LIFECYCLE, run_id="d")
    assert [book.run(r).total for r in "abcd"] == [0, 2, 0, 1] and book.process().total == 5


def test_counts_add_and_subtract_and_read_as_a_mapping():
    one = MessageCounts({K.PRESENCE: 2, K.LIFECYCLE: 1})
    two = MessageCounts({K.PRESENCE: 1})
    assert (one + two)[K.PRESENCE] == 3 and (one - two).as_dict() == {"lifecycle": 1, "presence": 1}
    assert list(one) == [K.LIFECYCLE, K.PRESENCE] and len(one) == 2 and dict(one) == one.by_kind


async def test_a_run_marked_in_context_reaches_the_tasks_it_starts():
    with attributed_to("r7"):
        assert await asyncio.ensure_future(_current()) == "r7"
    assert current_run() is None
    assert Publication(K.INPUT).run_id is None


async def _current() -> str | None:
    return current_run()


@pytest.fixture(scope="module")
def unrolled() -> Iterator[RunningServer]:
    """A dev server that delivers every append as published (no rollup), so a subscriber sees each one."""
    with spawn(args=["--inbound-rate", "0", "--append-rollup-window", "0"]) as running:
        yield running


async def test_a_served_turn_counts_exactly_what_its_channels_carried(clients, unrolled, channel_name):
    """Every message the agent published on the session (creates and appends, seen live by a subscriber), on the
    liveness channel (its presence) and on the state channel (its history), by kind, against the ledger's count
    for each of two runs: the agent's connection enters presence for its first run, and never again."""
    agent, watcher = await clients(unrolled, client_id="agent"), await clients(unrolled, client_id="watcher")
    carried: Counter[str] = Counter()
    session_channel = watcher.channels.get(channel_name)
    await session_channel.subscribe(lambda m: carried.update([_kind(m)]) if m.client_id == "agent" else None)
    await watcher.channels.get(LIVENESS_CHANNEL).presence.subscribe(
        lambda m: carried.update(["presence"]) if m.client_id == "agent" else None)
    reply = " ".join(f"word{i}" for i in range(50))
    graph = chat_graph(AblySaver(agent), reply, reply, delay=0.002)
    runs = []
    async with ClientSession(await clients(unrolled, client_id="alice"), channel_name) as user:
        for question in ("hello", "again"):
            sent = await user.send(question)
            result = await serve_graph(graph, sent.invocation, client=agent, coalesce_window=0.02)
            assert result.outcome == "complete"
            assert await user.wait_for(lambda: user.messages()[-1].content == reply)
            runs.append(result)
    counts = runs[0].messages + runs[1].messages
    session_kinds = {K.LIFECYCLE, K.OUTPUT_CREATE, K.OUTPUT_APPEND, K.PRESENCE}
    expected = {kind.value: counts[kind] for kind in session_kinds if counts[kind]}
    assert await _eventually(lambda: dict(carried) == expected), (dict(carried), expected)
    state = (await agent.channels.get(state_channel(channel_name)).history()).items
    assert counts[K.CHECKPOINT_RECORD] + counts[K.CHECKPOINT_BLOB] == len(state) > 0
    assert [r.messages[K.LIFECYCLE] for r in runs] == [4, 4], "start, step start and end, end"
    assert [r.messages[K.PRESENCE] for r in runs] == [1, 0], "one enter per agent connection"
    assert ledger.run(runs[1].run_id) == runs[1].messages and ledger.process().total >= counts.total


def _kind(message) -> str:
    if message.name in ("ai-run-start", "ai-run-end", "ai-step-start", "ai-step-end"):
        return K.LIFECYCLE.value
    return K.OUTPUT_CREATE.value if int(message.action or 0) == 0 else K.OUTPUT_APPEND.value


async def _eventually(check, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    return check()


async def test_durability_exit_checkpoints_once_per_run_and_the_thread_goes_on(clients, channel_name):
    agent = await clients(client_id="agent")
    async with ClientSession(await clients(client_id="alice"), channel_name) as user:
        counts = []
        for question, answer in (("one", "First."), ("two", "Second.")):
            sent = await user.send(question)
            result = await serve_graph(chat_graph(AblySaver(agent), answer), sent.invocation, client=agent,
                                       durability="exit")
            assert result.outcome == "complete"
            counts.append(result.messages[K.CHECKPOINT_RECORD])
        state = await chat_graph(AblySaver(agent)).aget_state({"configurable": {"thread_id": channel_name}})
    assert [m.content for m in state.values["messages"]] == ["one", "First.", "two", "Second."]
    assert counts == [1, 1]
