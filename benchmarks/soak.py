"""Soak: runs repeated for minutes on one dev server, with sockets dropped on both sides and tokens renewed,
every reply checked word by word against the agent's own record, next to a baseline without faults.

The agent is a child process (its RSS is read from /proc at the start and end of each phase) serving each
invocation with `serve_graph`: a fake model streams a reply of unique words (a chunk every 10 ms: a word,
then a space), and `AblySaver` writes the graph's checkpoints. Two clients in this process (`ClientSession`s
on connections of their own) send the turns and follow the session; every 10 turns a new session starts, and
a late reader on a connection that never drops hydrates the finished one from history.

Phases, in this order, on the same server and machine:

- BASELINE: the same workload with no faults (key auth, no drops).
- FAULTS: every party authenticates with 4 s tokens from an `auth_callback`, renewed when the server asks
  (halfway through each token's life); the agent drops its own socket every ~2 s on average and the clients
  drop theirs every ~1 s (one of the two at random); a drop of a publisher waits for messages in flight.

Reported per phase: runs completed, drops survived, words checked (each client's live view and the late
reader's, against the agent's record), live messages received, words lost and duplicated, replies that
differ, the agent's RSS, and the token latency p50/p99 (from the agent's model yielding a word to the
client receiving the delta carrying it; one host clock, `time.time()` in both processes; each phase's first
run is warm-up and left out). Latency ratios are against the baseline.

Reproduce (about 3 minutes by default; a third of the time is the baseline):

    .venv/bin/python benchmarks/soak.py [--minutes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import BenchmarkError, cell, load_average, load_line, percentile, quiet_sdk_logs, ratio
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_ably_transport import AblySaver, ClientSession, connect
from langchain_ably_transport.devserver import RunningServer, spawn
from langchain_ably_transport.devserver.config import ApiKey
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire.invocation import Invocation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fault tests' helpers, shared with this soak
from tests.faults.drops import (
    Dropper,
    TokenIssuer,
    assistant_texts,
    lost_and_duplicated,
    runs_settled,
    unique_words,
)

WORDS_PER_REPLY = 150
CHUNK_DELAY_S = 0.01
TURNS_PER_SESSION = 10
TOKEN_TTL_MS = 4000
AGENT_DROP_INTERVAL_S = 2.0
CLIENT_DROP_INTERVAL_S = 1.0
BASELINE_SHARE = 1 / 3
SETTLE_TIMEOUT_S = 60.0
CLIENTS = ("alice", "bob")


# --- the agent process ---


def soak_graph(saver: AblySaver, emitted: dict[str, Any]) -> Any:
    """START -> chat -> END; `chat` streams a fresh reply of unique words and records when each was yielded."""

    async def chat(state: MessagesState) -> dict[str, Any]:
        model = GenericFakeChatModel(messages=iter([AIMessage(content=unique_words(WORDS_PER_REPLY))]))
        last = None
        async for chunk in model.astream(state["messages"]):
            now = time.time()
            emitted["at"].update({word: now for word in str(chunk.content).split()})
            last = chunk if last is None else last + chunk
            await asyncio.sleep(CHUNK_DELAY_S)
        emitted["text"] = last.content if last is not None else ""
        return {"messages": [last]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    return graph.compile(checkpointer=saver)


async def serve_agent(url: str, key: str, faults: bool) -> None:
    """Serve the invocations read from stdin, one JSON line each; answer each with a JSON line on stdout."""
    quiet_sdk_logs()
    issuer = TokenIssuer(ApiKey.parse(key), "agent", TOKEN_TTL_MS)
    auth = {"auth_callback": issuer.token} if faults else {"key": key}
    async with connect(endpoint=url, client_id="agent", **auth) as client:
        dropper = Dropper({"agent": client}, budget=sys.maxsize, interval=AGENT_DROP_INTERVAL_S, seed=7)
        if faults:
            dropper.start()
        emitted: dict[str, Any] = {"at": {}, "text": ""}
        graph = soak_graph(AblySaver(client), emitted)
        print("ready", flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            emitted.update(at={}, text="")
            invocation = Invocation.from_json(json.loads(line))
            try:
                outcome = (await serve_graph(graph, invocation, client=client)).outcome
            except Exception as error:  # reported to the parent, which counts it
                outcome = f"raised {type(error).__name__}: {error}"
            answer = {"outcome": outcome, **emitted, "drops": dropper.drops,
                      "in_flight_drops": dropper.in_flight_at_drop["agent"], "tokens": issuer.issued}
            print(json.dumps(answer), flush=True)
        await dropper.stop()


class AgentProcess:
    """The agent child: `serve(invocation)` sends it one, and returns its answer."""

    def __init__(self, server: RunningServer, faults: bool) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--agent", server.url, server.key, "--faults" if faults else "--no-faults"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self._line() != "ready":
            raise BenchmarkError("the agent process did not start")
        self.last: dict[str, Any] = {"drops": 0, "in_flight_drops": 0, "tokens": 0}

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    async def serve(self, invocation: Invocation) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(invocation.to_json()) + "\n")
        self.process.stdin.flush()
        answer = await asyncio.wait_for(asyncio.to_thread(self._line), SETTLE_TIMEOUT_S)
        if not answer:
            raise BenchmarkError("the agent process exited")
        self.last = json.loads(answer)
        return self.last

    def rss_mb(self) -> float | None:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the clients, in this process ---


@dataclass
class Phase:
    name: str
    faults: bool
    runs: int = 0
    failures: list[str] = field(default_factory=list)
    words_checked: int = 0
    live_messages: int = 0
    lost: int = 0
    duplicated: int = 0
    differing_replies: int = 0
    client_drops: int = 0
    agent: dict[str, Any] = field(default_factory=dict)
    client_tokens: int = 0
    rss_mb: tuple[float | None, float | None] = (None, None)
    latencies_ms: list[float] = field(default_factory=list)

    def check(self, produced: str, shown: str) -> None:
        lost, duplicated = lost_and_duplicated(produced, shown)
        self.words_checked += len(produced.split())
        self.lost += lost
        self.duplicated += duplicated
        self.differing_replies += shown != produced


class Arrivals:
    """When each word first reached a client live (the delta carrying it was folded)."""

    def __init__(self, session: ClientSession, phase: Phase) -> None:
        self.at: dict[str, float] = {}
        self._task = asyncio.create_task(self._follow(session, phase))

    async def _follow(self, session: ClientSession, phase: Phase) -> None:
        async for _, events in session.events():
            now = time.time()
            phase.live_messages += 1
            for event in events:
                if event.direction == "output" and event.event.get("type") == "text-delta":
                    for word in event.event.get("delta", "").split():
                        self.at.setdefault(word, now)

    def stop(self) -> None:
        self._task.cancel()


async def run_session(agent: AgentProcess, connections: dict[str, Any], reader: Any, phase: Phase,
                      deadline: float) -> None:
    """Up to TURNS_PER_SESSION turns on a new session, each checked live; then the session from history."""
    name = f"soak:{uuid.uuid4().hex[:10]}"
    produced: list[str] = []
    async with AsyncExitStack() as stack:
        sessions = {n: await stack.enter_async_context(ClientSession(c, name)) for n, c in connections.items()}
        arrivals = {n: Arrivals(s, phase) for n, s in sessions.items()}
        stack.callback(lambda: [a.stop() for a in arrivals.values()])
        while len(produced) < TURNS_PER_SESSION and time.monotonic() < deadline:
            sent = await sessions["alice"].send(f"turn {len(produced)}")
            answer = await agent.serve(sent.invocation)
            if answer["outcome"] != "complete":
                phase.failures.append(f"{name} turn {len(produced)}: {answer['outcome']}")
                return
            produced.append(answer["text"])
            for client, session in sessions.items():
                if not await session.wait_for(lambda s=session: runs_settled(s, len(produced)), SETTLE_TIMEOUT_S):
                    phase.failures.append(f"{name} turn {len(produced) - 1}: {client} did not see the run end")
                shown = assistant_texts(session)
                phase.check(answer["text"], shown[-1] if len(shown) == len(produced) else "")
                if phase.runs:  # the phase's first run warms the agent process up
                    phase.latencies_ms += [1000 * (arrivals[client].at[word] - at)
                                           for word, at in answer["at"].items() if word in arrivals[client].at]
            phase.runs += 1
    async with ClientSession(reader, name) as late:
        shown = assistant_texts(late)
        for index, text in enumerate(produced):
            phase.check(text, shown[index] if index < len(shown) else "")


async def run_phase(server: RunningServer, phase: Phase, seconds: float) -> Phase:
    agent = AgentProcess(server, phase.faults)
    issuers = {n: TokenIssuer(ApiKey.parse(server.key), n, TOKEN_TTL_MS) for n in CLIENTS}
    try:
        async with AsyncExitStack() as stack:
            connections = {n: await stack.enter_async_context(
                connect(endpoint=server.url, client_id=n, **({"auth_callback": issuers[n].token} if phase.faults
                                                             else {"key": server.key})))
                for n in CLIENTS}
            reader = await stack.enter_async_context(connect(server.key, server.url))
            dropper = Dropper(connections, budget=sys.maxsize, interval=CLIENT_DROP_INTERVAL_S, seed=11)
            if phase.faults:
                dropper.start()
            start_rss = agent.rss_mb()
            deadline = time.monotonic() + seconds
            try:
                while time.monotonic() < deadline:
                    await run_session(agent, connections, reader, phase, deadline)
            except (TimeoutError, BenchmarkError) as error:
                phase.failures.append(f"stopped: {type(error).__name__} {error}")
            finally:
                await dropper.stop()
            phase.rss_mb = (start_rss, agent.rss_mb())
            phase.client_drops = dropper.drops
    finally:
        agent.stop()
    phase.agent = agent.last
    phase.client_tokens = sum(issuer.issued for issuer in issuers.values())
    return phase


# --- the report ---


def report(phases: list[Phase], minutes: float, load_before: str) -> str:
    baseline = phases[0]
    base_p50, base_p99 = _latency(baseline, 50), _latency(baseline, 99)
    lines = [
        f"Soak: {minutes:g} min on one dev server (default limits); replies of {WORDS_PER_REPLY} words, a chunk "
        f"every {CHUNK_DELAY_S * 1000:.0f} ms; {TURNS_PER_SESSION} turns a session; faults: agent drops ~every "
        f"{AGENT_DROP_INTERVAL_S:g} s, client drops ~every {CLIENT_DROP_INTERVAL_S:g} s, "
        f"{TOKEN_TTL_MS // 1000} s tokens",
        load_line(load_before),
        "",
        f"{'phase':<10}{'runs':>6}{'drops a/c':>11}{'in flight':>10}{'tokens':>8}{'words':>9}{'live msgs':>10}"
        f"{'lost':>6}{'dup':>5}{'diff':>6}{'RSS start':>10}{'RSS end':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'p50 x':>7}{'p99 x':>7}",
    ]
    for phase in phases:
        p50, p99 = _latency(phase, 50), _latency(phase, 99)
        drops = f"{phase.agent.get('drops', 0)}/{phase.client_drops}"
        tokens = phase.agent.get("tokens", 0) + phase.client_tokens
        lines.append(
            f"{phase.name:<10}{phase.runs:>6}{drops:>11}{phase.agent.get('in_flight_drops', 0):>10}{tokens:>8}"
            f"{phase.words_checked:>9}{phase.live_messages:>10}{phase.lost:>6}{phase.duplicated:>5}"
            f"{phase.differing_replies:>6}{cell(phase.rss_mb[0], '.1f', 10)}{cell(phase.rss_mb[1], '.1f', 9)}"
            f"{cell(p50, '.1f', 8)}{cell(p99, '.1f', 8)}{ratio(p50, base_p50):>7}{ratio(p99, base_p99):>7}")
    lines += [
        "",
        "drops a/c: the agent's own socket / the clients' sockets; in flight: agent drops that cut messages in flight "
        "short; tokens: tokens issued (renewals included) to the agent and clients; words: words checked against "
        "the agent's record (each client live, and a late reader from history); diff: replies not shown exactly; "
        "RSS: the agent process, MB; p50/p99: token latency; x: against BASELINE.",
    ]
    for phase in phases:
        lines += [f"{phase.name} failure: {failure}" for failure in phase.failures]
    return "\n".join(lines)


def _latency(phase: Phase, pct: float) -> float | None:
    return percentile(sorted(phase.latencies_ms), pct) if phase.latencies_ms else None


async def soak(minutes: float) -> list[Phase]:
    quiet_sdk_logs()
    seconds = minutes * 60
    with spawn() as server:
        baseline = await run_phase(server, Phase("BASELINE", faults=False), seconds * BASELINE_SHARE)
        faulty = await run_phase(server, Phase("FAULTS", faults=True), seconds * (1 - BASELINE_SHARE))
    return [baseline, faulty]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=3.0, help="total duration, baseline included (default 3)")
    parser.add_argument("--agent", nargs=2, metavar=("URL", "KEY"), help=argparse.SUPPRESS)
    parser.add_argument("--faults", action=argparse.BooleanOptionalAction, default=False, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agent:
        asyncio.run(serve_agent(*args.agent, args.faults))
        return
    load_before = load_average()
    phases = asyncio.run(soak(args.minutes))
    print(report(phases, args.minutes, load_before))
    if any(p.lost or p.duplicated or p.differing_replies or p.failures for p in phases):
        sys.exit(1)


if __name__ == "__main__":
    main()
