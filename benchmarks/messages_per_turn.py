"""Messages per turn, by kind: a `serve_graph` + `AblySaver` turn against the genuine JS agent's turn for the same
reply, in one run (the baseline: `@ably/ai-transport` 0.8.0's `agent-answer.mjs`, Vercel codec).

Ably bills every published message, and a connection accepts 50 a second, so what one turn publishes is its cost.
Both agents answer the same 50-token reply, one token every 20 ms (about a second of streaming), on one dev
server with Ably's default limits:

- Python: a three-super-step graph (`plan`, a node that only updates the state; `chat`, a streaming model;
  `wrap`, another update) served by `serve_graph` with `AblySaver` on the same connection, which lives across the
  turns as a server's would (its one presence enter, on the liveness channel, falls to its first turn). Its counts
  are the message ledger's for the run (`GraphRunResult.messages`), which `tests/test_ledger.py` checks against
  what the channels carry.
- JS: `tests/js/ai-transport/agent-answer.mjs` in Node (one run, one step, one text stream; no state, no
  presence). Its counts are what a subscriber receives from its clientId on a dev server that delivers every
  append as published (`--append-rollup-window 0`), split into creates and appends by the Ably action.

A third Python column serves with `durability="exit"` (one checkpoint per run), and a fourth hides the task parts of
the two nodes that only update the state (`visibility={"plan": "hide", "wrap": "hide"}`): the levers of
docs/tuning.md. Each agent also answers on a second dev server with Ably's 40 ms append rollup, where a subscriber
counts the appends delivered: the "after rollup" columns (the JS agent appends every delta and leaves the merging
to Ably; this package merges appends waiting their turn before sending, and Ably's rollup merges what is left).

Counts are per turn, medians over `--turns` turns each; they are counts, not timings, so a few turns suffice
(appends vary with scheduling: one per 40 ms rollup window of streaming). The target of the scale issue: the
Python turn publishes at most the JS turn plus three (one checkpoint per super-step).

Reproduce, from the project root (about 30 s; needs `make test`'s npm install of tests/js):

    .venv/bin/python benchmarks/messages_per_turn.py [--turns 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from common import BenchmarkError, load_average, load_line, positive, quiet_sdk_logs
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_ably_transport import AblySaver, ClientSession, MessageKind, connect
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire.invocation import Invocation

ROOT = Path(__file__).resolve().parent.parent
JS_AGENT = ROOT / "tests" / "js" / "ai-transport" / "agent-answer.mjs"
TOKENS = 50
DELAY_MS = 20
TURN_TIMEOUT_S = 60.0
JS_ID = "js-agent"
LIFECYCLE_NAMES = {"ai-run-start", "ai-run-end", "ai-run-suspend", "ai-run-resume", "ai-step-start", "ai-step-end"}
KINDS = [MessageKind.OUTPUT_CREATE, MessageKind.OUTPUT_APPEND, MessageKind.OUTPUT_UPDATE, MessageKind.LIFECYCLE,
         MessageKind.PRESENCE, MessageKind.CHECKPOINT_RECORD, MessageKind.CHECKPOINT_BLOB]
REPLY = "".join(f"t{i} " for i in range(TOKENS)).strip()


class State(MessagesState):
    plan: str
    summary: str


def three_step_graph(saver: AblySaver) -> Any:
    """START -> plan (state only) -> chat (streams the reply) -> wrap (state only) -> END."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content=REPLY)]))

    async def plan(state: State) -> dict[str, Any]:
        return {"plan": "answer briefly"}

    async def chat(state: State) -> dict[str, Any]:
        last = None
        async for chunk in model.astream(state["messages"]):
            last = chunk if last is None else last + chunk
            if str(chunk.content).strip():  # the fake model streams spaces as chunks of their own; JS sends a word
                await asyncio.sleep(DELAY_MS / 1000)  # and its space as one delta: pace words alike
        return {"messages": [last]}

    async def wrap(state: State) -> dict[str, Any]:
        return {"summary": f"{len(state['messages'])} messages"}

    graph = StateGraph(State)
    for name, node in (("plan", plan), ("chat", chat), ("wrap", wrap)):
        graph.add_node(name, node)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "chat")
    graph.add_edge("chat", "wrap")
    graph.add_edge("wrap", END)
    return graph.compile(checkpointer=saver)


