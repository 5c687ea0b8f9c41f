"""Latency and throughput of the dev server on one channel over loopback, next to a bare WebSocket baseline.

What is measured (the publisher and the subscriber are two connections in this process; every server runs in a
child process, so on a 2-core machine clients and server each get a core):

1. Latency, at two rates: 200 msg/s, well below any configuration's capacity (the issue's p50 < 1 ms, p99 < 5 ms),
   and 1,000 msg/s, half the 2,000 frames/s a connection may send. The publisher publishes paced, on absolute
   deadlines, for a few seconds (twice as long at 200 msg/s); each publish is a task whose ACK is awaited at the
   end, so a slow ACK never delays the next send. Each message carries `time.perf_counter_ns()` at send; the
   subscriber records receive - send. p50/p99 in ms, the first 200 ms discarded as warm-up.
2. Sustained throughput: publishes pipelined with a window of 300 un-ACKed in flight, for ~5 s after a 0.5 s
   warm-up; the rate at which the subscriber receives messages in that span (the ACK rate is shown too).

Every figure is the median over repeats (default 5), each on a fresh channel with fresh connections, for:

- BASELINE: an aiohttp WebSocket fan-out server (no Ably protocol, no storage: it forwards each text frame to
  the other sockets and ACKs it with its sequence number), driven by plain aiohttp clients;
- the dev server as shipped, `spawn(args=["--inbound-rate", "0"])`, with `--data :memory:` and with a SQLite
  file (durable mode), driven by genuine ably-python clients (`langchain_ably_transport.connect`);
- the same two dev-server modes with the per-connection protocol-message limit lifted too
  (`--protocol-rate 0`; throughput only). Like Ably, the server ends a connection that sends more than
  2,000 frames/s (error 42924), and ably-python sends one frame per publish, so a pipelined publisher is cut
  off; these rows show what the server sustains once that limit is out of the way. The CPU column shows which
  process is then the bottleneck (with ably-python it is usually the client process).

Reproduce, from the project root (about 2.5 minutes; `--quick`: 1 repeat, short runs, about 30 s):

    .venv/bin/python benchmarks/devserver_throughput.py [--repeats N] [--quick]

The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import version
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from ably.types.connectionstate import ConnectionState
from ably.util.exceptions import AblyException
from aiohttp import WSMsgType, web
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
from websockets.exceptions import ConnectionClosed

from langchain_ably_transport import connect
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.devserver.config import DEFAULT_KEY

PACED_RATE = 1000  # msg/s in the latency run: half the 2,000 frames/s a connection may send, near that knee
LOW_RATE = 200  # msg/s in the run well below capacity (10% of the frame limit, under 5% of the server's capacity)
WINDOW = 300  # un-ACKed publishes in flight in the throughput run
LATENCY_WARMUP_S = 0.2
THROUGHPUT_WARMUP_S = 0.5
DRAIN_TIMEOUT_S = 10.0
SLOT_TIMEOUT_S = 10.0  # the longest a pipelined publisher waits for a free slot (an ACK) before giving up
CUT_OFF_DRAIN_S = 1.0  # a cut-off publisher's remaining publishes are not waited for longer
PAD = "x" * 40  # message data is "<seq> <perf_counter_ns> <PAD>", ~60 bytes
TARGET_MSG_S = 5000
TARGET_P50_MS = 2.0
TARGET_LOW_P50_MS, TARGET_LOW_P99_MS = 1.0, 5.0  # issue 13, well below capacity
TARGET_CPU_RATIO = 3.0  # issue 13: the server's CPU per message at most 3x the bare socket's
EXTERNAL_REFERENCE = "a comparable local durable-stream server: ~520 msg/s, 3 ms p50"
SERVER_ARGS = ["--inbound-rate", "0"]


@dataclass(frozen=True)
class Settings:
    repeats: int
    latency_s: float
    throughput_s: float


@dataclass(frozen=True)
class Address:
    url: str
    pid: int | None = None  # the server process, for its CPU time
    key: str = DEFAULT_KEY


# --- results ---


@dataclass(frozen=True)
class LatencyRun:
    p50_ms: float
    p99_ms: float
    sent_per_s: float


@dataclass(frozen=True)
class ThroughputRun:
    received_per_s: float
    acked_per_s: float
    client_cpu: float = 0.0  # share of one core used by this (client) process
    server_cpu: float | None = None  # share of one core used by the server process
    failure: str | None = None  # why the publisher stopped early
    acked_before_failure: int = 0
    seconds_before_failure: float = 0.0


@dataclass
class Row:
    label: str
    latency: list[LatencyRun] = field(default_factory=list)
    throughput: list[ThroughputRun] = field(default_factory=list)
    low: list[LatencyRun] = field(default_factory=list)  # latency at LOW_RATE
    is_baseline: bool = False

    def low_p50(self) -> float | None:
        return median_of([run.p50_ms for run in self.low])

    def low_p99(self) -> float | None:
        return median_of([run.p99_ms for run in self.low])

    def p50(self) -> float | None:
        return median_of([run.p50_ms for run in self.latency])

    def p99(self) -> float | None:
        return median_of([run.p99_ms for run in self.latency])

    def sent_per_s(self) -> float | None:
        return median_of([run.sent_per_s for run in self.latency])

    def failures(self) -> list[ThroughputRun]:
        return [run for run in self.throughput if run.failure]

    def sustained(self) -> float | None:
        """The median received rate, or None when any run's publisher was cut off."""
        if self.failures():
            return None
        return median_of([run.received_per_s for run in self.throughput])

    def acked(self) -> float | None:
        return None if self.failures() else median_of([run.acked_per_s for run in self.throughput])

    def server_us_per_message(self) -> float | None:
        """Median server CPU per received message, in microseconds (None when cut off or unmeasured)."""
        if self.failures():
            return None
        return median_of([1e6 * run.server_cpu / run.received_per_s for run in self.throughput
                          if run.server_cpu is not None and run.received_per_s])

    def cpu(self) -> tuple[float | None, float | None]:
        """Median CPU of (client process, server process) in % of one core during throughput runs."""
        if self.failures():
            return None, None
        client = median_of([100 * run.client_cpu for run in self.throughput])
        server = [100 * run.server_cpu for run in self.throughput if run.server_cpu is not None]
        return client, median_of(server)


