"""The floor under `load.py`: its graph and model at its sessions, in one process, with no transport at all.

`load.py` measures one agent process serving sessions over Ably. Part of what that process spends is LangGraph's and
LangChain's own: running the graph, streaming the model through callbacks, checkpointing. This benchmark runs the
same graph (`load.graph_on`, with LangGraph's `InMemorySaver`) and the same model (`load.StampingModel`: 100 tokens at
50 a second, each stamped with its due time), with users in the same process thinking 2-6 s between turns and
starting a new thread every 5 turns, and reads the reply with LangGraph's `graph.astream(stream_mode="messages")`.
Nothing is published. The collector is set as `load.py`'s agent sets it. Each load phase is repeated three more
times: with `GraphEvents`, as `serve_graph` reads a graph (LangGraph's messages handler with an inline sink, beside
the `tasks` and `updates` streams); with `ainvoke` and a callback handler that LangChain runs inline, in the model's
task, taking each token there; and with `ainvoke` alone. The differences in CPU per run are what LangGraph's
`messages` stream costs, and what `serve_graph`'s reading saves of it.

Reported per phase: runs and runs/s; token lateness p50/p99, from a token being due to the reader having it; the
process's CPU (cores busy) and CPU per run; the collector's pauses; how late the loop runs a 10 ms timer (whose
ticks cost about 0.03 cores, more than a lone session's runs). The difference from `load.py`'s agent at the same
runs/s is what the transport costs.
BASELINE: 1 session, measured first in the same run.

Reproduce (about 4.5 minutes):

    .venv/bin/python benchmarks/graph_alone.py [--seconds 60] [--sessions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from common import cell, load_average, load_line, percentile, positive, ratio
from langchain_core.callbacks import BaseCallbackHandler
from langgraph.checkpoint.memory import InMemorySaver
from load import AGENT_GC_THRESHOLD, THINK_S, TOKEN, CollectorPauses, LoopLag, StampingModel, graph_on

from langchain_ably_transport.graph.events import GraphEvents

# How a phase reads its runs: LangGraph's `messages` stream; `GraphEvents` (as `serve_graph` does); `ainvoke` with a
# callback handler that LangChain runs inline, in the model's task; `ainvoke` alone.
READINGS = {"streamed": "", "events": ", events", "inline": ", inline", "ainvoke": ", ainvoke"}


class InlineTokens(BaseCallbackHandler):
    """Each token's lateness, taken in the model's own task as LangChain hands the token over."""

    run_inline = True

    def __init__(self, phase: Phase) -> None:
        self._phase = phase

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self._phase.stamp(token)


@dataclass
class Phase:
    sessions: int
    reading: str = "streamed"  # a key of READINGS
    runs: int = 0
    lateness_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    pauses: dict[str, dict[str, float]] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=dict)

    def stamp(self, text: Any) -> None:
        """Record how late each stamped token in `text` is, now that the reader has it."""
        now = time.time()
        self.lateness_ms.extend((now - float(due)) * 1000 for _, due in TOKEN.findall(str(text)))


async def user(graph: Any, phase: Phase, turns_per_thread: int, stop_at: float) -> None:
    thread, turns = str(uuid.uuid4()), 0
    while True:
        await asyncio.sleep(random.uniform(*THINK_S))
        if time.time() >= stop_at:
            return
        if turns == turns_per_thread:
            thread, turns = str(uuid.uuid4()), 0
        turns += 1
        config: dict[str, Any] = {"configurable": {"thread_id": thread}}
        turn = {"messages": [("user", "hi")]}
        if phase.reading == "streamed":
            async for chunk, _ in graph.astream(turn, config, stream_mode="messages"):
                phase.stamp(chunk.content)
        elif phase.reading == "events":
            async with GraphEvents(graph, turn, config, ["messages", "updates", "tasks"], None) as events:
                while (batch := await events.next()) is not None:
                    for _, mode, data in batch:
                        if mode == "messages":
                            phase.stamp(data[0].content)
        else:
            await graph.ainvoke(turn, {**config, "callbacks": [InlineTokens(phase)]}
                                if phase.reading == "inline" else config)
        phase.runs += 1


async def measure(graph: Any, sessions: int, seconds: float, turns: int, reading: str = "streamed") -> Phase:
    gc.collect()
    gc.freeze()
    pauses, lag = CollectorPauses(), LoopLag()
    phase = Phase(sessions, reading)
    started, cpu = time.perf_counter(), time.process_time()
    # A user starts no turn after the phase's time; the one under way (a few seconds) ends first: every wait ends.
    await asyncio.gather(*(user(graph, phase, turns, time.time() + seconds) for _ in range(sessions)))
    phase.cpu_s, phase.wall_s = time.process_time() - cpu, time.perf_counter() - started
    phase.pauses, phase.lag = pauses.summary(), lag.summary()
    gc.callbacks.remove(pauses._on_collection)
    lag._task.cancel()
    gc.unfreeze()
    return phase


def report(phases: list[Phase], before: str, threshold: tuple[int, ...]) -> None:
    print(f"LangGraph alone: load.py's graph and model in one process, InMemorySaver, no transport; the collector: "
          f"gc.freeze() after start-up, thresholds {threshold}")
    print(load_line(before))
    print()
    print(f"{'phase':<22}{'runs':>7}{'runs/s':>8}{'tokens':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99 vs base':>12}"
          f"{'CPU':>7}{'CPU/run ms':>12}")
    base = None
    for phase in phases:
        ordered = sorted(phase.lateness_ms)
        p50 = statistics.median(ordered) if ordered else None
        p99 = percentile(ordered, 99) if ordered else None
        base = p99 if base is None else base
        name = (f"{'BASELINE ' if phase is phases[0] else ''}{phase.sessions} session{'s' * (phase.sessions > 1)}"
                f"{READINGS[phase.reading]}")
        print(f"{name:<22}{phase.runs:>7}{phase.runs / phase.wall_s:>8.1f}{len(ordered):>9}{cell(p50, '.1f', 9)}"
              f"{cell(p99, '.1f', 9)}{ratio(p99, base):>12}{phase.cpu_s / phase.wall_s:>7.2f}"
              f"{cell(1000 * phase.cpu_s / phase.runs if phase.runs else None, '.1f', 12)}")
    print()
    print("the collector's pauses by generation (count, total, median, longest), and how late the loop ran a 10 ms "
          "timer (p50 / p99 / longest):")
    for phase in phases:
        collector = "; ".join(f"gen{g} {s['n']} x, {s['total s']:.2f} s, p50 {s['p50 ms']:.1f} ms, max "
                              f"{s['max ms']:.1f} ms" for g, s in phase.pauses.items()) or "none"
        lag = " / ".join(f"{phase.lag[k]:.1f}" for k in ("p50 ms", "p99 ms", "max ms")) if phase.lag else "-"
        name = f"{phase.sessions} sessions{READINGS[phase.reading]}"
        print(f"  {name:<22}{collector}; loop {lag} ms")


async def main(args: argparse.Namespace) -> None:
    before = load_average()
    gc.set_threshold(*args.gc_threshold)
    graph = graph_on(InMemorySaver(), StampingModel(tokens=args.reply_tokens, rate=args.token_rate))  # type: ignore[arg-type]
    async for _ in graph.astream({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "warm-up"}},
                                 stream_mode="messages"):
        pass  # the first run pays for what LangChain and LangGraph set up once: not a run's cost
    phases = [await measure(graph, 1, args.baseline_seconds, args.turns)]
    for sessions in args.sessions:
        for reading in READINGS:
            phases.append(await measure(graph, sessions, args.seconds, args.turns, reading))
    report(phases, before, tuple(args.gc_threshold))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each load phase")
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument("--sessions", type=positive, nargs="+", default=[200])
    parser.add_argument("--turns", type=positive, default=5, help="turns of a thread; then a new one")
    parser.add_argument("--reply-tokens", type=positive, default=100)
    parser.add_argument("--token-rate", type=float, default=50.0)
    parser.add_argument("--gc-threshold", type=positive, nargs=3, default=AGENT_GC_THRESHOLD)
    asyncio.run(main(parser.parse_args()))