QUIET_NODES = {"plan": "hide", "wrap": "hide"}  # the state-only nodes: no task part for them


async def python_turn(url: str, key: str, agent: Any, durability: str | None = None,
                      visibility: dict[str, str] | None = None) -> tuple[Counter[str], Counter[str]]:
    """The ledger's counts for the run, and what a subscriber received from the agent (whose connection, like a
    server's, outlives its turns)."""

    async def answer(invocation: Invocation) -> Counter[str]:
        result = await serve_graph(three_step_graph(AblySaver(agent)), invocation, client=agent,
                                   durability=durability, visibility=visibility)  # type: ignore[arg-type]
        if result.outcome != "complete":
            raise BenchmarkError(f"the Python turn ended {result.outcome}: {result.error}")
        return Counter({kind.value: result.messages[kind] for kind in KINDS})

    return await turn(url, key, "agent", answer)


async def js_turn(url: str, key: str) -> Counter[str]:
    """What a subscriber received from the JS agent."""

    async def answer(invocation: Invocation) -> None:
        await run_js_agent(url, key, invocation)

    return (await turn(url, key, JS_ID, answer))[1]


async def turn(url: str, key: str, agent_id: str, answer: Any) -> tuple[Any, Counter[str]]:
    """A user asks on a new session, `answer(invocation)` answers, and a subscriber counts the agent's messages."""
    async with connect(key, url, client_id="user") as user_client:
        session_name = f"bench:{uuid.uuid4().hex[:10]}"
        carried: Counter[str] = Counter()
        channel = user_client.channels.get(session_name)
        await channel.subscribe(lambda message: carried.update([_kind(message)]) if message.client_id == agent_id
                                else None)
        async with ClientSession(user_client, session_name) as user:
            sent = await user.send("hello")
            answered = await asyncio.wait_for(answer(sent.invocation), TURN_TIMEOUT_S)
            if not await user.wait_for(lambda: bool(user.messages()) and user.messages()[-1].content == REPLY, 10):
                raise BenchmarkError(f"{agent_id}'s reply never arrived whole")
        await asyncio.sleep(0.2)  # the last append's delivery
        return answered, carried


async def run_js_agent(url: str, key: str, invocation: Invocation) -> None:
    env = {**os.environ, "ABLY_ENDPOINT": url, "ABLY_API_KEY": key, "INVOCATION": json.dumps(invocation.to_json()),
           "REPLY": REPLY, "DELAY_MS": str(DELAY_MS), "CLIENT_ID": JS_ID,
           "TIMEOUT_MS": str(int(TURN_TIMEOUT_S * 1000))}
    process = await asyncio.create_subprocess_exec("node", str(JS_AGENT), env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), TURN_TIMEOUT_S + 10)
    except TimeoutError:
        process.kill()
        raise BenchmarkError("the JS agent did not finish in time") from None
    lines = [line for line in out.decode().splitlines() if line.strip()]
    if process.returncode != 0 or not lines or json.loads(lines[-1]).get("outcome") != "complete":
        raise BenchmarkError(f"the JS agent exited {process.returncode}: {lines[-1:] or err.decode()[-2000:]}")


def _kind(message: Any) -> str:
    if message.name in LIFECYCLE_NAMES:
        return MessageKind.LIFECYCLE.value
    action = int(message.action or 0)
    return {0: MessageKind.OUTPUT_CREATE, 1: MessageKind.OUTPUT_UPDATE}.get(action, MessageKind.OUTPUT_APPEND).value


def medians(turns: list[Counter[str]]) -> dict[str, float]:
    return {kind.value: statistics.median(turn[kind.value] for turn in turns) for kind in KINDS} | {
        "total": statistics.median(turn.total() for turn in turns)}


