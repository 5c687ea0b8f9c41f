"""The same 500-token reply streamed with each codec on one server, in one run: the agent-protocol codec
(`serve_thread`, what LangGraph's `useStream` speaks) against the BASELINE, the UIMessage codec (`serve_graph`,
wire-compatible with `@ably/ai-transport` 0.8.0).

One graph serves both: START -> chat -> END, where `chat` awaits `model.ainvoke(...)` of a scripted chat model
that streams the reply (`w000 w001 ... w499`) word by word, one word a token, and records `time.time()` as it
yields each (LangGraph's v3 stream, which `serve_thread` reads, streams a model's tokens only when a node invokes
it). One dev server with Ably's default limits (40 ms append rollup, 50 inbound messages/s per connection), one
agent connection for every turn (as a server's), `AblySaver` on it, and a fresh channel for each turn. The clients
are genuine, in Node (`benchmarks/langgraph_observer.mjs`, one connection across the turns): for the baseline
`@ably/ai-transport` 0.8.0's client session sends the user message and Python answers its invocation with
`serve_graph`; for the protocol `@langchain/langgraph-sdk` 1.15.0's `StreamController` on js/langgraph-transport
submits a run to `serve_thread`. A second Node process subscribes to the same channel with bare ably-js. Turns
alternate between the codecs (which goes first alternates too), after an unmeasured warm-up turn of each codec
at each speed (Node's JIT, imports, the agent connection's one presence enter).

What is measured, per codec:

1. Messages published per turn, by kind: the message ledger's counts for the run (`GraphRunResult.messages`;
   `ledger.run(run_id)` with the run id the client got in the `run.start` answer), checkpoints included, for
   the reply paced at 10 ms a token (100 tokens/s, about 5 s a turn); plus what the bare subscriber received
   from the agent, after the server's rollup. Medians over `--turns` turns.
2. Tokens/s with the model unpaced: 500 / (the client has the whole reply - the client started the turn), both
   on the client's clock. Median over `--turns` turns.
3. Added latency per token at 10 ms a token: the client's text first holds the token (`Date.now()` in Node) -
   the model yielded it (`time.time()` in Python; one machine, one clock). p50 and p99 over every token of
   every paced turn (500 x `--turns` samples a codec).
4. Client CPU per turn: `process.cpuUsage()` of the codec's client process from its subscribe to the whole
   reply, against the bare subscriber's from its subscribe to the run's `ai-run-end` on the same channel in the
   same turn (the "bare channel" baseline: ably-js receiving and decoding the same messages); the difference is
   the codec client's own cost (its decoding, folding and state, its send and history read, and the observer's
   word count on each update). Medians over the turns; CPU time is noisy at this size (JIT, GC), so every turn's
   pair is printed too.
5. `stop()` latency (protocol only): `StreamController.stop()` (through `bindClient`, which publishes an
   `ai-cancel`) until the graph's node sees `asyncio.CancelledError` (its `except` handler records
   `time.time()`), `--stops` samples (a new run each, stopped once 3 words have shown; 50 stops to a thread),
   p50 and p99 against the target: p99 < 100 ms.

Ratios are against the UIMessage codec measured in the same run. The machine's load average is printed with the
figures: anything else running on its cores shows up in the tails.

Reproduce, from the project root (about 2 minutes; needs node and `npm ci --prefix tests/js`):

    .venv/bin/python benchmarks/langgraph_protocol.py [--turns 5] [--stops 200]

The tables go to stdout, progress and the total time to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ably import AblyRealtime
from common import BenchmarkError, cell, load_average, load_line, percentile, positive, quiet_sdk_logs, ratio
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic import Field

from langchain_ably_transport import AblySaver, MessageKind, connect, ledger
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.graph import serve_graph, serve_thread
from langchain_ably_transport.wire.invocation import Invocation

ROOT = Path(__file__).resolve().parent.parent
OBSERVER = Path(__file__).resolve().parent / "langgraph_observer.mjs"
TOKENS = 500
PACED_S = 0.010  # 100 tokens/s, a realistic model
REPLY = " ".join(f"w{i:03d}" for i in range(TOKENS))
PROMPT = "Tell me five hundred words"
AGENT = "agent"
BASELINE, PROTOCOL = "UIMessage", "agent protocol"
CODECS = (BASELINE, PROTOCOL)
TURN_TIMEOUT_S = 60.0
STOP_TARGET_MS = 100.0
STOPS_PER_THREAD = 50
STOP_AFTER_WORDS = 3
STOP_REPLY = " ".join(f"w{i:04d}" for i in range(5000))  # 50 s at 10 ms a word: only a stop ends it
LEDGER_KINDS = [MessageKind.OUTPUT_CREATE, MessageKind.OUTPUT_APPEND, MessageKind.OUTPUT_UPDATE,
                MessageKind.PROTOCOL_EVENTS, MessageKind.PROTOCOL_RESPONSE, MessageKind.LIFECYCLE,
                MessageKind.CHECKPOINT_RECORD, MessageKind.CHECKPOINT_BLOB, MessageKind.PRESENCE]


# --- the model and the graph ---


class ScriptedModel(BaseChatModel):
    """Streams `reply` word by word, `delay` s apart (0: at once, yielding to the loop), also from `ainvoke`;
    `yields` holds `time.time()` of each word as it is yielded."""

    reply: str
    delay: float = 0.0
    yields: list[float] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-benchmark"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> Any:
        for i, word in enumerate(self.reply.split(" ")):
            await asyncio.sleep(self.delay)
            self.yields.append(time.time())
            yield ChatGenerationChunk(message=AIMessageChunk(content=word if i == 0 else f" {word}"))


def chat_graph(model: ScriptedModel, saver: AblySaver, cancelled: list[float] | None = None) -> Any:
    """START -> chat -> END; `cancelled` gets `time.time()` whenever the node's task is cancelled."""

    async def chat(state: MessagesState) -> dict[str, Any]:
        try:
            return {"messages": [await model.ainvoke(state["messages"])]}
        except asyncio.CancelledError:
            if cancelled is not None:
                cancelled.append(time.time())
            raise

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    return graph.compile(checkpointer=saver)


