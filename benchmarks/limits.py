"""What meeting Ably's limits costs: a 20 MB graph state, and more streams than a connection's publish rate.

1. A graph state holding 20 MB of incompressible bytes, through `AblySaver` on one connection, with LangGraph's
   default durability (the node's write and the checkpoint hold the same bytes, stored once): time to write
   it (the run) and to read it back from a fresh saver. Under Ably's 50 msg/s a connection's publishes are
   paced, so the write is bound by chunks / rate; the floor printed is that quotient. BASELINE: the same
   with the publish rate lifted (`--inbound-rate 0`), measured in the same run.
2. Streams over a connection's rate: `--streams` graph runs at once on one agent connection (`serve_graph`,
   `AblySaver` on the same connection), each streaming 200 tokens at 100 tokens/s; token latency from the
   model emitting a token to a client receiving it (p50/p99), and whether every token arrived. BASELINE:
   one run alone on the connection.

Reproduce (about 1 minute):

    .venv/bin/python benchmarks/limits.py [--streams 8]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import time
import uuid
import zlib
from contextlib import AsyncExitStack
from typing import Any, TypedDict

from common import BenchmarkError, load_average, load_line, percentile, positive, quiet_sdk_logs
from langgraph.graph import END, START, StateGraph
from load import StampingModel, UserFigures, follow, graph_on

from langchain_ably_transport import AblySaver, ClientSession, connect
from langchain_ably_transport.checkpoint.log import FRAME_OVERHEAD
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.sdk.pacer import DEFAULT_INBOUND_RATE, RATE_SHARE

STATE_BYTES = 20 * 1024 * 1024
STREAM_TOKENS, STREAM_RATE = 200, 100.0


class BlobState(TypedDict):
    blob: bytes


def blob_graph(saver: AblySaver, size: int) -> Any:
    graph = StateGraph(BlobState)
    graph.add_node("make", lambda state: {"blob": os.urandom(size)})
    graph.add_edge(START, "make")
    graph.add_edge("make", END)
    return graph.compile(checkpointer=saver)


async def large_state(url: str, key: str) -> tuple[float, float]:
    """Seconds to write the 20 MB state (the graph's run) and to read it back cold."""
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    async with connect(key, url) as writer, connect(key, url) as reader:
        started = time.perf_counter()
        made = await blob_graph(AblySaver(writer), STATE_BYTES).ainvoke({"blob": b""}, config)
        written = time.perf_counter() - started
        started = time.perf_counter()
        state = await blob_graph(AblySaver(reader), 0).aget_state(config)
        read = time.perf_counter() - started
    if state.values["blob"] != made["blob"]:
        raise BenchmarkError("the state read back is not the state written")
    return written, read


async def concurrent_streams(url: str, key: str, streams: int) -> UserFigures:
    figures = UserFigures()
    async with AsyncExitStack() as stack:
        agent = await stack.enter_async_context(connect(key, url, client_id="agent"))
        user = await stack.enter_async_context(connect(key, url, client_id="user"))
        graph = graph_on(AblySaver(agent), StampingModel(tokens=STREAM_TOKENS, rate=STREAM_RATE))
        views = [await stack.enter_async_context(ClientSession(user, f"conversations:{uuid.uuid4().hex[:10]}"))
                 for _ in range(streams)]
        sent = [await view.send("go") for view in views]
        served = [asyncio.ensure_future(serve_graph(graph, s.invocation, client=agent)) for s in sent]
        run_ids = [await s.run_id() for s in sent]
        await asyncio.gather(*(follow(view, run_id, STREAM_TOKENS, figures)
                               for view, run_id in zip(views, run_ids, strict=True)))
        outcomes = [result.outcome for result in await asyncio.gather(*served)]
    figures.errors += [f"run ended {outcome}" for outcome in outcomes if outcome != "complete"]
    return figures


def _latency(figures: UserFigures) -> tuple[float, float]:
    ordered = sorted(figures.latencies_ms)
    return statistics.median(ordered), percentile(ordered, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=positive, default=8)
    streams = parser.parse_args().streams
    quiet_sdk_logs()
    load_before = load_average()
    with spawn() as limited, spawn(args=["--inbound-rate", "0"]) as lifted:
        state = {"Ably's limits": asyncio.run(large_state(limited.url, limited.key)),
                 "BASELINE rate lifted": asyncio.run(large_state(lifted.url, lifted.key))}
        alone = asyncio.run(concurrent_streams(limited.url, limited.key, 1))
        together = asyncio.run(concurrent_streams(limited.url, limited.key, streams))
    chunks = math.ceil(len(zlib.compress(os.urandom(STATE_BYTES), 1)) / (65536 - FRAME_OVERHEAD))
    floor = chunks / (DEFAULT_INBOUND_RATE * RATE_SHARE)
    print("Ably's limits on the dev server: 64 KiB messages, 50 msg/s per connection (paced at "
          f"{DEFAULT_INBOUND_RATE * RATE_SHARE:g}/s)")
    print(load_line(load_before))
    print(f"\n1. a 20 MB incompressible graph state through AblySaver: {chunks} chunk messages, "
          f"floor at the paced rate {floor:.1f} s")
    base_write, base_read = state["BASELINE rate lifted"]
    for name, (write, read) in state.items():
        print(f"   {name:<22} write (the run) {write:6.2f} s ({write / base_write:5.2f}x)   "
              f"cold read {read:5.2f} s ({read / base_read:5.2f}x)")
    print(f"\n2. graph runs streaming {STREAM_TOKENS} tokens at {STREAM_RATE:g}/s each, on one agent connection "
          "(with their checkpoints)")
    base_p99 = _latency(alone)[1]
    for name, figures in (("BASELINE 1 run", alone), (f"{streams} runs at once", together)):
        p50, p99 = _latency(figures)
        print(f"   {name:<22} tokens {len(figures.latencies_ms):>5}   runs exact {figures.runs}/"
              f"{figures.runs + len(figures.errors)}   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms "
              f"({p99 / base_p99:5.2f}x)")
    for figures in (alone, together):
        if figures.errors:
            print(f"   errors: {figures.errors[:5]}")


if __name__ == "__main__":
    main()
