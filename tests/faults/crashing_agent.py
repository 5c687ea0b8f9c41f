"""A worker process that serves one invocation of a slow chat graph, to be killed with -9 mid-stream; its reply
starts with the step's idempotency key."""

from __future__ import annotations

import asyncio
import sys

from langchain_ably_transport import AblySaver, connect
from langchain_ably_transport.graph import idempotency_key, serve_graph
from langchain_ably_transport.wire.invocation import Invocation

from ..graph.graphs import chat_builder

AGENT_ID = "graph-worker"
ENDLESS_REPLY = " ".join(f"word{i}" for i in range(5000))


async def _serve(url: str, key: str, invocation: str) -> None:
    async with connect(key, url, client_id=AGENT_ID) as client:
        graph = chat_builder(lambda state: f"{idempotency_key()} {ENDLESS_REPLY}", delay=0.01).compile(
            checkpointer=AblySaver(client))
        await serve_graph(graph, Invocation.from_json(invocation), client=client)


if __name__ == "__main__":
    asyncio.run(_serve(*sys.argv[1:4]))
