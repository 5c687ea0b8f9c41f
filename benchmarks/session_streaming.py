"""Streaming a fake model at 1,000 tokens/s through an agent session: added latency, messages, CPU, vs the JS agent.

The fake model emits one token (a unique short word, `t00042 `) per millisecond on absolute deadlines, as the
Vercel chunks an agent pipes: `start`, `start-step`, `text-start`, one `text-delta` per token, `text-end`,
`finish-step`, `finish`. The agent answers a real input: a `ClientSession` sends a user message, the agent
(`AgentSession` -> `create_run(invocation)` -> `start` -> `pipe` -> `end`) streams the reply through a dev
server, and a raw ably-python subscriber (a connection of its own) decodes the deltas with `codec.Decoder`.
Each delivered delta is mapped back to the tokens it carries by content; with coalescing one delta carries
several tokens and each token's latency is measured to the delta that contains it.

Servers (both `spawn()`ed, in memory, in child processes):

- MAIN: `--inbound-rate 0 --protocol-rate 0 --append-rollup-window 0`. The server's own append rollup is off,
  so every message an agent publishes is delivered as one message and the figures show the agent's own
  coalescing; the rate limits are off so that an unpaced agent is neither cut off (42924) nor throttled.
- ABLY-DEFAULT ROLLUP: `--inbound-rate 0` only: the dev server rolls appends up over 40 ms per publishing
  connection, as Ably does by default. Context rows only (what a deployment on Ably would see).

What is measured:

1. Added latency per token, p50/p99 in ms: the subscriber has decoded the delta that carries the token, minus
   the agent's fake model yielding it. The agent and the subscriber are two connections in this process
   (`time.monotonic_ns()`); the first 200 tokens are warm-up and left out. "p99 due" measures from the token's
   deadline instead: the pipe pulls the model, so a busy pipe (or a process the OS did not run) pulls late,
   which the yield time hides and the deadline does not. Table 1, for coalescing windows 0, 10, 40 (the
   default) and 100 ms, next to the BASELINE: the same paced tokens sent straight from ably-python as raw
   `append_message` calls to one message (no session, no codec, no decoder), the floor of ably-python + dev
   server + subscriber on this machine; "over the baseline" is what the session and codec add. A last row
   repeats window 0 after `gc.collect(); gc.freeze()`: with langchain_core, pydantic and ably imported, a
   full collection takes tens of ms here and stalls agent and subscriber alike, which "p99 due" shows.
2. Published messages, counted twice: "sent" counts the agent's `ChannelWriter` calls (every create, append
   and lifecycle message; the benchmark wraps the session's writer instance), i.e. what the server received;
   "dlvd" counts every message of the run delivered to the subscriber (with the server rollup off each
   received message is delivered once, so the two agree; with Ably's rollup "dlvd" is what the server
   published after rolling appends up). The dev server has no stats endpoint and its history holds one
   aggregate per appended-to message, so neither can count appends. Both are per 1,000 tokens, for the whole
   run. Per stream: "stream msg/s" is the steady rate of text-carrying appends ((n - 1) / span of their
   deliveries, without the stream's immediate first delta and its final flush), the rate a window bounds;
   "peak/1s" the most messages of the text stream (create, appends, closing append) delivered in any 1 s.
3. Encoder CPU per token: (a) "proc CPU" in table 1 is `time.process_time()` around `run.pipe()` divided by
   the tokens: this process, so agent and subscriber together; (b) table 2, a pure micro-benchmark:
   `MessageEncoder` with an in-memory `ChannelWriter` (appends return settled futures) on a virtual clock
   advanced 1 ms per token (coalescing behaves as at 1,000 tokens/s, without waiting), minus the same loop
   without the encoder, with the collector on (as in an agent: the encoder keeps every append's future until
   the stream closes) and off (as `timeit` does); plus `Decoder` CPU per token over the messages it produced;
   (c) "agent CPU" in table 3, the agent process's own CPU from its first token to the end of its pipe (all
   ACKs in): Python `process_time()` in the agent process, JS `process.cpuUsage()` from the probe (first text
   append to the `ai-run-end` publish). "server" is the dev server's CPU (/proc) from the first token
   delivered to `ai-run-end` delivered.
4. The genuine JS agent (`tests/js/ai-transport/agent-answer.mjs`, @ably/ai-transport 0.8.0, one token per
   delta, the MAIN server) next to the Python agent at window 0, each in a process of its own (the
   subscriber stays in this one; both clocks are CLOCK_MONOTONIC), paced (JS: DELAY_MS=1, a 1 ms
   `setTimeout` before each delta; Python: 1,000 tokens/s on deadlines) and unpaced (JS: DELAY_MS=0;
   Python: no sleep) for N tokens. A preloaded probe (written to a temporary file, `node --import`) records
   `process.hrtime.bigint()` at each `RealtimeChannel.appendMessage` call, which the SDK makes synchronously
   when `pipe` takes the delta; that is the JS token's start (the Python agent's is its yield, a step earlier
   in its pipeline, so if anything the JS latency is flattered). "emit tok/s" = tokens / (last - first token
   started); "dlvd tok/s" = tokens / (last token delivered - first token started). The paced Python agent is
   run a second time with its heap frozen (`gc.freeze()`), as in table 1.

Every figure is the median over repeats (default 3), each on a fresh channel and fresh connections.
Targets printed: window 0: p99 added latency < 5 ms; default window (40 ms): p99 <= 45 ms and <= 25 stream
messages/s (steady; the busiest-second count is printed too); Python agent throughput >= the JS agent's
(paced and unpaced, delivered tokens/s).

Reproduce, from the project root (about 2 minutes; `--quick`: 1 repeat, shorter streams, about 15 s; node
and `npm ci --prefix tests/js` are needed for table 3, which is skipped with a note without them):

    .venv/bin/python benchmarks/session_streaming.py [--repeats N] [--quick]
    .venv/bin/python benchmarks/session_streaming.py --profile    # where the Python agent's CPU goes

The tables go to stdout, progress to stderr. The machine's other load shows up directly in the tails (a
process the OS does not run for 10 ms adds 10 ms); the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import math
import multiprocessing
import os
import platform
import pstats
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from ably.types.message import Message
from common import (
    BenchmarkError,
    cell,
    cpu_seconds,
    load_average,
    load_line,
    median_of,
    percentile,
    positive,
    quiet_sdk_logs,
    ratio,
)

from langchain_ably_transport import connect
from langchain_ably_transport.codec import Decoder, MessageEncoder
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.session import AgentSession, ClientSession
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage
from langchain_ably_transport.wire.headers import build_transport_headers
from langchain_ably_transport.wire.invocation import Invocation

RATE = 1000  # tokens/s of the paced fake model
WINDOWS_MS = (0, 10, 40, 100)
DEFAULT_WINDOW_MS = 40
WARMUP_TOKENS = 200
TARGET_OFF_P99_MS = 5.0
TARGET_SLACK_MS = 5.0
TARGET_STREAM_MSG_S = 25.0
MAIN_SERVER_ARGS = ["--inbound-rate", "0", "--protocol-rate", "0", "--append-rollup-window", "0"]
ABLY_ROLLUP_SERVER_ARGS = ["--inbound-rate", "0"]
STREAM_TIMEOUT_S = 60.0
TEXT_ID = "text-0"
TOKEN_RE = re.compile(r"t(\d{5}) ")
ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "tests" / "js"
JS_AGENT = JS_DIR / "ai-transport" / "agent-answer.mjs"
BASELINE = "BASELINE raw ably-python appends"

PROBE_JS = r"""
// Preloaded into agent-answer.mjs: timestamps every RealtimeChannel.appendMessage call (CLOCK_MONOTONIC ns) and
// takes the process's CPU time at the first text append and when the run's end is published.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
const require = createRequire(process.env.PROBE_REQUIRE_FROM);
const Ably = require('ably');
const scratch = new Ably.Realtime({ key: 'probe.probe:probe', autoConnect: false, logLevel: 0 });
const proto = Object.getPrototypeOf(scratch.channels.get('probe'));
try { scratch.close(); } catch {}
const appends = [];
const cpu = { first: null, end: null };  // process.cpuUsage() at the first text append and at ai-run-end
const cpuMicros = () => { const { user, system } = process.cpuUsage(); return user + system; };
const originalAppend = proto.appendMessage;
proto.appendMessage = function (message, ...rest) {
  const data = typeof message?.data === 'string' ? message.data : '';
  if (data && cpu.first === null) cpu.first = cpuMicros();
  appends.push([process.hrtime.bigint().toString(), data]);
  return originalAppend.call(this, message, ...rest);
};
const originalPublish = proto.publish;
proto.publish = function (...args) {
  const name = typeof args[0] === 'string' ? args[0] : args[0]?.name;
  if (name === 'ai-run-end') cpu.end = cpuMicros();
  return originalPublish.apply(this, args);
};
process.on('exit', () => writeFileSync(process.env.PROBE_OUT, JSON.stringify({ appends, cpu })));
"""


@dataclass(frozen=True)
class Settings:
    repeats: int
    paced_tokens: int
    unpaced_tokens: int
    micro_tokens: int
    profile: bool = False


@dataclass(frozen=True)
class Address:
    url: str
    key: str
    pid: int


def token(index: int) -> str:
    return f"t{index:05d} "


# --- the fake model ---


HEAD = ({"type": "start"}, {"type": "start-step"}, {"type": "text-start", "id": TEXT_ID})
TAIL = ({"type": "text-end", "id": TEXT_ID}, {"type": "finish-step"}, {"type": "finish", "finishReason": "stop"})


@dataclass
class Trace:
    """What the fake model records: each token's yield time and deadline (ns), and CPU time at the first token."""

    starts: list[int] = field(default_factory=list)
    deadlines: list[int] = field(default_factory=list)
    first_cpu: float = 0.0


