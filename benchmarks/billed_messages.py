"""What a conversation's turns cost on Ably's bill, against what the message ledger counts (what the agent publishes).

Ably counts one inbound message per message published, one outbound message per message delivered to each
subscribing connection (the publisher's own included: Ably echoes by default), and one outbound message per message
a history request returns (docs: "Message counting"). The ledger (`docs/tuning.md`) counts only the first. This
benchmark measures the rest, turn by turn, over one conversation: `messages_per_turn.py`'s three-super-step graph
(a 50-token reply) served by `serve_graph` with `AblySaver`, and one user following the session, on the dev server
with Ably's limits and its 40 ms append rollup. The conversation is served three times: with every session opened
afresh (`DORMANT_BYTES_KEPT = 0`: a whole page of history read every turn, as before commit 05f9beb); as
`serve_graph` does by default (the session's last core in the process is dormant, and the next one reads only the
history since); with `session_linger_s` (the agent's session stays attached between turns); and by default on an
agent connection as a `ConnectionPool` opens one: Ably does not echo it (`echo=false`: the session folds what it
publishes at its ACK), nor rolls its appends up (`appendRollupWindow=0`: the encoder's window is the rollup).

Counted per turn, at the two SDK clients (the counts are the server's deliveries, not estimates):
- published: the agent's messages (the ledger's count for the run) and the user's (its input);
- delivered to the user's connection, and to the agent's (every message of the session channel while attached: the
  agent's own messages come back to it, and so does the user's input);
- read from history by the agent: messages the REST history requests returned, on the session channel (opening the
  session) and on the thread's state channel (`AblySaver` reading the newest checkpoints).
BASELINE: the sessions opened afresh, in the same run; and beside every total, its ratio to what the ledger counts
(the agent's published messages).

Reproduce (about 30 s):

    .venv/bin/python benchmarks/billed_messages.py [--turns 8] [--linger-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from common import BenchmarkError, load_average, load_line, positive, quiet_sdk_logs
from messages_per_turn import REPLY, three_step_graph

from langchain_ably_transport import AblySaver, ClientSession, connect
from langchain_ably_transport.checkpoint import state_channel
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.session import core

TURN_TIMEOUT_S = 60.0
SETTLE_S = 0.3  # after the reply is whole: the last rolled-up append's delivery to the agent
MESSAGE_ACTION = 15  # Ably's protocol MESSAGE: what a subscribing connection is delivered
COLUMNS = ("agent published (the ledger)", "user published", "delivered to the user", "delivered to the agent",
           "history read: session", "history read: state", "billed in all")
ECHOED = "of them, its own"  # beside the columns: the agent's own messages among those delivered to it


class Deliveries:
    """Messages one client's connection is delivered, by channel, and those it published itself (its echo): counted
    where ably-python hands a MESSAGE frame to its channels (an instance attribute shadows the method)."""

    def __init__(self, client: Any) -> None:
        self.by_channel: Counter[str] = Counter()
        self.own_by_channel: Counter[str] = Counter()
        channels, client_id = client.channels, client.auth.client_id
        deliver: Callable[[dict[str, Any]], None] = channels._on_channel_message

        def counted(frame: dict[str, Any]) -> None:
            if frame.get("action") == MESSAGE_ACTION:
                messages, channel = frame.get("messages") or [], frame.get("channel", "")
                self.by_channel[channel] += len(messages)
                self.own_by_channel[channel] += sum(1 for m in messages if m.get("clientId") == client_id)
            deliver(frame)

        channels._on_channel_message = counted


class HistoryReads:
    """Messages one client's REST history requests returned, by channel (every REST request of ably-python goes
    through its `Http.make_request`; an instance attribute shadows the method)."""

    def __init__(self, client: Any) -> None:
        self.by_channel: Counter[str] = Counter()
        http = client.http
        request = http.make_request

        async def counted(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            response = await request(method, path, *args, **kwargs)
            if method == "GET" and "/messages" in path and path.startswith("/channels/"):
                body = response.to_native()
                channel = unquote_plus(path.split("/")[2])
                self.by_channel[channel] += len(body) if isinstance(body, list) else 1
            return response

        http.make_request = counted


async def conversation(url: str, key: str, turns: int, linger_s: float, *, echo: bool = True) -> list[dict[str, float]]:
    """One conversation of `turns` turns; each turn's counts, by column."""
    session_name = f"bench:{uuid.uuid4().hex[:10]}"
    agent_options: dict[str, Any] = {} if echo else {"transport_params": {"echo": "false", "appendRollupWindow": "0"}}
    async with connect(key, url, client_id="agent", **agent_options) as agent, \
            connect(key, url, client_id="user") as user_client:
        agent_deliveries, user_deliveries = Deliveries(agent), Deliveries(user_client)
        reads = HistoryReads(agent)
        saver = AblySaver(agent)
        rows = []
        async with ClientSession(user_client, session_name) as user:
            for turn in range(turns):
                before = (Counter(agent_deliveries.by_channel), Counter(agent_deliveries.own_by_channel),
                          Counter(user_deliveries.by_channel), Counter(reads.by_channel))
                published = await _turn(user, agent, saver, turn, linger_s)
                rows.append(_row(published, session_name, before, agent_deliveries, user_deliveries, reads))
    return rows


