"""One agent process serving 50, then 200 sessions with overlapping runs, under Ably's limits: runs, latency, memory.

Set-up: the dev server with Ably's default limits (50 msg/s per connection, 64 KiB messages). One agent process
serves every session with `serve_graph` and `AblySaver` (the product path): a graph whose node awaits
`model.ainvoke`, as LangGraph's prebuilt agents do, and whose model streams `--reply-tokens` tokens at `--token-rate`
tokens/s on a provider's schedule (`StampingModel`; LangGraph streams them, and langchain-core joins them into the
reply once: a node that added each chunk to the reply itself would pay an `AIMessageChunk` a token), behind an HTTP
endpoint that takes the JS client's invocation (POST, answered 202 at once, served in the background, as in
docs/web.md). A connection publishes at most 50 msg/s and a streaming reply takes 25 of them, so the agent serves
through a `ConnectionPool`, which opens connections as the sessions need them, up to `--max-connections`, and closes
idle ones; one `AblySaver` on the pool keeps `--warm-threads` threads warm. `--user-processes` processes hold the
users, each in one conversation at a time: think 2-6 s, send, POST the invocation, follow the reply live; after
`--turns` turns, a new conversation (so the agent keeps meeting new sessions and threads, as a server does). A user's
first conversation has 1 to `--turns` turns, so that users start new conversations at their own times, as users who
arrive on their own do (when every first conversation had `--turns` turns, all 200 users' conversations ended within
a few seconds of each other, every ~30 s, for the whole phase).

Reported per phase: runs completed; errors (runs not `complete`, replies that are not exactly the streamed tokens,
warnings logged by the library, failed requests); token latency p50/p99 from a token being due from the model to a user
receiving it (the model stamps each token with its due time; one machine, one clock), and the same for a reply's first
five tokens apart (they wait for the reply's stream to be created: within a run, their share of the tokens over the
p99 says whether the tail is the opening of replies or their whole length); time to first token, from the user's send
to the first token it receives; the agent's RSS at the start, 25/50/75% and end of the phase, and its growth
after warm-up (from 25% on), and the Python objects it holds before and after the phase (counted outside it: a count
takes a full collection); the agent's and the dev server's CPU (cores busy), and the agent's CPU per run completed (what
compares two commits in alternating runs: the p99 of one commit swings several-fold between runs); the messages it
published per run, by kind (the message ledger), and the publishes Ably refused for rate; the pool's connections; what
the agent still holds afterwards (sessions, runs, channels, tasks); the collector's pauses in the agent, by generation,
and what they freed (garbage in reference cycles); how late each process's event loop runs a 10 ms timer, and the users'
CPU and collector pauses; a probe process's round trip through the dev server (publish to echo, every 50 ms), the share
of a token's latency no agent could remove on this machine; and the share of the phase the agent's and the dev
server's loops were runnable but waiting for a core (on this 2-core machine, the benchmark's own processes compete).
The agent calls `gc.freeze()` after start-up and sets the collector's thresholds to (100000, 10, 10), as docs/tuning.md
advises for streaming servers (`--gc-threshold`); a last phase repeats the most sessions with Python's
default thresholds (700, 10, 10), to show what the advice is worth and costs. The user processes do the same in every
phase: each holds the clients of many users (40 at 200 sessions), which in life run apart, and with Python's defaults
its full collections (up to 270 ms each) stalled all of them at once and added to the token latency.
BASELINE: the same per-session workload with 1 session, measured first in the same run.

`--serving transport` serves each invocation without LangGraph or a checkpointer: the session, and the same model's
stream piped into the run (`answer_without_graph`). Beside a run of the product path, it says how much of the tail
at 200 sessions the transport would leave on this machine if the graph cost nothing. `--harness-nice 10` runs the
dev server, the users and the probe below the agent, so that the agent comes first when they wait for a core;
`--agent-core N` runs the agent on core N alone, and them on the other cores.

Reproduce (about 8 minutes: a 1-minute baseline, then each load phase, `--minutes`, default 2):

    .venv/bin/python benchmarks/load.py [--minutes 2] [--sessions 50 200] [--session-linger-s 30] [--serving transport]
        [--harness-nice 10] [--agent-core 1] [--openings-at-once 8]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import gc
import itertools
import json
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from common import (
    BenchmarkError,
    cell,
    core_wait_seconds,
    cpu_seconds,
    load_average,
    load_line,
    percentile,
    positive,
    quiet_sdk_logs,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_ably_transport import (
    AblySaver,
    AgentSession,
    ClientSession,
    ConnectionPool,
    Invocation,
    Run,
    connect,
    ledger,
)
from langchain_ably_transport.codec.langchain import ChunkTranslator
from langchain_ably_transport.devserver import RunningServer, spawn
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.graph.serve import SESSION_LINGER_S
from langchain_ably_transport.sdk.pacer import pacer_for
from langchain_ably_transport.session.core import SessionCore
from langchain_ably_transport.wire import names

TOKEN = re.compile(r"w(\d+)@(\d+\.\d+) ")
THINK_S = (2.0, 6.0)
RSS_MARKS = (0.0, 0.25, 0.5, 0.75, 1.0)
PROBE_INTERVAL_S = 0.050
OPENING_TOKENS = 5  # a reply's first tokens, reported apart: they wait for the reply's stream to be created
AGENT_GC_THRESHOLD = (100_000, 10, 10)  # docs/tuning.md's advice for a streaming agent server
DEFAULT_GC_THRESHOLD = gc.get_threshold()
SERVING = {"graph": "serve_graph + AblySaver",
           "transport": "the model's stream piped into each session's run (no LangGraph, no checkpointer)"}


# --- the agent process ---


class StampingModel(BaseChatModel):
    """Streams `tokens` tokens at `rate` a second, each `w<index>@<due time> `: a user can time every token.

    Token i is due `(i + 1) / rate` seconds after the stream starts, as a provider sends it, whatever the agent is
    doing: an agent whose loop runs late takes the tokens already due back to back, in one turn of its loop, as it
    would read a provider's stream waiting in its socket (httpx reads what the socket holds, and its SSE parser
    hands over every event in it without a wait), and each token's latency counts from when it was due, that
    lateness included. (Sleeping `1 / rate` after each token instead would stretch a reply whenever the loop runs
    late, and hide the lateness from the latency. So would a turn of the loop per token: `asyncio.sleep(0)` yields,
    and a loop taking 80 ms a turn under load would then read 12 tokens a second of the 50 due, falling further
    behind with every token.)"""

    tokens: int
    rate: float

    @property
    def _llm_type(self) -> str:
        return "stamping"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        text = "".join(f"w{i}@{time.time():.3f} " for i in range(self.tokens))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> Any:
        start, i = time.time(), 0
        while i < self.tokens:
            await asyncio.sleep(max(0.0, start + (i + 1) / self.rate - time.time()))  # one read of the socket
            now = time.time()
            while True:  # what the read found: every token due by now, and at least the one waited for
                yield ChatGenerationChunk(message=AIMessageChunk(content=f"w{i}@{start + (i + 1) / self.rate:.3f} "))
                i += 1
                if i == self.tokens or start + (i + 1) / self.rate > now:
                    break


def graph_on(saver: AblySaver | None, model: StampingModel) -> Any:
    async def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=saver)


class WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class CollectorPauses:
    """The collector's pauses in the agent, by generation (`gc.callbacks`), but for the counts' own collections, and
    the objects they freed: garbage in reference cycles, which only the collector frees (reference counting frees the
    rest at once)."""

    def __init__(self) -> None:
        self.by_generation: dict[int, list[float]] = collections.defaultdict(list)
        self.freed: collections.Counter[int] = collections.Counter()
        self._started = 0.0
        self.counting = True
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.counting:
            self.by_generation[info["generation"]].append(time.perf_counter() - self._started)
            self.freed[info["generation"]] += info["collected"]

    def collect(self, lag: LoopLag | None = None) -> None:
        """A full collection of our own, to count what is alive: not one of the pauses (or lags) serving suffers."""
        if lag is not None:
            lag.counting = True
        self.counting = False
        try:
            gc.collect()
        finally:
            self.counting = True

    def summary(self) -> dict[str, dict[str, float]]:
        return {str(generation): {"n": len(pauses), "total s": sum(pauses), "p50 ms": 1000 * statistics.median(pauses),
                                  "max ms": 1000 * max(pauses), "freed": self.freed[generation]}
                for generation, pauses in sorted(self.by_generation.items())}


class LoopLag:
    """How late the event loop runs a 10 ms timer: what any callback (a token to send, a message received) waits
    behind the work and the collector's pauses queued before it."""

    TICK_S = 0.010

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.counting = False  # a count's own full collection is running: not a lag serving suffers
        self._task = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        while True:
            due = time.perf_counter() + self.TICK_S
            await asyncio.sleep(self.TICK_S)
            if self.counting:
                self.counting = False
            else:
                self.lags_ms.append(max(0.0, time.perf_counter() - due) * 1000)

    def summary(self) -> dict[str, float]:
        return self.summarise(self.lags_ms)

    @staticmethod
    def summarise(lags_ms: list[float]) -> dict[str, float]:
        ordered = sorted(lags_ms)
        return {"p50 ms": statistics.median(ordered), "p99 ms": percentile(ordered, 99), "max ms": ordered[-1]} \
            if ordered else {}


