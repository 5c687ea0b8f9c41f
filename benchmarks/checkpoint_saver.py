"""AblySaver (on the dev server) next to LangGraph's own savers: latency, graph overhead, cold reads, storage.

Four checkpointers take part in the same run:

- `AblySaver` on a dev server in memory (`--data :memory:`) and on a dev server with a SQLite data file
  (durable mode), both `spawn(args=["--inbound-rate", "0"])`, each through one `connect()`ed client;
- `InMemorySaver` (no I/O at all: the floor);
- BASELINE `AsyncSqliteSaver` on a file in a temporary directory (WAL, which its `setup()` turns on).

What is measured:

1. `aput` and `aget_tuple` latency: on a fresh thread, 200 rounds of one `aput` then one latest `aget_tuple`,
   each awaited alone. The state is small and realistic: `messages` (LangChain `HumanMessage`/`AIMessage`
   objects, 80-300 characters each, one appended per put: 1 to 200 messages), `step` (an int, every put),
   `summary` (a string, every 10th put) and `context` (a dict, first put only), with `new_versions` naming
   only the channels that changed, as LangGraph does. p50/p99 in ms over the 200 operations of a repeat.
2. Per-super-step overhead: a `StateGraph` of 20 sequential trivial async nodes, each appending one
   message to an `add_messages` channel, `ainvoke`d on a fresh thread with `durability="async"` and with
   `durability="sync"`: (median wall time of an invocation - median wall time of the same graph compiled
   without a checkpointer) / 20, in ms, and its ratio to the baseline's.
3. Cold reads: threads of 10, 100 and 1,000 checkpoints are built first with direct `aput`s whose state
   has a constant size (the last 20 messages, `step`, `summary` every 10th put, `context` in the first put
   only), so only the thread's length varies; plus each saver's 200-turn chat thread from 4 (a growing
   history of 400 messages). The durable dev server is then restarted on its data file, so its side is cold
   too. Each read runs in a fresh interpreter (`--cold-read`, a helper mode of this script) that times,
   inside itself, a new client + `AblySaver` (a new connection for SQLite) up to the first latest
   `aget_tuple` result, split into connect and read, and prints JSON. Interpreter start-up and imports are
   excluded: the child imports everything, then makes one throwaway read of an empty thread on a client of
   its own (the SDKs import httpcore/h2/anyio on first use) and runs `gc.collect(); gc.freeze()` (otherwise
   the first full collection of the freshly imported heap, ~60 ms here, lands in whichever read allocates
   enough to trigger it). The client, its connections and the saver's caches are still new. Rows marked
   "raw first call" skip that preparation, to show what a process's very first read costs.
   `InMemorySaver` has nothing to read cold.
4. Storage of a 200-turn chat: a one-node `StateGraph` over `add_messages` (`durability="sync"`), each
   turn one human message (~80 characters) in and one AI reply (~300 characters) out; the texts are words
   drawn from a fixed vocabulary with a fixed seed, so they compress like prose, not like repeated text.
   Bytes after 50, 100, 150 and 200 turns: for `AblySaver` the sum of `len(message.data)` over the thread
   channel's whole history (REST history, pages of 1,000); for SQLite the sum of the lengths of the stored
   blobs (checkpoint, metadata, write values; a DB file of its own; the file's size after a WAL checkpoint
   is shown too); for `InMemorySaver` the sum of its serialised blobs. bytes(200)/bytes(100) is ~2 for
   storage linear in the conversation and ~4 for quadratic.

Latency and overhead figures are medians over repeats (default 5; section 2: 10 invocations per repeat);
cold reads are medians over repeats (default 5) of one fresh process each. Targets printed for AblySaver:
super-step overhead <= 1.5x the baseline's; cold read flat (total at 1,000 checkpoints / at 10 <= 1.25x);
storage linear in the conversation (bytes(200 turns) / bytes(100 turns) <= 2.5x).

Reproduce, from the project root (about 2 minutes; `--quick`: 1 repeat, fewer graph runs, about 30 s):

    .venv/bin/python benchmarks/checkpoint_saver.py [--repeats N] [--cold-repeats N] [--quick]

The tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, TypedDict

from common import BenchmarkError, cell, load_average, load_line, median_of, percentile, positive, ratio
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from langchain_ably_transport import AblySaver, connect
from langchain_ably_transport.checkpoint import state_channel
from langchain_ably_transport.devserver import spawn

SERVER_ARGS = ["--inbound-rate", "0"]
GRAPH_STEPS = 20
COLD_SIZES = (10, 100, 1000)
COLD_WINDOW = 20  # messages kept in the constant-size state of the cold-read threads
CHAT_TURNS = 200
CHAT_MARKS = (50, 100, 150, 200)
HISTORY_PAGE = 1000
TARGET_OVERHEAD_RATIO = 1.5
TARGET_COLD_RATIO = 1.25  # "flat": 1,000 checkpoints may cost at most this much more than 10
TARGET_STORAGE_RATIO = 2.5  # "linear": bytes(200 turns) / bytes(100 turns); quadratic is ~4
CHILD_TIMEOUT_S = 60

ABLY_MEMORY = "AblySaver devserver :memory:"
ABLY_DURABLE = "AblySaver devserver sqlite"
IN_MEMORY = "InMemorySaver"
SQLITE = "BASELINE AsyncSqliteSaver"
LABELS = (ABLY_MEMORY, ABLY_DURABLE, IN_MEMORY, SQLITE)
COLD_LABELS = (ABLY_MEMORY, ABLY_DURABLE, SQLITE)
RAW = "  raw first call: "  # prefix of the rows whose child process neither warms up nor freezes the GC
COLD_ROWS = (*((label, label, True) for label in COLD_LABELS),
             (RAW + "AblySaver :memory:", ABLY_MEMORY, False), (RAW + "AsyncSqliteSaver", SQLITE, False))

VOCABULARY = (
    "the of and to in is that it for on with as was be at by this have from or an they which you one "
    "all were her would there their will when who him been has more if no out so said what up its about "
    "into than them can only other new some could time these two may then do first any my now such like "
    "our over man me even most made after also did many before must through back years where much your way "
    "well down should because each just those people how too little state good very make world still own "
    "see men work long get here between both life being under never day same another know while last might "
    "us great old year off come since against go came right used take three checkpoint graph channel "
    "message thread latency storage server client history record segment durable stream agent tool reply"
)
WORDS = VOCABULARY.split()


@dataclass(frozen=True)
class Settings:
    repeats: int
    ops: int
    graph_runs: int  # invocations per configuration and repeat
    cold_repeats: int


# --- realistic state ---


def prose(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words).capitalize() + "."


def chat_message(rng: random.Random, index: int) -> AnyMessage:
    if index % 2 == 0:
        return HumanMessage(content=prose(rng, rng.randint(80, 160)), id=str(uuid.UUID(int=rng.getrandbits(128))))
    return AIMessage(content=prose(rng, rng.randint(200, 300)), id=str(uuid.UUID(int=rng.getrandbits(128))))


class ThreadWriter:
    """Puts checkpoints of one thread as LangGraph would: a new id per step, versions only for changed channels."""

    def __init__(self, saver: BaseCheckpointSaver, thread_id: str, window: int | None = None, seed: int = 0) -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.step = 0
        self._window = window
        self._rng = random.Random(seed)
        self._messages: list[AnyMessage] = []
        self._versions: dict[str, Any] = {}
        self._parent: str | None = None
        self._summary = ""

    def next_put(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        step = self.step
        self._messages = [*self._messages, chat_message(self._rng, step)]
        if self._window is not None:
            self._messages = self._messages[-self._window:]
        changed = ["messages", "step"]
        if step % 10 == 0:
            self._summary = prose(self._rng, 200)
            changed.append("summary")
        if step == 0:
            changed.append("context")
        new_versions = {}
        for channel in changed:
            self._versions[channel] = new_versions[channel] = self.saver.get_next_version(
                self._versions.get(channel), None)
        values = {"messages": self._messages, "step": step, "summary": self._summary,
                  "context": {"user_id": "user-42", "locale": "en-GB", "plan": "pro", "tools": ["search", "calc"]}}
        checkpoint = {
            "v": 4, "id": str(uuid6(clock_seq=step)), "ts": datetime.now(UTC).isoformat(),
            "channel_values": values, "channel_versions": dict(self._versions),
            "versions_seen": {"agent": dict(self._versions)}, "updated_channels": changed,
        }
        configurable: dict[str, Any] = {"thread_id": self.thread_id, "checkpoint_ns": ""}
        if self._parent:
            configurable["checkpoint_id"] = self._parent
        metadata = {"source": "loop", "step": step, "parents": {}}
        return {"configurable": configurable}, checkpoint, metadata, new_versions

    async def put(self) -> None:
        await self.put_prepared(*self.next_put())

    async def put_prepared(self, config: dict[str, Any], checkpoint: dict[str, Any], metadata: dict[str, Any],
                           new_versions: dict[str, Any]) -> None:
        stored = await self.saver.aput(config, checkpoint, metadata, new_versions)  # type: ignore[arg-type]
        self._parent = stored["configurable"]["checkpoint_id"]
        self.step += 1

    async def latest(self) -> Any:
        return await self.saver.aget_tuple({"configurable": {"thread_id": self.thread_id}})


# --- results ---


@dataclass(frozen=True)
class OpsRun:
    put_p50: float
    put_p99: float
    get_p50: float
    get_p99: float


@dataclass(frozen=True)
class ColdRun:
    connect_ms: float
    read_ms: float

    @property
    def total_ms(self) -> float:
        return self.connect_ms + self.read_ms


@dataclass
class Results:
    ops: dict[str, list[OpsRun]] = field(default_factory=dict)
    # graph[durability][label] -> per-repeat median invocation time (s); label None: no checkpointer
    graph: dict[str, dict[str | None, list[float]]] = field(default_factory=dict)
    graph_none: list[float] = field(default_factory=list)
    cold: dict[tuple[str, str], list[ColdRun]] = field(default_factory=dict)
    storage: dict[str, dict[int, tuple[int, int | None]]] = field(default_factory=dict)  # label -> turns -> bytes


# --- 1. aput / aget_tuple latency ---


async def measure_ops(saver: BaseCheckpointSaver, ops: int, seed: int) -> OpsRun:
    writer = ThreadWriter(saver, f"ops-{uuid.uuid4().hex[:12]}", seed=seed)
    puts: list[float] = []
    gets: list[float] = []
    for step in range(ops):
        prepared = writer.next_put()
        started = time.perf_counter()
        await writer.put_prepared(*prepared)
        put_done = time.perf_counter()
        latest = await writer.latest()
        got = time.perf_counter()
        puts.append((put_done - started) * 1e3)
        gets.append((got - put_done) * 1e3)
        if latest is None or latest.checkpoint["channel_values"]["step"] != step:
            raise BenchmarkError(f"aget_tuple after put {step} returned {latest and latest.checkpoint['id']}")
    puts.sort()
    gets.sort()
    return OpsRun(percentile(puts, 50), percentile(puts, 99), percentile(gets, 50), percentile(gets, 99))


# --- 2. per-super-step overhead ---


class GraphState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def step_node(index: int) -> Callable[[GraphState], Awaitable[dict[str, Any]]]:
    text = f"Step {index} done: " + prose(random.Random(index), 120)

    async def node(state: GraphState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=text)]}

    return node


def sequential_graph(checkpointer: BaseCheckpointSaver | None) -> Any:
    builder = StateGraph(GraphState)
    previous = START
    for index in range(GRAPH_STEPS):
        builder.add_node(f"n{index}", step_node(index))
        builder.add_edge(previous, f"n{index}")
        previous = f"n{index}"
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=checkpointer)


async def time_invocations(graph: Any, runs: int, durability: str | None) -> float:
    """Median wall time (s) of `runs` invocations, each on a fresh thread."""
    times = []
    for _ in range(runs):
        config = {"configurable": {"thread_id": f"graph-{uuid.uuid4().hex[:12]}"}}
        kwargs = {"durability": durability} if durability else {}
        started = time.perf_counter()
        result = await graph.ainvoke({"messages": [HumanMessage(content="go")]}, config, **kwargs)
        times.append(time.perf_counter() - started)
        if len(result["messages"]) != GRAPH_STEPS + 1:
            raise BenchmarkError(f"the graph returned {len(result['messages'])} messages")
    return statistics.median(times)


def overhead_ms(results: Results, durability: str, label: str) -> float | None:
    """Median over repeats of (invocation - no-checkpointer invocation) / steps, paired per repeat."""
    runs = results.graph.get(durability, {}).get(label, [])
    pairs = [(run - bare) / GRAPH_STEPS * 1e3 for run, bare in zip(runs, results.graph_none, strict=False)]
    return median_of(pairs)


# --- 3. cold reads ---


async def build_thread(saver: BaseCheckpointSaver, thread_id: str, checkpoints: int) -> None:
    writer = ThreadWriter(saver, thread_id, window=COLD_WINDOW, seed=checkpoints)
    for _ in range(checkpoints):
        await writer.put()


async def open_and_read(kind: str, target: str, key: str | None, thread_id: str) -> tuple[float, float, Any]:
    """A new client + saver (a new connection for SQLite), then one latest read: (connect s, read s, tuple)."""
    config = {"configurable": {"thread_id": thread_id}}
    started = time.perf_counter()
    if kind == "ably":
        async with connect(key, target) as client:
            connected = time.perf_counter()
            latest = await AblySaver(client).aget_tuple(config)
            done = time.perf_counter()
    else:
        async with AsyncSqliteSaver.from_conn_string(target) as saver:
            connected = time.perf_counter()
            latest = await saver.aget_tuple(config)
            done = time.perf_counter()
    return connected - started, done - connected, latest


async def cold_read(kind: str, target: str, key: str | None, thread_id: str, warm_up: bool) -> dict[str, Any]:
    """The child's measurement. With `warm_up`, first one throwaway read of an empty thread on a client of its
    own (so the modules the SDKs import on first use are loaded), then `gc.collect(); gc.freeze()` (so the
    first full collection of the imported heap does not land in the timed read)."""
    if warm_up:
        await open_and_read(kind, target, key, f"warm-up-{uuid.uuid4().hex[:12]}")
        gc.collect()
        gc.freeze()
    connect_s, read_s, latest = await open_and_read(kind, target, key, thread_id)
    if latest is None:
        raise BenchmarkError(f"no checkpoint for {thread_id}")
    values = latest.checkpoint["channel_values"]
    return {"connect_ms": connect_s * 1e3, "read_ms": read_s * 1e3, "messages": len(values["messages"]),
            "step": values.get("step")}


def run_child(args: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--cold-read", *args[:4], *args[4:]]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise BenchmarkError(f"cold read {args} failed ({completed.returncode}): {completed.stderr.strip()[-2000:]}")
    return json.loads(lines[-1])


# --- 4. storage of a chat ---


def chat_graph(checkpointer: BaseCheckpointSaver) -> Any:
    async def reply(state: GraphState) -> dict[str, Any]:
        rng = random.Random(len(state["messages"]))
        return {"messages": [AIMessage(content=prose(rng, 300))]}

    builder = StateGraph(GraphState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder.compile(checkpointer=checkpointer)


async def ably_bytes(client: Any, thread_id: str) -> tuple[int, int]:
    """Sum of `len(data)` over the thread channel's history, and the number of messages."""
    page = await client.channels.get(state_channel(thread_id)).history(limit=HISTORY_PAGE)
    total = count = 0
    while True:
        for message in page.items:
            data = message.data
            total += len(data.encode() if isinstance(data, str) else data) if data is not None else 0
            count += 1
        if not page.has_next():
            return total, count
        page = await page.next()


