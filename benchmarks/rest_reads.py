"""A history page read over REST: the CPU it costs the reader, on the client's kept connections against the SDK's way.

An agent reads history twice a run: its session's channel when the session opens (`client.request`, as
`session.channel.HistoryPages` reads it) and its thread's channel before the graph runs (`channel.history`, as
`checkpoint.log.ChannelLog` reads it). ably-python sends each through httpx; the package sends them on keep-alive
HTTP/1.1 connections of the client's own (`sdk/rest_reads.py`, fix 21 in `sdk/fixes.py`). Two connected clients of
one dev server read the same page of 5 messages: one as the package does, the other with its kept connections
switched off, so that every read goes the SDK's way. The reads alternate between them, so a change in the
machine's load touches both alike. Each sample is one read: its CPU (`time.thread_time()`, this process; the dev
server is another) and its time on the clock.
BASELINE: the SDK's way (httpx), measured in the same run.

Reproduce, from the project root (about 10 s):

    .venv/bin/python benchmarks/rest_reads.py [--samples 400]
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from common import BenchmarkError, cell, load_line, percentile, ratio, run_sampled

from langchain_ably_transport import connect
from langchain_ably_transport.devserver import spawn

MESSAGES = 5
WARM_UP = 20
READ_TIMEOUT_S = 30.0
WAYS = ("SDK (httpx)", "kept connections")
Read = Callable[[Any], Awaitable[int]]


def readers(channel_name: str) -> dict[str, Read]:
    """The two reads an agent makes, each returning the messages the page held."""
    path = f"/channels/{urllib.parse.quote(channel_name, safe='')}/messages"

    async def session_read(client: Any) -> int:
        page = await client.request("GET", path, "5", params={"limit": 100, "direction": "backwards"})
        return len(page.items)

    async def thread_read(client: Any) -> int:
        return len((await client.channels.get(channel_name).history(direction="backwards", limit=5)).items)

    return {"client.request (a session's)": session_read, "channel.history (a thread's)": thread_read}


async def one_read(read: Read, client: Any) -> tuple[float, float]:
    """CPU and clock ms of one read."""
    cpu, clock = time.thread_time(), time.perf_counter()
    held = await asyncio.wait_for(read(client), READ_TIMEOUT_S)
    cpu, clock = time.thread_time() - cpu, time.perf_counter() - clock
    if held != MESSAGES:
        raise BenchmarkError(f"a page held {held} messages, not {MESSAGES}")
    return cpu * 1e3, clock * 1e3


async def measure(samples: int) -> dict[tuple[str, str], list[tuple[float, float]]]:
    with spawn(args=["--inbound-rate", "0"]) as server:
        async with connect(server.key, server.url) as kept, connect(server.key, server.url) as sdk:
            sdk.http._Http__client.reads = None  # every read the SDK's way
            if kept.http._Http__client.reads is None:
                raise BenchmarkError("the package's client has no kept connections (a proxy in the environment?)")
            channel_name = f"bench:{uuid.uuid4().hex[:8]}"
            for n in range(MESSAGES):
                await kept.channels.get(channel_name).publish("n", f"message {n}")
            clients = dict(zip(WAYS, (sdk, kept), strict=True))
            times: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for name, read in readers(channel_name).items():
                for way, client in clients.items():
                    for _ in range(WARM_UP):
                        await one_read(read, client)
                    times[(name, way)] = []
            gc.collect()
            gc.freeze()
            for _ in range(samples):
                for name, read in readers(channel_name).items():
                    for way, client in clients.items():
                        times[(name, way)].append(await one_read(read, client))
            return times


def report(times: dict[tuple[str, str], list[tuple[float, float]]], load_before: str) -> str:
    samples = len(next(iter(times.values())))
    lines = [f"A history page of {MESSAGES} messages read over REST from the dev server, {samples} reads each way, "
             f"alternating; baseline: {WAYS[0]}", load_line(load_before), "",
             f"{'read':<30}{'way':<18}{'CPU p50 ms':>11}{'CPU p99 ms':>11}{'vs base':>9}{'clock p50':>10}"
             f"{'clock p99':>10}{'vs base':>9}"]
    for name in dict.fromkeys(name for name, _ in times):
        base_cpu = statistics.median(cpu for cpu, _ in times[(name, WAYS[0])])
        base_clock = statistics.median(clock for _, clock in times[(name, WAYS[0])])
        for way in WAYS:
            cpus = sorted(cpu for cpu, _ in times[(name, way)])
            clocks = sorted(clock for _, clock in times[(name, way)])
            lines.append(f"{name:<30}{way:<18}{cell(statistics.median(cpus), '.3f', 11)}"
                         f"{cell(percentile(cpus, 99), '.3f', 11)}{ratio(statistics.median(cpus), base_cpu):>9}"
                         f"{cell(statistics.median(clocks), '.3f', 10)}{cell(percentile(clocks, 99), '.3f', 10)}"
                         f"{ratio(statistics.median(clocks), base_clock):>9}")
    return "\n".join(lines)


def main() -> None:
    run_sampled(__doc__.split("\n\n")[0], 400, measure, report)


if __name__ == "__main__":
    main()
