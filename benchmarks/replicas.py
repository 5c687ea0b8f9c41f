"""Turns per second at a fixed p99 token latency, with 1 replica against 2, on this machine.

Set-up, for each configuration in turn (a fresh dev server each, Ably's default limits): N replicas, each
`uvicorn replicas:app --factory` (this file, `--app-dir benchmarks`), that is `create_app` of a one-node chat
graph compiled with `AblySaver`, as docs/deploy.md deploys it. Its model streams a fixed reply of
`--reply-tokens` tokens, `w0 w1 ...`, token i due `(i + 1) * --token-delay-ms` after the model starts: on a
fixed schedule, as a provider's stream arrives whether the server is busy or not. An aiohttp round-robin proxy in
this process stands in front of the replicas (in front of the one replica too, so that the configurations differ
only in the number of replicas). The users are `ClientSession`s in this process, genuine ably-python: each sends
a message, POSTs the invocation to the proxy, follows the reply to its `ai-run-end`, and sends the next at once
(no think time); every `--turns` turns it starts a new conversation.

Offered load: the number of conversations at once, stepped up through `--conversations` (1, 2, 4, 8, 12, 16,
24, 32, 48, 64: about x1.5 a step past 8, so that the figures either side of the bound are not a doubling apart).
A configuration stops at the first step whose p99 is over the bound, or that has errors. Each step has a warm-up
(`--warmup-s`, not counted; the users start spread over it, as a ramp), then a window of at least `--window-s`
and at least `--min-samples` token samples (at most 4 windows): turns/s counts the turns that end inside it.

Token latency: for each token a user receives, its arrival less (the time the user started sending that turn +
the time the model's schedule puts before that token): how late the token is against a server that costs
nothing. It therefore counts the whole turn's overhead (the publish, the POST, the proxy, the run's start and
checkpoint reads) and every wait after the model emits (the replica's event loop, the publish rate, the dev
server, the user's decoding); an inter-token gap would miss the start, and the time from the send alone would
mostly measure the scripted delay. One process, one monotonic clock.

Reported: for each configuration and step, turns/s (against the 1-replica step with as many conversations),
token latency p50/p99 and how many samples, errors, the median turn, the CPU busy (cores) of the replicas
together, the dev server and this process, and the 1-minute load average at the step's end. Then the figure the
issue asks for: the highest turns/s whose p99 stays within `--p99-bound-ms`, 1 replica (BASELINE, measured first,
in the same run) against 2, and their ratio. Two replicas share this machine's cores with the dev server and the
users, so the ratio says what a second replica buys here, not on a machine of its own.

Reproduce (about 2.5 minutes; `--quick`: shorter steps, about 1.5 minutes):

    .venv/bin/python benchmarks/replicas.py [--p99-bound-ms 250] [--conversations 1 2 4 ...] [--max-connections N]
                                            [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from common import (
    BenchmarkError,
    cell,
    cpu_seconds,
    load_average,
    load_line,
    percentile,
    positive,
    quiet_sdk_logs,
    ratio,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph
from starlette.applications import Starlette

from langchain_ably_transport import ClientSession, connect
from langchain_ably_transport.devserver import RunningServer, spawn
from langchain_ably_transport.server import create_app
from langchain_ably_transport.wire import names

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WAIT_S = 30.0  # the bound on every single wait: a replica's start, a POST, a run's start, the next event
TURN_S = 2 * WAIT_S  # the bound on a whole turn
P99_MIN_SAMPLES = 200  # fewer token samples than this, and a step's p99 is not a figure
TOKEN = re.compile(r"w(\d+) ")
CONVERSATIONS_PER_CONNECTION = 8
STEP_PAUSE_S = 1.0  # between steps, so that the last step's conversations have closed


# --- the replica: `uvicorn replicas:app --factory --app-dir benchmarks` ---


class PacedModel(BaseChatModel):
    """Streams `tokens` tokens `w<i> `, token i due `(i + 1) * delay_s` after the stream starts."""

    tokens: int
    delay_s: float

    @property
    def _llm_type(self) -> str:
        return "paced"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        text = "".join(f"w{i} " for i in range(self.tokens))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(self.tokens):
            await asyncio.sleep(max(0.0, started + (i + 1) * self.delay_s - loop.time()))
            yield ChatGenerationChunk(message=AIMessageChunk(content=f"w{i} "))


def paced_builder(tokens: int, delay_s: float) -> StateGraph:
    """START -> chat -> END; `chat` streams the paced model's reply."""
    model = PacedModel(tokens=tokens, delay_s=delay_s)

    async def chat(state: MessagesState) -> dict[str, Any]:
        reply = None
        async for chunk in model.astream(state["messages"]):
            reply = chunk if reply is None else reply + chunk
        return {"messages": [reply]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    return graph


def app() -> Starlette:
    """The replica's ASGI app, configured by the environment the benchmark gives it."""
    ceiling = os.environ.get("MAX_CONNECTIONS")
    replica = create_app(paced_builder(int(os.environ["REPLY_TOKENS"]), float(os.environ["TOKEN_DELAY_S"])),
                         key=os.environ["ABLY_API_KEY"], endpoint=os.environ["ABLY_ENDPOINT"], grace_period_s=2.0,
                         pool_options={"max_connections": int(ceiling)} if ceiling else None)
    gc.freeze()  # everything is imported: keep the collector off it, as docs/tuning.md advises streaming servers
    return replica


# --- the replicas and the proxy ---


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ReplicaProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def replicas(server: RunningServer, count: int, settings: argparse.Namespace,
             logs: Path) -> Iterator[list[ReplicaProcess]]:
    """`count` uvicorn replicas on free ports, started together; each terminated (killed if need be) on exit."""
    started: list[ReplicaProcess] = []
    env = {**os.environ, "ABLY_API_KEY": server.key, "ABLY_ENDPOINT": server.url,
           "REPLY_TOKENS": str(settings.reply_tokens), "TOKEN_DELAY_S": str(settings.token_delay_ms / 1000),
           "MAX_CONNECTIONS": str(settings.max_connections or "")}
    try:
        for index in range(count):
            port, log = _free_port(), logs / f"replica-{count}-{index}.log"
            with log.open("wb") as stderr:  # a file, not a pipe: a chatty replica never blocks on it
                process = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "replicas:app", "--factory", "--app-dir", str(HERE),
                     "--port", str(port), "--log-level", "warning", "--no-access-log"],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            started.append(ReplicaProcess(f"http://127.0.0.1:{port}", process, log))
        yield started
    finally:
        for replica in started:
            _stop(replica.process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


async def wait_ready(http: aiohttp.ClientSession, replica: ReplicaProcess) -> None:
    """Until its /readyz answers 200, at most WAIT_S; its log in the error otherwise."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            break
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(f"{replica.url}/readyz", timeout=aiohttp.ClientTimeout(total=1)) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    tail = replica.log.read_text(errors="replace")[-2000:]
    raise BenchmarkError(f"replica {replica.url} not ready (exit {replica.process.poll()}): {tail}")


@contextlib.asynccontextmanager
async def round_robin(upstreams: list[str]) -> AsyncIterator[str]:
    """Any load balancer: each request to the next replica in turn, no stickiness, kept-alive connections."""
    turns = itertools.cycle(upstreams)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http:

        async def forward(request: web.Request) -> web.Response:
            async with http.request(request.method, f"{next(turns)}{request.rel_url}", data=await request.read(),
                                    headers={"Content-Type": request.content_type}) as reply:
                return web.Response(status=reply.status, body=await reply.read(),
                                    headers={"Content-Type": reply.content_type})

        proxy = web.Application()
        proxy.router.add_route("*", "/{path:.*}", forward)
        runner = web.AppRunner(proxy, access_log=None)
        await runner.setup()
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


# --- the users ---


@dataclass
class Window:
    """The counted part of a step: it opens after the warm-up and closes at the first turn to end once both
    `seconds` have passed and `min_samples` token samples are in, or at `longest`."""

    opens: float
    seconds: float
    min_samples: int
    longest: float
    closes: float | None = None
    turns: int = 0
    lateness_ms: list[float] = field(default_factory=list)
    turn_s: list[float] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, ended: float, turn_s: float, lateness_ms: list[float]) -> None:
        if ended < self.opens or self.closes is not None:
            return
        self.turns += 1
        self.turn_s.append(turn_s)
        self.lateness_ms += lateness_ms
        if ended >= self.opens + self.seconds and len(self.lateness_ms) >= self.min_samples:
            self.close(ended)

    def close(self, at: float) -> None:
        if self.closes is None:
            self.closes = at
            self.closed.set()


async def one_turn(view: ClientSession, http: aiohttp.ClientSession, url: str,
                   settings: argparse.Namespace) -> tuple[float, list[float]]:
    """One turn: send, POST, follow the reply; its length (s) and each token's lateness (ms)."""
    delay_s = settings.token_delay_ms / 1000
    started = time.monotonic()
    sent = await view.send("next, please")
    async with http.post(f"{url}/api/chat", json=sent.invocation.to_json()) as response:
        if response.status != 202:
            raise BenchmarkError(f"the invocation was answered {response.status}: {await response.text()}")
    arrivals = await follow(view, await sent.run_id(timeout=WAIT_S), settings.reply_tokens)
    lateness = [(arrived - started - (index + 1) * delay_s) * 1000 for index, arrived in arrivals.items()]
    return time.monotonic() - started, lateness


async def follow(view: ClientSession, run_id: str, tokens: int) -> dict[int, float]:
    """When each token of run `run_id` arrived; raises unless the run completed with exactly the tokens streamed."""
    arrivals: dict[int, float] = {}
    events = view.events()
    while True:
        wire, decoded = await asyncio.wait_for(anext(events), WAIT_S)
        now = time.monotonic()
        for direction, chunk, _, event_run, _ in decoded:
            if direction == "output" and event_run == run_id and chunk.get("type") == "text-delta":
                arrivals.update((int(index), now) for index in TOKEN.findall(chunk["delta"]))
        if wire.name == names.RUN_END and wire.transport.get(names.HEADER_RUN_ID) == run_id:
            break
    reason = wire.transport.get(names.HEADER_RUN_REASON, "complete")
    if reason != "complete":
        raise BenchmarkError(f"run ended {reason}")
    if sorted(arrivals) != list(range(tokens)):
        raise BenchmarkError(f"{len(arrivals)} of {tokens} tokens arrived")
    return arrivals


async def conversations(client: Any, http: aiohttp.ClientSession, url: str, settings: argparse.Namespace,
                        window: Window, errors: list[str], start_after_s: float) -> None:
    """One user: turns back to back, a new conversation every `settings.turns`, until the window closes. Users
    start spread over the warm-up, as a ramp, so that they do not turn in lockstep."""
    await asyncio.sleep(start_after_s)
    while window.closes is None:
        async with ClientSession(client, f"conversations:replicas-{uuid.uuid4().hex[:12]}") as view:
            for _ in range(settings.turns):
                if window.closes is not None:
                    return
                try:
                    turn_s, lateness = await asyncio.wait_for(one_turn(view, http, url, settings), TURN_S)
                except (TimeoutError, BenchmarkError, aiohttp.ClientError) as error:
                    errors.append(f"{type(error).__name__}: {error}")
                    return
                window.record(time.monotonic(), turn_s, lateness)


# --- a step, a configuration ---


@dataclass
class Step:
    conversations: int
    turns: int = 0
    seconds: float = 0.0
    lateness_ms: list[float] = field(default_factory=list)
    turn_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cores: dict[str, float | None] = field(default_factory=dict)
    load_1m: str = ""

    @property
    def turns_per_s(self) -> float | None:
        return self.turns / self.seconds if self.seconds else None

    @property
    def p99(self) -> float | None:
        return percentile(sorted(self.lateness_ms), 99) if len(self.lateness_ms) >= P99_MIN_SAMPLES else None

    def within(self, bound_ms: float) -> bool:
        """No error, and a p99 (of enough samples) within the bound."""
        return not self.errors and self.p99 is not None and self.p99 <= bound_ms


def cpu_snapshot(pids: dict[str, list[int]]) -> dict[str, float | None]:
    """CPU seconds so far of each group of processes (None where /proc cannot say)."""
    snapshot: dict[str, float | None] = {}
    for group, members in pids.items():
        seconds = [cpu_seconds(pid) for pid in members]
        snapshot[group] = None if None in seconds else sum(s for s in seconds if s is not None)
    return snapshot


def _cores(before: dict[str, float | None], after: dict[str, float | None], seconds: float) -> dict[str, float | None]:
    """Cores each group kept busy in `seconds`, from two snapshots."""
    busy: dict[str, float | None] = {}
    for group, start in before.items():
        end = after.get(group)
        busy[group] = None if start is None or end is None else (end - start) / seconds
    return busy


async def run_step(step: Step, clients: list[Any], http: aiohttp.ClientSession, url: str,
                   settings: argparse.Namespace, pids: dict[str, list[int]]) -> Step:
    """`step.conversations` users through a warm-up and a window; the turns that end in the window, their tokens'
    lateness, and the CPU the processes in `pids` used meanwhile."""
    started = time.monotonic()
    window = Window(started + settings.warmup_s, settings.window_s, settings.min_samples, 4 * settings.window_s)
    users = [asyncio.create_task(conversations(clients[i // CONVERSATIONS_PER_CONNECTION], http, url, settings,
                                               window, step.errors, i * settings.warmup_s / step.conversations))
             for i in range(step.conversations)]
    await asyncio.sleep(settings.warmup_s)
    cpu_before, opened = cpu_snapshot(pids), time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(window.closed.wait(), window.longest)
    window.close(time.monotonic())
    cpu_after, measured_s = cpu_snapshot(pids), time.monotonic() - opened
    _, late = await asyncio.wait(users, timeout=TURN_S + WAIT_S)  # the turns in flight end, then their sessions
    for task in late:
        task.cancel()
        step.errors.append("a conversation did not end in time")
    await asyncio.gather(*users, return_exceptions=True)
    assert window.closes is not None
    step.turns, step.seconds = window.turns, window.closes - window.opens
    step.lateness_ms, step.turn_s = window.lateness_ms, window.turn_s
    step.cores = _cores(cpu_before, cpu_after, measured_s)
    step.load_1m = load_average().split()[0]
    return step


async def measure(count: int, settings: argparse.Namespace, logs: Path) -> list[Step]:
    """The steps of one configuration: `count` replicas behind the proxy, more conversations each step, up to the
    first step over the bound."""
    steps: list[Step] = []
    with spawn() as server, replicas(server, count, settings, logs) as running:
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)))
            await asyncio.gather(*(wait_ready(http, replica) for replica in running))
            url = await stack.enter_async_context(round_robin([replica.url for replica in running]))
            levels = sorted(set(settings.conversations))
            clients = [await stack.enter_async_context(connect(server.key, server.url))
                       for _ in range(-(-levels[-1] // CONVERSATIONS_PER_CONNECTION))]
            pids = {"replicas": [replica.process.pid for replica in running], "devserver": [server.process.pid],
                    "bench": [os.getpid()]}
            await _warm_up(clients[0], http, url, settings, count)
            gc.freeze()
            for conversations_at_once in levels:
                step = await run_step(Step(conversations_at_once), clients, http, url, settings, pids)
                steps.append(step)
                _progress(count, step)
                if not step.within(settings.p99_bound_ms):
                    break
                await asyncio.sleep(STEP_PAUSE_S)
    return steps


def _progress(count: int, step: Step) -> None:
    """One line on stderr per step, as it ends: the run takes minutes."""
    print(f"  ({count} replica(s), {step.conversations} conversations: {cell(step.turns_per_s, '.2f', 0)} turns/s, "
          f"p99 {cell(step.p99, '.0f', 0)} ms)", file=sys.stderr, flush=True)


async def _warm_up(client: Any, http: aiohttp.ClientSession, url: str, settings: argparse.Namespace,
                   count: int) -> None:
    """Two turns per replica before anything counts: the first turn on a replica pays for lazy imports."""
    async with ClientSession(client, f"conversations:replicas-warm-{uuid.uuid4().hex[:8]}") as view:
        for _ in range(2 * count):
            await asyncio.wait_for(one_turn(view, http, url, settings), TURN_S)


# --- the report ---


COLUMNS = (f"{'conv':>5}{'turns':>7}{'turns/s':>9}{'vs 1 rep':>9}{'tokens':>8}{'p50 ms':>8}{'p99 ms':>8}"
           f"{'turn p50 s':>11}{'errors':>7}  {'CPU cores: replicas':>19}{'devserver':>10}{'bench':>7}{'load 1m':>9}")


def _row(step: Step, base: Step | None) -> str:
    cores = step.cores
    vs = ratio(step.turns_per_s, base.turns_per_s) if base is not None else "-"
    p50 = statistics.median(step.lateness_ms) if step.lateness_ms else None
    return (f"{step.conversations:>5}{step.turns:>7}{cell(step.turns_per_s, '.2f', 9)}{vs:>9}"
            f"{len(step.lateness_ms):>8}{cell(p50, '.0f', 8)}{cell(step.p99, '.0f', 8)}"
            f"{cell(statistics.median(step.turn_s) if step.turn_s else None, '.2f', 11)}{len(step.errors):>7}  "
            f"{cell(cores.get('replicas'), '.2f', 19)}{cell(cores.get('devserver'), '.2f', 10)}"
            f"{cell(cores.get('bench'), '.2f', 7)}{step.load_1m:>9}")


def best_within(steps: list[Step], bound_ms: float) -> Step | None:
    """The step of highest turns/s among those with no error and a p99 within the bound."""
    within = [step for step in steps if step.within(bound_ms)]
    return max(within, key=lambda step: step.turns_per_s or 0.0, default=None)


def report(results: dict[int, list[Step]], settings: argparse.Namespace, load_before: str) -> str:
    bound = settings.p99_bound_ms
    ceiling = (f"at most {settings.max_connections} connections" if settings.max_connections
               else "create_app's default ceiling")
    lines = [
        f"create_app replicas (uvicorn) behind a round-robin proxy, one dev server; a one-node graph with AblySaver "
        f"whose model streams {settings.reply_tokens} tokens, one every {settings.token_delay_ms:g} ms; users turn "
        f"back to back, a new conversation every {settings.turns} turns; each replica's pool: {ceiling}",
        "token latency: arrival - (the turn's send + the model's schedule for that token); "
        f"warm-up {settings.warmup_s:g} s per step, then >= {settings.window_s:g} s and >= {settings.min_samples} "
        "tokens",
        f"{os.cpu_count()} CPUs; {load_line(load_before)}", "",
    ]
    base_by_level = {step.conversations: step for step in results[1]}
    for count, steps in results.items():
        lines += [f"{count} replica{'s' if count > 1 else ''}{' (BASELINE)' if count == 1 else ''}", COLUMNS]
        lines += [_row(step, base_by_level.get(step.conversations)) for step in steps]
        problems = [error for step in steps for error in step.errors][:3]
        if problems:
            lines.append(f"  errors (first few): {problems}")
        lines.append("")
    best = {count: best_within(steps, bound) for count, steps in results.items()}
    lines.append(f"highest turns/s with token p99 <= {bound:g} ms:")
    for count, step in best.items():
        figure = "none within the bound" if step is None else (
            f"{step.turns_per_s:.2f} turns/s at {step.conversations} conversations (p99 {step.p99:.0f} ms)")
        lines.append(f"  {count} replica{'s' if count > 1 else ''}: {figure}")
    one, two = best.get(1), best.get(2)
    lines.append(f"ratio 2 replicas / 1 replica (BASELINE): "
                 f"{ratio(two.turns_per_s if two else None, one.turns_per_s if one else None)}")
    return "\n".join(lines)


# --- the command line ---


def parse_settings(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p99-bound-ms", type=float, default=250.0, help="the fixed p99 token latency (ms)")
    parser.add_argument("--conversations", type=positive, nargs="+", default=[1, 2, 4, 8, 12, 16, 24, 32, 48, 64],
                        help="the steps of offered load: conversations at once")
    parser.add_argument("--max-connections", type=positive, default=None,
                        help="each replica's pool ceiling (default: create_app's, 16)")
    parser.add_argument("--reply-tokens", type=positive, default=40)
    parser.add_argument("--token-delay-ms", type=float, default=20.0, help="between a reply's tokens")
    parser.add_argument("--turns", type=positive, default=5, help="turns of a conversation; then a new one")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="of each step, not counted")
    parser.add_argument("--window-s", type=float, default=6.0, help="the least a step counts for")
    parser.add_argument("--min-samples", type=positive, default=400, help="the fewest token samples a step counts")
    parser.add_argument("--quick", action="store_true", help="1 s warm-up, 3 s windows, 200 samples")
    settings = parser.parse_args(argv)
    if settings.quick:
        settings.warmup_s, settings.window_s, settings.min_samples = 1.0, 3.0, 200
    return settings


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    quiet_sdk_logs()
    load_before = load_average()
    results: dict[int, list[Step]] = {}
    with tempfile.TemporaryDirectory(prefix="replicas-bench-") as logs:
        for count in (1, 2):
            results[count] = asyncio.run(measure(count, settings, Path(logs)))
        logged = [line for log in sorted(Path(logs).iterdir()) for line in log.read_text(errors="replace").splitlines()]
    print(report(results, settings, load_before))
    first = f"; the first: {logged[:3]}" if logged else ""
    print(f"the replicas logged {len(logged)} lines (warnings and errors){first}")


if __name__ == "__main__":
    main()