async def fake_model(count: int, rate: float | None, trace: Trace) -> AsyncIterator[dict[str, Any]]:
    """The chunks of one reply; token i is due at start + i / rate (or at once, with no rate).

    The pipe pulls the generator, so a token is yielded when it is due or, if the pipe is busy, later; the due
    times are kept too so that a late pull counts ("p99 due").
    """
    for chunk in HEAD:
        yield chunk
    start_ns = time.monotonic_ns() + 2_000_000
    trace.first_cpu = time.process_time()
    for index in range(count):
        due = start_ns + index * 1_000_000_000 // int(rate) if rate else 0
        if rate:
            delay = (due - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
        trace.starts.append(time.monotonic_ns())
        trace.deadlines.append(due or trace.starts[-1])
        yield {"type": "text-delta", "id": TEXT_ID, "delta": token(index)}
    for chunk in TAIL:
        yield chunk


# --- the subscriber ---


class Subscriber:
    """A raw ably-python subscriber that decodes deltas and counts what the channel delivers."""

    def __init__(self, server_pid: int | None = None) -> None:
        self._decoder = Decoder()
        self.deltas: list[tuple[int, str]] = []
        self.delivered = 0
        self.text_appends: list[int] = []  # delivery times of appends that carry text
        self.stream_messages: list[int] = []  # delivery times of the stream's create and all its appends
        self.ended = asyncio.Event()
        self._server_pid = server_pid
        self._server_cpu: list[float | None] = []  # at the first token delivered, at the run's end delivered

    def on_message(self, message: Any) -> None:
        wire = WireMessage.from_ably(message)
        if wire is None:  # the baseline's raw messages
            self._on_raw(message)
            return
        self.delivered += 1
        if wire.action is names.Action.APPEND or wire.transport.get(names.HEADER_STREAM) == names.TRUE:
            self.stream_messages.append(time.monotonic_ns())
        for event in self._decoder.decode(wire):
            chunk = event.event
            if chunk.get("type") == "text-delta":
                self._delta(time.monotonic_ns(), chunk["delta"])
        if wire.action is names.Action.APPEND and wire.data:
            self.text_appends.append(time.monotonic_ns())
        if wire.name == names.RUN_END:
            self._end()

    def _on_raw(self, message: Any) -> None:
        self.delivered += 1
        if message.name == "raw-end":
            self._end()
            return
        now = time.monotonic_ns()
        self.stream_messages.append(now)
        if isinstance(message.data, str) and message.data:
            self.text_appends.append(now)
            self._delta(now, message.data)

    def _delta(self, at: int, text: str) -> None:
        if not self.deltas:
            self._server_cpu.append(cpu_seconds(self._server_pid))
        self.deltas.append((at, text))

    def _end(self) -> None:
        self._server_cpu.append(cpu_seconds(self._server_pid))
        self.ended.set()

    def server_cpu(self) -> float | None:
        """CPU seconds the server spent between the first token delivered and the run's end delivered."""
        if len(self._server_cpu) != 2 or None in self._server_cpu:
            return None
        first, end = self._server_cpu
        return end - first  # type: ignore[operator]


class CountingWriter:
    """The session's `ChannelWriter`, counting what the agent publishes (what the server receives)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.messages = 0

    async def publish(self, message: WireMessage) -> str | None:
        self.messages += 1
        return await self._inner.publish(message)

    async def publish_all(self, messages: list[WireMessage]) -> list[str | None]:
        self.messages += len(messages)
        return await self._inner.publish_all(messages)

    def append(self, serial: str, message: WireMessage) -> Awaitable[Any]:
        self.messages += 1
        return self._inner.append(serial, message)

    async def update(self, serial: str, message: WireMessage) -> Any:
        self.messages += 1
        return await self._inner.update(serial, message)


# --- one stream ---


@dataclass
class AgentReport:
    """What the agent side knows: when each token started (ns, by index), its CPU and what it sent."""

    starts: list[int]
    deadlines: list[int] | None = None  # when each token was due (paced Python agents and the baseline)
    sent: int | None = None
    pipe_cpu_s: float | None = None  # process CPU around run.pipe()
    stream_cpu_s: float | None = None  # process CPU from the first token to the pipe's end (ACKs in)


@dataclass(frozen=True)
class StreamRun:
    p50_ms: float
    p99_ms: float
    p99_due_ms: float | None  # from the token's deadline: a pipe that pulls the model late counts too
    delivered_per_s: float
    emitted_per_s: float
    sent_per_1k: float | None
    delivered_per_1k: float
    stream_msg_s: float  # steady rate of text-carrying appends (the first and the last left out)
    peak_msg_1s: int  # most messages of the text stream (create and closing append included) in any 1 s
    proc_cpu_us: float | None  # process_time around pipe / token (in-process agents)
    agent_cpu_us: float | None  # the agent process between first token and run end delivered / token
    server_cpu_us: float | None


Agent = Callable[[Invocation], Awaitable[AgentReport]]


async def stream_once(address: Address, agent: Agent, tokens: int, session_input: bool = True) -> StreamRun:
    """Subscribe, send a user message, let `agent` answer it, and measure what the subscriber saw."""
    name = f"conversations:bench-{uuid.uuid4().hex[:12]}"
    subscriber = Subscriber(address.pid)
    async with (
        connect(address.key, address.url, client_id="bench-user") as user,
        connect(address.key, address.url, client_id="bench-sub") as listener,
    ):
        await listener.channels.get(name).subscribe(subscriber.on_message)
        invocation = Invocation("", name)
        if session_input:
            async with ClientSession(user, name) as session:
                invocation = (await session.send("Stream me a long answer, please.")).invocation
        report = await agent(invocation)
        try:
            await asyncio.wait_for(subscriber.ended.wait(), STREAM_TIMEOUT_S)
        except TimeoutError:
            raise BenchmarkError(f"the run's end was not delivered; {len(subscriber.deltas)} deltas were") from None
    return analyse(report, subscriber, tokens)


def analyse(report: AgentReport, subscriber: Subscriber, tokens: int) -> StreamRun:
    if len(report.starts) != tokens:
        raise BenchmarkError(f"the agent started {len(report.starts)} of {tokens} tokens")
    seen = [0] * tokens
    for at, text in subscriber.deltas:
        for match in TOKEN_RE.finditer(text):
            index = int(match.group(1))
            if index < tokens and not seen[index]:
                seen[index] = at
    missing = seen.count(0)
    if missing:
        raise BenchmarkError(f"{missing} of {tokens} tokens were never delivered")
    skip = WARMUP_TOKENS if tokens > 2 * WARMUP_TOKENS else 0
    latencies = sorted((seen[i] - report.starts[i]) / 1e6 for i in range(skip, tokens))
    due = report.deadlines
    from_due = sorted((seen[i] - due[i]) / 1e6 for i in range(skip, tokens)) if due else None
    first_start, last_start, last_seen = report.starts[0], report.starts[-1], max(seen)
    steady = subscriber.text_appends[1:-1]  # without the immediate first delta and the final flush
    span = (steady[-1] - steady[0]) / 1e9 if len(steady) > 1 else 0.0
    server_cpu = subscriber.server_cpu()
    return StreamRun(
        p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99),
        p99_due_ms=percentile(from_due, 99) if from_due else None,
        delivered_per_s=tokens / ((last_seen - first_start) / 1e9),
        emitted_per_s=tokens / ((last_start - first_start) / 1e9) if last_start > first_start else math.inf,
        sent_per_1k=None if report.sent is None else 1000 * report.sent / tokens,
        delivered_per_1k=1000 * subscriber.delivered / tokens,
        stream_msg_s=(len(steady) - 1) / span if span > 0 else math.nan,
        peak_msg_1s=peak_in_a_second(subscriber.stream_messages),
        proc_cpu_us=None if report.pipe_cpu_s is None else 1e6 * report.pipe_cpu_s / tokens,
        agent_cpu_us=None if report.stream_cpu_s is None else 1e6 * report.stream_cpu_s / tokens,
        server_cpu_us=None if server_cpu is None else 1e6 * server_cpu / tokens,
    )


def peak_in_a_second(times: list[int]) -> int:
    """The most of `times` (ascending ns) inside any half-open 1 s window."""
    best, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1_000_000_000:
            first += 1
        best = max(best, last - first + 1)
    return best


# --- the agents ---


async def python_agent(url: str, key: str, invocation: Invocation, *, window_ms: float, tokens: int,
                       rate: float | None) -> AgentReport:
    """The shipped agent path: AgentSession -> create_run -> start -> pipe(fake model) -> end."""
    async with (
        connect(key, url, client_id="py-agent") as client,
        AgentSession(client, invocation.session_name, coalesce_window=window_ms / 1000) as session,
    ):
        run = await session.create_run(invocation)
        writer = CountingWriter(session.core.writer)
        session.core.writer = writer  # type: ignore[assignment]
        await run.start()
        trace = Trace()
        cpu = time.process_time()
        result = await run.pipe(fake_model(tokens, rate, trace))
        end = time.process_time()
        if result.reason != "complete":
            raise BenchmarkError(f"the Python agent's pipe ended {result.reason}: {result.error!r}")
        await run.end("complete")
        return AgentReport(trace.starts, trace.deadlines if rate else None, sent=writer.messages,
                           pipe_cpu_s=end - cpu, stream_cpu_s=end - trace.first_cpu)


async def raw_appends(url: str, key: str, invocation: Invocation, *, tokens: int) -> AgentReport:
    """The baseline: one create, then one un-awaited `append_message` per paced token, then an end marker."""
    async with connect(key, url, client_id="raw-agent") as client:
        channel = client.channels.get(invocation.session_name)
        await channel.attach()
        created = await channel.publish(Message(name="raw", data=""))
        serial = created.serials[0]
        trace = Trace()
        pending = []
        async for chunk in fake_model(tokens, RATE, trace):
            if chunk["type"] == "text-delta":
                message = Message(serial=serial, data=chunk["delta"])
                pending.append(asyncio.ensure_future(channel.append_message(message)))
        await asyncio.gather(*pending)
        await channel.publish(Message(name="raw-end", data=""))
        return AgentReport(trace.starts, trace.deadlines, sent=tokens + 2)


def agent_worker(pipe: Pipe) -> None:
    """Child-process entry point: run Python agent jobs sent over the pipe until None."""
    quiet_sdk_logs()
    while (job := pipe.recv()) is not None:
        try:
            invocation = Invocation.from_json(job.pop("invocation"))
            agent = python_agent(job.pop("url"), job.pop("key"), invocation, **job.pop("options"))
            report = asyncio.run(frozen(agent) if job.pop("freeze") else agent)
            pipe.send(report)
        except Exception as error:  # report it to the parent, which raises it there
            pipe.send(BenchmarkError(f"the Python agent process failed: {error!r}"))


class AgentProcess:
    """A Python agent in a process of its own (the same layout as the JS agent), reused across runs."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=agent_worker, args=(child,), daemon=True)
        self._process.start()

    def call(self, job: dict[str, Any]) -> AgentReport:
        self._pipe.send(job)
        if not self._pipe.poll(STREAM_TIMEOUT_S):
            raise BenchmarkError("the Python agent process did not answer")
        answer = self._pipe.recv()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send(None)
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()


def child_python_agent(worker: AgentProcess, address: Address, *, window_ms: float, tokens: int,
                       rate: float | None, freeze: bool = False) -> Agent:
    async def agent(invocation: Invocation) -> AgentReport:
        job = {"url": address.url, "key": address.key, "invocation": invocation.to_json(), "freeze": freeze,
               "options": {"window_ms": window_ms, "tokens": tokens, "rate": rate}}
        return await asyncio.to_thread(worker.call, job)
    return agent


class JsAgent:
    """agent-answer.mjs with the appendMessage probe preloaded."""

    def __init__(self, address: Address, workdir: Path, *, tokens: int, delay_ms: int) -> None:
        self._address = address
        self._workdir = workdir
        self._tokens = tokens
        self._delay_ms = delay_ms

    async def __call__(self, invocation: Invocation) -> AgentReport:
        probe_out = self._workdir / f"probe-{uuid.uuid4().hex[:8]}.json"
        env = {**os.environ, "ABLY_ENDPOINT": self._address.url, "ABLY_API_KEY": self._address.key,
               "INVOCATION": json.dumps(invocation.to_json()), "REPLY": "".join(map(token, range(self._tokens))),
               "DELAY_MS": str(self._delay_ms), "TIMEOUT_MS": str(int(STREAM_TIMEOUT_S * 1000)),
               "PROBE_OUT": str(probe_out), "PROBE_REQUIRE_FROM": str(JS_DIR / "package.json")}
        process = await asyncio.create_subprocess_exec(
            "node", "--import", (self._workdir / "probe.mjs").as_uri(), str(JS_AGENT), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), STREAM_TIMEOUT_S + 30)
        lines = [line for line in out.decode().splitlines() if line.strip()]
        result = json.loads(lines[-1]) if lines else {}
        if process.returncode != 0 or result.get("outcome") != "complete":
            raise BenchmarkError(f"the JS agent exited {process.returncode}: {lines[-1:] or err.decode()[-2000:]}")
        probe = json.loads(probe_out.read_text())
        starts = [0] * self._tokens
        for at, data in probe["appends"]:
            for match in TOKEN_RE.finditer(data):
                starts[int(match.group(1))] = int(at)
        first, end = probe["cpu"]["first"], probe["cpu"]["end"]
        stream_cpu = None if first is None or end is None else (end - first) / 1e6
        return AgentReport([at for at in starts if at], stream_cpu_s=stream_cpu)


