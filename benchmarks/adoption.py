"""How long after an agent is killed -9 mid-stream its user sees the answer go on: adoption by a watching process.

For each presence leave delay (`--leave-delays`, s; Ably's is 15 s, the dev server's tests use 1 s), a fresh dev
server (`--presence-leave-delay`, no publish rate limit). The survivor is this process: one connection with the
agent's clientId, running `watch_session` on every session of a kill with a one-node chat graph (`AblySaver` on
the same connection) whose reply is `--reply-words` words, `--token-delay-ms` apart. Each kill: a worker process
(`adoption_worker.py`, the same clientId, so its runs are trusted) serves `--sessions` sessions at once, each a
user's `ClientSession` in this process that sent a message, with an endless streaming reply; once every session
shows streamed text, the worker is killed with -9 (t0). `--workers` workers run (and are killed) at once, each
with sessions of its own; `--kills` workers in all.

Measured, per session, on one monotonic clock: t0 to the first text token (an `ai-output` with a text delta) of
the run that reaches the user's session from another invocation than the one that started the run: detection
(the leave delay), the claim, the repair of the cut-off message, the checkpoint read and the graph's first
token. The run must then reach `complete` (bounded); a session without a continued token, or whose run did not
complete, or that the watcher did not adopt, counts as a failure, not a sample. Reported for each leave delay:
samples, failures, p50, p99 (from 200 samples), max, the overhead beyond the leave delay (p50 - delay), and its
ratio to the BASELINE, measured on the same server before the kills: a healthy fresh run's first-token latency,
from the `serve_graph` call (what a POST starts) to the first text token at the user, one run at a time, on the
survivor's connection and graph. Users and survivor share this process's event loop (as they share its clock), so
the users' decoding is in both figures; the load average is printed beside them.

Reproduce (about 5 minutes with the defaults on 2 cores):

    .venv/bin/python benchmarks/adoption.py [--leave-delays 1,15] [--kills 20] [--sessions 10] [--workers 2]
                                            [--baseline-samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from common import BenchmarkError, load_average, load_line, percentile, positive, quiet_sdk_logs, ratio

from langchain_ably_transport import AblySaver, ClientSession, connect
from langchain_ably_transport.codec import DecodedEvent
from langchain_ably_transport.devserver import RunningServer, spawn
from langchain_ably_transport.graph import GraphRunResult, serve_graph, watch_session
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the crash test's agent id and the chat graph's builder, shared with the worker
from tests.faults.crashing_agent import AGENT_ID  # noqa: E402
from tests.graph.graphs import chat_builder  # noqa: E402

WAIT_S = 60.0  # the bound on every wait beyond the leave delay: a worker's first text, a continued token, a run's end
WORKER_TOKEN_DELAY_S = 0.02  # the killed worker's endless reply: 50 words a second per session
P99_MIN_SAMPLES = 200  # fewer samples than this, and a p99 is not a figure


class RunWatch:
    """Follows the one run of a user's session: the invocation that started it, and when each invocation's first
    text token reached the session."""

    def __init__(self, user: ClientSession) -> None:
        self.user = user
        self.run_id: str | None = None
        self.started_by: str | None = None
        self.first_text: dict[str, float] = {}
        user.core.listen(self._on_folded)

    def _on_folded(self, wire: WireMessage, events: list[DecodedEvent], live: bool) -> None:
        invocation = wire.transport.get(names.HEADER_INVOCATION_ID)
        if not live or invocation is None:
            return
        if wire.name == names.RUN_START and self.run_id is None:
            self.run_id, self.started_by = wire.transport.get(names.HEADER_RUN_ID), invocation
        elif wire.name == names.AI_OUTPUT and invocation not in self.first_text and any(
                event.direction == "output" and event.event.get("type") == "text-delta" for event in events):
            self.first_text[invocation] = time.monotonic()

    def streamed(self) -> bool:
        """Whether the invocation that started the run has shown text."""
        return self.started_by is not None and self.started_by in self.first_text

    def continued(self) -> float | None:
        """When the first text token of another invocation of the run arrived (None: not yet)."""
        others = [at for invocation, at in self.first_text.items() if invocation != self.started_by]
        return min(others) if others else None

    def complete(self) -> bool:
        node = self.user.core.tree.run(self.run_id) if self.run_id else None
        return node is not None and node.status == names.RunStatus.COMPLETE

    def close(self) -> None:
        self.user.core.unlisten(self._on_folded)


@dataclass
class Tally:
    """One leave delay's samples (s, kill to continued token) and its failures, by kind."""

    samples: list[float] = field(default_factory=list)
    no_token: int = 0
    not_complete: int = 0
    not_adopted_here: int = 0

    def add(self, other: Tally) -> None:
        self.samples += other.samples
        self.no_token += other.no_token
        self.not_complete += other.not_complete
        self.not_adopted_here += other.not_adopted_here

    @property
    def failures(self) -> int:
        return self.no_token + self.not_complete + self.not_adopted_here