@dataclass
class Agent:
    """The agent's connection pool, its graph (with one saver on the pool), and what serving has done so far."""

    pool: ConnectionPool
    graph: Any
    warnings: WarningCounter
    pauses: CollectorPauses
    lag: LoopLag
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    serving: set[asyncio.Future[Any]] = field(default_factory=set)
    peak_connections: int = 0
    linger_s: float = SESSION_LINGER_S

    model: StampingModel | None = None  # set: serve the model's stream alone, without LangGraph (`--serving transport`)

    def serve(self, invocation: Invocation) -> None:
        task = asyncio.ensure_future(self._answer(invocation))
        self.serving.add(task)
        task.add_done_callback(self._served)
        self.peak_connections = max(self.peak_connections, self.pool.stats().connections)

    async def _answer(self, invocation: Invocation) -> str:
        if self.model is None:
            return (await serve_graph(self.graph, invocation, client=self.pool, session_linger_s=self.linger_s)).outcome
        return await answer_without_graph(self.pool, invocation, self.model, self.linger_s)

    def _served(self, task: asyncio.Future[Any]) -> None:
        self.serving.discard(task)
        if task.cancelled():
            self.outcomes["cancelled task"] += 1
        elif task.exception() is not None:
            self.outcomes["raised"] += 1
            self.failures.append(repr(task.exception()))
        else:
            self.outcomes[task.result()] += 1

    def stats(self) -> dict[str, Any]:
        collector, lag = self.pauses.summary(), self.lag.summary()
        self.pauses.collect(self.lag)
        live = gc.get_objects()
        return {
            "collector": collector, "loop lag": lag,
            "outcomes": dict(self.outcomes), "failures": self.failures[:5], "warnings": len(self.warnings.messages),
            "first_warnings": self.warnings.messages[:5],
            "paced": sum(pacer_for(client).paced for client in self.pool.clients),
            "messages": ledger.process().as_dict(), "refusals": ledger.refusals(),
            "pool": dataclasses.asdict(self.pool.stats()) | {"peak": self.peak_connections},
            "held": {
                "session cores": len(SessionCore._shared), "runs being served": len(self.serving),
                "agent sessions": sum(isinstance(o, AgentSession) for o in live),
                "runs": sum(isinstance(o, Run) for o in live),
                "channels": sum(len(list(client.channels)) for client in self.pool.clients),
                "tasks": len(asyncio.all_tasks()),
            },
        }