# --- what both kinds of client share ---


class Sink:
    """The subscriber's side: a count of messages, and receive - send of those at or after `record_from`."""

    def __init__(self, record_from: int) -> None:
        self.count = 0
        self.latencies_ms: list[float] = []
        self._record_from = record_from

    def on_data(self, data: str) -> None:
        received = time.perf_counter_ns()
        self.count += 1
        seq, sent, _ = data.split(" ", 2)
        if int(seq) >= self._record_from:
            self.latencies_ms.append((received - int(sent)) / 1e6)


class Link(Protocol):
    """A publisher whose `publish` returns once the server has ACKed the message."""

    async def publish(self, data: str) -> None: ...

    def failure(self) -> str | None: ...


LinkFactory = Callable[[Address, Sink], contextlib.AbstractAsyncContextManager[Link]]


def payload(seq: int) -> str:
    return f"{seq} {time.perf_counter_ns()} {PAD}"


# --- ably-python clients against the dev server ---


class AblyLink:
    def __init__(self, client: Any, channel: Any) -> None:
        self._channel = channel
        self._failure: str | None = None
        client.connection.on(self._on_state)

    async def publish(self, data: str) -> None:
        await self._channel.publish("n", data)

    def failure(self) -> str | None:
        return self._failure

    def _on_state(self, change: Any) -> None:
        if change.current != ConnectionState.CONNECTED and self._failure is None:
            reason = change.reason
            detail = f"{getattr(reason, 'code', '?')} {getattr(reason, 'message', reason)}" if reason else "no reason"
            self._failure = f"connection {change.current.value}: {detail}"


@contextlib.asynccontextmanager
async def ably_link(address: Address, sink: Sink) -> AsyncIterator[Link]:
    """Two ably-python connections on a fresh channel; the publisher does not get its own messages back."""
    name = f"bench:{uuid.uuid4().hex[:12]}"
    async with (
        connect(address.key, address.url, client_id="bench-sub") as subscriber,
        connect(address.key, address.url, client_id="bench-pub", transport_params={"echo": "false"}) as publisher,
    ):
        await subscriber.channels.get(name).subscribe(lambda message: sink.on_data(message.data))
        channel = publisher.channels.get(name)
        await channel.attach()
        yield AblyLink(publisher, channel)


# --- the baseline: plain aiohttp WebSockets ---