@dataclass(frozen=True)
class Settings:
    leave_delay: float
    sessions: int
    reply: str
    token_delay_s: float


# --- the baseline: a healthy fresh run ---


async def _fresh_run(survivor: Any, user_client: Any, graph: Any) -> float:
    """Seconds from `serve_graph` being called to the run's first text token at the user."""
    async with ClientSession(user_client, f"bench:fresh-{uuid.uuid4().hex[:8]}") as user:
        watch = RunWatch(user)
        sent = await user.send("hello")
        started = time.monotonic()
        serving = asyncio.ensure_future(serve_graph(graph, sent.invocation, client=survivor))
        try:
            if not await user.wait_for(lambda: watch.started_by in watch.first_text, WAIT_S):
                raise BenchmarkError("a healthy run showed no text")
            first = watch.first_text[watch.started_by or ""] - started
            result: GraphRunResult = await asyncio.wait_for(asyncio.shield(serving), WAIT_S)
        finally:
            serving.cancel()
            watch.close()
        if result.outcome != "complete":
            raise BenchmarkError(f"a healthy run ended {result.outcome}: {result.error}")
        return first


async def _baseline(survivor: Any, user_client: Any, graph: Any, samples: int) -> list[float]:
    return [await _fresh_run(survivor, user_client, graph) for _ in range(samples)]


# --- one kill ---


def _start_worker(server: RunningServer, errors: IO[bytes]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE / "adoption_worker.py"), server.url, server.key,
                             str(WORKER_TOKEN_DELAY_S)], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=errors)


def _tail(errors: IO[bytes]) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace")[-2000:]


async def _all_hold(watches: Sequence[RunWatch], holds: Any, timeout: float) -> bool:
    """Whether `holds(watch)` comes to hold for every watch within `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    for watch in watches:
        if not await watch.user.wait_for(lambda w=watch: holds(w), max(0.0, deadline - time.monotonic())):
            return False
    return True


async def _follow(watch: RunWatch, killed_at: float, settings: Settings, tally: Tally) -> None:
    """The session's sample (kill to continued token), or its failure; then that its run completes."""
    if not await watch.user.wait_for(lambda: watch.continued() is not None, settings.leave_delay + WAIT_S):
        tally.no_token += 1
        return
    tally.samples.append((watch.continued() or 0.0) - killed_at)
    if not await watch.user.wait_for(watch.complete, WAIT_S):
        tally.not_complete += 1


def _count_not_adopted(watches: Sequence[RunWatch], adopted: Sequence[list[GraphRunResult]] | None,
                       tally: Tally) -> None:
    """A watcher must have adopted its session's run, and finished it (a run finished elsewhere is a failure)."""
    for index, watch in enumerate(watches):
        results = adopted[index] if adopted is not None else []
        if [(r.outcome, r.run_id) for r in results] != [("complete", watch.run_id)]:
            tally.not_adopted_here += 1


async def _kill_one(server: RunningServer, survivor: Any, user_client: Any, graph: Any,
                    settings: Settings) -> Tally:
    """One worker serves `sessions` sessions, is killed -9 once every one shows text; the survivor adopts them."""
    tally, stop = Tally(), asyncio.Event()
    watchers: list[asyncio.Future[list[GraphRunResult]]] = []
    with tempfile.TemporaryFile() as errors:
        worker = _start_worker(server, errors)  # imports while the sessions open
        try:
            async with AsyncExitStack() as stack:
                users = [await stack.enter_async_context(ClientSession(user_client, f"bench:adopt-{uuid.uuid4().hex}"))
                         for _ in range(settings.sessions)]
                watches = [RunWatch(user) for user in users]
                stack.callback(lambda: [watch.close() for watch in watches])
                watchers = [asyncio.ensure_future(watch_session(
                    graph, user.core.name, client=survivor, watch_s=settings.leave_delay + 3 * WAIT_S, stop=stop))
                    for user in users]
                sent = [await user.send("tell me everything") for user in users]
                assert worker.stdin is not None
                worker.stdin.write(json.dumps([s.invocation.to_json() for s in sent]) + "\n")
                worker.stdin.close()
                if not await _all_hold(watches, RunWatch.streamed, WAIT_S):
                    raise BenchmarkError(f"the worker never streamed on every session; its stderr:\n{_tail(errors)}")
                worker.kill()
                killed_at = time.monotonic()
                await asyncio.gather(*(_follow(watch, killed_at, settings, tally) for watch in watches))
                stop.set()
                done, _ = await asyncio.wait(watchers, timeout=WAIT_S)
                _count_not_adopted(watches, [w.result() if w in done and not w.exception() else []
                                             for w in watchers], tally)
        finally:
            worker.kill()
            worker.wait(timeout=WAIT_S)
            stop.set()
            for watcher in watchers:
                watcher.cancel()
    return tally