async def answer_without_graph(pool: ConnectionPool, invocation: Invocation, model: StampingModel,
                               linger_s: float) -> str:
    """The transport alone: the session, and the model's stream piped into a run (what `AblyCallbackHandler` does
    for a chain), with no LangGraph and no checkpointer: how far the agent's share of the tail is the transport's."""
    async with pool.lease(invocation.session_name) as connection, \
            AgentSession(connection, invocation.session_name, history_pages=1, linger_s=linger_s) as session:
        run = await session.create_run(invocation)
        await run.start()
        result = await run.pipe(_ui_chunks(model.astream(run.messages())))
        await run.end("complete" if result.reason == "complete" else "error")
        return result.reason


async def _ui_chunks(stream: AsyncIterator[BaseMessage]) -> AsyncIterator[dict[str, Any]]:
    translator = ChunkTranslator()
    async for chunk in stream:
        for ui_chunk in translator.feed(chunk):
            yield ui_chunk
    for ui_chunk in translator.finish("stop"):
        yield ui_chunk


async def run_agent(url: str, key: str, connections: int, warm_threads: int, tokens: int, rate: float,
                    linger_s: float, gc_threshold: tuple[int, ...] | None, serving: str, openings_at_once: int) -> None:
    quiet_sdk_logs()
    counter = WarningCounter()
    logging.getLogger("langchain_ably_transport").addHandler(counter)
    async with contextlib.AsyncExitStack() as stack:
        pool = await stack.enter_async_context(ConnectionPool(key, url, client_id="agent", max_connections=connections,
                                                              openings_at_once=openings_at_once))
        model = StampingModel(tokens=tokens, rate=rate)
        pauses = CollectorPauses()
        alone = serving == "transport"
        saver = None if alone else AblySaver(pool, cached_threads=warm_threads)
        agent = Agent(pool, graph_on(saver, model), counter, pauses, LoopLag(), linger_s=linger_s,
                      model=model if alone else None)

        async def invoke(request: web.Request) -> web.Response:
            agent.serve(Invocation.from_json(await request.json()))
            return web.Response(status=202)

        async def objects(request: web.Request) -> web.Response:
            """Python objects alive (those made since start-up: `gc.freeze()` hides the rest)."""
            pauses.collect(agent.lag)
            return web.json_response({"objects": len(gc.get_objects())})

        async def stats(request: web.Request) -> web.Response:
            if request.query.get("drain"):
                await asyncio.gather(*list(agent.serving), return_exceptions=True)
            return web.json_response(agent.stats())

        app = web.Application()
        app.add_routes([web.post("/invoke", invoke), web.get("/stats", stats), web.get("/objects", objects)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        gc.freeze()  # everything imported and connected: keep the collector off it (docs/tuning.md)
        if gc_threshold:
            gc.set_threshold(*gc_threshold)
        print(json.dumps({"port": site._server.sockets[0].getsockname()[1]}), flush=True)
        await asyncio.Event().wait()  # until the main process terminates it


# --- a user process ---


@dataclass
class UserFigures:
    runs: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    opening_ms: list[float] = field(default_factory=list)  # the latencies of a reply's first OPENING_TOKENS tokens
    first_token_ms: list[float] = field(default_factory=list)


async def one_turn(view: ClientSession, http: aiohttp.ClientSession, agent_url: str, tokens: int,
                   figures: UserFigures) -> None:
    started = time.time()
    sent = await view.send(f"question {figures.runs}")
    async with http.post(f"{agent_url}/invoke", json=sent.invocation.to_json()) as response:
        if response.status != 202:
            raise BenchmarkError(f"the agent answered {response.status}")
    await follow(view, await sent.run_id(timeout=120), tokens, figures, started)


async def follow(view: ClientSession, run_id: str, tokens: int, figures: UserFigures,
                 started: float | None = None) -> None:
    """Time every token of run `run_id` as it arrives, and the first from `started` (the user's send), if given;
    at its end, check the view shows exactly what came."""
    received: list[str] = []
    events = view.events()
    while True:
        wire, decoded = await asyncio.wait_for(anext(events), 120)
        now = time.time()
        for direction, chunk, _, event_run, _ in decoded:
            if direction == "output" and event_run == run_id and chunk.get("type") == "text-delta":
                if not received and started is not None:
                    figures.first_token_ms.append((now - started) * 1000)
                received.append(chunk["delta"])
                for index, at in TOKEN.findall(chunk["delta"]):
                    figures.latencies_ms.append((now - float(at)) * 1000)
                    if int(index) < OPENING_TOKENS:
                        figures.opening_ms.append(figures.latencies_ms[-1])
        if wire.name == names.RUN_END and wire.transport.get(names.HEADER_RUN_ID) == run_id:
            break
    shown = view.messages()[-1].content
    indices = [int(index) for index, _ in TOKEN.findall(shown)]
    if wire.transport.get(names.HEADER_RUN_REASON, "complete") != "complete":
        figures.errors.append(f"run ended {wire.transport.get(names.HEADER_RUN_REASON)}")
    elif shown != "".join(received) or indices != list(range(tokens)):
        figures.errors.append(f"reply not exactly the streamed tokens: {len(indices)} of {tokens}")
    else:
        figures.runs += 1


async def user(client: Any, http: aiohttp.ClientSession, agent_url: str, settings: UserSettings,
               rng: random.Random) -> UserFigures:
    """Conversations of `turns` turns, one after another, until the phase ends. The first has 1 to `turns` of them
    (as if the user had been talking for a while when the phase began): with `turns` each, every user's conversations
    would end together, every ~30 s, and the agent would meet all the new sessions and threads at once (a burst no
    server with users arriving on their own sees)."""
    figures = UserFigures()
    deadline = time.monotonic() + settings.seconds
    turns = rng.randint(1, settings.turns)
    while time.monotonic() < deadline:
        async with ClientSession(client, f"conversations:load-{uuid.uuid4().hex[:10]}") as view:
            for _ in range(turns):
                await asyncio.sleep(rng.uniform(*THINK_S))
                if time.monotonic() >= deadline:
                    break
                try:
                    await one_turn(view, http, agent_url, settings.tokens, figures)
                except (TimeoutError, BenchmarkError, aiohttp.ClientError) as error:
                    figures.errors.append(f"{type(error).__name__}: {error}")
        turns = settings.turns
    return figures


@dataclass(frozen=True)
class UserSettings:
    seconds: float
    tokens: int
    turns: int


async def run_users(url: str, key: str, agent_url: str, users: int, settings: UserSettings, seed: int,
                    out: Path) -> None:
    quiet_sdk_logs()
    rng = random.Random(seed)
    pauses, lag, cpu = CollectorPauses(), LoopLag(), time.process_time()
    async with connect(key, url) as client, aiohttp.ClientSession() as http:
        gc.freeze()  # each process stands in for many users' own clients: their pauses must not add up in one
        gc.set_threshold(*AGENT_GC_THRESHOLD)
        results = await asyncio.gather(*(user(client, http, agent_url, settings, rng) for _ in range(users)))
    out.write_text(json.dumps({"runs": sum(r.runs for r in results), "errors": [e for r in results for e in r.errors],
                               "latencies_ms": [x for r in results for x in r.latencies_ms],
                               "opening_ms": [x for r in results for x in r.opening_ms],
                               "first_token_ms": [x for r in results for x in r.first_token_ms],
                               "loop lags ms": lag.lags_ms, "collector": pauses.summary(),
                               "cpu s": time.process_time() - cpu}))


# --- the probe process ---


async def run_probe(url: str, key: str, seconds: float, out: Path) -> None:
    """Publish a timestamp on a channel of its own every 50 ms and time its echo: the dev server's (and the
    machine's) share of a token's latency, seen by a process with nothing else to do."""
    quiet_sdk_logs()
    round_trips_ms: list[float] = []
    async with connect(key, url, client_id="probe") as client:
        channel = client.channels.get(f"load-probe-{uuid.uuid4().hex[:8]}")
        await channel.subscribe(lambda message: round_trips_ms.append((time.time() - float(message.data)) * 1000))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await channel.publish("probe", repr(time.time()))
            await asyncio.sleep(PROBE_INTERVAL_S)
    out.write_text(json.dumps(round_trips_ms))


# --- the main process ---


@dataclass
class Phase:
    name: str
    sessions: int
    seconds: float
    gc_threshold: tuple[int, ...] | None = None
    runs: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    opening_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    objects: list[int] = field(default_factory=list)
    cpu_cores: float | None = None
    server_cpu_cores: float | None = None
    users_cpu_cores: float | None = None
    core_wait: dict[str, float] = field(default_factory=dict)  # share of the phase a process waited for a core
    users_lags_ms: list[float] = field(default_factory=list)
    users_collector: list[dict[str, dict[str, float]]] = field(default_factory=list)
    probe_ms: list[float] = field(default_factory=list)
    agent: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    """Where the benchmark's processes run: the harness (dev server, users, probe) at a nice value, and the agent
    on a core of its own with the harness on the others, or everything on every core."""

    harness_nice: int = 0
    agent_core: int | None = None

    def agent(self) -> None:
        if self.agent_core is not None:
            os.sched_setaffinity(0, {self.agent_core})

    def harness(self, pid: int = 0) -> None:
        if self.harness_nice:
            os.setpriority(os.PRIO_PROCESS, pid, self.harness_nice)
        if self.agent_core is not None:
            os.sched_setaffinity(pid, os.sched_getaffinity(0) - {self.agent_core})

    def words(self) -> str:
        who = "the dev server, the users and the probe"
        nice = f"{who} run at nice {self.harness_nice}, below the agent" if self.harness_nice else ""
        if self.agent_core is None:
            return nice or f"{who} compete with the agent as equals"
        core = f"the agent runs on core {self.agent_core} alone, and {who} on the other cores"
        return f"{core}; {nice}" if nice else core


def child(role: str, *args: Any, stdout: Any = None, place: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, role, *map(str, args)], stdout=stdout, text=True,
                            preexec_fn=place)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchmarkError(f"no VmRSS for process {pid}")


def run_phase(phase: Phase, server: RunningServer, settings: argparse.Namespace, workdir: str) -> Phase:
    url, key = server.url, server.key
    agent = child("--agent", url, key, settings.max_connections, settings.warm_threads, settings.reply_tokens,
                  settings.token_rate, settings.session_linger_s, ",".join(map(str, phase.gc_threshold or ())),
                  settings.serving, settings.openings_at_once, stdout=subprocess.PIPE, place=settings.placement.agent)
    try:
        ready = json.loads(agent.stdout.readline() or "{}")  # type: ignore[union-attr]
        if "port" not in ready:
            raise BenchmarkError("the agent process did not start")
        agent_url = f"http://127.0.0.1:{ready['port']}"
        per_process = [len(chunk) for chunk in _split(phase.sessions, settings.user_processes)]
        outs = [Path(workdir) / f"users-{seed}.json" for seed in range(len(per_process))]
        phase.objects.append(_agent_json(f"{agent_url}/objects")["objects"])  # before the users: no one waits
        probe_out = Path(workdir) / "probe.json"
        probe = child("--probe", url, key, phase.seconds, probe_out, place=settings.placement.harness)
        users = [child("--users", url, key, agent_url, n, phase.seconds, settings.reply_tokens, settings.turns, seed,
                       out, place=settings.placement.harness)
                 for (seed, n), out in zip(enumerate(per_process), outs, strict=True)]
        cpu_before, started = cpu_seconds(agent.pid), time.monotonic()
        server_cpu_before = cpu_seconds(server.process.pid)
        loops = {"agent": agent.pid, "dev server": server.process.pid}
        waits_before = {name: core_wait_seconds(pid) for name, pid in loops.items()}
        samples: list[tuple[float, float]] = []
        while any(u.poll() is None for u in users):
            samples.append((time.monotonic() - started, rss_mb(agent.pid)))
            time.sleep(1.0)
        elapsed = time.monotonic() - started
        cpu_after, server_cpu_after = cpu_seconds(agent.pid), cpu_seconds(server.process.pid)
        if cpu_before is not None and cpu_after is not None:
            phase.cpu_cores = (cpu_after - cpu_before) / elapsed
        if server_cpu_before is not None and server_cpu_after is not None:
            phase.server_cpu_cores = (server_cpu_after - server_cpu_before) / elapsed
        for name, pid in loops.items():
            before, after = waits_before[name], core_wait_seconds(pid)
            if before is not None and after is not None:
                phase.core_wait[name] = (after - before) / elapsed
        for process, path in zip(users, outs, strict=True):
            if process.returncode != 0 or not path.exists():
                raise BenchmarkError(f"a user process failed (exit {process.returncode})")
            out = json.loads(path.read_text())
            phase.runs += out["runs"]
            phase.errors += out["errors"]
            phase.latencies_ms += out["latencies_ms"]
            phase.opening_ms += out["opening_ms"]
            phase.first_token_ms += out["first_token_ms"]
            phase.users_lags_ms += out["loop lags ms"]
            phase.users_cpu_cores = (phase.users_cpu_cores or 0.0) + out["cpu s"] / elapsed
            phase.users_collector.append(out["collector"])
        if probe.wait(60) == 0 and probe_out.exists():
            phase.probe_ms = json.loads(probe_out.read_text())
        phase.objects.append(_agent_json(f"{agent_url}/objects")["objects"])  # the users are done
        phase.agent = _agent_json(f"{agent_url}/stats?drain=1")
        phase.rss_mb = [_sample_at(samples, mark * phase.seconds) for mark in RSS_MARKS]
        return phase
    finally:
        agent.terminate()
        agent.wait(10)


def _agent_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=120) as response:
        return json.loads(response.read())