# --- the encoder micro-benchmark ---


class MemoryWriter:
    """An in-memory `ChannelWriter`: creates get serials, appends settle at once; keeps what was written if asked."""

    def __init__(self, keep: bool) -> None:
        self.count = 0
        self.written: list[tuple[str, WireMessage]] = []  # (action, message with its serial), when keep
        self._keep = keep

    async def publish(self, message: WireMessage) -> str | None:
        self.count += 1
        serial = f"{self.count:08d}"
        if self._keep:
            message.serial = serial
            self.written.append(("create", message))
        return serial

    def append(self, serial: str, message: WireMessage) -> Awaitable[Any]:
        self.count += 1
        if self._keep:
            message.serial, message.version_serial = serial, f"{serial}-{self.count:08d}"
            self.written.append(("append", message))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def update(self, serial: str, message: WireMessage) -> Any:
        raise AssertionError("no update expected")


@dataclass(frozen=True)
class MicroRun:
    encoder_us: float  # the collector on (as in an agent)
    encoder_no_gc_us: float  # the collector off during the timed loop (as timeit does)
    decoder_us: float  # the collector off
    messages_per_1k: float


def encoder_micro(window_ms: float, tokens: int) -> MicroRun:
    window = window_ms / 1000
    with_gc, _ = on_virtual_clock(_encode, window, tokens, collect=True, keep=False)
    without_gc, _ = on_virtual_clock(_encode, window, tokens, collect=False, keep=False)
    _, writer = on_virtual_clock(_encode, window, tokens, collect=True, keep=True)
    received = [WireMessage(name=m.name, data=m.data, transport=m.transport, codec=m.codec, serial=m.serial,
                            version_serial=m.version_serial,
                            action=names.Action.APPEND if action == "append" else names.Action.CREATE)
                for action, m in writer.written]
    decoder, text = Decoder(), []
    with collector(enabled=False):
        started = time.process_time()
        for message in received:
            text += [e.event["delta"] for e in decoder.decode(message) if e.event.get("type") == "text-delta"]
        decoded = time.process_time() - started
    if "".join(text) != "".join(map(token, range(tokens))):
        raise BenchmarkError("the micro-benchmark's decoded text differs from what was encoded")
    return MicroRun(1e6 * with_gc / tokens, 1e6 * without_gc / tokens, 1e6 * decoded / tokens,
                    1000 * writer.count / tokens)