async def _kills(server: RunningServer, survivor: Any, user_client: Any, graph: Any, settings: Settings,
                 kills: int, workers: int) -> Tally:
    tally = Tally()
    for first in range(0, kills, workers):
        at_once = min(workers, kills - first)
        for result in await asyncio.gather(*(_kill_one(server, survivor, user_client, graph, settings)
                                             for _ in range(at_once))):
            tally.add(result)
        print(f"  [{first + at_once}/{kills} kills] {len(tally.samples)} samples, {tally.failures} failures",
              flush=True)
    return tally


# --- the report ---


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def _p99(ordered: list[float]) -> float | None:
    return percentile(ordered, 99) if len(ordered) >= P99_MIN_SAMPLES else None


def _report(delay: float, tally: Tally, baseline: list[float], kills: int, sessions: int, before: str) -> list[str]:
    ordered, base = sorted(tally.samples), sorted(baseline)
    median = statistics.median(ordered) if ordered else None
    overhead = None if median is None else median - delay
    base_median = statistics.median(base)
    return [
        f"leave delay {delay:g} s: {kills} kills x {sessions} sessions; {len(ordered)} samples, {tally.failures} "
        f"failures (no continued token {tally.no_token}, run not complete {tally.not_complete}, not adopted "
        f"and completed by the watcher {tally.not_adopted_here})",
        f"  kill -9 -> first continued token:  p50 {_ms(median)} ms, p99 {_ms(_p99(ordered))} ms, "
        f"max {_ms(ordered[-1] if ordered else None)} ms",
        f"  overhead beyond the leave delay (p50 - {delay:g} s): {_ms(overhead)} ms",
        f"  BASELINE healthy fresh run, serve_graph -> first token ({len(base)} runs, one at a time): "
        f"p50 {_ms(base_median)} ms, p99 {_ms(_p99(base))} ms",
        f"  overhead / baseline p50: {ratio(overhead, base_median)}",
        f"  {load_line(before)}",
    ]


# --- the run ---


async def _measure(server: RunningServer, settings: Settings, args: argparse.Namespace) -> list[str]:
    before = load_average()
    async with connect(server.key, server.url, client_id=AGENT_ID) as survivor, \
            connect(server.key, server.url, client_id="user") as user_client:
        graph = chat_builder(lambda state: settings.reply, delay=settings.token_delay_s).compile(
            checkpointer=AblySaver(survivor))
        baseline = await _baseline(survivor, user_client, graph, args.baseline_samples)
        print(f"  baseline: {len(baseline)} healthy runs, p50 {_ms(statistics.median(baseline))} ms", flush=True)
        tally = await _kills(server, survivor, user_client, graph, settings, args.kills, args.workers)
    return _report(settings.leave_delay, tally, baseline, args.kills, settings.sessions, before)


def _delays(text: str) -> list[float]:
    values = [float(part) for part in text.split(",") if part.strip()]
    if not values or any(value <= 0 or not math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive seconds")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leave-delays", type=_delays, default=[1.0, 15.0], help="presence leave delays, s")
    parser.add_argument("--kills", type=positive, default=20, help="workers killed per leave delay")
    parser.add_argument("--sessions", type=positive, default=10, help="sessions each worker serves")
    parser.add_argument("--workers", type=positive, default=2, help="workers run and killed at once")
    parser.add_argument("--baseline-samples", type=positive, default=200)
    parser.add_argument("--reply-words", type=positive, default=20, help="the survivor's reply")
    parser.add_argument("--token-delay-ms", type=float, default=5.0, help="between the survivor's reply words")
    args = parser.parse_args()
    quiet_sdk_logs()
    logging.getLogger("langchain_ably_transport").setLevel(logging.ERROR)  # a warning per adoption otherwise
    started = time.monotonic()
    reply = " ".join(f"more{i}" for i in range(args.reply_words))
    lines = []
    for delay in args.leave_delays:
        print(f"leave delay {delay:g} s ...", flush=True)
        settings = Settings(delay, args.sessions, reply, args.token_delay_ms / 1000)
        with spawn(args=["--presence-leave-delay", str(delay), "--inbound-rate", "0"]) as server:
            lines += asyncio.run(_measure(server, settings, args))
    print()
    print("\n".join(lines))
    print(f"(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
