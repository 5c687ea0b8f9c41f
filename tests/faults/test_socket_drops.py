"""Dropped sockets on both sides while tokens stream and checkpoints are written: every client converges on
exactly what the agent produced, checked word by word against the agent's own record (0 lost, 0 duplicated).

130 drops in all: 60 while runs stream (the agent and two clients), 40 while a graph served by `serve_graph`
streams and its `AblySaver` writes checkpoints, and 30 while an agent whose connection Ably does not echo streams.
Drops of a publisher wait for messages in flight (pipelined appends or records written and not yet ACKed), where a
resend would lose or duplicate them.
"""

from __future__ import annotations

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.checkpoint.saver import state_channel
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.session import AgentSession

from ..graph.graphs import chat_graph
from .drops import (
    LOOP_STEPS,
    Dropper,
    assert_shows_exactly,
    assistant_texts,
    duplicated_records,
    loop_graph,
    model_chunks,
    runs_settled,
    unique_words,
)

STREAM_DROPS = 60
GRAPH_DROPS = 40
ECHOLESS_DROPS = 30
WORDS_PER_REPLY = 150


async def _answer(agent, invocation, text: str, record: list[str], coalesce_window: float) -> str:
    async with AgentSession(agent, invocation.session_name, coalesce_window=coalesce_window) as session:
        run = await session.create_run(invocation)
        await run.start()
        result = await run.pipe(model_chunks(text, record, delay=0.001))
        await run.end(result.reason)
        return result.reason


async def _replies_through_drops(agent, user: ClientSession, dropper: Dropper) -> list[str]:
    """Questions from `user` answered by `agent` while `dropper` drops sockets, until its budget is spent; the text
    of each reply as the agent produced it."""
    produced: list[str] = []
    dropper.start()
    try:
        while dropper.drops < dropper.budget:
            record: list[str] = []
            sent = await user.send(f"question {len(produced)}")
            # Odd runs coalesce (40 ms windows), even ones send an append per token.
            window = 0.04 if len(produced) % 2 else 0.0
            reason = await _answer(agent, sent.invocation, unique_words(WORDS_PER_REPLY), record, window)
            assert reason == "complete"
            produced.append("".join(record))
    finally:
        await dropper.stop()
    return produced


async def _assert_all_show_exactly(sessions: tuple[ClientSession, ...], produced: list[str]) -> None:
    for session in sessions:
        assert await session.wait_for(lambda s=session: runs_settled(s, len(produced)), timeout=30)
        assert_shows_exactly(assistant_texts(session), produced)


async def test_streamed_tokens_survive_socket_drops_on_both_sides(any_clients, clients, channel_name):
    """With clients from `connect()` and with clients the user built (`any_clients`)."""
    agent = await any_clients(client_id="agent")
    connections = {"agent": agent, "alice": await any_clients(client_id="alice"),
                   "bob": await any_clients(client_id="bob")}
    dropper = Dropper(connections, budget=STREAM_DROPS, interval=0.04, seed=1)
    async with ClientSession(connections["alice"], channel_name) as alice, \
            ClientSession(connections["bob"], channel_name) as bob:
        produced = await _replies_through_drops(agent, alice, dropper)
        await _assert_all_show_exactly((alice, bob), produced)
    async with ClientSession(await clients(), channel_name) as late:  # history agrees with live delivery
        assert_shows_exactly(assistant_texts(late), produced)
    assert dropper.drops == STREAM_DROPS and set(dropper.by_target) == set(connections)
    assert dropper.in_flight_at_drop["agent"] > 0, "some drops cut the agent's pipelined appends short"


async def test_a_served_graph_and_its_checkpoints_survive_socket_drops(clients, channel_name):
    agent, user = await clients(client_id="agent"), await clients(client_id="alice")
    dropper = Dropper({"agent": agent, "alice": user}, budget=GRAPH_DROPS, interval=0.04, seed=2)
    replies = [unique_words(60) for _ in range(40)]
    graph = chat_graph(AblySaver(agent), *replies, delay=0.001)
    loop_thread = {"configurable": {"thread_id": f"{channel_name}-loop"}}
    turns = 0
    async with ClientSession(user, channel_name) as alice:
        dropper.start()
        try:
            while dropper.drops < GRAPH_DROPS:
                sent = await alice.send(f"turn {turns}")
                assert (await serve_graph(graph, sent.invocation, client=agent)).outcome == "complete"
                await loop_graph(AblySaver(agent)).ainvoke({"steps": []}, {**loop_thread, "recursion_limit": 100})
                turns += 1
        finally:
            await dropper.stop()
        assert await alice.wait_for(lambda: runs_settled(alice, turns), timeout=30)
        assert_shows_exactly(assistant_texts(alice), replies[:turns])
    reader = await clients()  # a cold saver on a connection that never dropped
    state = await chat_graph(AblySaver(reader)).aget_state({"configurable": {"thread_id": channel_name}})
    assert [m.content for m in state.values["messages"]] == [t for i in range(turns) for t in (f"turn {i}", replies[i])]
    loops = loop_graph(AblySaver(reader))
    assert (await loops.aget_state(loop_thread)).values["steps"] == list(range(LOOP_STEPS))
    history = [s async for s in loops.aget_state_history(loop_thread)]
    assert len(history) == turns * (LOOP_STEPS + 2), "every superstep's checkpoint, once"
    for thread in (channel_name, f"{channel_name}-loop"):
        assert await duplicated_records(reader, state_channel(thread)) == 0
    assert dropper.drops == GRAPH_DROPS and dropper.in_flight_at_drop["agent"] > 0


async def test_an_agent_without_echo_folds_exactly_what_it_published_through_socket_drops(clients, channel_name):
    """A pool's connections ask Ably not to echo (`echo=false`), and a session on one folds what it publishes at
    its ACK. Through drops (an attach resumed after one replays what came since, the agent's own messages among
    them, before or after their ACKs), the agent's own view shows each reply exactly once, and so does the view a
    later session opens from what the closed one kept."""
    agent = await clients(client_id="agent", transport_params={"echo": "false"})
    connections = {"agent": agent, "alice": await clients(client_id="alice")}
    dropper = Dropper(connections, budget=ECHOLESS_DROPS, interval=0.04, seed=3)
    async with ClientSession(connections["alice"], channel_name) as alice, \
            ClientSession(agent, channel_name, trusted_agents=["agent"]) as agents_view:
        produced = await _replies_through_drops(agent, alice, dropper)
        await _assert_all_show_exactly((alice, agents_view), produced)
    async with ClientSession(agent, channel_name, trusted_agents=["agent"]) as reopened:
        assert_shows_exactly(assistant_texts(reopened), produced)
    assert dropper.in_flight_at_drop["agent"] > 0