def _split(total: int, parts: int) -> list[range]:
    parts = max(1, min(parts, total))
    return [range(i, total, parts) for i in range(parts)]


def _sample_at(samples: list[tuple[float, float]], at: float) -> float:
    return min(samples, key=lambda sample: abs(sample[0] - at))[1] if samples else float("nan")


def _lag(summary: dict[str, float]) -> str:
    return f"{summary['p50 ms']:.1f} / {summary['p99 ms']:.1f} / {summary['max ms']:.0f} ms" if summary else "-"


def _first_token_lines(phases: list[Phase]) -> list[str]:
    base = phases[0].first_token_ms
    base_p50 = statistics.median(base) if base else None
    lines = []
    for phase in phases:
        ordered = sorted(phase.first_token_ms)
        if not ordered:
            lines.append(f"  {phase.name:<22}-")
            continue
        p50 = statistics.median(ordered)
        vs = f"{p50 / base_p50:.2f}x" if base_p50 else "-"
        lines.append(f"  {phase.name:<22}{len(ordered):>6}{p50:>9.1f}{percentile(ordered, 99):>9.1f}{vs:>9}")
    return lines


def _opening_lines(phases: list[Phase]) -> list[str]:
    lines = []
    for phase in phases:
        every, opening = sorted(phase.latencies_ms), sorted(phase.opening_ms)
        if not every or not opening:
            lines.append(f"  {phase.name:<22}-")
            continue
        p99 = percentile(every, 99)
        over = sum(1 for x in every if x > p99)
        share = sum(1 for x in opening if x > p99) / over if over else 0.0
        lines.append(f"  {phase.name:<22}first {statistics.median(opening):7.1f} {percentile(opening, 99):8.1f}   "
                     f"all {statistics.median(every):7.1f} {p99:8.1f}   over the p99: {share:.0%}")
    return lines


