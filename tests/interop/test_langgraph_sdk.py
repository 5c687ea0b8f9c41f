"""LangGraph's own front end on a session: the genuine `StreamController` of `@langchain/langgraph-sdk` 1.15.0 (what
`useStream` runs) on `js/langgraph-transport`, driving a Python agent (`serve_thread`) through the dev server.

Each device is `tests/js/langgraph/device.mjs` in its own Node process, driven op by op from here.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from ably.types.message import Message
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_ably_transport import AblySaver
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.graph import serve_thread
from langchain_ably_transport.wire import names

from ..graph.graphs import PacedChatModel, protocol_graph, protocol_subgraph_graph, protocol_tool_agent
from ..graph.protocol_client import ProtocolClient

DEVICE = Path(__file__).resolve().parent.parent / "js" / "langgraph" / "device.mjs"
ROOT = Path(__file__).resolve().parent.parent.parent
AGENT = "protocol-agent"


class Device:
    """One front end in a Node process: `await device.op("submit", text=...)` and the like."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ready: dict[str, Any] = {}

    async def line(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            stderr = await self.process.stderr.read() if self.process.stderr else b""
            raise AssertionError(f"the device ended: {stderr.decode(errors='replace')[-3000:]}")
        return json.loads(raw)

    async def op(self, name: str, timeout: float = 30.0, **arguments: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"op": name, **arguments}) + "\n").encode())
        await self.process.stdin.drain()
        answer = await self.line(timeout)
        assert "failed" not in answer, f"{name}: {answer['failed']}"
        return answer

    async def wait(self, condition: str, ms: int = 15000, **arguments: Any) -> dict[str, Any]:
        return await self.op("wait", timeout=ms / 1000 + 5, **{"for": condition, "ms": ms, **arguments})

    async def shows(self, text: str, ms: int = 15000) -> dict[str, Any]:
        """The state once the run is over and its newest message reads `text`."""
        return await self.wait("text", ms, text=text)

    async def close(self) -> None:
        if self.process.returncode is None:
            try:
                await self.op("close", timeout=10)
            except (AssertionError, TimeoutError, BrokenPipeError, ConnectionResetError):
                self.process.kill()
            await self.process.wait()


@asynccontextmanager
async def device(server: Any, thread: str, client_id: str = "alice") -> AsyncIterator[Device]:
    node = shutil.which("node")
    if node is None or not (DEVICE.parent.parent / "node_modules" / "@langchain" / "langgraph-sdk").is_dir():
        pytest.fail("node and `npm ci --prefix tests/js` are needed for the @langchain/langgraph-sdk interop tests")
    process = await asyncio.create_subprocess_exec(
        node, str(DEVICE), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, limit=2**24,  # a state line may be larger than a channel message
        env={**os.environ, "ABLY_ENDPOINT": server.url, "ABLY_API_KEY": server.key, "THREAD": thread,
             "CLIENT_ID": client_id, "TRUSTED": AGENT})
    front_end = Device(process)
    try:
        front_end.ready = await front_end.line(30)
        yield front_end
    finally:
        await front_end.close()


@asynccontextmanager
async def agent(clients: Any, thread: str, graph_of: Callable[[AblySaver], Any]) -> AsyncIterator[Any]:
    """`serve_thread` in this process, on a client of its own; yields the graph it serves."""
    client = await clients(client_id=AGENT)
    graph = graph_of(AblySaver(client))
    stop, ready = asyncio.Event(), asyncio.Event()
    serving = asyncio.ensure_future(serve_thread(graph, thread, client=client, stop=stop, on_ready=ready.set))
    await asyncio.wait_for(asyncio.shield(ready.wait()), 15)
    try:
        yield graph
    finally:
        stop.set()
        await asyncio.wait_for(serving, 15)


def thread_name() -> str:
    return f"threads:{uuid.uuid4().hex[:10]}"


def texts(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["type"], m["text"]) for m in state["messages"]]


async def graph_texts(graph: Any, thread: str) -> list[tuple[str, str]]:
    values = (await graph.aget_state({"configurable": {"thread_id": thread}})).values
    return [(m.type, m.text) for m in values["messages"]]


# What StreamController subscribes to (its root pump and its lifecycle watcher); `updates` and `tasks` it never asks.
SUBSCRIBED = {"values", "checkpoints", "lifecycle", "input.requested", "input.answered", "messages", "tools"}
REPLY = " ".join(f"word{i}" for i in range(30))


async def test_tokens_stream_and_the_final_values_are_the_graphs_state(server, clients):
    thread = thread_name()
    async with agent(clients, thread, lambda saver: protocol_graph(saver, REPLY, delay=0.02)) as graph, \
            device(server, thread) as front_end:
        await front_end.op("submit", text="Tell me thirty words")
        streaming = await front_end.wait("tokens")
        assert streaming["isLoading"] is True  # a partial answer showed while the run streamed
        done = await front_end.shows(REPLY)
        assert done["error"] is None and done["partialTexts"] > 5
        assert texts(done) == [("human", "Tell me thirty words"), ("ai", REPLY)]
        assert texts(done) == await graph_texts(graph, thread)