def on_virtual_clock(coroutine: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """Run `coroutine(clock, ...)` on a fresh loop whose `time()` is `clock[0]` (advanced by the coroutine)."""
    loop = asyncio.new_event_loop()
    clock = [loop.time()]
    loop.time = lambda: clock[0]  # type: ignore[method-assign]
    try:
        return loop.run_until_complete(coroutine(clock, *args, **kwargs))
    finally:
        loop.close()


@contextlib.contextmanager
def collector(enabled: bool) -> Iterator[None]:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        yield
    finally:
        (gc.enable if was else gc.disable)()


async def _encode(clock: list[float], window: float, tokens: int, *, collect: bool,
                  keep: bool) -> tuple[float, MemoryWriter]:
    """CPU seconds the encoder spends on `tokens` deltas 1 ms apart (minus the bare loop), and its writer."""
    writer = MemoryWriter(keep)
    transport = build_transport_headers(
        role=names.ROLE_ASSISTANT, codec_message_id=str(uuid.uuid4()), run_id=str(uuid.uuid4()), run_client_id="u",
        parent=str(uuid.uuid4()), invocation_id=str(uuid.uuid4()), input_client_id="u",
        input_codec_message_id=str(uuid.uuid4()), step_id=f"{uuid.uuid4()}-step-0", step_start_serial="0001",
        step_client_id="u")
    encoder = MessageEncoder(writer, transport, coalesce_window=window)
    deltas = [{"type": "text-delta", "id": TEXT_ID, "delta": token(i)} for i in range(tokens)]
    tick = 1 / RATE
    for chunk in HEAD:
        await encoder.write(chunk)
    gc.collect()
    with collector(enabled=collect):
        started = time.process_time()
        for chunk in deltas:
            clock[0] += tick
            await encoder.write(chunk)
            await asyncio.sleep(0)
        for chunk in TAIL:
            await encoder.write(chunk)
        await encoder.close()
        spent = time.process_time() - started
        started = time.process_time()
        for _ in deltas:  # the same loop without the encoder
            clock[0] += tick
            await asyncio.sleep(0)
        idle = time.process_time() - started
    return max(0.0, spent - idle), writer


# --- running the rows ---


@dataclass
class Row:
    label: str
    runs: list[StreamRun] = field(default_factory=list)
    is_baseline: bool = False

    def median(self, attribute: str) -> float | None:
        return median_of([getattr(run, attribute) for run in self.runs])


@dataclass
class Results:
    settings: Settings
    sweep: list[Row] = field(default_factory=list)
    rollup: list[Row] = field(default_factory=list)
    micro: dict[int, list[MicroRun]] = field(default_factory=dict)
    versus: list[Row] = field(default_factory=list)
    js_note: str | None = None


def window_label(window_ms: int) -> str:
    return f"Python agent, window {window_ms} ms" + (" (default)" if window_ms == DEFAULT_WINDOW_MS else "")


def repeat(row: Row, repeats: int, once: Callable[[], Awaitable[StreamRun]]) -> Row:
    for index in range(1, repeats + 1):
        run = asyncio.run(once())
        row.runs.append(run)
        print(f"[{row.label} {index}/{repeats}] p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, "
              f"{run.delivered_per_s:,.0f} tok/s delivered, {run.delivered_per_1k:,.1f} msg/1k tok, "
              f"{run.stream_msg_s:,.1f} stream msg/s", file=sys.stderr, flush=True)
    return row


def in_process_rows(address: Address, settings: Settings, windows: tuple[int, ...], suffix: str = "",
                    baseline: bool = False, frozen_window: int | None = None) -> list[Row]:
    tokens = settings.paced_tokens
    rows = []
    if baseline:
        rows.append(repeat(Row(BASELINE, is_baseline=True), settings.repeats, lambda: stream_once(
            address, lambda inv: raw_appends(address.url, address.key, inv, tokens=tokens), tokens,
            session_input=False)))

    def once(window: int) -> Awaitable[StreamRun]:
        return stream_once(address, lambda inv: python_agent(address.url, address.key, inv, window_ms=window,
                                                              tokens=tokens, rate=RATE), tokens)

    for window in windows:
        rows.append(repeat(Row(window_label(window) + suffix), settings.repeats, lambda w=window: once(w)))
    if frozen_window is not None:
        rows.append(repeat(Row(f"{window_label(frozen_window)}, gc.freeze() first"), settings.repeats,
                           lambda: frozen(once(frozen_window))))
    return rows


async def frozen(run: Awaitable[Any]) -> Any:
    """`run` with the heap so far out of the collector's sight (`gc.freeze()`), as a long-lived server might do.

    A full collection walks every tracked object; with langchain_core, pydantic and ably imported that takes tens
    of milliseconds here and stalls agent and subscriber alike (the "p99 due" column shows it).
    """
    gc.collect()
    gc.freeze()
    try:
        return await run
    finally:
        gc.unfreeze()


PY_PACED = "Python agent, window 0 ms, paced"
PY_UNPACED = "Python agent, window 0 ms, unpaced"
JS_PACED = "JS agent, DELAY_MS=1"
JS_UNPACED = "JS agent, DELAY_MS=0"


def versus_rows(address: Address, settings: Settings, workdir: Path) -> list[Row]:
    """Paced pair (+ the Python agent with its heap frozen), unpaced pair, then Python unpaced at the default window."""
    paced, unpaced = settings.paced_tokens, settings.unpaced_tokens
    worker = AgentProcess()

    def python(label: str, tokens: int, rate: float | None, window: int,
               freeze: bool = False) -> tuple[str, Agent, int]:
        agent = child_python_agent(worker, address, window_ms=window, tokens=tokens, rate=rate, freeze=freeze)
        return label, agent, tokens

    def js(label: str, tokens: int, delay_ms: int) -> tuple[str, Agent, int]:
        return label, JsAgent(address, workdir, tokens=tokens, delay_ms=delay_ms), tokens

    plans = [
        python(f"{PY_PACED} {RATE:,}/s, {paced:,} tok", paced, RATE, 0),
        js(f"{JS_PACED} (1 token/delta), {paced:,} tok", paced, 1),
        python("Python agent paced as above, gc.freeze() first", paced, RATE, 0, freeze=True),
        python(f"{PY_UNPACED}, {unpaced:,} tok", unpaced, None, 0),
        js(f"{JS_UNPACED} (1 token/delta), {unpaced:,} tok", unpaced, 0),
        python(f"Python agent, window {DEFAULT_WINDOW_MS} ms, unpaced, {unpaced:,} tok", unpaced, None,
               DEFAULT_WINDOW_MS),
    ]
    rows = []
    try:
        for label, agent, tokens in plans:
            rows.append(repeat(Row(label), settings.repeats, lambda a=agent, t=tokens: stream_once(address, a, t)))
    finally:
        worker.close()
    return rows


def js_unavailable() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (JS_DIR / "node_modules" / "@ably" / "ai-transport").is_dir():
        return "tests/js/node_modules is missing (npm ci --prefix tests/js)"
    return None


@contextlib.contextmanager
def server(args: list[str]) -> Iterator[Address]:
    with spawn(args=args) as running:
        yield Address(running.url, running.key, running.process.pid)


# --- profile (--profile) ---


PROFILE_GROUPS = (  # (label, substring of the code's file name), first match wins
    ("package: codec (encoder, decoder, vercel)", "langchain_ably_transport/codec/"),
    ("package: session (agent pipe, core fold, tree)", "langchain_ably_transport/session/"),
    ("package: wire (envelope, headers)", "langchain_ably_transport/wire/"),
    ("ably-python", "site-packages/ably/"),
    ("websockets", "site-packages/websockets/"),
    ("pyee (ably-python's event emitter)", "site-packages/pyee/"),
    ("msgpack", "msgpack"),
    ("asyncio", "asyncio/"),
)


async def profile_agent(address: Address, tokens: int) -> str:
    """cProfile of the shipped agent path, unpaced, window 0, alone in this process (no subscriber)."""
    name = f"conversations:bench-{uuid.uuid4().hex[:12]}"
    async with connect(address.key, address.url, client_id="bench-user") as user, ClientSession(user, name) as session:
        invocation = (await session.send("Stream me a long answer, please.")).invocation
    profiler = cProfile.Profile()
    async with (
        connect(address.key, address.url, client_id="py-agent") as client,
        AgentSession(client, name, coalesce_window=0.0) as agent,
    ):
        run = await agent.create_run(invocation)
        await run.start()
        wall, cpu = time.perf_counter(), time.process_time()
        profiler.enable()
        result = await run.pipe(fake_model(tokens, None, Trace()))
        profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if result.reason != "complete":
            raise BenchmarkError(f"the profiled pipe ended {result.reason}: {result.error!r}")
        await run.end("complete")
    stats = pstats.Stats(profiler)
    groups: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{function}"
        label = next((label for label, part in PROFILE_GROUPS if part in filename),
                     "socket send/recv (syscalls)" if "socket" in where else "other (builtins, enum, ...)")
        groups[label] = groups.get(label, 0.0) + own
    total = sum(groups.values())
    out = io.StringIO()
    print(f"Profile: Python agent, window 0, unpaced, {tokens:,} tokens, no subscriber in the process: "
          f"{tokens / wall:,.0f} tok/s, {1e6 * cpu / tokens:,.0f} us CPU/token (under cProfile, which inflates "
          f"both)", file=out)
    for label, own in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"  {label:<50}{100 * own / total:>5.1f} % of own time", file=out)
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(r"langchain_ably_transport", 25)
    return out.getvalue()