class BaselineLink:
    """A publisher socket whose frames are ACKed with their sequence number, and a subscriber socket."""

    def __init__(self, publisher: aiohttp.ClientWebSocketResponse, subscriber: aiohttp.ClientWebSocketResponse,
                 sink: Sink) -> None:
        self._publisher = publisher
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._failure: str | None = None
        self._readers = [asyncio.create_task(self._read_acks()), asyncio.create_task(_read_into(subscriber, sink))]

    async def publish(self, data: str) -> None:
        ack = asyncio.get_running_loop().create_future()
        self._acks[data.partition(" ")[0]] = ack
        await self._publisher.send_str(data)
        await ack

    def failure(self) -> str | None:
        return self._failure

    async def _read_acks(self) -> None:
        async for message in self._publisher:
            if message.type is not WSMsgType.TEXT:
                break
            ack = self._acks.pop(message.data, None)
            if ack is not None and not ack.done():
                ack.set_result(None)
        self._failure = "baseline publisher socket closed"
        for ack in self._acks.values():
            if not ack.done():
                ack.set_exception(BenchmarkError(self._failure))

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


async def _read_into(socket: aiohttp.ClientWebSocketResponse, sink: Sink) -> None:
    async for message in socket:
        if message.type is not WSMsgType.TEXT:
            break
        sink.on_data(message.data)


@contextlib.asynccontextmanager
async def baseline_link(address: Address, sink: Sink) -> AsyncIterator[Link]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(address.url) as subscriber,
        session.ws_connect(address.url) as publisher,
    ):
        link = BaselineLink(publisher, subscriber, sink)
        try:
            yield link
        finally:
            await link.close()


def run_baseline_server(pipe: Pipe) -> None:
    """Child-process entry point: serve the fan-out baseline until SIGTERM."""
    asyncio.run(_serve_baseline(pipe))


async def _serve_baseline(pipe: Pipe) -> None:
    peers: set[web.WebSocketResponse] = set()
    app = web.Application()
    app.router.add_get("/", partial(_fan_out, peers))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    pipe.send(f"http://127.0.0.1:{runner.addresses[0][1]}")
    await _until_terminated()
    await runner.cleanup()


async def _fan_out(peers: set[web.WebSocketResponse], request: web.Request) -> web.WebSocketResponse:
    """Forward each text frame to every other socket, then ACK it to its sender with its sequence number."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    peers.add(ws)
    try:
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                break
            for peer in tuple(peers):
                if peer is not ws:
                    await peer.send_str(message.data)
            await ws.send_str(message.data.partition(" ")[0])
    finally:
        peers.discard(ws)
    return ws


# --- servers ---


async def _until_terminated() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


@contextlib.contextmanager
def child_server(target: Callable[..., None], *args: object) -> Iterator[tuple[str, int | None]]:
    """Run `target(pipe, *args)` in a fresh interpreter; yields the URL it sends back and its pid; SIGTERM on exit."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    try:
        if not parent.poll(30):
            raise BenchmarkError(f"{target.__name__} did not report a URL within 30 s")
        yield parent.recv(), process.pid
    finally:
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


@contextlib.contextmanager
def stock_devserver(data: str) -> Iterator[Address]:
    with spawn(data=data, args=SERVER_ARGS) as server:
        yield Address(server.url, server.process.pid, server.key)


@contextlib.contextmanager
def lifted_devserver(data: str) -> Iterator[Address]:
    with spawn(data=data, args=[*SERVER_ARGS, "--protocol-rate", "0"]) as server:
        yield Address(server.url, server.process.pid, server.key)


@contextlib.contextmanager
def baseline_server() -> Iterator[Address]:
    with child_server(run_baseline_server) as (url, pid):
        yield Address(url, pid)


# --- the two measurements ---


async def measure_latency(open_link: LinkFactory, address: Address, seconds: float,
                          rate: float = PACED_RATE) -> LatencyRun:
    total = int(rate * seconds)
    sink = Sink(record_from=int(rate * LATENCY_WARMUP_S))
    async with open_link(address, sink) as link:
        sent_per_s = await paced_publish(link, total, rate)
        await _received(sink, total)
    ordered = sorted(sink.latencies_ms)
    return LatencyRun(percentile(ordered, 50), percentile(ordered, 99), sent_per_s)


