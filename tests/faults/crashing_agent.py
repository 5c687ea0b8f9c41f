"""A worker process to be killed with -9 mid-run. Its reply starts with the step's idempotency key.

    python -m tests.faults.crashing_agent URL KEY ARG [MODE]

MODE `serve` (the default): serve the invocation ARG (JSON) with a slow, endless reply. `start`: start the run of
the invocation ARG, then wait forever without running the graph (a process that dies before the graph's first
checkpoint). `watch`: watch the session ARG and adopt its lost runs, answering with the endless reply.
`serve-pooled`: `serve` on the second connection of a `ConnectionPool` (its first is busy with another session).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from langchain_ably_transport import AblySaver, ConnectionPool, connect
from langchain_ably_transport.graph import idempotency_key, serve_graph, watch_session
from langchain_ably_transport.session import AgentSession
from langchain_ably_transport.wire.invocation import Invocation

from ..graph.graphs import chat_builder

AGENT_ID = "graph-worker"
ENDLESS_REPLY = " ".join(f"word{i}" for i in range(5000))


def _endless(client: Any) -> Any:
    return chat_builder(lambda state: f"{idempotency_key()} {ENDLESS_REPLY}", delay=0.01).compile(
        checkpointer=AblySaver(client))


async def _serve(client: Any, invocation: str) -> None:
    await serve_graph(_endless(client), Invocation.from_json(invocation), client=client)


async def _start(client: Any, invocation: str) -> None:
    session = await AgentSession(client, Invocation.from_json(invocation).session_name).__aenter__()
    run = await session.create_run(Invocation.from_json(invocation))
    await run.start()
    print("started", flush=True)
    await asyncio.Event().wait()


async def _watch(client: Any, session_name: str) -> None:
    await watch_session(_endless(client), session_name, client=client, watch_s=600)


MODES = {"serve": _serve, "start": _start, "watch": _watch}


async def _main(url: str, key: str, arg: str, mode: str = "serve") -> None:
    if mode == "serve-pooled":
        async with ConnectionPool(key, url, client_id=AGENT_ID, streams_per_connection=1) as pool, \
                pool.lease("another session"):
            await _serve(pool, arg)
        return
    async with connect(key, url, client_id=AGENT_ID) as client:
        await MODES[mode](client, arg)


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:5]))