async def _turn(user: ClientSession, agent: Any, saver: AblySaver, turn: int, linger_s: float) -> int:
    """The user asks, the agent answers, the reply is whole on the user's side: what the ledger counted for it."""
    sent = await user.send(f"question {turn}")
    result = await asyncio.wait_for(
        serve_graph(three_step_graph(saver), sent.invocation, client=agent, session_linger_s=linger_s),
        TURN_TIMEOUT_S)
    if result.outcome != "complete":
        raise BenchmarkError(f"turn {turn} ended {result.outcome}: {result.error}")
    expected = 2 * (turn + 1)
    if not await user.wait_for(lambda: len(user.messages()) == expected and user.messages()[-1].content == REPLY,
                               10):
        raise BenchmarkError(f"turn {turn}'s reply never arrived whole")
    await asyncio.sleep(SETTLE_S)
    return result.messages.total


def _row(published: int, session_name: str, before: tuple[Counter[str], ...], agent: Deliveries,
         user: Deliveries, reads: HistoryReads) -> dict[str, float]:
    agent_before, own_before, user_before, reads_before = before
    read = reads.by_channel - reads_before
    thread = state_channel(session_name)
    row: dict[str, float] = {
        COLUMNS[0]: published,
        COLUMNS[1]: 1,
        COLUMNS[2]: (user.by_channel - user_before)[session_name],
        COLUMNS[3]: (agent.by_channel - agent_before)[session_name],
        COLUMNS[4]: read[session_name],
        COLUMNS[5]: read[thread],
    }
    row[COLUMNS[6]] = sum(row.values())
    row[ECHOED] = (agent.own_by_channel - own_before)[session_name]
    return row


def report(runs: dict[str, list[dict[str, float]]], load_before: str) -> str:
    lines = ["Billed messages per turn of one conversation (Ably counts each message published, each delivery to a",
             "connection, and each message a history request returns); baseline: the sessions opened afresh; beside",
             "each turn, its ratio to what the ledger counts (the agent's published messages)", load_line(load_before)]
    for name, rows in runs.items():
        lines += ["", name, f"{'turn':>4}" + "".join(f"{column:>{len(column) + 2}}" for column in COLUMNS)
                  + f"{'billed / ledger':>17}" + f"{'agent: ' + ECHOED:>25}"]
        medians = {c: statistics.median(row[c] for row in rows) for c in (*COLUMNS, ECHOED)}
        for label, row in [*((str(turn), row) for turn, row in enumerate(rows, 1)), ("med", medians)]:
            lines.append(f"{label:>4}" + "".join(f"{row[c]:>{len(c) + 2}g}" for c in COLUMNS)
                         + f"{row[COLUMNS[6]] / row[COLUMNS[0]]:>16.2f}x" + f"{row[ECHOED]:>25g}")
    baseline = statistics.median(row[COLUMNS[6]] for row in next(iter(runs.values())))
    lines.append("")
    for name, rows in runs.items():
        billed, last = statistics.median(row[COLUMNS[6]] for row in rows), rows[-1][COLUMNS[6]]
        lines.append(f"billed a turn, median {billed:g} ({billed / baseline:.2f}x the baseline's), the last turn "
                     f"{last:g}: {name}")
    return "\n".join(lines)


async def measure(turns: int, linger_s: float) -> dict[str, list[dict[str, float]]]:
    with spawn() as server:
        kept, core.DORMANT_BYTES_KEPT = core.DORMANT_BYTES_KEPT, 0
        try:
            afresh = await conversation(server.url, server.key, turns, 0.0)
        finally:
            core.DORMANT_BYTES_KEPT = kept
        default = await conversation(server.url, server.key, turns, 0.0)
        lingering = await conversation(server.url, server.key, turns, linger_s)
        echoless = await conversation(server.url, server.key, turns, 0.0, echo=False)
    return {"BASELINE: every session opened afresh (DORMANT_BYTES_KEPT = 0)": afresh,
            "serve_graph's default (a dormant session, session_linger_s=0)": default,
            f"session_linger_s={linger_s:g} (the session stays attached between turns)": lingering,
            "serve_graph's default, the agent's connection as a ConnectionPool's (no echo, no rollup)": echoless}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=positive, default=8)
    parser.add_argument("--linger-s", type=float, default=30.0)
    args = parser.parse_args()
    quiet_sdk_logs()
    before = load_average()
    runs = asyncio.run(asyncio.wait_for(measure(args.turns, args.linger_s), 2 * args.turns * (TURN_TIMEOUT_S + 15)))
    print(report(runs, before))


if __name__ == "__main__":
    main()