# --- the report ---


LABEL_WIDTH = 52


@dataclass(frozen=True)
class Column:
    title: str
    attribute: str
    spec: str
    width: int


def _cell(value: float | None, spec: str, width: int) -> str:
    """`common.cell`, with NaN shown as missing too (a steady rate over too few appends is NaN)."""
    return cell(None if value is None or math.isnan(value) else value, spec, width)


def table(title: str, rows: list[Row], columns: tuple[Column, ...]) -> list[str]:
    head = f"{'configuration':<{LABEL_WIDTH}}" + "".join(f"{c.title:>{c.width}}" for c in columns)
    lines = [title, head, "-" * len(head)]
    for row in rows:
        cells = "".join(_cell(row.median(c.attribute), c.spec, c.width) for c in columns)
        lines.append(f"{row.label:<{LABEL_WIDTH}}{cells}")
    return lines


LATENCY = (Column("p50 ms", "p50_ms", ".2f", 8), Column("p99 ms", "p99_ms", ".2f", 8),
           Column("p99 due", "p99_due_ms", ".2f", 9))
STREAM_COLUMNS = (*LATENCY, Column("sent/1k", "sent_per_1k", ",.1f", 9),
                  Column("dlvd/1k", "delivered_per_1k", ",.1f", 9), Column("stream msg/s", "stream_msg_s", ",.1f", 13),
                  Column("peak/1s", "peak_msg_1s", ",.0f", 8), Column("dlvd tok/s", "delivered_per_s", ",.0f", 11),
                  Column("proc CPU us/tok", "proc_cpu_us", ",.0f", 16))