async def test_an_interrupt_is_answered_with_input_respond_and_the_run_completes(server, clients):
    thread = thread_name()
    async with agent(clients, thread, lambda saver: protocol_graph(saver, "Deploying now.", approve=True)) as graph, \
            device(server, thread) as front_end:
        await front_end.op("submit", text="Deploy?")
        asked = await front_end.wait("interrupt")
        assert [i["value"] for i in asked["interrupts"]] == [{"question": "Go ahead?"}]
        await front_end.op("respond", response="yes")
        done = await front_end.shows("Answer received: yes.")
        assert texts(done) == await graph_texts(graph, thread)
        assert not (await graph.aget_state({"configurable": {"thread_id": thread}})).interrupts


async def test_a_second_device_joins_mid_run_sees_every_event_once_and_answers_the_interrupt(server, clients):
    thread = thread_name()
    slow = " ".join(f"w{i}" for i in range(60))
    observer = await ProtocolClient(await clients(), thread).open()  # every event the agent publishes
    async with agent(clients, thread, lambda saver: protocol_graph(saver, slow, delay=0.03, approve=True)), \
            device(server, thread) as first:
        await first.op("submit", text="Long answer, then ask me")
        await first.wait("tokens")
        async with device(server, thread, client_id="alice") as second:  # the same user, on another device
            assert second.ready["state"]["isLoading"] is True  # it hydrated a run still streaming
            asked = await second.wait("interrupt")
            assert texts(asked)[-1] == ("ai", slow)
            seen = (await second.op("events"))["events"]
            ids = [e["event_id"] for e in seen]
            assert len(ids) == len(set(ids))  # nothing twice, the replay and the live tail included
            subscribed = [e["event_id"] for e in observer.events if e["method"] in SUBSCRIBED]
            assert sorted(ids) == sorted(subscribed)  # and nothing missing, from the run's first event on
            await second.op("respond", response="from the second device")
            await second.shows("Answer received: from the second device.")
        await first.shows("Answer received: from the second device.")


async def test_a_reload_hydrates_from_the_channel_and_an_interrupt_can_still_be_answered(server, clients):
    thread = thread_name()
    async with agent(clients, thread, lambda saver: protocol_graph(saver, "Deploying now.", approve=True)) as graph:
        async with device(server, thread) as before:
            await before.op("submit", text="Deploy?")
            await before.wait("interrupt")
        async with device(server, thread) as reloaded:  # a new page: nothing but the channel
            state = reloaded.ready["state"]
            assert texts(state) == [("human", "Deploy?"), ("ai", "Deploying now.")]
            assert [i["value"] for i in state["interrupts"]] == [{"question": "Go ahead?"}]
            await reloaded.op("respond", response="ok")
            await reloaded.shows("Answer received: ok.")
        async with device(server, thread) as later:
            assert texts(later.ready["state"]) == await graph_texts(graph, thread)
            assert later.ready["state"]["interrupts"] == []


async def test_a_device_that_lost_continuity_reads_what_it_missed(server, clients):
    thread = thread_name()
    async with agent(clients, thread, lambda saver: protocol_graph(saver, "First answer.")), \
            device(server, thread) as away, device(server, thread) as other:
        await away.op("submit", text="first")
        await away.shows("First answer.")
        await away.op("detach")  # as a device offline past Ably's resume window finds itself
        await other.op("submit", text="second")
        await other.shows("First answer.")  # the same scripted answer, for the second question
        await away.op("attach")  # attached without continuity: the transport reads history it missed
        shown = await away.wait("idle")
        deadline = time.monotonic() + 10
        while [t for _, t in texts(shown)] != ["first", "First answer.", "second", "First answer."]:
            assert time.monotonic() < deadline, texts(shown)
            await asyncio.sleep(0.1)
            shown = await away.op("state")


async def test_tool_calls_and_subgraphs_reach_the_page(server, clients):
    thread = thread_name()
    async with agent(clients, thread, protocol_tool_agent), device(server, thread) as front_end:
        await front_end.op("submit", text="Deploy it")
        done = await front_end.shows("Done: deployed to prod.")
        assert [(t["name"], t["status"]) for t in done["toolCalls"]] == [("deploy", "finished")]
        assert "deployed to prod" in json.dumps(done["toolCalls"][0]["output"])
    thread = thread_name()
    async with agent(clients, thread, protocol_subgraph_graph), device(server, thread) as front_end:
        await front_end.op("submit", text="Research it")
        done = await front_end.shows("Here is the answer.")
        assert [(g["nodeName"], g["status"]) for g in done["subgraphs"]] == [("research", "complete")]
        assert [text for kind, text in texts(done) if kind == "ai"] == ["Found it.", "Here is the answer."]


