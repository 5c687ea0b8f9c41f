"""Latency and throughput of the dev server on one channel over loopback, next to a bare WebSocket baseline.

What is measured (the publisher and the subscriber are two connections in this process; every server runs in a
child process, so on a 2-core machine clients and server each get a core):

1. Throughput: publishes pipelined with a window of 300 un-ACKed in flight, for a few seconds after a 0.5 s
   warm-up; the rate at which the subscriber receives messages in that span (the ACK rate is shown too). Its
   median over the repeats is the configuration's capacity in this run.
2. Latency, paced on absolute deadlines: each publish is a task whose ACK is awaited at the end, so a slow ACK
   never delays the next send. Each message carries `time.perf_counter_ns()` at send; the subscriber records
   receive - send; p50/p99 in ms, the first 200 ms discarded as warm-up, and at least 200 samples behind a p99
   (a run with fewer is an error). At two rates:
   - 200 msg/s, well below any configuration's capacity (the issue's p50 < 1 ms, p99 < 5 ms);
   - at the knee: 80% of the capacity measured in step 1 of this run, on the same server, after all its
     throughput repeats. With the protocol limit on, a pipelined publisher is cut off (below), so such a row
     takes the capacity of its lifted twin (same storage, wire format and loop), and never more than 90% of the
     2,000 frames/s a connection may send: there the knee is the limit.

Every figure is the median over repeats (default 3), each on a fresh channel with fresh connections, for:

- BASELINE: an aiohttp WebSocket fan-out server (no Ably protocol, no storage: it forwards each text frame to
  the other sockets and ACKs it with its sequence number), driven by plain aiohttp clients;
- the dev server, `spawn(args=["--inbound-rate", "0", ...])`, with `--data :memory:` and with a SQLite file
  (durable mode), driven by genuine ably-python clients (`langchain_ably_transport.connect`), in JSON and in
  msgpack (`use_binary_protocol=True`), each:
  - with the protocol limit on, as shipped and as Ably: the server ends a connection that sends more than
    2,000 frames/s (error 42924), and ably-python sends one frame per publish, so the pipelined publisher is
    cut off; the report says after how many ACKed publishes;
  - with it lifted (`--protocol-rate 0`): what the whole path sustains. The CPU column shows which process is
    then the bottleneck (with ably-python it is usually the client process);
- the lifted JSON rows again with the server on uvloop's event loop (`--uvloop`; left out, and said so, when
  uvloop is not installed), each printed under its asyncio twin and compared with it.

Ratios compare rows measured in the same run: against BASELINE, and between rows that differ in one thing only
(msgpack / json, uvloop / asyncio).

Reproduce, from the project root (about 4.5 minutes on 2 cores; `--quick`: 1 repeat, short runs, about 1 minute):

    .venv/bin/python benchmarks/devserver_throughput.py [--repeats N] [--quick]

The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import multiprocessing
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
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
from langchain_ably_transport.devserver.config import DEFAULT_KEY, Limits

LOW_RATE = 200  # msg/s in the run well below capacity (10% of the frame limit, under 5% of the server's capacity)
KNEE_SHARE = 0.8  # the knee run's rate, as a share of the capacity measured in the same run
PROTOCOL_LIMIT = Limits().protocol_rate  # frames/s a connection may send with the limit on (2,000, as Ably)
LIMIT_SHARE = 0.9  # with the limit on, the knee run stays at or under this share of it
MIN_SAMPLES = 200  # latencies behind a p99 at least
WINDOW = 300  # un-ACKed publishes in flight in the throughput run
LATENCY_WARMUP_S = 0.2
THROUGHPUT_WARMUP_S = 0.5
DRAIN_TIMEOUT_S = 10.0
SLOT_TIMEOUT_S = 10.0  # the longest a pipelined publisher waits for a free slot (an ACK) before giving up
CUT_OFF_DRAIN_S = 1.0  # a cut-off publisher's remaining publishes are not waited for longer
PAD = "x" * 40  # message data is "<seq> <perf_counter_ns> <PAD>", ~60 bytes
TARGET_MSG_S = 5000
TARGET_KNEE_P50_MS = 2.0
TARGET_LOW_P50_MS, TARGET_LOW_P99_MS = 1.0, 5.0  # issue 13, well below capacity
TARGET_CPU_RATIO = 3.0  # issue 13: the server's CPU per message at most 3x the bare socket's
EXTERNAL_REFERENCE = "a comparable local durable-stream server: ~520 msg/s, 3 ms p50"
SERVER_ARGS = ["--inbound-rate", "0"]
LIFTED = ("--protocol-rate", "0")
HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


@dataclass(frozen=True)
class Settings:
    repeats: int
    low_s: float  # length of a latency run at LOW_RATE
    knee_s: float  # length of a latency run at the knee
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
    samples: int


@dataclass(frozen=True)
class ThroughputRun:
    received_per_s: float
    acked_per_s: float
    client_cpu: float = 0.0  # share of one core used by this (client) process
    server_cpu: float | None = None  # share of one core used by the server process
    failure: str | None = None  # why the publisher stopped early
    acked_before_failure: int = 0
    seconds_before_failure: float = 0.0


def p50(runs: Iterable[LatencyRun]) -> float | None:
    return median_of(run.p50_ms for run in runs)


def p99(runs: Iterable[LatencyRun]) -> float | None:
    return median_of(run.p99_ms for run in runs)


@dataclass
class Row:
    label: str
    low: list[LatencyRun] = field(default_factory=list)  # latency at LOW_RATE
    knee: list[LatencyRun] = field(default_factory=list)  # latency at knee_rate
    throughput: list[ThroughputRun] = field(default_factory=list)
    knee_rate: float | None = None  # None: no capacity to take it from (a throughput run was cut off)
    knee_failure: str | None = None  # why a knee run could not produce a figure
    is_baseline: bool = False

    def knee_sent_per_s(self) -> float | None:
        return median_of(run.sent_per_s for run in self.knee)

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
async def ably_link(address: Address, sink: Sink, *, binary: bool = False) -> AsyncIterator[Link]:
    """Two ably-python connections on a fresh channel, in JSON or (`binary`) msgpack; the publisher does not get
    its own messages back."""
    name = f"bench:{uuid.uuid4().hex[:12]}"
    async with (
        connect(address.key, address.url, client_id="bench-sub", use_binary_protocol=binary) as subscriber,
        connect(address.key, address.url, client_id="bench-pub", use_binary_protocol=binary,
                transport_params={"echo": "false"}) as publisher,
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
def devserver(data: str, *flags: str) -> Iterator[Address]:
    with spawn(data=data, args=[*SERVER_ARGS, *flags]) as server:
        yield Address(server.url, server.process.pid, server.key)


@contextlib.contextmanager
def baseline_server() -> Iterator[Address]:
    with child_server(run_baseline_server) as (url, pid):
        yield Address(url, pid)


# --- the two measurements ---


async def measure_latency(open_link: LinkFactory, address: Address, seconds: float, rate: float) -> LatencyRun:
    total = int(rate * seconds)
    sink = Sink(record_from=int(rate * LATENCY_WARMUP_S))
    async with open_link(address, sink) as link:
        sent_per_s = await paced_publish(link, total, rate)
        await _received(sink, total)
    if len(sink.latencies_ms) < MIN_SAMPLES:
        raise BenchmarkError(f"{len(sink.latencies_ms)} latencies at {rate:,.0f} msg/s, under the {MIN_SAMPLES} "
                             "a p99 needs: make the run longer")
    ordered = sorted(sink.latencies_ms)
    return LatencyRun(percentile(ordered, 50), percentile(ordered, 99), sent_per_s, len(ordered))


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
    # A cut-off ably-python connection leaves its publishes unresolved: wait for the ACKs a bounded time.
    _, late = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
    for task in late:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if errors:
        raise BenchmarkError(f"{len(errors)} of {total} publishes paced at {rate:,.0f} msg/s failed or had no ACK "
                             f"within {DRAIN_TIMEOUT_S:g} s ({link.failure() or repr(errors[0])})")
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
    is_baseline: bool = False
    limited: bool = False  # the protocol limit is on: the knee run stays under it
    capacity_of: str | None = None  # the row whose capacity this one's knee is taken from (its own is cut off)
    versus: str | None = None  # the row that differs from this one only in `change`
    change: str = ""


def configurations(workdir: Path) -> list[Configuration]:
    """Every row, in the report's order."""
    return [
        Configuration("BASELINE aiohttp WS fan-out", baseline_server, baseline_link, is_baseline=True),
        *_devserver_rows(":memory:", lambda: ":memory:"),
        *_devserver_rows("sqlite", lambda: str(workdir / f"{uuid.uuid4().hex}.sqlite3")),
    ]