VERSUS_COLUMNS = (*LATENCY, Column("emit tok/s", "emitted_per_s", ",.0f", 11),
                  Column("dlvd tok/s", "delivered_per_s", ",.0f", 11), Column("dlvd/1k", "delivered_per_1k", ",.1f", 9),
                  Column("agent CPU us/tok", "agent_cpu_us", ",.0f", 17),
                  Column("server us/tok", "server_cpu_us", ",.0f", 14))


def added_over_baseline(rows: list[Row]) -> list[str]:
    base = next((row for row in rows if row.is_baseline), None)
    if base is None:
        return []
    lines = [f"{'over the baseline':<{LABEL_WIDTH}}{'p50 +ms':>8}{'p99 +ms':>8}{'p99 due +ms':>12}"
             "   (what session + codec add to the transport)"]
    for row in rows:
        if row.is_baseline:
            continue
        cells = ""
        for attribute, width in (("p50_ms", 8), ("p99_ms", 8), ("p99_due_ms", 12)):
            ours, theirs = row.median(attribute), base.median(attribute)
            cells += _cell(None if ours is None or theirs is None else ours - theirs, "+.2f", width)
        lines.append(f"{row.label:<{LABEL_WIDTH}}{cells}")
    return lines


def micro_table(micro: dict[int, list[MicroRun]], tokens: int) -> list[str]:
    head = (f"{'window':<{LABEL_WIDTH}}{'encoder us/tok':>15}{'(GC off)':>10}{'decoder us/tok':>15}"
            f"{'msg/1k tok':>11}")
    lines = [f"2. Encoder CPU micro-benchmark: MessageEncoder with an in-memory writer, virtual 1 ms/token, "
             f"{tokens:,} tokens", head, "-" * len(head)]
    for window, runs in micro.items():
        lines.append(f"{window_label(window):<{LABEL_WIDTH}}{_cell(median_of([r.encoder_us for r in runs]), '.2f', 15)}"
                     f"{_cell(median_of([r.encoder_no_gc_us for r in runs]), '.2f', 10)}"
                     f"{_cell(median_of([r.decoder_us for r in runs]), '.2f', 15)}"
                     f"{_cell(median_of([r.messages_per_1k for r in runs]), ',.1f', 11)}")
    return lines


