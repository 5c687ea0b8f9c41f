"""An agent process serving one thread in the agent streaming protocol, until SIGTERM or killed.

    python -m tests.graph.protocol_agent URL KEY THREAD [REPLY] [DELAY] [APPROVE]

It prints `ready` once the thread's commands are heard. The tests start one, stop it at an interrupt, and start
another (a fresh process with nothing but the channel) to serve the answer.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from langchain_ably_transport import AblySaver, connect
from langchain_ably_transport.graph import serve_thread

from .graphs import protocol_graph

AGENT_ID = "protocol-agent"


async def _main(url: str, key: str, thread: str, reply: str = "Happy to help with that.", delay: str = "0",
                approve: str = "1") -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with connect(key, url, client_id=AGENT_ID) as client:
        graph = protocol_graph(AblySaver(client), reply, delay=float(delay), approve=approve == "1")
        await serve_thread(graph, thread, client=client, stop=stop, on_ready=lambda: print("ready", flush=True))


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:7]))