def _devserver_rows(storage: str, data: Callable[[], str]) -> list[Configuration]:
    """One storage's rows, each server on its own `data()`; a uvloop row under its asyncio twin."""
    json, msgpack = partial(ably_link, binary=False), partial(ably_link, binary=True)
    limited, lifted = f"{storage} json, limit on", f"{storage} json, lifted"
    rows = [
        Configuration(limited, partial(devserver, data()), json, limited=True, capacity_of=lifted),
        Configuration(f"{storage} msgpack, limit on", partial(devserver, data()), msgpack, limited=True,
                      capacity_of=f"{storage} msgpack, lifted", versus=limited, change="msgpack / json"),
        Configuration(lifted, partial(devserver, data(), *LIFTED), json),
        Configuration(f"{lifted}, uvloop", partial(devserver, data(), *LIFTED, "--uvloop"), json,
                      versus=lifted, change="uvloop / asyncio"),
        Configuration(f"{storage} msgpack, lifted", partial(devserver, data(), *LIFTED), msgpack,
                      versus=lifted, change="msgpack / json"),
    ]
    return rows if HAVE_UVLOOP else [row for row in rows if not row.label.endswith("uvloop")]


def measure_all(configurations: list[Configuration], settings: Settings) -> list[Row]:
    """Every configuration measured, one whose knee comes from another row's capacity after that row."""
    measured: dict[str, Row] = {}
    for configuration in sorted(configurations, key=lambda c: c.capacity_of is not None):
        capacity_from = measured[configuration.capacity_of] if configuration.capacity_of else None
        measured[configuration.label] = measure(configuration, settings, capacity_from)
    return [measured[configuration.label] for configuration in configurations]