async def paced_publish(link: Link, total: int, rate: float) -> float:
    """Publish `total` messages on absolute deadlines at `rate`; returns the rate achieved."""
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.005
    for seq in range(total):
        delay = start + seq / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(link.publish(payload(seq))))
    elapsed = time.perf_counter() - start
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if errors:
        raise BenchmarkError(f"{len(errors)} of {total} paced publishes failed, first: {errors[0]!r}")
    return (total - 1) / elapsed if elapsed > 0 else float("nan")


async def _received(sink: Sink, total: int) -> None:
    deadline = time.perf_counter() + DRAIN_TIMEOUT_S
    while sink.count < total:
        if time.perf_counter() > deadline:
            raise BenchmarkError(f"the subscriber received {sink.count} of {total} messages")
        await asyncio.sleep(0.01)


async def measure_throughput(open_link: LinkFactory, address: Address, seconds: float) -> ThroughputRun:
    sink = Sink(record_from=sys.maxsize)
    asyncio.get_running_loop().set_exception_handler(_ignore_cut_off_publishes)
    async with open_link(address, sink) as link:
        return await Pipeline(link, sink, address.pid).run(seconds)


def _ignore_cut_off_publishes(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """ably-python leaves some futures of a cut-off connection unretrieved; the report counts the cut instead."""
    if not isinstance(context.get("exception"), AblyException | ConnectionClosed):
        loop.default_exception_handler(context)


@dataclass(frozen=True)
class Mark:
    """Counters at one instant of a throughput run."""

    at: float
    acked: int
    received: int
    client_cpu: float
    server_cpu: float | None

    @classmethod
    def take(cls, acked: int, received: int, server_pid: int | None) -> Mark:
        return cls(time.perf_counter(), acked, received, time.process_time(), cpu_seconds(server_pid))


class Pipeline:
    """Keeps WINDOW publishes in flight; measures ACKs and receipts between the end of warm-up and the end."""

    def __init__(self, link: Link, sink: Sink, server_pid: int | None) -> None:
        self._link = link
        self._sink = sink
        self._server_pid = server_pid
        self._slots = asyncio.Semaphore(WINDOW)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._acked = 0
        self._error: BaseException | None = None

    async def run(self, seconds: float) -> ThroughputRun:
        start = time.perf_counter()
        measure_from, end = start + THROUGHPUT_WARMUP_S, start + THROUGHPUT_WARMUP_S + seconds
        first: Mark | None = None
        seq = 0
        while (now := time.perf_counter()) < end and self._stopped() is None:
            if first is None and now >= measure_from:
                first = self._mark()
            try:  # a link cut off with its publishes unresolved (42924 under ably-python) frees no slot
                await asyncio.wait_for(self._slots.acquire(), SLOT_TIMEOUT_S)
            except TimeoutError:
                self._error = BenchmarkError(f"no ACK for {SLOT_TIMEOUT_S:g} s with {WINDOW} publishes in flight")
                break
            task = asyncio.create_task(self._link.publish(payload(seq)))
            self._in_flight.add(task)
            task.add_done_callback(self._settle)
            seq += 1
        last = self._mark()
        await self._drain()
        failure = self._stopped()
        if failure is not None:
            return ThroughputRun(0.0, 0.0, failure=failure, acked_before_failure=last.acked,
                                 seconds_before_failure=last.at - start)
        if first is None:
            raise BenchmarkError("the throughput run ended before its warm-up did")
        return rates(first, last)

    def _mark(self) -> Mark:
        return Mark.take(self._acked, self._sink.count, self._server_pid)

    def _stopped(self) -> str | None:
        if self._link.failure():
            return self._link.failure()
        return None if self._error is None else repr(self._error)

    def _settle(self, task: asyncio.Task[None]) -> None:
        self._slots.release()
        self._in_flight.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._acked += 1
        elif self._error is None:
            self._error = error

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        timeout = DRAIN_TIMEOUT_S if self._stopped() is None else CUT_OFF_DRAIN_S
        _, late = await asyncio.wait(set(self._in_flight), timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


def rates(first: Mark, last: Mark) -> ThroughputRun:
    span = last.at - first.at
    server_cpu = None
    if first.server_cpu is not None and last.server_cpu is not None:
        server_cpu = (last.server_cpu - first.server_cpu) / span
    return ThroughputRun((last.received - first.received) / span, (last.acked - first.acked) / span,
                         client_cpu=(last.client_cpu - first.client_cpu) / span, server_cpu=server_cpu)


# --- running the configurations ---


@dataclass(frozen=True)
class Configuration:
    label: str
    server: Callable[[], contextlib.AbstractContextManager[Address]]
    open_link: LinkFactory
    latency: bool = True
    is_baseline: bool = False


def configurations(workdir: Path) -> list[Configuration]:
    durable = str(workdir / "bench.sqlite3")
    lifted = str(workdir / "bench-lifted.sqlite3")
    return [
        Configuration("BASELINE aiohttp WS fan-out", baseline_server, baseline_link, is_baseline=True),
        Configuration("devserver --data :memory:", partial(stock_devserver, ":memory:"), ably_link),
        Configuration("devserver --data sqlite (durable)", partial(stock_devserver, durable), ably_link),
        Configuration("  :memory:, protocol limit lifted", partial(lifted_devserver, ":memory:"), ably_link,
                      latency=False),
        Configuration("  sqlite, protocol limit lifted", partial(lifted_devserver, lifted), ably_link,
                      latency=False),
    ]


def measure(configuration: Configuration, settings: Settings) -> Row:
    row = Row(configuration.label, is_baseline=configuration.is_baseline)
    with configuration.server() as address:
        for repeat in range(1, settings.repeats + 1):
            row.low.append(asyncio.run(measure_latency(configuration.open_link, address, settings.latency_s * 2,
                                                       LOW_RATE)))
            if configuration.latency:
                row.latency.append(asyncio.run(measure_latency(configuration.open_link, address, settings.latency_s)))
            row.throughput.append(
                asyncio.run(measure_throughput(configuration.open_link, address, settings.throughput_s))
            )
            _progress(configuration.label, repeat, settings.repeats, row)
    return row


def _progress(label: str, repeat: int, repeats: int, row: Row) -> None:
    parts = []
    if row.latency:
        parts.append(f"p50 {row.latency[-1].p50_ms:.2f} ms, p99 {row.latency[-1].p99_ms:.2f} ms")
    last = row.throughput[-1]
    parts.append(f"stopped: {last.failure}" if last.failure else f"{last.received_per_s:,.0f} msg/s received")
    print(f"[{label.strip()} {repeat}/{repeats}] {'; '.join(parts)}", file=sys.stderr, flush=True)


# --- the report ---


def table(rows: list[Row]) -> list[str]:
    lines = [f"{'configuration':<36}{'p50 ms':>9}{'p99 ms':>9}{'paced/s':>9}{'recv msg/s':>12}{'ACK msg/s':>11}"
             f"{'CPU cli/srv %':>15}{f'p50/p99 @{LOW_RATE}/s':>18}"]
    lines.append("-" * len(lines[0]))
    for row in rows:
        received = cell(row.sustained(), ",.0f", 12) if not row.failures() else f"{'CUT OFF':>12}"
        client, server = row.cpu()
        cpu = "-" if client is None else f"{client:.0f} / {'?' if server is None else format(server, '.0f')}"
        lines.append(f"{row.label:<36}{cell(row.p50(), '.2f', 9)}{cell(row.p99(), '.2f', 9)}"
                     f"{cell(row.sent_per_s(), ',.0f', 9)}{received}{cell(row.acked(), ',.0f', 11)}{cpu:>15}"
                     f"{cell(row.low_p50(), '.2f', 11)} /{cell(row.low_p99(), '.2f', 5)}")
    return lines


def cut_off_notes(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        failures = row.failures()
        if failures:
            acked = statistics.median(run.acked_before_failure for run in failures)
            seconds = statistics.median(run.seconds_before_failure for run in failures)
            lines.append(f"CUT OFF {row.label.strip()}: the server ended the publisher's connection in "
                         f"{len(failures)}/{len(row.throughput)} runs, after a median {acked:,.0f} ACKed "
                         f"publishes in {seconds:.2f} s ({failures[0].failure})")
    return lines


def ratios(rows: list[Row]) -> list[str]:
    base = next(row for row in rows if row.is_baseline)
    lines = [f"{'dev server / baseline':<36}{'p50':>9}{'p99':>9}{'recv msg/s':>12}{'srv CPU/msg':>13}"
             "   (whole paths: ably-python + dev server vs aiohttp client + bare server)"]
    for row in rows:
        if not row.is_baseline:
            lines.append(f"{row.label:<36}{ratio(row.p50(), base.p50()):>9}{ratio(row.p99(), base.p99()):>9}"
                         f"{ratio(row.sustained(), base.sustained()):>12}"
                         f"{ratio(row.server_us_per_message(), base.server_us_per_message()):>13}")
    us = [f"{row.label.strip()} {row.server_us_per_message():.0f} us" for row in rows
          if row.server_us_per_message() is not None]
    return [*lines, f"server CPU per message: {'; '.join(us)}"]


def verdicts(rows: list[Row]) -> list[str]:
    lines = [f"targets: sustained >= {TARGET_MSG_S:,} msg/s, p50 < {TARGET_P50_MS:g} ms, server CPU per message "
             f"<= {TARGET_CPU_RATIO:g}x the baseline's; at {LOW_RATE} msg/s p50 < {TARGET_LOW_P50_MS:g} ms and "
             f"p99 < {TARGET_LOW_P99_MS:g} ms"]
    base = next(row for row in rows if row.is_baseline).server_us_per_message()
    for row in rows:
        if row.is_baseline:
            continue
        checks = []
        if row.low_p50() is not None:
            low = row.low_p50() < TARGET_LOW_P50_MS and row.low_p99() < TARGET_LOW_P99_MS
            checks.append(f"@{LOW_RATE}/s {'PASS' if low else 'FAIL'}")
        mine = row.server_us_per_message()
        if mine is not None and base:
            checks.append(f"CPU/msg {'PASS' if mine <= TARGET_CPU_RATIO * base else 'FAIL'}")
        if row.p50() is not None:
            checks.append(f"p50 {'PASS' if row.p50() < TARGET_P50_MS else 'FAIL'}")
        sustained = row.sustained()
        if sustained is None:
            checks.append("throughput FAIL (publisher cut off)")
        else:
            checks.append(f"throughput {'PASS' if sustained >= TARGET_MSG_S else 'FAIL'}")
        lines.append(f"  {row.label.strip():<34}{', '.join(checks)}")
    return lines


def per_run(rows: list[Row]) -> list[str]:
    lines = ["per run (p50 ms / recv msg/s):"]
    for row in rows:
        p50s = " ".join(f"{run.p50_ms:.2f}" for run in row.latency) or "-"
        received = " ".join("cut" if run.failure else f"{run.received_per_s:,.0f}" for run in row.throughput)
        lines.append(f"  {row.label.strip():<34}{p50s}  /  {received}")
    return lines


def header(settings: Settings, load_before: str) -> list[str]:
    return [
        "Dev server latency and throughput: one channel, loopback, publisher and subscriber on separate "
        "connections in one process",
        f"python {platform.python_version()}, ably {version('ably')}, aiohttp {version('aiohttp')}, "
        f"{os.cpu_count()} CPUs; median of {settings.repeats} repeat(s); latency: {PACED_RATE:,} msg/s paced "
        f"for {settings.latency_s:g} s and {LOW_RATE} msg/s for {2 * settings.latency_s:g} s; "
        f"throughput: window {WINDOW}, {settings.throughput_s:g} s after "
        f"{THROUGHPUT_WARMUP_S:g} s warm-up",
        load_line(load_before),
        "",
    ]


def report(rows: list[Row], settings: Settings, load_before: str) -> str:
    sections = [
        header(settings, load_before), table(rows), [""], cut_off_notes(rows),
        ["'protocol limit lifted': --protocol-rate 0 as well (throughput only)",
         "CPU cli/srv: % of one core used by this process (both clients) / by the server during throughput runs",
         ""],
        ratios(rows), [""], verdicts(rows), [""], per_run(rows), [""],
        [f"external reference (not measured here): {EXTERNAL_REFERENCE}"],
    ]
    return "\n".join(line for section in sections for line in section)


# --- entry point ---


def parse_settings(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=positive, default=None,
                        help="repeats per configuration (default 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 1 s latency run, 2 s throughput run")
    args = parser.parse_args(argv)
    if args.quick:
        return Settings(repeats=args.repeats or 1, latency_s=1.0, throughput_s=2.0)
    return Settings(repeats=args.repeats or 5, latency_s=3.0, throughput_s=5.0)


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    quiet_sdk_logs()
    started, load_before = time.perf_counter(), load_average()
    with tempfile.TemporaryDirectory(prefix="devserver-bench-") as workdir:
        rows = [measure(configuration, settings) for configuration in configurations(Path(workdir))]
    print(report(rows, settings, load_before))
    print(f"(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