def after_rollup(published: Counter[str], delivered: Counter[str]) -> Counter[str]:
    """Published counts with the appends a subscriber received in their place (the rollup merges only appends)."""
    counts = Counter(published)
    counts[MessageKind.OUTPUT_APPEND.value] = delivered[MessageKind.OUTPUT_APPEND.value]
    return counts


async def measure(turns: int) -> dict[str, dict[str, float]]:
    """Medians by column, each agent on each server, turns interleaved (a change in load touches all alike)."""
    columns: dict[str, list[Counter[str]]] = {name: [] for name in COLUMNS}
    with spawn(args=["--append-rollup-window", "0"]) as unrolled, spawn() as rolled:
        async with connect(unrolled.key, unrolled.url, client_id="agent") as agent_there, \
                connect(rolled.key, rolled.url, client_id="agent") as agent:
            for _ in range(turns):
                published, _ = await python_turn(unrolled.url, unrolled.key, agent_there)
                columns[COLUMNS[0]].append(published)
                published_there, delivered = await python_turn(rolled.url, rolled.key, agent)
                columns[COLUMNS[1]].append(after_rollup(published_there, delivered))
                exit_published, exit_delivered = await python_turn(rolled.url, rolled.key, agent, "exit")
                columns[COLUMNS[2]].append(after_rollup(exit_published, exit_delivered))
                quiet_published, quiet_delivered = await python_turn(rolled.url, rolled.key, agent,
                                                                     visibility=QUIET_NODES)
                columns[COLUMNS[3]].append(after_rollup(quiet_published, quiet_delivered))
                js_published = await js_turn(unrolled.url, unrolled.key)
                columns[COLUMNS[4]].append(js_published)
                columns[COLUMNS[5]].append(after_rollup(js_published, await js_turn(rolled.url, rolled.key)))
    return {name: medians(counts) for name, counts in columns.items()}


COLUMNS = ("Python published", "Python after rollup", "Python exit, rolled", "Python quiet, rolled", "JS published",
           "JS after rollup")


def report(columns: dict[str, dict[str, float]], turns: int, load_before: str) -> str:
    kinds = [*(k.value for k in KINDS), "total"]
    rows = [f"{'kind':<18}" + "".join(f"{name:>21}" for name in COLUMNS),
            *(f"{kind:<18}" + "".join(f"{columns[name][kind]:>21g}" for name in COLUMNS) for kind in kinds)]
    python, js = columns["Python after rollup"]["total"], columns["JS after rollup"]["total"]
    quiet = columns["Python quiet, rolled"]["total"]
    verdict = "met" if python <= js + 3 else "not met"
    return "\n".join([
        f"Messages per turn: a {TOKENS}-token reply, one token every {DELAY_MS} ms; medians of {turns} turns each;",
        "baseline: the genuine JS agent (@ably/ai-transport 0.8.0) for the same reply",
        load_line(load_before), "", *rows, "",
        f"published, Python / JS: {columns['Python published']['total'] / columns['JS published']['total']:.2f}x; "
        f"after rollup: {python / js:.2f}x; target after rollup (JS + 3 = {js + 3:g}): {verdict} by default",
        f"cheaper settings, after rollup: durability exit {columns['Python exit, rolled']['total']:g} "
        f"({columns['Python exit, rolled']['total'] / js:.2f}x); the state-only nodes' task parts hidden "
        f"(visibility={QUIET_NODES}) {quiet:g} ({quiet / js:.2f}x, {'within' if quiet <= js + 3 else 'over'} JS + 3)",
        "each Python agent connection entered presence once, in its first turn (the medians leave it out when "
        "turns > 2)",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=positive, default=5)
    args = parser.parse_args()
    quiet_sdk_logs()
    if not (ROOT / "tests" / "js" / "node_modules").exists():
        sys.exit("tests/js has no node_modules: run `make test` (or `npm ci --prefix tests/js`) first")
    before = load_average()
    columns = asyncio.run(asyncio.wait_for(measure(args.turns), args.turns * 5 * (TURN_TIMEOUT_S + 15)))
    print(report(columns, args.turns, before))


if __name__ == "__main__":
    main()