async def sqlite_bytes(saver: AsyncSqliteSaver, path: str, thread_id: str) -> tuple[int, int]:
    """Sum of the stored blobs of the thread, and the DB file's size after a WAL checkpoint."""
    async with saver.conn.execute(
        "SELECT (SELECT coalesce(sum(length(checkpoint) + length(metadata)), 0) FROM checkpoints "
        "WHERE thread_id = ?) + (SELECT coalesce(sum(length(value)), 0) FROM writes WHERE thread_id = ?)",
        (thread_id, thread_id),
    ) as cursor:
        row = await cursor.fetchone()
    await (await saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")).close()
    return int(row[0]) if row else 0, os.path.getsize(path)


def memory_bytes(saver: InMemorySaver, thread_id: str) -> int:
    total = 0
    for checkpoints in saver.storage.get(thread_id, {}).values():
        for (_, checkpoint), (_, metadata), _ in checkpoints.values():
            total += len(checkpoint) + len(metadata)
    total += sum(len(blob[1]) for key, blob in saver.blobs.items() if key[0] == thread_id)
    for key, writes in saver.writes.items():
        if key[0] == thread_id:
            total += sum(len(value[1]) for _, _, value, _ in writes.values())
    return total


Bytes = tuple[int, int | None]  # (data bytes, DB file bytes where there is a file)


async def measure_chat(label: str, saver: BaseCheckpointSaver, thread_id: str,
                       measure_bytes: Callable[[], Awaitable[Bytes]]) -> dict[int, Bytes]:
    graph = chat_graph(saver)
    rng = random.Random(7)
    config = {"configurable": {"thread_id": thread_id}}
    marks: dict[int, Bytes] = {}
    started = time.perf_counter()
    for turn in range(1, CHAT_TURNS + 1):
        result = await graph.ainvoke({"messages": [HumanMessage(content=prose(rng, 80))]}, config,
                                     durability="sync")
        if len(result["messages"]) != 2 * turn:
            raise BenchmarkError(f"{label}: turn {turn} returned {len(result['messages'])} messages")
        if turn in CHAT_MARKS:
            marks[turn] = await measure_bytes()
    print(f"[chat {label}] {CHAT_TURNS} turns in {time.perf_counter() - started:.1f} s, "
          f"{marks[CHAT_TURNS][0]:,} bytes", file=sys.stderr, flush=True)
    return marks


# --- running it all ---


@dataclass
class Savers:
    by_label: dict[str, BaseCheckpointSaver]
    clients: dict[str, Any]
    sqlite_path: str
    chat_sqlite: AsyncSqliteSaver
    chat_sqlite_path: str


@contextlib.asynccontextmanager
async def open_savers(servers: dict[str, Any], workdir: Path) -> AsyncIterator[Savers]:
    sqlite_path = str(workdir / "saver.sqlite3")
    chat_path = str(workdir / "chat.sqlite3")
    async with (
        connect(servers[ABLY_MEMORY].key, servers[ABLY_MEMORY].url) as memory_client,
        connect(servers[ABLY_DURABLE].key, servers[ABLY_DURABLE].url) as durable_client,
        AsyncSqliteSaver.from_conn_string(sqlite_path) as sqlite_saver,
        AsyncSqliteSaver.from_conn_string(chat_path) as chat_saver,
    ):
        await sqlite_saver.setup()
        await chat_saver.setup()
        yield Savers(
            by_label={ABLY_MEMORY: AblySaver(memory_client), ABLY_DURABLE: AblySaver(durable_client),
                      IN_MEMORY: InMemorySaver(), SQLITE: sqlite_saver},
            clients={ABLY_MEMORY: memory_client, ABLY_DURABLE: durable_client},
            sqlite_path=sqlite_path, chat_sqlite=chat_saver, chat_sqlite_path=chat_path,
        )


@dataclass(frozen=True)
class ColdTarget:
    label: str
    thread: str  # "10", "100", "1000" or "chat"
    thread_id: str
    expected_step: int | None
    expected_messages: int


async def warm_sections(servers: dict[str, Any], workdir: Path, settings: Settings,
                        results: Results) -> list[ColdTarget]:
    """Sections 1, 2 and 4, and the threads section 3 reads cold; returns those threads."""
    async with open_savers(servers, workdir) as savers:
        for repeat in range(1, settings.repeats + 1):
            for label, saver in savers.by_label.items():
                run = await measure_ops(saver, settings.ops, seed=repeat)
                results.ops.setdefault(label, []).append(run)
                print(f"[ops {label} {repeat}/{settings.repeats}] put p50 {run.put_p50:.2f} ms, "
                      f"get p50 {run.get_p50:.2f} ms", file=sys.stderr, flush=True)

        graphs = {label: sequential_graph(saver) for label, saver in savers.by_label.items()}
        bare = sequential_graph(None)
        for graph in (bare, *graphs.values()):  # warm-up: first compile paths, channels attached
            await time_invocations(graph, 1, "sync" if graph is not bare else None)
        for repeat in range(1, settings.repeats + 1):
            results.graph_none.append(await time_invocations(bare, settings.graph_runs, None))
            for durability in ("async", "sync"):
                for label, graph in graphs.items():
                    seconds = await time_invocations(graph, settings.graph_runs, durability)
                    results.graph.setdefault(durability, {}).setdefault(label, []).append(seconds)
            per_step = {d: {label: overhead_ms(results, d, label) for label in graphs} for d in ("async", "sync")}
            print(f"[graph {repeat}/{settings.repeats}] bare {results.graph_none[-1] * 1e3:.1f} ms; overhead/step "
                  + "; ".join(f"{d}: " + ", ".join(f"{label.split()[0]} {v:.2f}" for label, v in per_step[d].items()
                                                   if v is not None) for d in per_step),
                  file=sys.stderr, flush=True)

        targets: list[ColdTarget] = []
        for label in COLD_LABELS:
            saver = savers.by_label[label]
            for size in COLD_SIZES:
                thread_id = f"cold-{size}-{uuid.uuid4().hex[:12]}"
                started = time.perf_counter()
                await build_thread(saver, thread_id, size)
                targets.append(ColdTarget(label, str(size), thread_id, size - 1, min(size, COLD_WINDOW)))
                print(f"[build {label}] {size} checkpoints in {time.perf_counter() - started:.1f} s",
                      file=sys.stderr, flush=True)

        for label in (ABLY_MEMORY, ABLY_DURABLE):
            client = savers.clients[label]
            thread_id = f"chat-{uuid.uuid4().hex[:12]}"

            async def ably_measure(client: Any = client, thread_id: str = thread_id) -> tuple[int, int | None]:
                total, _ = await ably_bytes(client, thread_id)
                return total, None

            results.storage[label] = await measure_chat(label, savers.by_label[label], thread_id, ably_measure)
            targets.append(ColdTarget(label, "chat", thread_id, None, 2 * CHAT_TURNS))
        memory_saver = savers.by_label[IN_MEMORY]
        thread_id = f"chat-{uuid.uuid4().hex[:12]}"

        async def memory_measure() -> tuple[int, int | None]:
            return memory_bytes(memory_saver, thread_id), None  # type: ignore[arg-type]

        results.storage[IN_MEMORY] = await measure_chat(IN_MEMORY, memory_saver, thread_id, memory_measure)
        thread_id = f"chat-{uuid.uuid4().hex[:12]}"

        async def sqlite_measure() -> tuple[int, int | None]:
            return await sqlite_bytes(savers.chat_sqlite, savers.chat_sqlite_path, thread_id)

        results.storage[SQLITE] = await measure_chat(SQLITE, savers.chat_sqlite, thread_id, sqlite_measure)
        targets.append(ColdTarget(SQLITE, "chat", thread_id, None, 2 * CHAT_TURNS))
        return targets


def cold_reads(targets: list[ColdTarget], servers: dict[str, Any], workdir: Path, settings: Settings,
               results: Results) -> None:
    for repeat in range(1, settings.cold_repeats + 1):
        for row, label, warm_up in COLD_ROWS:
            for target in (t for t in targets if t.label == label):
                if label == SQLITE:
                    path = str(workdir / ("chat.sqlite3" if target.thread == "chat" else "saver.sqlite3"))
                    args = ["sqlite", path, "-", target.thread_id]
                else:
                    server = servers[label]
                    args = ["ably", server.url, server.key, target.thread_id]
                outcome = run_child(args if warm_up else [*args, "--raw"])
                if outcome["messages"] != target.expected_messages or (
                    target.expected_step is not None and outcome["step"] != target.expected_step
                ):
                    raise BenchmarkError(f"cold read of {target} returned {outcome}")
                run = ColdRun(outcome["connect_ms"], outcome["read_ms"])
                results.cold.setdefault((row, target.thread), []).append(run)
                print(f"[cold {row.strip()} {target.thread} {repeat}/{settings.cold_repeats}] connect "
                      f"{run.connect_ms:.1f} ms + read {run.read_ms:.1f} ms", file=sys.stderr, flush=True)


# --- the report ---


def ops_table(results: Results, settings: Settings) -> list[str]:
    lines = [f"1. aput / aget_tuple latency, ms ({settings.ops} rounds of put + latest get on a fresh thread, "
             f"messages growing 1 -> {settings.ops}; median over {settings.repeats} repeat(s))",
             f"{'saver':<32}{'put p50':>9}{'put p99':>9}{'get p50':>9}{'get p99':>9}"
             f"{'put p50 / base':>16}{'get p50 / base':>16}"]
    base = results.ops[SQLITE]
    base_put = median_of([r.put_p50 for r in base])
    base_get = median_of([r.get_p50 for r in base])
    for label in LABELS:
        runs = results.ops[label]
        put50, put99 = median_of([r.put_p50 for r in runs]), median_of([r.put_p99 for r in runs])
        get50, get99 = median_of([r.get_p50 for r in runs]), median_of([r.get_p99 for r in runs])
        lines.append(f"{label:<32}{cell(put50, '.3f', 9)}{cell(put99, '.3f', 9)}{cell(get50, '.3f', 9)}"
                     f"{cell(get99, '.3f', 9)}{ratio(put50, base_put):>16}{ratio(get50, base_get):>16}")
    return lines


def graph_table(results: Results, settings: Settings) -> list[str]:
    bare = median_of(results.graph_none)
    lines = [f"2. per-super-step overhead, ms: (invocation - no checkpointer) / {GRAPH_STEPS}, {GRAPH_STEPS} "
             f"sequential nodes; median of {settings.graph_runs} invocations x {settings.repeats} repeat(s); "
             f"no checkpointer: {cell(bare and bare * 1e3, '.1f', 0)} ms per invocation",
             f"{'saver':<32}{'async':>9}{'sync':>9}{'async / base':>14}{'sync / base':>13}"
             f"{'invoke ms async/sync':>23}"]
    base = {d: overhead_ms(results, d, SQLITE) for d in ("async", "sync")}
    for label in LABELS:
        values = {d: overhead_ms(results, d, label) for d in ("async", "sync")}
        totals = [median_of(results.graph[d][label]) for d in ("async", "sync")]
        total_text = " / ".join("-" if t is None else f"{t * 1e3:.1f}" for t in totals)
        lines.append(f"{label:<32}{cell(values['async'], '.3f', 9)}{cell(values['sync'], '.3f', 9)}"
                     f"{ratio(values['async'], base['async']):>14}{ratio(values['sync'], base['sync']):>13}"
                     f"{total_text:>23}")
    return lines


def cold_table(results: Results, settings: Settings) -> list[str]:
    columns = [*map(str, COLD_SIZES), "chat"]
    lines = [f"3. cold latest aget_tuple, ms: fresh process, new client/connection -> first result "
             f"(connect + read); median of {settings.cold_repeats} process(es) each",
             f"   threads of {', '.join(f'{s:,}' for s in COLD_SIZES)} checkpoints (constant state: last "
             f"{COLD_WINDOW} messages + 3 small channels); 'chat': the {CHAT_TURNS}-turn chat of section 4 "
             f"({2 * CHAT_TURNS} messages)",
             f"{'saver':<42}" + "".join(f"{c:>15}" for c in columns) + f"{'1000/10 total':>15}{'1000/10 read':>14}"]
    for label, _, _ in COLD_ROWS:
        cells = []
        for column in columns:
            runs = results.cold.get((label, column), [])
            connect_ms, read_ms = median_of([r.connect_ms for r in runs]), median_of([r.read_ms for r in runs])
            cells.append("-" if connect_ms is None else f"{connect_ms:.1f} + {read_ms:.1f}")
        lines.append(f"{label:<42}" + "".join(f"{c:>15}" for c in cells)
                     + f"{_cold_ratio(results, label, 'total'):>15}{_cold_ratio(results, label, 'read'):>14}")
    return lines


def _cold_ratio(results: Results, label: str, part: str) -> str:
    def value(size: int) -> float | None:
        runs = results.cold.get((label, str(size)), [])
        return median_of([r.total_ms if part == "total" else r.read_ms for r in runs])

    return ratio(value(COLD_SIZES[-1]), value(COLD_SIZES[0]))


def cold_ratio_value(results: Results, label: str) -> float | None:
    big = median_of([r.total_ms for r in results.cold.get((label, str(COLD_SIZES[-1])), [])])
    small = median_of([r.total_ms for r in results.cold.get((label, str(COLD_SIZES[0])), [])])
    return None if big is None or not small else big / small


def storage_table(results: Results) -> list[str]:
    lines = [f"4. bytes stored for a {CHAT_TURNS}-turn chat (one-node graph, durability='sync'; human ~80 chars, "
             "AI ~300 chars)",
             f"{'saver':<32}" + "".join(f"{f'{t} turns':>13}" for t in CHAT_MARKS) + f"{'200/100':>9}"
             f"{'bytes/turn':>12}"]
    for label in LABELS:
        marks = results.storage.get(label)
        if not marks:
            continue
        lines.append(f"{label:<32}" + "".join(f"{marks[t][0]:>13,}" for t in CHAT_MARKS)
                     + f"{marks[200][0] / marks[100][0]:>8.2f}x{marks[200][0] // CHAT_TURNS:>12,}")
        files = [marks[t][1] for t in CHAT_MARKS]
        if all(f is not None for f in files):
            lines.append(f"{'  (DB file after WAL checkpoint)':<32}" + "".join(f"{f:>13,}" for f in files)
                         + f"{files[3] / files[1]:>8.2f}x")  # type: ignore[operator]
    base = results.storage[SQLITE][CHAT_TURNS][0]
    lines.append("bytes at 200 turns / baseline: " + ", ".join(
        f"{label.split()[0] if label != ABLY_DURABLE else 'AblySaver (sqlite)'} "
        f"{ratio(results.storage[label][CHAT_TURNS][0], base)}" for label in LABELS if label != SQLITE))
    lines.append("AblySaver: len(message.data) over the channel's history (zlib-compressed msgpack records); "
                 "SQLite: checkpoint + metadata + write value blobs; InMemorySaver: its serialised blobs")
    return lines


def verdicts(results: Results) -> list[str]:
    lines = [f"targets: super-step overhead <= {TARGET_OVERHEAD_RATIO:g}x AsyncSqliteSaver's; cold read flat "
             f"(total 1000/10 <= {TARGET_COLD_RATIO:g}x); storage linear (200/100 turns <= "
             f"{TARGET_STORAGE_RATIO:g}x: ~2 linear, ~4 quadratic)"]
    for label in (ABLY_MEMORY, ABLY_DURABLE):
        checks = []
        for durability in ("async", "sync"):
            value, base = overhead_ms(results, durability, label), overhead_ms(results, durability, SQLITE)
            if value is not None and base:
                ratio = value / base
                checks.append(f"overhead {durability} {'PASS' if ratio <= TARGET_OVERHEAD_RATIO else 'FAIL'} "
                              f"({ratio:.2f}x)")
        cold = cold_ratio_value(results, label)
        if cold is not None:
            checks.append(f"cold flat {'PASS' if cold <= TARGET_COLD_RATIO else 'FAIL'} ({cold:.2f}x)")
        marks = results.storage[label]
        growth = marks[200][0] / marks[100][0]
        checks.append(f"storage linear {'PASS' if growth <= TARGET_STORAGE_RATIO else 'FAIL'} ({growth:.2f}x)")
        lines.append(f"  {label:<30}{', '.join(checks)}")
    cold = cold_ratio_value(results, SQLITE)
    growth = results.storage[SQLITE][200][0] / results.storage[SQLITE][100][0]
    lines.append(f"  {'(baseline AsyncSqliteSaver)':<30}cold 1000/10 {cold or float('nan'):.2f}x, "
                 f"storage 200/100 {growth:.2f}x")
    return lines


def header(settings: Settings, load_before: str) -> list[str]:
    return [
        "Checkpointers: AblySaver on the local dev server vs InMemorySaver vs AsyncSqliteSaver (file, WAL)",
        f"python {platform.python_version()}, langgraph {version('langgraph')}, langgraph-checkpoint "
        f"{version('langgraph-checkpoint')}, langgraph-checkpoint-sqlite {version('langgraph-checkpoint-sqlite')}, "
        f"ably {version('ably')}, {os.cpu_count()} CPUs; dev servers {' '.join(SERVER_ARGS)}, each a child process",
        load_line(load_before),
        f"code under test: {code_version()}",
        "",
    ]


def code_version() -> str:
    """The commit of the package measured, and which of its files differ from it (read-only git commands)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        changed = subprocess.run(["git", "diff", "--name-only", "HEAD", "--", "langchain_ably_transport"], cwd=root,
                                 capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"commit {commit}" + (f", uncommitted changes in {', '.join(changed)}" if changed else "")


def report(results: Results, settings: Settings, load_before: str) -> str:
    sections = [header(settings, load_before), ops_table(results, settings), [""], graph_table(results, settings),
                [""], cold_table(results, settings), [""], storage_table(results), [""], verdicts(results)]
    return "\n".join(line for section in sections for line in section)


# --- entry point ---


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=positive, default=None,
                        help="repeats of sections 1 and 2 (default 5; 1 with --quick)")
    parser.add_argument("--cold-repeats", type=positive, default=None,
                        help="fresh processes per cold read (default 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 3 graph invocations per repeat")
    parser.add_argument("--cold-read", nargs=4, metavar=("KIND", "URL_OR_PATH", "KEY", "THREAD_ID"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.cold_read:
        kind, target, key, thread_id = args.cold_read
        print(json.dumps(asyncio.run(cold_read(kind, target, key, thread_id, warm_up=not args.raw))))
        return
    if args.quick:
        settings = Settings(repeats=args.repeats or 1, ops=200, graph_runs=3, cold_repeats=args.cold_repeats or 1)
    else:
        settings = Settings(repeats=args.repeats or 5, ops=200, graph_runs=10, cold_repeats=args.cold_repeats or 5)
    started, load_before = time.perf_counter(), load_average()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="checkpoint-bench-") as tmp:
        workdir = Path(tmp)
        with spawn(args=SERVER_ARGS) as memory:
            durable_data = str(workdir / "devserver.sqlite3")
            with spawn(data=durable_data, args=SERVER_ARGS) as durable:
                servers = {ABLY_MEMORY: memory, ABLY_DURABLE: durable}
                targets = asyncio.run(warm_sections(servers, workdir, settings, results))
            # restart the durable server on its data file: nothing of the threads is left in its memory
            with spawn(data=durable_data, args=SERVER_ARGS) as durable:
                servers = {ABLY_MEMORY: memory, ABLY_DURABLE: durable}
                cold_reads(targets, servers, workdir, settings, results)
    print(report(results, settings, load_before))
    print(f"(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