def _find(rows: list[Row], prefix: str) -> Row | None:
    return next((row for row in rows if row.label.startswith(prefix)), None)


PAIRS = (("paced", PY_PACED, JS_PACED), ("unpaced", PY_UNPACED, JS_UNPACED))


def versus_ratios(rows: list[Row]) -> list[str]:
    lines = []
    for mode, python_prefix, js_prefix in PAIRS:
        python, js = _find(rows, python_prefix), _find(rows, js_prefix)
        if python is None or js is None:
            continue
        figures = [f"{name} {ratio(python.median(attribute), js.median(attribute))}" for name, attribute in (
            ("delivered tok/s", "delivered_per_s"), ("p50 latency", "p50_ms"), ("p99 latency", "p99_ms"),
            ("agent CPU/token", "agent_cpu_us"))]
        lines.append(f"Python / JS, {mode}: " + ", ".join(figures))
    return lines


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _at_most(value: float | None, limit: float, strict: bool = False) -> bool | None:
    if value is None:
        return None
    return value < limit if strict else value <= limit


def verdicts(results: Results) -> list[str]:
    default = DEFAULT_WINDOW_MS + TARGET_SLACK_MS
    lines = [f"targets: window 0: p99 < {TARGET_OFF_P99_MS:g} ms; default window {DEFAULT_WINDOW_MS} ms: p99 <= "
             f"{default:g} ms and <= {TARGET_STREAM_MSG_S:g} stream msg/s; Python delivered tok/s >= the JS agent's"]
    off, on = _find(results.sweep, window_label(0)), _find(results.sweep, window_label(DEFAULT_WINDOW_MS))
    if off is not None:
        p99, due = off.median("p99_ms"), off.median("p99_due_ms")
        lines.append(f"  window 0 ms: p99 {_cell(p99, '.2f', 0)} ms < {TARGET_OFF_P99_MS:g}: "
                     f"{_verdict(_at_most(p99, TARGET_OFF_P99_MS, strict=True))}"
                     f"   (from deadline: {_cell(due, '.2f', 0)} ms)")
    if on is not None:
        p99, due, rate = on.median("p99_ms"), on.median("p99_due_ms"), on.median("stream_msg_s")
        peak = on.median("peak_msg_1s")
        lines.append(f"  window {DEFAULT_WINDOW_MS} ms: p99 {_cell(p99, '.2f', 0)} ms <= {default:g}: "
                     f"{_verdict(_at_most(p99, default))}   (from deadline: {_cell(due, '.2f', 0)} ms)")
        lines.append(f"  window {DEFAULT_WINDOW_MS} ms: steady {_cell(rate, '.1f', 0)} stream msg/s <= "
                     f"{TARGET_STREAM_MSG_S:g}: {_verdict(_at_most(rate, TARGET_STREAM_MSG_S))}")
        lines.append(f"  window {DEFAULT_WINDOW_MS} ms, strict reading: {_cell(peak, '.0f', 0)} messages of the "
                     f"stream in its busiest second (create and closing append included) <= {TARGET_STREAM_MSG_S:g}: "
                     f"{_verdict(_at_most(peak, TARGET_STREAM_MSG_S))}")
    for mode, python_prefix, js_prefix in PAIRS:
        python, js = _find(results.versus, python_prefix), _find(results.versus, js_prefix)
        if python is None or js is None:
            lines.append(f"  Python >= JS throughput, {mode}: n/a ({results.js_note or 'not run'})")
            continue
        ours, theirs = python.median("delivered_per_s"), js.median("delivered_per_s")
        ok = None if ours is None or theirs is None else ours >= theirs
        lines.append(f"  Python >= JS delivered throughput, {mode}: {_cell(ours, ',.0f', 0)} vs "
                     f"{_cell(theirs, ',.0f', 0)} tok/s ({ratio(ours, theirs)}): {_verdict(ok)}")
    return lines