def _cores(cores: float | None) -> str:
    return "-" if cores is None else f"{cores:.2f}"


def _merged_pauses(per_process: list[dict[str, dict[str, float]]]) -> str:
    """The user processes' collector pauses, added up by generation."""
    merged: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for summary in per_process:
        for generation, pauses in summary.items():
            totals = merged[generation]
            totals[0] += pauses["n"]
            totals[1] += pauses["total s"]
            totals[2] = max(totals[2], pauses["max ms"])
    return "; ".join(f"gen{generation} {n:.0f} x, {total:.2f} s, max {longest:.1f} ms"
                     for generation, (n, total, longest) in sorted(merged.items())) or "-"


def report(phases: list[Phase], settings: argparse.Namespace, load_before: str) -> str:
    lines = [
        f"One agent process, a ConnectionPool of at most {settings.max_connections} Ably connections (opened "
        f"{settings.openings_at_once} at a time), "
        f"{SERVING[settings.serving]}; dev server with Ably's limits; replies of {settings.reply_tokens} tokens at "
        f"{settings.token_rate:g} tokens/s, users think {THINK_S[0]:g}-{THINK_S[1]:g} s and start a new conversation "
        f"every {settings.turns} turns; the saver keeps {settings.warm_threads} threads warm; sessions linger "
        f"{settings.session_linger_s:g} s after a run; {settings.placement.words()}; the agent's collector: "
        f"gc.freeze() after start-up, thresholds {tuple(settings.gc_threshold)} (a last phase: Python's default, "
        f"{DEFAULT_GC_THRESHOLD})",
        load_line(load_before), "",
        f"{'phase':<22}{'runs':>6}{'runs/s':>8}{'errors':>8}{'tokens':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'p99 vs base':>12}{'agent CPU':>11}{'ms/run':>8}{'server CPU':>12}",
    ]
    base_p99 = percentile(sorted(phases[0].latencies_ms), 99) if phases[0].latencies_ms else None
    for phase in phases:
        ordered = sorted(phase.latencies_ms)
        p50 = statistics.median(ordered) if ordered else float("nan")
        p99 = percentile(ordered, 99) if ordered else float("nan")
        errors = len(phase.errors) + phase.agent.get("warnings", 0) + sum(
            n for outcome, n in phase.agent.get("outcomes", {}).items() if outcome != "complete")
        vs = f"{p99 / base_p99:.2f}x" if base_p99 else "-"
        cores, server_cores = _cores(phase.cpu_cores), _cores(phase.server_cpu_cores)
        per_run = cell(1000 * phase.cpu_cores * phase.seconds / phase.runs
                       if phase.cpu_cores is not None and phase.runs else None, ".1f", 8)
        lines.append(f"{phase.name:<22}{phase.runs:>6}{phase.runs / phase.seconds:>8.1f}{errors:>8}{len(ordered):>9}"
                     f"{p50:>9.1f}{p99:>9.1f}{vs:>12}{cores:>11}{per_run}{server_cores:>12}")
    lines += ["", "time to first token, from the user's send to the reply's first token on the user's screen (the "
              "model's first token is due 1/rate after its call): turns, p50 and p99 ms, p50 against the "
              "baseline's (its few turns make its p99 a rough figure)"]
    lines += _first_token_lines(phases)
    lines += ["", f"a reply's first {OPENING_TOKENS} tokens (they wait for the reply's stream to be created, a round "
              "trip through the agent's loop) against all its tokens: p50 and p99 ms of each, and the first tokens' "
              "share of the tokens over the phase's p99"]
    lines += _opening_lines(phases)
    lines += ["", "agent memory at 0/25/50/75/100% of the phase, then the growth in each quarter after the first "
              "(warm-up):", "RSS (MiB)"]
    for phase in phases:
        marks = " ".join(f"{mb:8.1f}" for mb in phase.rss_mb)
        growth = " ".join(f"{b - a:+7.1f}" for a, b in itertools.pairwise(phase.rss_mb[1:]))
        lines.append(f"  {phase.name:<22}{marks}   {growth}")
    lines.append("live Python objects made since start-up, before the users start and after they are done (counting "
                 "takes a full collection, which would stall the agent: none is made while users stream)")
    for phase in phases:
        start, end = phase.objects
        lines.append(f"  {phase.name:<22}{start:8d} {end:8d}   {end - start:+7d}")
    lines += ["", "the agent's collector pauses while serving, by generation: count, total, median and longest, and "
              "the objects they freed (garbage in reference cycles)"]
    for phase in phases:
        by_generation = "; ".join(
            f"gen{generation} {p['n']:.0f} x, {p['total s']:.2f} s, p50 {p['p50 ms']:.1f} ms, max {p['max ms']:.1f} ms,"
            f" freed {p['freed']:.0f}" for generation, p in phase.agent.get("collector", {}).items())
        lines.append(f"  {phase.name:<22}{by_generation or '-'}")
    lines += ["", "how late each event loop ran a 10 ms timer (p50 / p99 / longest); the user processes' CPU and "
              "collector pauses (tuned as the agent's first phases; count, total, longest); and a probe's "
              "publish-to-echo round trip through the dev server, from a process with nothing else to do (every 50 ms; "
              "p50 / p99 / longest):"]
    for phase in phases:
        lines.append(f"  {phase.name:<22}agent {_lag(phase.agent.get('loop lag', {}))}; users "
                     f"{_lag(LoopLag.summarise(phase.users_lags_ms))}, {_cores(phase.users_cpu_cores)} cores, "
                     f"{_merged_pauses(phase.users_collector)}; probe {_lag(LoopLag.summarise(phase.probe_ms))}")
    lines += ["", "the share of the phase the agent's and the dev server's event loops were due to run and waited for "
              f"a core (runnable, not running: /proc/<pid>/schedstat; this machine has {os.cpu_count()} cores):"]
    for phase in phases:
        waits = ", ".join(f"{name} {share:.1%}" for name, share in phase.core_wait.items())
        lines.append(f"  {phase.name:<22}{waits or '-'}")
    lines += ["", "messages the agent published per completed run, by kind (the message ledger):"]
    for phase in phases:
        served = sum(phase.agent.get("outcomes", {}).values()) or 1
        counts = phase.agent.get("messages", {})
        by_kind = ", ".join(f"{kind} {n / served:.1f}" for kind, n in counts.items())
        lines.append(f"  {phase.name:<22}{sum(counts.values()) / served:6.1f} in all: {by_kind}")
    lines += ["", "the pool's connections (peak while serving, open at the end, opened, closed) and refusals for rate:"]
    for phase in phases:
        pool = phase.agent.get("pool", {})
        lines.append(f"  {phase.name:<22}peak {pool.get('peak')}, open {pool.get('connections')}, opened "
                     f"{pool.get('opened')}, closed {pool.get('closed')}; refused {phase.agent.get('refusals') or 0}")
    lines += ["", "held by the agent after the phase (all runs done):"]
    for phase in phases:
        lines.append(f"{phase.name:<22}{phase.agent.get('held')}   publishes paced: {phase.agent.get('paced')}")
    for phase in phases:
        problems = phase.errors[:5] + phase.agent.get("failures", []) + phase.agent.get("first_warnings", [])
        if problems:
            lines.append(f"{phase.name} problems (first few): {problems}")
    return "\n".join(lines)


