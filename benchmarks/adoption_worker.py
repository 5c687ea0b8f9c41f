"""The agent process `adoption.py` kills with -9: it serves several invocations at once, each an endless reply.

    python benchmarks/adoption_worker.py <url> <key> <token delay s>   (the invocations, a JSON list, on stdin)

It connects with the crash tests' agent clientId (so that the benchmark's watcher trusts its runs), reads one
line from stdin (the invocations, which the benchmark writes while this process imports), and serves each with
`serve_graph` concurrently on its one connection, each run streaming a reply of 5,000 words until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from langchain_ably_transport import AblySaver, connect
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire.invocation import Invocation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the crash test's agent id and reply, and the chat graph's builder
from tests.faults.crashing_agent import AGENT_ID, ENDLESS_REPLY  # noqa: E402
from tests.graph.graphs import chat_builder  # noqa: E402


async def _serve(url: str, key: str, delay_s: float) -> None:
    async with connect(key, url, client_id=AGENT_ID) as client:
        line = await asyncio.to_thread(sys.stdin.readline)
        invocations = [Invocation.from_json(entry) for entry in json.loads(line)]
        graph = chat_builder(lambda state: ENDLESS_REPLY, delay=delay_s).compile(checkpointer=AblySaver(client))
        await asyncio.gather(*(serve_graph(graph, invocation, client=client) for invocation in invocations))


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2], float(sys.argv[3])))
