"""How long a killed agent's run stays a mystery, and what it costs the next turn.

Each round: a worker process (`tests/faults/crashing_agent.py`) serves a chat graph and is killed with -9
mid-stream. Measured from the kill: when a client lists the run in `lost_runs()` (detection; Ably's bound is
the presence leave delay, 15 s, which the dev server reproduces), then, from the user's next message, when
the next agent process has ended the lost run and when its answer is complete. The baseline is the same next
turn on a healthy session, in the same run.

    python benchmarks/agent_crash.py [--rounds 3] [--leave-delay 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import BenchmarkError, positive, quiet_sdk_logs, ratio

from langchain_ably_transport import AblySaver, ClientSession, connect
from langchain_ably_transport.devserver import RunningServer, spawn
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire import names

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the crash test's worker and graph, shared with this benchmark
from tests.faults.crashing_agent import AGENT_ID  # noqa: E402
from tests.graph.graphs import chat_graph  # noqa: E402

WAIT_S = 120.0


async def _next_turn(agent, user: ClientSession, lost: str | None) -> tuple[float | None, float]:
    """Send a message and serve it; seconds until the lost run shows ended (if any) and until the answer shows."""
    started = time.monotonic()
    sent = await user.send("are you back?")
    serving = asyncio.create_task(serve_graph(chat_graph(AblySaver(agent), "I am back."), sent.invocation,
                                              client=agent))
    ended = None
    if lost is not None:
        if not await user.core.wait_for(lambda: user.core.tree.run(lost).status == names.RunStatus.ERROR, WAIT_S):
            raise BenchmarkError(f"lost run {lost} was never ended")
        ended = time.monotonic() - started
    if not await user.core.wait_for(lambda: user.messages()[-1].content == "I am back.", WAIT_S):
        raise BenchmarkError("the next turn was never answered")
    answered = time.monotonic() - started
    if (await serving).outcome != "complete":
        raise BenchmarkError("the next turn did not complete")
    return ended, answered


async def _crash_round(server: RunningServer, agent, user_client) -> tuple[float, float, float]:
    async with ClientSession(user_client, f"bench:crash-{uuid.uuid4().hex[:8]}") as user:
        sent = await user.send("tell me everything")
        worker = subprocess.Popen([sys.executable, "-m", "tests.faults.crashing_agent", server.url, server.key,
                                   json.dumps(sent.invocation.to_json())], cwd=ROOT)
        try:
            run_id = await sent.run_id(timeout=60)
            if not await user.core.wait_for(lambda: len(user.messages()) > 1, WAIT_S):
                raise BenchmarkError("the worker never streamed")
        finally:
            worker.kill()
            killed = time.monotonic()
            worker.wait()
        if not await user.core.wait_for(lambda: run_id in user.lost_runs(), WAIT_S):
            raise BenchmarkError(f"run {run_id} was never seen lost")
        detected = time.monotonic() - killed
        ended, answered = await _next_turn(agent, user, run_id)
        assert ended is not None
        return detected, ended, answered


async def _healthy_round(previous, agent, user_client) -> float:
    """As a crash round but the first turn completes, served by another process (connection) as there: the
    next turn must not wait for the pacing the first turn's publishes cost its connection."""
    async with ClientSession(user_client, f"bench:healthy-{uuid.uuid4().hex[:8]}") as user:
        first = await user.send("hello")
        await serve_graph(chat_graph(AblySaver(previous), "Hi."), first.invocation, client=previous)
        await asyncio.sleep(1.0)  # the agent connection's publish budget refills, as after a crash round
        return (await _next_turn(agent, user, None))[1]


async def _measure(server: RunningServer, rounds: int) -> None:
    crashes, healthy = [], []
    async with connect(server.key, server.url, client_id=AGENT_ID) as agent, \
            connect(server.key, server.url, client_id=AGENT_ID) as previous, \
            connect(server.key, server.url, client_id="user") as user_client:
        for _ in range(rounds):
            healthy.append(await _healthy_round(previous, agent, user_client))
            crashes.append(await _crash_round(server, agent, user_client))
    detected, ended, answered = (statistics.median(column) for column in zip(*crashes, strict=True))
    baseline = statistics.median(healthy)
    print(f"kill -9 mid-stream -> a client lists the run lost:  {detected * 1000:8.0f} ms (median of {rounds})")
    print(f"next message -> the lost run shows ended (error):    {ended * 1000:8.0f} ms")
    print(f"next message -> its answer shows, after a crash:     {answered * 1000:8.0f} ms")
    print(f"BASELINE next message -> answer, healthy session:    {baseline * 1000:8.0f} ms   "
          f"ratio {ratio(answered, baseline)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=positive, default=3)
    parser.add_argument("--leave-delay", type=float, default=15.0, help="presence leave delay, s (Ably: 15)")
    args = parser.parse_args()
    quiet_sdk_logs()
    print(f"presence leave delay {args.leave_delay:g} s (the detection bound)")
    with spawn(args=["--presence-leave-delay", str(args.leave_delay)]) as server:
        asyncio.run(_measure(server, args.rounds))


if __name__ == "__main__":
    main()
