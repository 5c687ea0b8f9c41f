"""What the fault tests (and `benchmarks/soak.py`) share: genuine socket drops, a seeded dropper, a fake model
whose every token is unique, and the comparison of what a client shows with what the agent produced.

A drop aborts the TCP connection under ably-python's WebSocket (no close handshake), as a network failure
would: the SDK sees its socket die, goes DISCONNECTED and reconnects with `resume`.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ably import AblyRealtime
from ably.types.connectionstate import ConnectionState
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from langchain_ably_transport import AblySaver
from langchain_ably_transport.codec.langchain import ChunkTranslator
from langchain_ably_transport.devserver.auth import mint_jwt
from langchain_ably_transport.devserver.config import ApiKey
from langchain_ably_transport.session import ClientSession
from langchain_ably_transport.wire import names


def drop_socket(client: AblyRealtime) -> bool:
    """Abort `client`'s TCP connection; False when it has no open socket to drop (it is reconnecting)."""
    manager = client.connection.connection_manager
    websocket = getattr(manager.transport, "websocket", None)
    if manager.state != ConnectionState.CONNECTED or websocket is None:
        return False
    websocket.transport.abort()
    return True


def in_flight(client: AblyRealtime) -> int:
    """Messages `client` has written and not yet had ACKed."""
    return client.connection.connection_manager.pending_message_queue.count()


@dataclass
class Dropper:
    """Drops the sockets of `targets` at random, one every `interval` s on average, until `budget` drops.

    A drop of a target that is publishing waits (up to the interval) for a moment with messages in flight
    (written, not ACKed): that is where a resend could lose or duplicate one.
    """

    targets: dict[str, AblyRealtime]
    budget: int
    interval: float = 0.05
    seed: int = 8
    by_target: Counter[str] = field(default_factory=Counter)
    in_flight_at_drop: Counter[str] = field(default_factory=Counter)
    _task: asyncio.Task[None] | None = None

    @property
    def drops(self) -> int:
        return sum(self.by_target.values())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        rng = random.Random(self.seed)
        names_ = sorted(self.targets)
        while self.drops < self.budget:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * self.interval)
            name = rng.choice(names_)
            await self._drop_when_busy(name, self.targets[name], deadline=self.interval)

    async def _drop_when_busy(self, name: str, client: AblyRealtime, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline
        while in_flight(client) == 0 and loop.time() < until:
            await asyncio.sleep(0.001)
        busy = in_flight(client)
        if drop_socket(client):
            self.by_target[name] += 1
            self.in_flight_at_drop[name] += busy > 0


@dataclass
class TokenIssuer:
    """An app server's token endpoint: `token` is an `auth_callback` giving tokens of `ttl_ms` for one clientId.

    `late_by` delays every renewal (not the first token) past the token's expiry, so the server's
    expiry disconnect (40142) comes before the new token.
    """

    key: ApiKey
    client_id: str
    ttl_ms: int
    late_by: float = 0.0
    issued: int = 0
    disconnects: list[int] = field(default_factory=list)

    async def token(self, token_params: dict[str, Any]) -> str:
        if self.issued and self.late_by:
            await asyncio.sleep(self.late_by)
        self.issued += 1
        return mint_jwt(self.key, ttl_ms=self.ttl_ms, client_id=self.client_id)

    def watch(self, client: AblyRealtime) -> None:
        def on_state(change: Any) -> None:
            if change.current == ConnectionState.DISCONNECTED:
                self.disconnects.append(getattr(change.reason, "code", None))

        client.connection.on(on_state)


def unique_words(count: int, tag: str = "") -> str:
    """`count` words no two alike (`w0-<tag> w1-<tag> ...`): a lost or repeated delta cannot hide."""
    tag = tag or uuid.uuid4().hex[:6]
    return " ".join(f"w{i}-{tag}" for i in range(count))


async def model_chunks(text: str, record: list[str], delay: float = 0.0) -> AsyncIterator[dict[str, Any]]:
    """A fake model streaming `text`, as UIMessageChunks; `record` gets each text delta it emitted."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content=text, id=str(uuid.uuid4()))]))
    translator = ChunkTranslator()
    async for chunk in model.astream("go"):
        for out in translator.feed(chunk):
            if out.get("type") == "text-delta":
                record.append(out["delta"])
            yield out
        await asyncio.sleep(delay)
    for out in translator.finish():
        yield out


def assistant_texts(session: ClientSession) -> list[str]:
    """The text of each assistant message on the session's selected branch."""
    return ["".join(p.get("text", "") for p in entry["message"]["parts"] if p.get("type") == "text")
            for entry in session.view() if entry["message"]["role"] == "assistant"]


def lost_and_duplicated(expected: str, shown: str) -> tuple[int, int]:
    """Words the agent produced that a client lacks, and words a client shows more often than produced."""
    want, got = Counter(expected.split()), Counter(shown.split())
    return sum((want - got).values()), sum((got - want).values())


def assert_shows_exactly(shown: list[str], produced: list[str]) -> None:
    """A client's assistant texts are the agent's, reply for reply; on failure, say how many words differ."""
    counts = [lost_and_duplicated(want, got) for want, got in zip(produced, shown, strict=False)]
    assert shown == produced, f"(lost, duplicated) words per reply: {counts}; {len(shown)} of {len(produced)} shown"


def runs_settled(session: ClientSession, count: int) -> bool:
    """Whether `count` runs are on the session and none is still active."""
    runs = session.runs()
    return len(runs) >= count and all(run.status != names.RunStatus.ACTIVE for run in runs)


LOOP_STEPS = 25


class Loop(TypedDict):
    steps: list[int]


def loop_graph(saver: AblySaver, delay: float = 0.0) -> Any:
    """START -> step, LOOP_STEPS times -> END: a checkpoint and a write per superstep (LOOP_STEPS + 2 in all)."""

    async def step(state: Loop) -> dict[str, Any]:
        await asyncio.sleep(delay)
        return {"steps": [*state["steps"], len(state["steps"])]}

    graph = StateGraph(Loop)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda state: END if len(state["steps"]) >= LOOP_STEPS else "step")
    return graph.compile(checkpointer=saver)


async def duplicated_records(client: AblyRealtime, channel: str) -> int:
    """Messages on a saver's channel published more than once (the same record twice)."""
    page = await client.channels.get(channel).history(limit=1000)
    assert not page.has_next()
    records = Counter((m.name, bytes(m.data)) for m in page.items)
    return sum(count - 1 for count in records.values())