def measure(configuration: Configuration, settings: Settings, capacity_from: Row | None = None) -> Row:
    """Latency at LOW_RATE and throughput, `repeats` times; then latency at the knee of the capacity measured (this
    row's, or `capacity_from`'s), on the same server."""
    row = Row(configuration.label, is_baseline=configuration.is_baseline)
    open_link = configuration.open_link
    with configuration.server() as address:
        for repeat in range(1, settings.repeats + 1):
            row.low.append(asyncio.run(measure_latency(open_link, address, settings.low_s, LOW_RATE)))
            row.throughput.append(asyncio.run(measure_throughput(open_link, address, settings.throughput_s)))
            _progress(row, repeat, settings.repeats, f"p50 {row.low[-1].p50_ms:.2f} ms @{LOW_RATE}/s; "
                                                     f"{_received_or_cut(row.throughput[-1])}")
        row.knee_rate = knee_rate((capacity_from or row).sustained(), configuration.limited)
        if row.knee_rate is not None:
            _measure_knee(row, row.knee_rate, open_link, address, settings)
    return row


def _measure_knee(row: Row, rate: float, open_link: LinkFactory, address: Address, settings: Settings) -> None:
    """`repeats` latency runs at the knee `rate`; a failed one leaves the row without a knee figure, and why."""
    for repeat in range(1, settings.repeats + 1):
        try:
            row.knee.append(asyncio.run(measure_latency(open_link, address, settings.knee_s, rate)))
        except BenchmarkError as error:  # the figures measured so far stand; the report says why this one is missing
            row.knee, row.knee_failure = [], str(error)
            return
        _progress(row, repeat, settings.repeats, f"p50 {row.knee[-1].p50_ms:.2f} ms, "
                                                 f"p99 {row.knee[-1].p99_ms:.2f} ms @{rate:,.0f}/s")


