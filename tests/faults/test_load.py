"""One agent client serving fifty sessions with overlapping runs: all complete, exactly, and nothing is kept.

The short version of `benchmarks/load.py` (which reports latencies and memory over minutes): fifty users on
five client connections talk to one agent connection, a few turns each, runs of different sessions overlapping;
then fifty new users do the same. Memory is checked by what the agent still holds after each wave (sessions,
runs, encoders, tasks, channels), not by its RSS: counts are exact where bytes are noisy.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import uuid

from langchain_ably_transport import AblySaver, AgentSession, ClientSession, Run
from langchain_ably_transport.codec import MessageEncoder
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.session.core import SessionCore
from langchain_ably_transport.wire import names

from ..graph.graphs import chat_graph

SESSIONS = 50
USER_CONNECTIONS = 5
TURNS = 2
WAVES = 2  # of new sessions: the second must leave the agent holding no more than the first
LINGER_S = 1.0  # the agent's sessions stay attached this long after a run, then let go of everything


def _question(session: str, turn: int) -> str:
    return f"question {turn} of {session}"


def _reply(session: str, turn: int) -> str:
    return " ".join([f"answer {turn} to {session}:", *(f"w{i}" for i in range(30))])


def _held_by_the_agent(agent) -> dict[str, int]:
    gc.collect()
    live = gc.get_objects()
    return {
        "session cores": sum(key[0] == id(agent) for key in SessionCore._shared),
        "agent sessions": sum(isinstance(o, AgentSession) for o in live),
        "runs": sum(isinstance(o, Run) for o in live),
        "encoders": sum(isinstance(o, MessageEncoder) for o in live),
        "channels": len(list(agent.channels)),
        "tasks": len(asyncio.all_tasks()),
    }


def _completed(view: ClientSession) -> int:
    return sum(r.status == names.RunStatus.COMPLETE for r in view.runs())


async def _converse(user, session: str, graph, agent, served: list[asyncio.Future], rng: random.Random) -> list[str]:
    """A user's turns: send, have the agent serve it (as its HTTP endpoint would), wait for the reply."""
    async with ClientSession(user, session) as view:
        for turn in range(TURNS):
            await asyncio.sleep(rng.uniform(0, 0.5))  # reading and typing: runs of sessions overlap
            sent = await view.send(_question(session, turn))
            served.append(asyncio.ensure_future(serve_graph(graph, sent.invocation, client=agent,
                                                              session_linger_s=LINGER_S)))
            done = await view.wait_for(lambda n=turn + 1: _completed(view) == n, 60)
            assert done, f"{session} turn {turn}: {[r.status for r in view.runs()]}"
        return [m.content for m in view.messages()]


async def test_fifty_sessions_with_overlapping_runs_complete_exactly_and_the_agent_keeps_nothing(
        server, clients, caplog):
    caplog.set_level(logging.WARNING)
    agent = await clients(client_id="agent")
    users = [await clients(client_id=f"user-{i}") for i in range(USER_CONNECTIONS)]
    saver = AblySaver(agent, cached_threads=SESSIONS)  # one saver, a thread per session, the last fifty kept warm
    rng = random.Random(8)
    held = []
    for _ in range(WAVES):
        sessions = [f"conversations:load-{uuid.uuid4().hex[:8]}" for _ in range(SESSIONS)]
        # A graph per session, its model's replies in turn order.
        graphs = {s: chat_graph(saver, *(_reply(s, t) for t in range(TURNS)), delay=0.01) for s in sessions}
        served: list[asyncio.Future] = []
        views = await asyncio.gather(*(_converse(users[i % USER_CONNECTIONS], s, graphs[s], agent, served, rng)
                                       for i, s in enumerate(sessions)))
        assert [r.outcome for r in await asyncio.gather(*served)] == ["complete"] * SESSIONS * TURNS
        for session, view in zip(sessions, views, strict=True):
            assert view == [text for t in range(TURNS) for text in (_question(session, t), _reply(session, t))]
        await asyncio.sleep(LINGER_S + 0.5)
        held.append(_held_by_the_agent(agent))
    assert held[0] == held[1], "fifty more sessions leave the agent holding no more than the first fifty did"
    assert held[1]["channels"] == SESSIONS + 2, "the warm threads' state channels, the run directory, the liveness one"
    assert {k: v for k, v in held[1].items() if k not in ("channels", "tasks")} == dict.fromkeys(
        held[1].keys() - {"channels", "tasks"}, 0)
    warnings = [r.getMessage() for r in caplog.records
                if r.name.startswith("langchain_ably_transport") and r.levelno >= logging.WARNING]
    assert warnings == []