def parse_settings(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the load phase (default 2)")
    parser.add_argument("--baseline-seconds", type=float, default=60.0)
    parser.add_argument("--sessions", type=positive, nargs="+", default=[50, 200])
    parser.add_argument("--max-connections", type=positive, default=100, help="the pool's ceiling")
    parser.add_argument("--openings-at-once", type=positive, default=1,
                        help="ConnectionPool(openings_at_once=): connections a burst of sessions opens at a time")
    parser.add_argument("--warm-threads", type=positive, default=256, help="threads the saver keeps warm")
    parser.add_argument("--turns", type=positive, default=5, help="turns of a conversation; then a new one")
    parser.add_argument("--user-processes", type=positive, default=5)
    parser.add_argument("--reply-tokens", type=positive, default=100)
    parser.add_argument("--token-rate", type=float, default=50.0, help="tokens per second per reply")
    parser.add_argument("--gc-threshold", type=positive, nargs=3, default=AGENT_GC_THRESHOLD,
                        metavar=("GEN0", "GEN1", "GEN2"), help="the agent's gc.set_threshold (default: %(default)s)")
    parser.add_argument("--no-default-gc-phase", action="store_true",
                        help="leave out the last phase (the most sessions, with Python's default collector settings)")
    parser.add_argument("--serving", choices=sorted(SERVING), default="graph",
                        help="graph: serve_graph + AblySaver (the product path); transport: the model's stream piped "
                             "into a session's run, without LangGraph or a checkpointer")
    parser.add_argument("--harness-nice", type=int, default=0,
                        help="run the dev server, the users and the probe at this nice value, below the agent, which "
                             "then comes first for a core (default 0: all compete as equals)")
    parser.add_argument("--agent-core", type=int, default=None,
                        help="run the agent on this core alone, and the dev server, the users and the probe on the "
                             "others (default: every process on every core)")
    parser.add_argument("--session-linger-s", type=float, default=SESSION_LINGER_S,
                        help="serve_graph(session_linger_s=): 0 detaches each session after its run")
    settings = parser.parse_args(argv)
    settings.placement = Placement(settings.harness_nice, settings.agent_core)
    return settings


def main(argv: list[str] | None = None) -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--agent":
        url, key, connections, warm, tokens, rate, linger, threshold, serving, at_once = sys.argv[2:12]
        asyncio.run(run_agent(url, key, int(connections), int(warm), int(tokens), float(rate), float(linger),
                              tuple(map(int, threshold.split(","))) if threshold else None, serving, int(at_once)))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        url, key, seconds, out = sys.argv[2:6]
        asyncio.run(run_probe(url, key, float(seconds), Path(out)))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--users":
        url, key, agent_url, users, seconds, tokens, turns, seed, out = sys.argv[2:11]
        settings = UserSettings(float(seconds), int(tokens), int(turns))
        asyncio.run(run_users(url, key, agent_url, int(users), settings, int(seed), Path(out)))
        return
    settings = parse_settings(argv)
    load_before = load_average()
    tuned = tuple(settings.gc_threshold)
    phases = [Phase("BASELINE 1 session", 1, settings.baseline_seconds, tuned),
              *(Phase(f"{n} sessions", n, settings.minutes * 60, tuned) for n in settings.sessions)]
    if not settings.no_default_gc_phase:
        most = max(settings.sessions)
        phases.append(Phase(f"{most}, default gc", most, settings.minutes * 60, gc_threshold=None))
    with spawn() as server, tempfile.TemporaryDirectory(prefix="load-bench-") as workdir:
        settings.placement.harness(server.process.pid)
        for phase in phases:
            run_phase(phase, server, settings, workdir)
    print(report(phases, settings, load_before))


if __name__ == "__main__":
    main()