def knee_rate(capacity: float | None, limited: bool) -> float | None:
    """KNEE_SHARE of `capacity`, at most LIMIT_SHARE of the protocol limit when it is on, rounded down to 10 msg/s."""
    if capacity is None:
        return None
    rate = KNEE_SHARE * capacity
    if limited:
        rate = min(rate, LIMIT_SHARE * PROTOCOL_LIMIT)
    return float(int(rate // 10) * 10)


def _received_or_cut(run: ThroughputRun) -> str:
    return f"stopped: {run.failure}" if run.failure else f"{run.received_per_s:,.0f} msg/s received"


def _progress(row: Row, repeat: int, repeats: int, text: str) -> None:
    print(f"[{row.label} {repeat}/{repeats}] {text}", file=sys.stderr, flush=True)


# --- the report ---

LABEL = 32


def _pair(runs: list[LatencyRun]) -> str:
    """p50 / p99 of latency runs, 16 wide."""
    return f"{cell(p50(runs), '.2f', 7)} /{cell(p99(runs), '.2f', 7)}"


def table(rows: list[Row]) -> list[str]:
    lines = [f"{'configuration':<{LABEL}}{f'p50/p99 @{LOW_RATE}/s':>16}{'knee/s':>9}{'paced/s':>9}"
             f"{'p50/p99 @knee':>16}{'recv msg/s':>12}{'ACK msg/s':>11}{'CPU cli/srv %':>15}"]
    lines.append("-" * len(lines[0]))
    for row in rows:
        received = cell(row.sustained(), ",.0f", 12) if not row.failures() else f"{'CUT OFF':>12}"
        client, server = row.cpu()
        cpu = "-" if client is None else f"{client:.0f} / {'?' if server is None else format(server, '.0f')}"
        lines.append(f"{row.label:<{LABEL}}{_pair(row.low)}{cell(row.knee_rate, ',.0f', 9)}"
                     f"{cell(row.knee_sent_per_s(), ',.0f', 9)}{_pair(row.knee)}{received}"
                     f"{cell(row.acked(), ',.0f', 11)}{cpu:>15}")
    return lines


def legend() -> list[str]:
    lines = [
        "limit on: the dev server as shipped (--inbound-rate 0 only): a connection sending over "
        f"{PROTOCOL_LIMIT:,.0f} frames/s is closed (42924), as on Ably; lifted: --protocol-rate 0 as well",
        "json / msgpack: the ably-python clients' wire format (use_binary_protocol); uvloop: the server runs with "
        "--uvloop (the clients stay on asyncio)",
        f"knee/s: the knee run's rate, {KNEE_SHARE:.0%} of the row's median received rate in this run; a limit-on "
        f"row takes its lifted twin's and stays at or under {LIMIT_SHARE:.0%} of the limit; paced/s: the rate the "
        "knee run achieved",
        "CPU cli/srv: % of one core used by this process (both clients) / by the server during throughput runs",
    ]
    if not HAVE_UVLOOP:
        lines.append("uvloop rows left out: uvloop is not installed (pip install uvloop)")
    return lines


def notes(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        failures = row.failures()
        if failures:
            acked = statistics.median(run.acked_before_failure for run in failures)
            seconds = statistics.median(run.seconds_before_failure for run in failures)
            lines.append(f"CUT OFF {row.label}: the server ended the publisher's connection in "
                         f"{len(failures)}/{len(row.throughput)} throughput runs, after a median {acked:,.0f} ACKed "
                         f"publishes in {seconds:.2f} s ({failures[0].failure})")
        if row.knee_failure:
            lines.append(f"NO KNEE FIGURE {row.label} @{row.knee_rate:,.0f}/s: {row.knee_failure}")
        elif row.knee_rate is None:
            lines.append(f"NO KNEE FIGURE {row.label}: no capacity measured (a throughput run was cut off)")
    return lines


def baseline_ratios(rows: list[Row]) -> list[str]:
    base = next(row for row in rows if row.is_baseline)
    lines = [f"{'dev server / baseline':<{LABEL}}{f'p50 @{LOW_RATE}':>10}{f'p99 @{LOW_RATE}':>10}{'recv msg/s':>12}"
             f"{'srv CPU/msg':>13}   (whole paths: ably-python + dev server vs aiohttp client + bare server)"]
    for row in rows:
        if not row.is_baseline:
            lines.append(f"{row.label:<{LABEL}}{ratio(p50(row.low), p50(base.low)):>10}"
                         f"{ratio(p99(row.low), p99(base.low)):>10}{ratio(row.sustained(), base.sustained()):>12}"
                         f"{ratio(row.server_us_per_message(), base.server_us_per_message()):>13}")
    us = [f"{row.label} {row.server_us_per_message():.0f} us" for row in rows
          if row.server_us_per_message() is not None]
    return [*lines, f"server CPU per message: {'; '.join(us)}"]


def twin_ratios(rows: list[Row], configurations: list[Configuration]) -> list[str]:
    """Each row against the row that differs from it in one thing only (the knee runs may be at different rates)."""
    by_label = {row.label: row for row in rows}
    lines = [f"{'one change, same run':<{LABEL + 17}}{f'p50 @{LOW_RATE}':>10}{f'p99 @{LOW_RATE}':>10}{'knee/s':>8}"
             f"{'p50 @knee':>11}{'p99 @knee':>11}{'recv msg/s':>12}{'srv CPU/msg':>13}"]
    for configuration in configurations:
        if configuration.versus is None:
            continue
        row, twin = by_label[configuration.label], by_label[configuration.versus]
        lines.append(f"{configuration.change:<17}{row.label:<{LABEL}}{ratio(p50(row.low), p50(twin.low)):>10}"
                     f"{ratio(p99(row.low), p99(twin.low)):>10}{ratio(row.knee_rate, twin.knee_rate):>8}"
                     f"{ratio(p50(row.knee), p50(twin.knee)):>11}{ratio(p99(row.knee), p99(twin.knee)):>11}"
                     f"{ratio(row.sustained(), twin.sustained()):>12}"
                     f"{ratio(row.server_us_per_message(), twin.server_us_per_message()):>13}")
    return [*lines, "each knee latency is at the row's own knee (their rates' ratio: knee/s); with the client process "
                    "the bottleneck (CPU column), srv CPU/msg shows a server-side change best"]


def verdicts(rows: list[Row]) -> list[str]:
    lines = [f"targets: sustained >= {TARGET_MSG_S:,} msg/s, server CPU per message <= {TARGET_CPU_RATIO:g}x the "
             f"baseline's; at {LOW_RATE} msg/s p50 < {TARGET_LOW_P50_MS:g} ms and p99 < {TARGET_LOW_P99_MS:g} ms; "
             f"at the knee p50 < {TARGET_KNEE_P50_MS:g} ms"]
    base = next(row for row in rows if row.is_baseline).server_us_per_message()
    for row in rows:
        if row.is_baseline:
            continue
        checks = []
        if row.low:
            low = p50(row.low) < TARGET_LOW_P50_MS and p99(row.low) < TARGET_LOW_P99_MS
            checks.append(f"@{LOW_RATE}/s {'PASS' if low else 'FAIL'}")
        if row.knee:
            checks.append(f"p50 @{row.knee_rate:,.0f}/s {'PASS' if p50(row.knee) < TARGET_KNEE_P50_MS else 'FAIL'}")
        mine = row.server_us_per_message()
        if mine is not None and base:
            checks.append(f"CPU/msg {'PASS' if mine <= TARGET_CPU_RATIO * base else 'FAIL'}")
        sustained = row.sustained()
        if sustained is None:
            checks.append("throughput FAIL (publisher cut off)")
        else:
            checks.append(f"throughput {'PASS' if sustained >= TARGET_MSG_S else 'FAIL'}")
        lines.append(f"  {row.label:<{LABEL}}{', '.join(checks)}")
    return lines


def per_run(rows: list[Row]) -> list[str]:
    lines = [f"per run (p50 ms @{LOW_RATE}/s / recv msg/s / p50 ms @knee):"]
    for row in rows:
        low = " ".join(f"{run.p50_ms:.2f}" for run in row.low) or "-"
        received = " ".join("cut" if run.failure else f"{run.received_per_s:,.0f}" for run in row.throughput)
        knee = " ".join(f"{run.p50_ms:.2f}" for run in row.knee) or "-"
        lines.append(f"  {row.label:<{LABEL}}{low}  /  {received}  /  {knee}")
    return lines


def header(settings: Settings, rows: list[Row], load_before: str) -> list[str]:
    uvloop = f", uvloop {version('uvloop')}" if HAVE_UVLOOP else ""
    fewest = min(run.samples for row in rows for run in [*row.low, *row.knee])
    return [
        "Dev server latency and throughput: one channel, loopback, publisher and subscriber on separate "
        "connections in one process",
        f"python {platform.python_version()}, ably {version('ably')}, aiohttp {version('aiohttp')}, msgpack "
        f"{version('msgpack')}{uvloop}, {os.cpu_count()} CPUs; median of {settings.repeats} repeat(s)",
        f"latency: {LOW_RATE} msg/s paced for {settings.low_s:g} s, and at the knee for {settings.knee_s:g} s; "
        f"at least {fewest:,} samples behind each p99; throughput: window {WINDOW}, {settings.throughput_s:g} s "
        f"after {THROUGHPUT_WARMUP_S:g} s warm-up",
        load_line(load_before),
        "",
    ]


def report(rows: list[Row], configurations: list[Configuration], settings: Settings, load_before: str) -> str:
    sections = [
        header(settings, rows, load_before), table(rows), [""], notes(rows), legend(), [""],
        baseline_ratios(rows), [""], twin_ratios(rows, configurations), [""], verdicts(rows), [""], per_run(rows),
        [""], [f"external reference (not measured here): {EXTERNAL_REFERENCE}"],
    ]
    return "\n".join(line for section in sections for line in section)


# --- entry point ---


def parse_settings(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=positive, default=None,
                        help="repeats per configuration (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat; latency runs of 2 s (low rate) and 1 s (knee), 1.5 s throughput runs")
    args = parser.parse_args(argv)
    if args.quick:
        return Settings(repeats=args.repeats or 1, low_s=2.0, knee_s=1.0, throughput_s=1.5)
    return Settings(repeats=args.repeats or 3, low_s=3.0, knee_s=2.0, throughput_s=3.0)


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    quiet_sdk_logs()
    started, load_before = time.perf_counter(), load_average()
    with tempfile.TemporaryDirectory(prefix="devserver-bench-") as workdir:
        chosen = configurations(Path(workdir))
        rows = measure_all(chosen, settings)
    print(report(rows, chosen, settings, load_before))
    print(f"(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
