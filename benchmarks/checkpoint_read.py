"""The latest-checkpoint read alone, cold, on a thread of 10 checkpoints against one of 1,000: is it flat?

A cold read is what a process that did not write the thread does first (another worker resuming it, a restarted
agent): page back from the channel's newest message until the newest checkpoint is held, then fetch the values it
names. Its cost must follow the state's size, not the thread's length. Both threads hold the same constant-size
state (the last 20 messages, or all 10, and three small channels: `checkpoint_saver.py`'s cold-read threads), so
their length is nearly all that differs.

Each sample is one `aget_tuple` of the latest checkpoint by a new `AblySaver` (nothing cached) on a client that is
already connected: the read alone, without connecting. The two threads' samples alternate, so a change in the
machine's load touches both alike. The dev server keeps its data in memory (`--inbound-rate 0`).
BASELINE: the thread of 10 checkpoints. Target (the scale issue): 1,000 / 10 within 1.2x at the median.

Reproduce, from the project root (about 30 s):

    .venv/bin/python benchmarks/checkpoint_read.py [--samples 300]
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import uuid

from checkpoint_saver import COLD_WINDOW, build_thread
from common import BenchmarkError, load_line, percentile, run_sampled

from langchain_ably_transport import AblySaver, connect
from langchain_ably_transport.devserver import spawn

SIZES = (10, 1000)
TARGET = 1.2
READ_TIMEOUT_S = 30.0


async def cold_read_ms(client: object, thread_id: str, size: int) -> float:
    saver = AblySaver(client)  # type: ignore[arg-type]
    started = time.perf_counter()
    latest = await asyncio.wait_for(saver.aget_tuple({"configurable": {"thread_id": thread_id}}), READ_TIMEOUT_S)
    elapsed = (time.perf_counter() - started) * 1e3
    if latest is None or len(latest.checkpoint["channel_values"]["messages"]) != min(size, COLD_WINDOW):
        raise BenchmarkError(f"the latest checkpoint of {thread_id} did not read back whole")
    return elapsed


async def measure(samples: int) -> dict[int, list[float]]:
    with spawn(args=["--inbound-rate", "0"]) as server:
        async with connect(server.key, server.url) as client:
            threads = {size: f"read-{size}-{uuid.uuid4().hex[:8]}" for size in SIZES}
            writer = AblySaver(client)
            for size, thread_id in threads.items():
                await build_thread(writer, thread_id, size)
            await writer.aflush()
            for size in SIZES:  # one unmeasured read each: the SDK imports what it uses on first use
                await cold_read_ms(client, threads[size], size)
            gc.collect()
            gc.freeze()
            times: dict[int, list[float]] = {size: [] for size in SIZES}
            for _ in range(samples):
                for size in SIZES:
                    times[size].append(await cold_read_ms(client, threads[size], size))
            return times


def report(times: dict[int, list[float]], load_before: str) -> str:
    base = statistics.median(times[SIZES[0]])
    lines = [f"Cold latest-checkpoint read (new AblySaver, connected client), {len(times[SIZES[0]])} samples each, "
             f"alternating; baseline: the thread of {SIZES[0]} checkpoints", load_line(load_before), "",
             f"{'thread':<22}{'p50 ms':>9}{'p99 ms':>9}{'p50 vs baseline':>17}"]
    for size in SIZES:
        ordered = sorted(times[size])
        p50 = statistics.median(ordered)
        lines.append(f"{f'{size:,} checkpoints':<22}{p50:>9.2f}{percentile(ordered, 99):>9.2f}{p50 / base:>16.2f}x")
    ratio = statistics.median(times[SIZES[-1]]) / base
    lines.append(f"target: {SIZES[-1]:,} / {SIZES[0]} <= {TARGET:g}x at the median: "
                 f"{'met' if ratio <= TARGET else 'not met'} ({ratio:.2f}x)")
    return "\n".join(lines)


def main() -> None:
    run_sampled(__doc__.split("\n\n")[0], 300, measure, report)


if __name__ == "__main__":
    main()