def cancellable_graph(saver: AblySaver, cancelled_at: list[float]) -> Any:
    """START -> chat (streams an endless reply) -> END; records when the graph's task is cancelled."""

    model = PacedChatModel(reply=" ".join(["word"] * 5000), delay=0.01)

    async def chat(state: MessagesState) -> dict[str, Any]:
        try:
            return {"messages": [await model.ainvoke(state["messages"])]}
        except asyncio.CancelledError:
            cancelled_at.append(time.time())
            raise

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    return graph.compile(checkpointer=saver)


async def test_stop_cancels_the_graph_through_the_channel(server, clients):
    thread = thread_name()
    cancelled_at: list[float] = []
    async with agent(clients, thread, lambda saver: cancellable_graph(saver, cancelled_at)), \
            device(server, thread) as front_end:
        for turn in range(3):
            await front_end.op("submit", text=f"Talk forever ({turn})")
            await front_end.wait("tokens")
            asked = time.time()
            await front_end.op("stop")
            await front_end.wait("idle")
            deadline = time.time() + 5
            while len(cancelled_at) <= turn and time.time() < deadline:
                await asyncio.sleep(0.01)
            assert len(cancelled_at) == turn + 1, "the graph's task was not cancelled"
            assert cancelled_at[turn] - asked < 2.0  # the p99 figure is measured in benchmarks/langgraph_protocol.py


async def start_agent(server: Any, thread: str, reply: str = "Deploying now.", delay: float = 0.0,
                      approve: bool = True) -> asyncio.subprocess.Process:
    """`tests/graph/protocol_agent.py` serving `thread`, once it says it is ready."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.graph.protocol_agent", server.url, server.key, thread, reply, str(delay),
        "1" if approve else "0", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    assert line.strip() == b"ready", line
    return process


async def stop_agent(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await asyncio.wait_for(process.wait(), 30)


async def test_a_resume_is_served_by_a_fresh_process(server):
    thread = thread_name()
    first = await start_agent(server, thread)
    try:
        async with device(server, thread) as front_end:
            await front_end.op("submit", text="Deploy?")
            await front_end.wait("interrupt")
            await stop_agent(first)
            second = await start_agent(server, thread)  # nothing in memory: the thread is on the channel
            try:
                await front_end.op("respond", response="yes")
                done = await front_end.shows("Answer received: yes.")
                assert texts(done) == [("human", "Deploy?"), ("ai", "Deploying now."),
                                       ("ai", "Answer received: yes.")]
            finally:
                await stop_agent(second)
    finally:
        if first.returncode is None:
            first.kill()


async def test_forged_events_from_a_user_are_ignored_and_a_state_over_64_kib_arrives_whole(server, clients):
    thread = thread_name()
    long_reply = " ".join(f"word{i:05d}" for i in range(9000))  # its `values` event goes in parts
    async with agent(clients, thread, lambda saver: protocol_graph(saver, long_reply)), \
            device(server, thread) as front_end:
        mallory = (await clients(client_id="mallory")).channels.get(thread)
        forged = {"type": "event", "event_id": "synth:forged:1", "seq": 10**6, "method": "values",
                  "params": {"namespace": [], "timestamp": int(time.time() * 1000),
                             "data": {"messages": [{"type": "ai", "content": "pwned", "id": "x"}]}}}
        await mallory.publish(Message(name=names.PROTOCOL_EVENTS, data={"events": [forged]},
                                      extras={"ai": {"transport": {}}}))
        await front_end.op("submit", text="A long one, please")
        done = await front_end.shows(long_reply, ms=30000)
        assert "pwned" not in json.dumps(done)


async def test_the_transport_declarations_fit_the_sdk_types():
    tsc = DEVICE.parent.parent / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("`npm ci --prefix tests/js` installs typescript for this check")
    process = await asyncio.create_subprocess_exec(str(tsc), "-p", str(DEVICE.parent / "tsconfig.json"),
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out.decode()


LEAVE_DELAY_S = 1.0  # Ably's is 15 s; short here, so that a crash shows within seconds


@pytest.fixture(scope="module")
def crash_server() -> Iterator[Any]:
    with spawn(args=["--inbound-rate", "0", "--presence-leave-delay", str(LEAVE_DELAY_S)]) as running:
        yield running


async def test_a_run_whose_agent_is_killed_fails_on_the_page_instead_of_hanging(crash_server):
    thread = thread_name()
    endless = " ".join(f"w{i}" for i in range(5000))
    doomed = await start_agent(crash_server, thread, endless, delay=0.02, approve=False)
    try:
        async with device(crash_server, thread) as front_end:
            await front_end.op("submit", text="Talk forever")
            await front_end.wait("tokens")
            doomed.kill()  # kill -9: no lifecycle, no presence leave of its own
            await doomed.wait()
            survivor = await start_agent(crash_server, thread, approve=False)  # it ends the lost run
            try:
                failed = await front_end.wait("error", ms=20000)
                assert "agent lost" in failed["error"]
            finally:
                await stop_agent(survivor)
    finally:
        if doomed.returncode is None:
            doomed.kill()