# --- the Node clients ---


class Observer:
    """`benchmarks/langgraph_observer.mjs` in a Node process of its own, one op at a time."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._drain = asyncio.ensure_future(self._keep_stderr())

    async def _keep_stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip())

    async def line(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            raise BenchmarkError(f"the {self.name} observer did not answer in {timeout:g} s") from None
        if not raw:
            raise BenchmarkError(f"the {self.name} observer ended: " + "\n".join(self.stderr))
        return json.loads(raw)

    async def op(self, name: str, **arguments: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"op": name, **arguments}) + "\n").encode())
        await self.process.stdin.drain()
        answer = await self.line(arguments.get("ms", 15000) / 1000 + 5)
        if "failed" in answer:
            raise BenchmarkError(f"the {self.name} observer's {name} failed: {answer['failed']}")
        return answer

    async def close(self) -> None:
        if self.process.returncode is None:
            try:
                await self.op("exit", ms=5000)
            except (BenchmarkError, BrokenPipeError, ConnectionResetError):
                self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)
        self._drain.cancel()


@asynccontextmanager
async def observer(url: str, key: str, name: str) -> AsyncIterator[Observer]:
    node = shutil.which("node")
    if node is None:
        raise BenchmarkError("node is needed for the genuine JS clients")
    process = await asyncio.create_subprocess_exec(
        node, str(OBSERVER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, limit=2**24,
        env={**os.environ, "ABLY_ENDPOINT": url, "ABLY_API_KEY": key, "CLIENT_ID": f"user-{name}", "AGENT": AGENT})
    running = Observer(process, name)
    try:
        await running.line(30)
        yield running
    finally:
        await running.close()


# --- one turn ---


@dataclass(frozen=True)
class Turn:
    codec: str
    paced: bool
    counts: dict[str, int]
    delivered: int  # the agent's messages the bare subscriber received (after the server's rollup)
    tokens_s: float  # tokens / (whole reply at the client - turn started at the client)
    model_tokens_s: float  # the model's own rate, first yield to last
    latencies_ms: list[float]
    client_cpu_ms: float
    bare_cpu_ms: float


@dataclass(frozen=True)
class Parties:
    agent: AblyRealtime
    client: Observer
    bare: Observer


def whole_reply() -> dict[str, Any]:
    return {"words": TOKENS, "text": REPLY, "arrivals": True, "ms": int(TURN_TIMEOUT_S * 1000)}


async def baseline_turn(parties: Parties, delay: float) -> Turn:
    """The UIMessage codec: the AIT client sends, `serve_graph` answers its invocation."""
    channel = f"bench:{uuid.uuid4().hex[:10]}"
    await parties.bare.op("bare", channel=channel)
    await parties.client.op("open", codec="ait", channel=channel)
    sent = await parties.client.op("send", text=PROMPT)
    model = ScriptedModel(reply=REPLY, delay=delay)
    result = await asyncio.wait_for(serve_graph(chat_graph(model, AblySaver(parties.agent)),
                                                Invocation.from_json(sent["invocation"]), client=parties.agent),
                                    TURN_TIMEOUT_S)
    if result.outcome != "complete":
        raise BenchmarkError(f"the UIMessage turn ended {result.outcome}: {result.error}")
    got = await parties.client.op("wait", **whole_reply())
    bare = await parties.bare.op("bare-wait", ms=10000)
    await parties.client.op("close")
    return turn_of(BASELINE, delay, model, result.messages.as_dict(), got, bare)


async def protocol_turn(parties: Parties, delay: float) -> Turn:
    """The agent protocol: `StreamController.submit` on a thread that `serve_thread` serves."""
    thread = f"threads:{uuid.uuid4().hex[:10]}"
    model = ScriptedModel(reply=REPLY, delay=delay)
    async with serving(parties.agent, thread, chat_graph(model, AblySaver(parties.agent))):
        await parties.bare.op("bare", channel=thread)
        await parties.client.op("open", codec="lg", channel=thread)
        await parties.client.op("send", text=PROMPT)
        got = await parties.client.op("wait", **whole_reply())
        bare = await parties.bare.op("bare-wait", ms=10000)
        await parties.client.op("close")
    if not got.get("runId"):
        raise BenchmarkError("the StreamController never learnt its run's id")
    return turn_of(PROTOCOL, delay, model, ledger.run(got["runId"]).as_dict(), got, bare)


@asynccontextmanager
async def serving(agent: AblyRealtime, thread: str, graph: Any) -> AsyncIterator[None]:
    """`serve_thread` on `thread` until the block is done (and the thread's every publish is in the ledger)."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.ensure_future(serve_thread(graph, thread, client=agent, stop=stop, on_ready=ready.set))
    done, _ = await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, timeout=15,
                                 return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        task.cancel()
        raise BenchmarkError(f"serve_thread did not open {thread}: {task.exception() if task in done else 'timeout'}")
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def turn_of(codec: str, delay: float, model: ScriptedModel, counts: dict[str, int], got: dict[str, Any],
            bare: dict[str, Any]) -> Turn:
    if len(model.yields) != TOKENS or len(got["arrivals"]) != TOKENS:
        raise BenchmarkError(f"{codec}: the model yielded {len(model.yields)} tokens and the client got "
                             f"{len(got['arrivals'])}, of {TOKENS}")
    return Turn(codec, delay > 0, counts, bare["delivered"], TOKENS / ((got["done"] - got["sent"]) / 1000),
                (TOKENS - 1) / max(1e-6, model.yields[-1] - model.yields[0]),
                [arrived - 1000 * yielded for arrived, yielded in zip(got["arrivals"], model.yields, strict=True)],
                got["cpuMs"], bare["cpuMs"])


# --- stop() ---


async def stop_samples(parties: Parties, count: int) -> list[float]:
    """ms from `StreamController.stop()` to the node's `CancelledError`, one sample a run, 50 runs to a thread."""
    samples: list[float] = []
    while len(samples) < count:
        thread = f"threads:{uuid.uuid4().hex[:10]}"
        cancelled: list[float] = []
        graph = chat_graph(ScriptedModel(reply=STOP_REPLY, delay=PACED_S), AblySaver(parties.agent), cancelled)
        async with serving(parties.agent, thread, graph):
            await parties.client.op("open", codec="lg", channel=thread)
            for _ in range(min(STOPS_PER_THREAD, count - len(samples))):
                samples.append(await one_stop(parties.client, cancelled))
            await parties.client.op("close")
        print(f"  stops: {len(samples)}/{count}", file=sys.stderr)
    return samples


async def one_stop(client: Observer, cancelled: list[float]) -> float:
    before = len(cancelled)
    await client.op("send", text="Talk until I stop you")
    await client.op("wait", words=STOP_AFTER_WORDS, ms=15000)
    asked = (await client.op("stop"))["asked"]
    await client.op("idle")  # the next submit waits for this: the agent queues an input behind a run being stopped
    deadline = time.monotonic() + 5
    while len(cancelled) == before and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    if len(cancelled) == before:
        raise BenchmarkError("stop() did not cancel the graph's node within 5 s")
    return 1000 * cancelled[before] - asked


# --- the run ---


@dataclass
class Results:
    turns: list[Turn]
    stops: list[float]


async def measure(url: str, key: str, turns: int, stops: int) -> Results:
    measured: list[Turn] = []
    async with connect(key, url, client_id=AGENT) as agent, observer(url, key, "client") as client, \
            observer(url, key, "bare") as bare:
        parties = Parties(agent, client, bare)
        for delay in (PACED_S, 0.0):  # warm-up: Node's JIT, imports, the agent connection's presence enter
            await baseline_turn(parties, delay)
            await protocol_turn(parties, delay)
        for index in range(turns):
            order = (baseline_turn, protocol_turn) if index % 2 == 0 else (protocol_turn, baseline_turn)
            for delay in (PACED_S, 0.0):
                for turn in order:
                    measured.append(await turn(parties, delay))
            print(f"  turns: {index + 1}/{turns}", file=sys.stderr)
        return Results(measured, await stop_samples(parties, stops))


# --- the report ---


def of(turns: list[Turn], codec: str, paced: bool) -> list[Turn]:
    return [turn for turn in turns if turn.codec == codec and turn.paced == paced]


def row(label: str, values: dict[str, float | None], spec: str, with_ratio: bool = True) -> str:
    base, ours = values[BASELINE], values[PROTOCOL]
    return f"{label:<44}{cell(base, spec, 14)}{cell(ours, spec, 16)}{ratio(ours, base) if with_ratio else '':>10}"


def head(title: str) -> list[str]:
    columns = f"{'':<44}{BASELINE:>14}{PROTOCOL:>16}{'ratio':>10}"
    return [title, columns, "-" * len(columns)]


def medians(turns: list[Turn], paced: bool, figure: Any) -> dict[str, float | None]:
    return {codec: (statistics.median(figure(t) for t in chosen) if (chosen := of(turns, codec, paced)) else None)
            for codec in CODECS}


def messages_table(turns: list[Turn]) -> list[str]:
    lines = head(f"1. Messages published per turn, by kind (ledger, per run), {TOKENS} tokens at "
                 f"{1 / PACED_S:.0f} tokens/s; medians")
    for kind in LEDGER_KINDS:
        values = medians(turns, True, lambda t, k=kind.value: t.counts.get(k, 0))
        if any(values.values()):
            lines.append(row(kind.value, values, "g"))
    lines.append(row("total", medians(turns, True, lambda t: sum(t.counts.values())), "g"))
    lines.append(row("delivered to a subscriber (after rollup)", medians(turns, True, lambda t: t.delivered), "g"))
    lines.append(row("total, model unpaced", medians(turns, False, lambda t: sum(t.counts.values())), "g"))
    return lines


def throughput_table(turns: list[Turn]) -> list[str]:
    return [*head("2. Tokens/s, model unpaced: tokens / (the client has the whole reply - it started the turn); "
                  "medians"),
            row("tokens/s at the client", medians(turns, False, lambda t: t.tokens_s), ",.0f"),
            row("turn, s", medians(turns, False, lambda t: TOKENS / t.tokens_s), ".2f"),
            row("the model's own tokens/s (context)", medians(turns, False, lambda t: t.model_tokens_s), ",.0f")]


def latency_table(turns: list[Turn]) -> list[str]:
    pooled = {codec: sorted(ms for t in of(turns, codec, True) for ms in t.latencies_ms) for codec in CODECS}

    def at(pct: float) -> dict[str, float | None]:
        return {codec: percentile(ms, pct) if ms else None for codec, ms in pooled.items()}

    return [*head(f"3. Added latency per token, ms: client has it (Node Date.now()) - model yielded it "
                  f"(time.time()), {1 / PACED_S:.0f} tokens/s"),
            row("p50", at(50), ".1f"), row("p99", at(99), ".1f"), row("max", at(100), ".1f"),
            row("samples", {codec: len(ms) for codec, ms in pooled.items()}, "d", with_ratio=False),
            "per turn, p50/p99 ms:",
            *(f"  {codec:<42}" + "  ".join(f"{percentile(ms, 50):.0f}/{percentile(ms, 99):.0f}" for ms in (
                sorted(t.latencies_ms) for t in of(turns, codec, True))) for codec in CODECS)]


def cpu_table(turns: list[Turn]) -> list[str]:
    lines = head("4. Client CPU per turn, ms (process.cpuUsage(), subscribe to whole reply); medians")
    for paced, label in ((True, f"{1 / PACED_S:.0f} tokens/s"), (False, "unpaced")):
        lines += [row(f"codec client, {label}", medians(turns, paced, lambda t: t.client_cpu_ms), ".1f"),
                  row(f"bare ably-js subscriber, {label}", medians(turns, paced, lambda t: t.bare_cpu_ms), ".1f"),
                  row(f"the codec's own (difference), {label}",
                      medians(turns, paced, lambda t: t.client_cpu_ms - t.bare_cpu_ms), ".1f")]
    lines.append("per turn, codec client / bare subscriber ms:")
    for codec in CODECS:
        for paced, label in ((True, "paced"), (False, "unpaced")):
            pairs = "  ".join(f"{t.client_cpu_ms:.0f}/{t.bare_cpu_ms:.0f}" for t in of(turns, codec, paced))
            lines.append(f"  {f'{codec}, {label}':<42}{pairs}")
    return lines


def stop_lines(samples: list[float]) -> list[str]:
    ordered = sorted(samples)
    p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
    verdict = "met" if p99 < STOP_TARGET_MS else "not met"
    return [f"5. stop() latency, agent protocol: StreamController.stop() -> the node's CancelledError, "
            f"{len(samples)} samples",
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms; target p99 < {STOP_TARGET_MS:g} ms: "
            f"{verdict}"]


def report(results: Results, turns: int, load_before: str) -> str:
    sections = [
        [f"LangGraph agent protocol vs the UIMessage codec (baseline): a {TOKENS}-token reply, {turns} turns a "
         "codec and speed, alternating, one dev server with Ably's default limits",
         "clients in Node: @ably/ai-transport 0.8.0 (baseline), @langchain/langgraph-sdk 1.15.0 StreamController on "
         "js/langgraph-transport (protocol)",
         load_line(load_before)],
        messages_table(results.turns), throughput_table(results.turns), latency_table(results.turns),
        cpu_table(results.turns), stop_lines(results.stops),
    ]
    return "\n\n".join("\n".join(section) for section in sections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--turns", type=positive, default=5, help="measured turns per codec and speed (default 5)")
    parser.add_argument("--stops", type=positive, default=200, help="stop() samples (default 200)")
    args = parser.parse_args()
    quiet_sdk_logs()
    if not (ROOT / "tests" / "js" / "node_modules" / "@langchain" / "langgraph-sdk").is_dir():
        sys.exit("tests/js has no node_modules: run `make test` (or `npm ci --prefix tests/js`) first")
    started, before = time.perf_counter(), load_average()
    bound = 300 + (args.turns + 1) * 4 * TURN_TIMEOUT_S + args.stops * 5  # a backstop: every op has its own
    with spawn() as server:
        results = asyncio.run(asyncio.wait_for(measure(server.url, server.key, args.turns, args.stops), bound))
    print(report(results, args.turns, before))
    print(f"(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
