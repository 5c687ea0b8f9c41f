"""A served session lingers after its run: the conversation's next turn takes it up without attaching or reading
history again, and it lets go when its time is up, when its connection broke, or when too many linger."""

from __future__ import annotations

import asyncio

import pytest
from ably.http.http import Http
from ably.types.connectionstate import ConnectionState

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.sdk import fixes
from langchain_ably_transport.session import core as session_core
from langchain_ably_transport.session.core import SessionCore

from ..faults.drops import drop_socket
from .graphs import chat_builder


@pytest.fixture
def session_reads(monkeypatch) -> list[str]:
    """The REST history requests made on session channels (not the graph's state channels)."""
    reads: list[str] = []
    fixes.install()  # first: what is counted here is asked for above the SDK's replacements (its reads, 21)
    request = Http.make_request

    async def counted(self, method, path, *args, **kwargs):
        if method == "GET" and "langgraph-state" not in path and path.split("?")[0].endswith("/messages"):
            reads.append(path)
        return await request(self, method, path, *args, **kwargs)

    monkeypatch.setattr(Http, "make_request", counted)
    return reads


def _graph(agent):
    return chat_builder(lambda state: f"reply to {state['messages'][-1].content}").compile(
        checkpointer=AblySaver(agent))


def _lingering(agent, name: str) -> bool:
    return (id(agent), name) in SessionCore._shared


def _attached(agent, name: str) -> bool:
    return any(channel.name == name for channel in agent.channels)


async def _turn(user: ClientSession, graph, agent, text: str, linger_s: float) -> None:
    sent = await user.send(text)
    result = await serve_graph(graph, sent.invocation, client=agent, session_linger_s=linger_s)
    assert result.outcome == "complete"


@pytest.mark.parametrize(("linger_s", "reads"), [(10, 0), (0, 1)], ids=["lingering", "detached at once"])
async def test_the_next_turn_takes_up_a_lingering_session_and_reads_history_only_without_one(
        clients, channel_name, session_reads, linger_s, reads):
    agent = await clients()
    graph = _graph(agent)
    async with ClientSession(await clients(), channel_name) as user:
        await _turn(user, graph, agent, "q0", linger_s=linger_s)
        assert _lingering(agent, channel_name) == _attached(agent, channel_name) == bool(linger_s)
        session_reads.clear()
        await _turn(user, graph, agent, "q1", linger_s=linger_s)
        assert len(session_reads) == reads, "a lingering session finds the input among what it folded"
        assert await user.wait_for(lambda: len(user.messages()) == 4)
        assert [m.content for m in user.messages()] == ["q0", "reply to q0", "q1", "reply to q1"]


async def test_a_lingering_session_lets_go_of_its_channel_when_its_time_is_up(clients, channel_name):
    agent = await clients()
    async with ClientSession(await clients(), channel_name) as user:
        await _turn(user, _graph(agent), agent, "q0", linger_s=0.3)
        assert _lingering(agent, channel_name)
        await asyncio.sleep(0.8)
        assert not _lingering(agent, channel_name) and not _attached(agent, channel_name)


async def test_a_session_whose_connection_dropped_while_it_lingered_is_opened_again(
        clients, channel_name, session_reads):
    """It may have missed messages while the connection was down: the next turn reads the history afresh."""
    agent = await clients()
    graph = _graph(agent)
    async with ClientSession(await clients(), channel_name) as user:
        await _turn(user, graph, agent, "q0", linger_s=10)
        assert drop_socket(agent)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if agent.connection.state == ConnectionState.CONNECTED:
                break
        session_reads.clear()
        await _turn(user, graph, agent, "q1", linger_s=10)
        assert len(session_reads) == 1, "a fresh open, not the lingering core"
        assert await user.wait_for(lambda: len(user.messages()) == 4)
        assert [m.content for m in user.messages()][-1] == "reply to q1"


async def test_at_most_lingering_kept_sessions_linger_per_client_the_oldest_let_go_first(
        clients, monkeypatch):
    monkeypatch.setattr(session_core, "LINGERING_KEPT", 2)
    agent = await clients()
    graph = _graph(agent)
    names = [f"test:linger-{i}" for i in range(3)]
    for name in names:
        async with ClientSession(await clients(), name) as user:
            await _turn(user, graph, agent, "q", linger_s=10)
    await asyncio.sleep(0.3)  # the oldest's detach
    assert [_lingering(agent, name) for name in names] == [False, True, True]
    assert not _attached(agent, names[0])


async def test_a_session_served_on_another_connection_lets_go_of_the_one_lingering_on_the_first(
        clients, channel_name):
    """A pool places a session anew when its connection is full: the core left lingering on the first connection
    would fold every message of the new turn again (and Ably would deliver each twice) until its time was up."""
    first, second = await clients(), await clients()
    saver = AblySaver(first)
    graph = chat_builder(lambda state: f"reply to {state['messages'][-1].content}").compile(checkpointer=saver)
    async with ClientSession(await clients(), channel_name) as user:
        await _turn(user, graph, first, "q0", linger_s=10)
        assert _lingering(first, channel_name)
        await _turn(user, graph, second, "q1", linger_s=10)
        assert not _lingering(first, channel_name) and _lingering(second, channel_name)
        await asyncio.sleep(0.3)  # the first one's detach
        assert not _attached(first, channel_name) and _attached(second, channel_name)
        assert await user.wait_for(lambda: [m.content for m in user.messages()][-1:] == ["reply to q1"])
