"""`ConnectionPool` against the dev server: sessions placed, kept and spread; connections opened under load up to
the ceiling and closed when idle; an account's rate refusals backed off, counted, and nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from ably.types.message import Message

from langchain_ably_transport import (
    LIVENESS_CHANNEL,
    AblySaver,
    AgentSession,
    ClientSession,
    ConnectionFailedError,
    ConnectionPool,
    connect,
    ledger,
)
from langchain_ably_transport.devserver import RunningServer, spawn
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.sdk.states import echoes_own_messages

from .conftest import flood_until_failed
from .devserver.helpers import Collector, eventually
from .graph.graphs import chat_graph


def _names(count: int) -> list[str]:
    return [f"pool:{uuid.uuid4().hex[:8]}" for _ in range(count)]


async def test_sessions_fill_a_connection_before_another_opens_up_to_the_ceiling(server):
    async with ConnectionPool(server.key, server.url, max_connections=3, streams_per_connection=2) as pool, \
            contextlib.AsyncExitStack() as leases:
        held = [await leases.enter_async_context(pool.lease(name)) for name in _names(5)]
        assert pool.stats().per_connection == [2, 2, 1]
        assert len({id(client) for client in held}) == 3
        await leases.enter_async_context(pool.lease(_names(1)[0]))
        await leases.enter_async_context(pool.lease(_names(1)[0]))
        stats = pool.stats()
        assert stats.connections == 3 and stats.per_connection == [3, 2, 2], "at the ceiling: the least busy"


async def test_sessions_that_arrive_together_are_spread_over_the_connections_opened_for_them(server):
    """A burst: every session asks while the first new connection is still opening. Each waits for it and is
    placed again, so the burst fills it and opens the next, instead of piling onto one connection for life."""
    async with ConnectionPool(server.key, server.url, max_connections=4, streams_per_connection=2) as pool, \
            contextlib.AsyncExitStack() as leases:

        async def lease(name: str) -> None:
            await leases.enter_async_context(pool.lease(name))

        await asyncio.gather(*(lease(name) for name in _names(8)))
        assert sorted(pool.stats().per_connection) == [2, 2, 2, 2]


@pytest.mark.parametrize("at_once", [1, 3])
async def test_a_burst_of_sessions_opens_its_connections_as_many_at_a_time_as_asked(server, at_once):
    """Sessions that find every connection full wait for connections opened for them, `openings_at_once` at a time
    (one by default), and are each placed on one of them."""
    options = {} if at_once == 1 else {"openings_at_once": at_once}
    async with ConnectionPool(server.key, server.url, max_connections=8, streams_per_connection=1, **options) as pool, \
            contextlib.AsyncExitStack() as leases:
        under_way, peak = 0, 0
        open_connection = pool._open

        async def counted() -> Any:
            nonlocal under_way, peak
            under_way += 1
            peak = max(peak, under_way)
            try:
                return await open_connection()
            finally:
                under_way -= 1

        pool._open = counted
        held = await asyncio.gather(*(leases.enter_async_context(pool.lease(name)) for name in _names(7)))
        assert peak == at_once
        assert len({id(client) for client in held}) == 7 and pool.stats().per_connection == [1] * 7


async def test_a_watched_session_keeps_its_connection_open_without_taking_a_streams_place(server):
    watched, streaming = _names(2)
    async with ConnectionPool(server.key, server.url, streams_per_connection=1, idle_close_s=0.2) as pool:
        busy = contextlib.AsyncExitStack()
        await busy.enter_async_context(pool.lease(_names(1)[0]))  # the home connection is full
        async with pool.lease(watched) as second:
            assert second is not pool.home
        async with busy, pool.lease(watched, streaming=False) as watching:
            assert watching is second, "its home"
            async with pool.lease(streaming) as other:
                assert other is second, "the watch took no place: a session streams beside it"
            await asyncio.sleep(0.6)
            assert pool.stats().connections == 2, "a watched session's connection stays open"
            assert watching.connection.state == "connected"
            assert pool.stats().per_connection == [1, 0], "a watch is no stream"
        await asyncio.sleep(0.6)
        assert pool.stats().connections == 1, "idle once unwatched"


async def test_a_session_keeps_its_connection_and_its_thread_goes_there_too(server):
    first, second = _names(2)
    async with ConnectionPool(server.key, server.url, streams_per_connection=1) as pool:
        async with pool.lease(first) as a, pool.lease(second) as b:
            assert a is not b
        async with pool.lease(second) as again:
            assert again is b, "the connection it had, while it is open"
        assert pool.client_for(first) is a and pool.client_for(second) is b


async def test_a_session_back_for_another_turn_is_placed_anew_when_its_connection_holds_another_stream(server):
    """Between two turns of a conversation, another session may take the connection it had: going back there would
    put two streams on one connection, and the pacer would hold both (benchmarks/load.py, 200 sessions: thousands of
    paced appends and the token p99 about 2.5 times a lone session's, against none and 2 times)."""
    first, second = _names(2)
    async with ConnectionPool(server.key, server.url, streams_per_connection=1) as pool:
        async with pool.lease(first) as had:
            pass
        async with pool.lease(second) as taken, pool.lease(first) as back:
            assert taken is had, "the least busy, which the first session had left"
            assert back is not had, "placed where there is room"
            assert pool.stats().per_connection == [1, 1]
        assert pool.client_for(first) is back, "its thread's records follow it"
        async with pool.lease(first) as again:
            assert again is back, "the connection it had, which has room"


async def test_a_savers_thread_follows_its_session_only_once_its_writes_are_out(server):
    """Records still to publish on the connection a thread leaves go out there first: the next connection's reads
    and records then come after them on the channel."""
    from langgraph.checkpoint.base import empty_checkpoint

    first, second = _names(2)
    async with ConnectionPool(server.key, server.url, streams_per_connection=1) as pool:
        saver = AblySaver(pool, writes_wait_s=30)
        config = {"configurable": {"thread_id": first, "checkpoint_ns": ""}}
        async with pool.lease(first) as had:
            stored = await saver.aput(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
            await saver.aput_writes(stored, [("messages", "waiting")], "task-1")
        async with pool.lease(second), pool.lease(first) as moved:
            assert moved is not had
            assert saver._thread(first).log.channel.ably is had, "its writes wait there, to be published first"
            await saver.aflush(first)
            assert saver._thread(first).log.channel.ably is moved
            assert (await saver.aget_tuple(stored)).pending_writes == [("task-1", "messages", "waiting")]


def _messages_read(client) -> list[int]:
    """The messages each REST history request of `client` returns (Ably bills each one), as they come."""
    reads: list[int] = []
    request = client.http.make_request

    async def counted(method, path, *args, **kwargs):
        response = await request(method, path, *args, **kwargs)
        if method == "GET" and "/messages" in path:
            body = response.to_native()
            reads.append(len(body) if isinstance(body, list) else 1)
        return response

    client.http.make_request = counted  # an instance attribute shadows the method
    return reads


async def test_a_savers_thread_moves_with_what_it_knows_and_reads_only_what_is_newer(server):
    """Read afresh on the connection it moved to, a thread would cost a page of history and a fetch of the value
    stored before it, every turn the pool places its session anew. It reads only the newest record it read before
    (the few of its millisecond), and what came since."""
    from langgraph.checkpoint.base import empty_checkpoint

    first, second = _names(2)
    config = {"configurable": {"thread_id": first, "checkpoint_ns": ""}}
    async with ConnectionPool(server.key, server.url, streams_per_connection=1) as pool, \
            connect(server.key, server.url, client_id="elsewhere") as other_process:
        saver = AblySaver(pool)
        async with pool.lease(first) as had:
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"], checkpoint["channel_versions"] = {"answer": "forty-two"}, {"answer": 1}
            stored = await saver.aput(config, checkpoint, {"source": "input", "step": -1}, {"answer": 1})
            for step in range(6):  # the value stays where it was stored, beyond the newest five records
                await asyncio.sleep(0.002)
                stored = await saver.aput(stored, {**empty_checkpoint(), "channel_versions": {"answer": 1}},
                                          {"source": "loop", "step": step}, {})
            assert (await saver.aget_tuple(config)).config == stored
        async with pool.lease(second), pool.lease(first) as moved:
            assert moved is not had
            reads = _messages_read(moved)
            latest = await saver.aget_tuple(config)
            assert (latest.config, latest.checkpoint["channel_values"]) == (stored, {"answer": "forty-two"})
            assert saver._thread(first).log.channel.ably is moved
            assert reads == [1], "the newest record it had read, and no value fetched"
            newer = await AblySaver(other_process).aput(latest.config, empty_checkpoint(),
                                                         {"source": "update", "step": 9}, {})
            assert (await saver.aget_tuple(config)).config == newer, "what another process wrote since is read"
            assert reads == [1, 2]


async def test_the_default_capacity_is_one_stream_on_a_50_per_second_connection(server):
    """Two 25 msg/s streams would be 50 msg/s, over the 45 the pacer keeps to."""
    with spawn() as ably_limits:  # the shared server announces no rate limit; Ably announces 50/s
        async with ConnectionPool(ably_limits.key, ably_limits.url) as pool, contextlib.AsyncExitStack() as leases:
            for name in _names(3):
                await leases.enter_async_context(pool.lease(name))
            assert pool.stats().per_connection == [1, 1, 1]


async def test_idle_connections_close_down_to_one_and_a_returning_session_is_placed_anew(server):
    names = _names(3)
    async with ConnectionPool(server.key, server.url, streams_per_connection=1, idle_close_s=0.2) as pool:
        async with contextlib.AsyncExitStack() as leases:
            for name in names:
                await leases.enter_async_context(pool.lease(name))
            assert pool.stats().connections == 3
        await asyncio.sleep(0.6)
        stats = pool.stats()
        assert (stats.connections, stats.opened, stats.closed) == (1, 3, 2)
        async with pool.lease(names[2]) as client:
            assert client is pool.home
            assert client.connection.state == "connected"


async def test_a_connection_ably_ended_is_retired_and_its_sessions_are_placed_anew(strict, caplog):
    """A pool that kept a FAILED connection would place sessions there whose every publish fails; it closes it
    instead, on the next lease."""
    flooded, returning, arriving = _names(3)
    async with ConnectionPool(strict.key, strict.url, streams_per_connection=1) as pool:
        async with pool.lease(_names(1)[0]), pool.lease(flooded) as second:
            await flood_until_failed(second)
            assert pool.client_for(flooded) is not second, "the saver does not write through it either"
            async with pool.lease(returning) as placed:
                assert placed is not second and placed.connection.state == "connected"
            assert second not in pool.clients and pool.stats().closed == 1
        async with pool.lease(flooded) as again, pool.lease(arriving) as other:
            assert again.connection.state == other.connection.state == "connected"
            await again.channels.get(flooded).publish("n", "served again")
    assert "a connection of the pool ended" in caplog.text


async def test_a_run_whose_connection_ably_ends_is_ended_from_another_and_serve_graph_does_not_raise(
        strict, clients):
    """Its connection FAILED mid-stream, a run can publish nothing more there, and its agent is still present (on
    the pool's home): without another connection ending it, every client would show it streaming for ever."""
    async with ConnectionPool(strict.key, strict.url, client_id="agent", streams_per_connection=1) as pool, \
            pool.lease(_names(1)[0]):  # the home is full: the session streams on a connection of its own
        saver = AblySaver(pool)
        session_name = _names(1)[0]
        async with ClientSession(await clients(strict, client_id="user"), session_name) as view:
            sent = await view.send("go")
            reply = " ".join(f"w{i}" for i in range(200))
            serving = asyncio.ensure_future(serve_graph(chat_graph(saver, reply, delay=0.02), sent.invocation,
                                                        client=pool))
            assert await view.wait_for(lambda: "w3" in (view.messages()[-1].content or ""), 10)
            await flood_until_failed(pool.client_for(session_name))
            result = await asyncio.wait_for(serving, 20)
            assert result.outcome == "error" and isinstance(result.error, ConnectionFailedError)
            assert result.error.code == 42924
            assert await view.wait_for(lambda: [run.status for run in view.runs()] == ["error"], 10), view.runs()
            assert "cut off" in str(view.runs()[0].error)


async def test_another_connection_takes_the_place_of_a_home_ably_ended_with_the_agents_presence(strict, clients):
    """The home stands for the pool: the agent's presence member, which tells observers that its runs are served.
    Kept after Ably ended it, every run announced later would name a member that is gone, and an observer that saw
    it present would call each of them lost at once (and the run directory, there too, would refuse every run)."""
    session_name, other_name = _names(2)
    async with ConnectionPool(strict.key, strict.url, client_id="agent", streams_per_connection=1) as pool, \
            ClientSession(await clients(strict, client_id="user"), session_name) as view:
        saver = AblySaver(pool)
        sent = await view.send("go")
        first = await serve_graph(chat_graph(saver, "one two"), sent.invocation, client=pool)
        assert first.outcome == "complete", first.error
        async with pool.lease(_names(1)[0]) as ended, pool.lease(other_name) as other:
            assert ended is pool.home and other is not ended
            await flood_until_failed(ended)
            for _ in range(100):  # the pool hears that Ably ended it: no lease needed
                if pool.home is not ended:
                    break
                await asyncio.sleep(0.05)
            assert pool.home is other and pool.clients == [other]
            assert other.connection.state == "connected"
        sent = await view.send("again")
        reply = " ".join(f"w{i}" for i in range(60))
        serving = asyncio.ensure_future(serve_graph(chat_graph(saver, reply, delay=0.02), sent.invocation,
                                                    client=pool))
        assert await view.wait_for(lambda: "w10" in (view.messages()[-1].content or ""), 10)
        assert view.lost_runs() == [], "its agent is present"
        second = await asyncio.wait_for(serving, 20)
        assert second.outcome == "complete", second.error
        assert await view.wait_for(lambda: [run.status for run in view.runs()] == ["complete", "complete"], 10)
        assert view.lost_runs() == []
        from langgraph.checkpoint.base import empty_checkpoint

        directed = {"configurable": {"thread_id": other_name, "checkpoint_ns": ""}}
        await saver.aput(directed, empty_checkpoint(), {"source": "input", "step": -1, "run_id": "after"}, {})
        listed = [found.config async for found in AblySaver(pool.home).alist(None)]
        assert other_name in {config["configurable"]["thread_id"] for config in listed}, "the run directory"


async def test_a_session_watching_presence_follows_the_home_that_takes_an_ended_ones_place(strict, clients):
    """A session watches the agents' presence on its pool's home. Left on the home Ably ended, it would hear of no
    agent leaving again: here, the crash of another agent, whose run it then ends."""
    session_name = _names(1)[0]
    other_agent = await clients(strict, client_id="agent")  # another replica
    async with ConnectionPool(strict.key, strict.url, client_id="agent", streams_per_connection=1) as pool, \
            ClientSession(await clients(strict, client_id="user"), session_name) as view:
        sent = await view.send("go")
        reply = " ".join(f"w{i}" for i in range(500))
        serving = asyncio.ensure_future(serve_graph(chat_graph(AblySaver(other_agent), reply, delay=0.02),
                                                    sent.invocation, client=other_agent))
        assert await view.wait_for(lambda: "w3" in (view.messages()[-1].content or ""), 10)
        async with pool.lease(_names(1)[0]) as home, pool.lease(session_name) as connection, \
                AgentSession(connection, session_name, history_pages=1):
            assert home is pool.home and connection is not home
            await flood_until_failed(home)
            for _ in range(100):
                if pool.home is not home:
                    break
                await asyncio.sleep(0.05)
            await flood_until_failed(other_agent)  # its presence member leaves with its connection
            assert await view.wait_for(lambda: [run.status for run in view.runs()] == ["error"], 15), view.runs()
        serving.cancel()  # its model streams on to the end of the reply, into a connection that is gone
        await asyncio.gather(serving, return_exceptions=True)


async def test_a_lone_clients_run_cut_off_so_ends_serve_graph_in_error_and_reads_as_lost(strict, clients):
    """One client, no other connection to end the run from: serve_graph still returns, and the agent's presence,
    which left with the connection, makes the run lost for every client (the next session opened ends it)."""
    agent = await clients(strict, client_id="agent")
    session_name = _names(1)[0]
    async with ClientSession(await clients(strict, client_id="user"), session_name) as view:
        sent = await view.send("go")
        reply = " ".join(f"w{i}" for i in range(200))
        serving = asyncio.ensure_future(serve_graph(chat_graph(AblySaver(agent), reply, delay=0.02), sent.invocation,
                                                    client=agent))
        assert await view.wait_for(lambda: "w3" in (view.messages()[-1].content or ""), 10)
        await flood_until_failed(agent)
        result = await asyncio.wait_for(serving, 20)
        assert result.outcome == "error" and isinstance(result.error, ConnectionFailedError)
        assert await view.wait_for(lambda: view.lost_runs() == [result.run_id], 30)


@pytest.fixture(scope="module")
def account_limited() -> Iterator[RunningServer]:
    """A server whose account accepts 30 messages a second from all connections together."""
    with spawn(args=["--inbound-rate", "0", "--account-rate", "30"]) as running:
        yield running


async def test_an_accounts_rate_refusals_are_backed_off_and_counted_and_every_reply_is_stored_whole(
        account_limited, clients):
    """Over the account's rate, Ably refuses publishes (42910). Each is counted, publishing pauses, and what was
    refused is sent again; a refused append is repaired by an update when its stream ends, so every run completes
    and the session's history holds every reply whole (a live reader keeps the gap a refused append left)."""
    replies = {name: " ".join(f"{name[-4:]}-{i}" for i in range(40)) for name in _names(4)}
    refused_before = ledger.refusals().get(42910, 0)
    async with ConnectionPool(account_limited.key, account_limited.url, client_id="agent",
                              streams_per_connection=1) as pool:
        saver = AblySaver(pool)

        async def converse(name: str) -> str:
            user = await clients(account_limited, client_id="user")
            async with ClientSession(user, name) as view:
                sent = await view.send("go")
                result = await serve_graph(chat_graph(saver, replies[name], delay=0.002), sent.invocation,
                                           client=pool, coalesce_window=0)
                assert result.outcome == "complete", result.error
            async with ClientSession(await clients(account_limited, client_id="later"), name) as later:
                assert await later.wait_for(lambda: len(later.messages()) == 2, 10)
                return later.messages()[-1].content

        assert await asyncio.gather(*(converse(name) for name in replies)) == list(replies.values())
    assert ledger.refusals().get(42910, 0) > refused_before, "the account's limit was met, and it was counted"


async def test_a_savers_thread_follows_its_session_and_moves_when_that_connection_closes(server):
    from langgraph.checkpoint.base import empty_checkpoint

    first, second = _names(2)
    async with ConnectionPool(server.key, server.url, streams_per_connection=1, idle_close_s=0.2) as pool:
        saver = AblySaver(pool)
        config = {"configurable": {"thread_id": second, "checkpoint_ns": ""}}
        async with pool.lease(first), pool.lease(second) as connection:
            assert connection is not pool.home
            stored = await saver.aput(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
            assert saver._thread(second).log.channel.ably is connection
        await asyncio.sleep(0.6)
        assert pool.clients == [pool.home]
        assert (await saver.aget_tuple(stored)).config == stored, "read again through the open connection"
        assert saver._thread(second).log.channel.ably is pool.home


async def test_a_pool_given_the_accounts_rate_keeps_to_it_and_is_never_refused():
    """With `account_rate`, the pool's connections share one budget: no refusal, and live readers see every reply
    whole as it streams."""
    replies = {name: " ".join(f"{name[-4:]}-{i}" for i in range(40)) for name in _names(4)}
    refused_before = ledger.refusals().get(42910, 0)
    with spawn(args=["--inbound-rate", "0", "--account-rate", "30"]) as account_limited:  # its own, full budget
        await _converse_within(account_limited, replies)
    assert ledger.refusals().get(42910, 0) == refused_before


async def _converse_within(account_limited: RunningServer, replies: dict[str, str]) -> None:
    """Every client closes before the server stops (a client of a stopped server would wait to close)."""
    key, url = account_limited.key, account_limited.url
    async with connect(key, url, client_id="user") as user, \
            ConnectionPool(key, url, client_id="agent", streams_per_connection=1, account_rate=30) as pool:
        saver = AblySaver(pool)

        async def converse(name: str) -> str:
            async with ClientSession(user, name) as view:
                sent = await view.send("go")
                result = await serve_graph(chat_graph(saver, replies[name], delay=0.002), sent.invocation,
                                           client=pool, coalesce_window=0)
                assert result.outcome == "complete", result.error
                assert await view.wait_for(lambda: view.messages()[-1].content == replies[name], 20)
                return view.messages()[-1].content

        assert await asyncio.gather(*(converse(name) for name in replies)) == list(replies.values())


ARRIVE_AS_A_CONNECTION_OPENS = '''
import asyncio, sys
from langchain_ably_transport import ConnectionPool

async def main(url, key):
    async with ConnectionPool(key, url, max_connections=5, streams_per_connection=1) as pool:
        async with pool.lease("first"):
            arrived = asyncio.Event()
            open_connection = pool._open

            async def open_then_wake():
                connection = await open_connection()
                arrived.set()  # the late sessions resume before the open's own callbacks run
                return connection

            pool._open = open_then_wake
            placed = []

            async def late(name):
                await arrived.wait()
                async with pool.lease(name) as client:
                    placed.append(client)
                    await asyncio.sleep(0.2)

            late_sessions = asyncio.gather(late("late-1"), late("late-2"))
            async with pool.lease("second") as client:
                placed.append(client)
                await asyncio.wait_for(late_sessions, 10)
            print(len(placed), "sessions on", len({id(c) for c in placed}), "connections", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
'''


def test_sessions_arriving_as_a_connection_finishes_opening_are_each_placed(server):
    """Every connection full, and two sessions arrive in the loop step in which the connection opened for another
    finishes opening: the first takes it, the second opens the next. The pool once spun there, never yielding,
    with the agent at 100% of a core (the 200-session load benchmark)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", ARRIVE_AS_A_CONNECTION_OPENS, server.url, server.key],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "3 sessions on 3 connections"


async def test_a_pool_is_one_agent_instance_present_and_watched_on_its_home_connection(server, clients):
    """Runs served on any of the pool's connections name one instance, present once, on the home connection; only
    the home follows the agents' presence. A member and a watch per connection would hold, on each, the presence of
    every other: quadratic in the connections."""
    names = _names(3)
    async with ConnectionPool(server.key, server.url, client_id="agent", streams_per_connection=1) as pool, \
            contextlib.AsyncExitStack() as leases:
        placed = [await leases.enter_async_context(pool.lease(name)) for name in names]
        assert len({id(client) for client in placed}) == 3
        saver = AblySaver(pool)
        for name in names:
            async with ClientSession(await clients(server, client_id="user"), name) as view:
                sent = await view.send("hello")
                result = await serve_graph(chat_graph(saver, "hi"), sent.invocation, client=pool)
                assert result.outcome == "complete", result.error
                assert view.core.liveness.is_present(result.run_id), "its instance is present"

        observer = await clients(server, client_id="observer")
        members = await observer.channels.get(LIVENESS_CHANNEL).presence.get()
        agents = [member for member in members if member.client_id == "agent"]
        assert [member.connection_id for member in agents] == [pool.home.connection.connection_manager.connection_id]
        assert [LIVENESS_CHANNEL in client.channels for client in pool.clients] == [True, False, False]


async def test_a_pools_connections_are_not_echoed_and_its_sessions_fold_what_they_publish(server, clients):
    """Ably sends a pool's connections none of their own messages (`echo=false`): the agent's session folds each
    at its ACK, and a view of the session on the agent's connection, open while it serves, shows every reply."""
    session_name = _names(1)[0]
    async with ConnectionPool(server.key, server.url, client_id="agent") as pool, \
            pool.lease(session_name, streaming=False) as agent, \
            ClientSession(agent, session_name, trusted_agents=["agent"]) as agents_view, \
            ClientSession(await clients(client_id="user"), session_name) as view:
        assert pool.clients and not any(echoes_own_messages(client) for client in pool.clients)
        saver = AblySaver(pool)
        for turn, reply in enumerate(("the first reply", "the second reply")):
            sent = await view.send(f"turn {turn}")
            assert (await serve_graph(chat_graph(saver, reply), sent.invocation, client=pool)).outcome == "complete"
            assert pool.client_for(session_name) is agent
        expected = ["turn 0", "the first reply", "turn 1", "the second reply"]
        assert await agents_view.wait_for(lambda: [m.content for m in agents_view.messages()] == expected, 5), \
            [m.content for m in agents_view.messages()]
        assert [m.content for m in view.messages()] == expected


@pytest.mark.parametrize(("transport_params", "deliveries"), [(None, 4), ({"appendRollupWindow": 40}, 3)])
async def test_a_pools_appends_are_not_rolled_up_by_ably_unless_the_caller_asks(server, clients, transport_params,
                                                                                  deliveries):
    """The encoder is the rollup: Ably's own window on a pool's connection only held back an append that reached it
    early. Three appends sent at once reach a subscriber as three; under a 40 ms window the first goes out at once
    and the next two are held and merged."""
    session_name = _names(1)[0]
    received = Collector()
    await (await clients()).channels.get(session_name).subscribe(received.add)
    options = {} if transport_params is None else {"transport_params": transport_params}
    async with ConnectionPool(server.key, server.url, **options) as pool, pool.lease(session_name) as agent:
        channel = agent.channels.get(session_name)
        serial = (await channel.publish("reply", "")).serials[0]
        await asyncio.gather(*(channel.append_message(Message(serial=serial, data=part)) for part in "abc"))
        await eventually(lambda: "".join(received.data) == "abc")
        await asyncio.sleep(0.1)  # past any window: nothing more arrives
    assert len(received.messages) == deliveries, received.data