def per_run(results: Results) -> list[str]:
    lines = ["per run (p99 ms / p99 from deadline ms / delivered tok/s):"]
    for row in [*results.sweep, *results.rollup, *results.versus]:
        figures = "  ".join(f"{run.p99_ms:.2f}/{_cell(run.p99_due_ms, '.2f', 0)}/{run.delivered_per_s:,.0f}"
                            for run in row.runs)
        lines.append(f"  {row.label:<{LABEL_WIDTH}} {figures}")
    return lines


def header(settings: Settings, load_before: str) -> list[str]:
    return [
        f"Session streaming: a fake model at {RATE:,} tokens/s through a session agent, the dev server and a raw "
        "ably-python subscriber (decoding deltas)",
        f"python {platform.python_version()}, ably {version('ably')}, {os.cpu_count()} CPUs; median of "
        f"{settings.repeats} repeat(s); {settings.paced_tokens:,} paced tokens per stream (first {WARMUP_TOKENS} "
        f"left out of latency), {settings.unpaced_tokens:,} unpaced",
        load_line(load_before),
        "",
    ]


LEGEND = [
    "p50/p99: from the agent yielding the token (JS: its appendMessage call) to the subscriber decoding the delta "
    "that carries it;",
    "p99 due: from the token's deadline instead, so a pipe that pulls the model late counts too (paced Python "
    "agents and the baseline only);",
    "sent/1k, dlvd/1k: messages of the whole run (lifecycle, step, discrete, create, appends) per 1,000 tokens, as the "
    "agent sent them / as delivered;",
    "stream msg/s: steady rate of text-carrying appends (the immediate first and the final flush left out); "
    "peak/1s: most messages of the text stream (its create,",
    "its appends and its closing append) delivered in any 1 s; proc CPU: process_time around run.pipe() per token "
    "(agent + subscriber);",
    "emit tok/s: the agent's own token rate; dlvd tok/s: tokens / (last delivered - first started); agent CPU: the "
    "agent process, first token to",
    "the end of its pipe; server: the server process, first token delivered to the run's end delivered (both per "
    "token).",
]


def report(results: Results, load_before: str) -> str:
    settings = results.settings
    sections = [
        header(settings, load_before),
        table("1. Python agent and subscriber in this process, MAIN server (server rollup off)", results.sweep,
              STREAM_COLUMNS),
        [""], added_over_baseline(results.sweep), [""],
        table("1b. Context: the same on a server with Ably's default 40 ms append rollup", results.rollup,
              STREAM_COLUMNS),
        [""], micro_table(results.micro, settings.micro_tokens), [""],
    ]
    if results.versus:
        sections += [table("3. Python agent vs the genuine JS agent (@ably/ai-transport 0.8.0), each in its own "
                           "process, MAIN server", results.versus, VERSUS_COLUMNS),
                     [""], versus_ratios(results.versus), [""]]
    else:
        sections += [[f"3. Python vs JS agent: skipped ({results.js_note})"], [""]]
    sections += [LEGEND, [""], verdicts(results), [""], per_run(results)]
    return "\n".join(line for section in sections for line in section)


# --- entry point ---


def parse_settings(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=positive, default=None, help="repeats per row (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 1,000 paced and 2,000 unpaced tokens")
    parser.add_argument("--profile", action="store_true",
                        help="only profile the Python agent (window 0, unpaced) and print where its CPU goes")
    args = parser.parse_args(argv)
    if args.quick:
        return Settings(repeats=args.repeats or 1, paced_tokens=1000, unpaced_tokens=2000, micro_tokens=5000,
                        profile=args.profile)
    return Settings(repeats=args.repeats or 3, paced_tokens=3000, unpaced_tokens=5000, micro_tokens=20000,
                    profile=args.profile)


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    quiet_sdk_logs()
    started, load_before = time.perf_counter(), load_average()
    if settings.profile:
        with server(MAIN_SERVER_ARGS) as address:
            print(asyncio.run(profile_agent(address, settings.unpaced_tokens)))
        return
    results = Results(settings)
    for window in WINDOWS_MS:
        results.micro[window] = [encoder_micro(window, settings.micro_tokens) for _ in range(settings.repeats)]
    with server(MAIN_SERVER_ARGS) as address:
        results.sweep = in_process_rows(address, settings, WINDOWS_MS, baseline=True, frozen_window=0)
        results.js_note = js_unavailable()
        if results.js_note is None:
            with tempfile.TemporaryDirectory(prefix="session-bench-") as workdir:
                (Path(workdir) / "probe.mjs").write_text(PROBE_JS)
                results.versus = versus_rows(address, settings, Path(workdir))
    with server(ABLY_ROLLUP_SERVER_ARGS) as address:
        results.rollup = in_process_rows(address, settings, (0, DEFAULT_WINDOW_MS), suffix=", Ably rollup")
    print(report(results, load_before))
    print(f"(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
