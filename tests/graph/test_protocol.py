"""`serve_thread` against ordinary and hostile clients, over genuine ably-python: every command gets an answer, a
refused one changes nothing, and another user can neither answer nor cancel someone's run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from ably.types.message import Message

from langchain_ably_transport import AblySaver, ClientSession, ConfigurationError, ConnectionFailedError, ConnectionPool
from langchain_ably_transport.graph import serve_graph, serve_thread
from langchain_ably_transport.wire import names

from ..conftest import flood_until_failed
from .graphs import chat_graph, protocol_graph
from .protocol_client import ProtocolClient

AGENT = "protocol-agent"
HI = {"input": {"messages": [{"type": "human", "content": "hi"}]}, "assistant_id": "agent"}
SLOW = " ".join(f"w{i}" for i in range(300))


@asynccontextmanager
async def serving(clients: Any, thread: str, graph_of: Callable[[AblySaver], Any],
                  **options: Any) -> AsyncIterator[Any]:
    client = await clients(client_id=AGENT)
    graph = graph_of(AblySaver(client))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.ensure_future(serve_thread(graph, thread, client=client, stop=stop, on_ready=ready.set, **options))
    await asyncio.wait_for(asyncio.shield(ready.wait()), 15)
    try:
        yield graph
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def user(clients: Any, thread: str, client_id: str) -> ProtocolClient:
    return await ProtocolClient(await clients(client_id=client_id), thread).open()


async def interrupted(alice: ProtocolClient) -> str:
    await alice.send("run.start", HI)
    await alice.until(lambda: alice.root_lifecycle()[-1:] == ["interrupted"])
    return next(e["params"]["data"]["interrupt_id"] for e in alice.events if e["method"] == "input.requested")


@pytest.mark.parametrize(("body", "code"), [
    ("{not json", "invalid_argument"),
    ({"id": "one", "method": "run.start", "params": {}}, "invalid_argument"),
    ({"id": 1, "method": "run.start", "params": {"input": {"messages": [{"type": "martian"}]}}}, "invalid_argument"),
    ({"id": 1, "method": "input.respond", "params": {"responses": "all"}}, "invalid_argument"),
    ({"id": 1, "method": "input.respond", "params": {"interrupt_id": "nope", "response": 1}}, "no_such_run"),
    ({"id": 1, "method": "agent.getTree", "params": {}}, "not_supported"),
    ({"id": 1, "method": "run.start", "params": {**HI, "config": {"configurable": {"checkpoint_id": "x"}}}},
     "not_supported"),
    ({"id": 1, "method": "drop.tables", "params": {}}, "unknown_command"),
])
async def test_a_bad_command_gets_an_error_answer_and_changes_nothing(clients, channel_name, body, code):
    async with serving(clients, channel_name, lambda saver: protocol_graph(saver, "Hello.")) as graph:
        mallory = await user(clients, channel_name, "mallory")
        answer = await mallory.send("", {}, data=body)
        assert answer["type"] == "error" and answer["error"] == code
        assert not (await graph.aget_state({"configurable": {"thread_id": channel_name}})).values
        assert mallory.events == []  # no run started
        assert (await mallory.send("run.start", HI))["type"] == "success"  # and the thread still serves


async def test_a_command_without_a_key_is_unanswerable_and_the_thread_goes_on(clients, channel_name):
    async with serving(clients, channel_name, lambda saver: protocol_graph(saver, "Hello.")):
        mallory = await user(clients, channel_name, "mallory")
        await mallory.channel.publish(Message(name=names.PROTOCOL_COMMAND, data={"id": 1, "method": "run.start"},
                                              extras={"ai": {"transport": {}}}))
        await mallory.channel.publish(Message(name=names.PROTOCOL_COMMAND, data="x" * 60_000,
                                              extras={"ai": {"transport": {names.HEADER_COMMAND_KEY: "k" * 5000}}}))
        answer = await mallory.send("run.start", HI)
        assert answer["type"] == "success" and len(mallory.answers) == 1


async def test_two_devices_sending_the_same_command_id_each_get_their_own_answer(clients, channel_name):
    async with serving(clients, channel_name, lambda saver: protocol_graph(saver, "Hello.")):
        phone, laptop = await user(clients, channel_name, "alice"), await user(clients, channel_name, "alice")
        answers = await asyncio.gather(phone.send("state.get", {"namespace": []}),
                                       laptop.send("state.get", {"namespace": []}))
        assert [a["id"] for a in answers] == [1, 1] and all(a["type"] == "success" for a in answers)
        assert len(phone.answers.keys() | laptop.answers.keys()) == 2


async def test_another_user_can_neither_answer_nor_cancel_a_run(clients, channel_name):
    async with serving(clients, channel_name, lambda saver: protocol_graph(saver, SLOW, delay=0.005, approve=True)):
        alice, mallory = await user(clients, channel_name, "alice"), await user(clients, channel_name, "mallory")
        started = await alice.send("run.start", HI)
        await mallory.cancel(started["result"]["run_id"])
        await alice.until(lambda: alice.root_lifecycle()[-1:] == ["interrupted"], timeout=20)  # it ran to the end
        interrupt_id = next(e["params"]["data"]["interrupt_id"] for e in alice.events
                            if e["method"] == "input.requested")
        refused = await mallory.send("input.respond", {"namespace": [], "interrupt_id": interrupt_id, "response": "x"})
        assert refused["type"] == "error" and refused["error"] == "permission_denied"
        assert (await alice.send("input.respond", {"namespace": [], "interrupt_id": interrupt_id,
                                                   "response": "yes"}))["type"] == "success"
        await alice.until(lambda: alice.root_lifecycle()[-1:] == ["completed"])
        assert "Answer received: yes." in alice.text()


async def test_an_unknown_interrupt_is_refused_and_the_run_stays_suspended(clients, channel_name):
    async with serving(clients, channel_name, lambda saver: protocol_graph(saver, "Hello.", approve=True)) as graph:
        alice = await user(clients, channel_name, "alice")
        await interrupted(alice)
        answer = await alice.send("input.respond", {"namespace": [], "interrupt_id": "made-up", "response": "yes"})
        assert answer["error"] == "no_such_interrupt"
        assert (await graph.aget_state({"configurable": {"thread_id": channel_name}})).interrupts


async def test_a_second_run_is_refused_while_one_streams_unless_it_asks_to_interrupt(clients, channel_name):
    async with serving(clients, channel_name, lambda saver: protocol_graph(saver, SLOW, delay=0.01)):
        alice = await user(clients, channel_name, "alice")
        first = await alice.send("run.start", HI)
        await alice.until(lambda: len(alice.text()) > 10)
        refused = await alice.send("run.start", HI)
        assert refused["type"] == "error" and "active" in refused["message"]
        second = await alice.send("run.start", {**HI, "multitask_strategy": "interrupt"})
        assert second["type"] == "success" and second["result"]["run_id"] != first["result"]["run_id"]
        await alice.until(lambda: alice.root_lifecycle().count("completed") == 1, timeout=30)
        assert alice.root_lifecycle() == ["running", "failed", "running", "completed"]


async def test_state_get_reads_the_checkpointer(clients, channel_name):
    async with serving(clients, channel_name, lambda saver: protocol_graph(saver, "Hello there.")):
        alice = await user(clients, channel_name, "alice")
        await alice.send("run.start", HI)
        await alice.until(lambda: alice.root_lifecycle()[-1:] == ["completed"])
        state = (await alice.send("state.get", {"namespace": []}))["result"]
        first = state["values"]["messages"][0]
        assert (first["type"], first["content"]) == ("human", "hi")
        assert state["checkpoint"]["id"]


async def test_a_value_over_64_kib_reaches_the_client_in_parts(clients, channel_name):
    long_reply = " ".join(f"word{i:05d}" for i in range(9000))  # about 90 KB of state
    async with serving(clients, channel_name, lambda saver: protocol_graph(saver, long_reply)):
        alice = await user(clients, channel_name, "alice")
        await alice.send("run.start", HI)
        await alice.until(lambda: alice.root_lifecycle()[-1:] == ["completed"], timeout=60)
        assert alice.parts == {}  # every part arrived and was joined
        final = [e for e in alice.events if e["method"] == "values" and e["params"]["namespace"] == []][-1]
        assert final["params"]["data"]["messages"][-1]["content"][0]["text"] == long_reply
        assert alice.text() == long_reply


async def test_a_pools_thread_whose_connection_ably_ended_is_served_on_another(strict, clients, channel_name):
    """The run cut off ends there (left active, it would make `reject` refuse every next run), and a command sent
    while the thread moves is answered from there, once."""
    reply = " ".join(f"w{i}" for i in range(60))
    async with ConnectionPool(strict.key, strict.url, client_id=AGENT, streams_per_connection=1) as pool, \
            pool.lease(f"{channel_name}-elsewhere"):  # the home (the agent's presence member) stays up
        stop, ready = asyncio.Event(), asyncio.Event()
        serving_thread = asyncio.ensure_future(serve_thread(protocol_graph(AblySaver(pool), reply, delay=0.02),
                                                            channel_name, client=pool, stop=stop, on_ready=ready.set))
        await asyncio.wait_for(asyncio.shield(ready.wait()), 15)
        alice = await ProtocolClient(await clients(strict, client_id="alice"), channel_name).open()
        first = await alice.send("run.start", HI)
        await alice.until(lambda: "w3" in alice.text())
        assert pool.client_for(channel_name) is not pool.home
        await flood_until_failed(pool.client_for(channel_name))
        second = await alice.send("run.start", HI, timeout=20)  # sent while the thread moves: heard by neither
        assert second["type"] == "success", second
        assert second["result"]["run_id"] != first["result"]["run_id"]
        await alice.until(lambda: alice.root_lifecycle()[-1:] == ["completed"], timeout=30)
        assert alice.root_lifecycle().count("running") == 2, alice.root_lifecycle()  # served once
        stop.set()
        await asyncio.wait_for(serving_thread, 15)


async def test_a_lone_clients_thread_whose_connection_ably_ended_raises(strict, clients, channel_name):
    """No other connection to serve it on: the caller hears of it, rather than a thread deaf for good."""
    agent = await clients(strict, client_id=AGENT)
    serving_thread = asyncio.ensure_future(serve_thread(protocol_graph(AblySaver(agent)), channel_name,
                                                        client=agent))
    await asyncio.sleep(0.5)
    await flood_until_failed(agent)
    with pytest.raises(ConnectionFailedError) as raised:
        await asyncio.wait_for(serving_thread, 15)
    assert raised.value.code == 42924


async def test_one_codec_serves_a_session(clients, channel_name):
    async with ClientSession(await clients(client_id="alice"), channel_name) as vercel_user:
        await vercel_user.send("hello")  # a UIMessage session
        agent = await clients(client_id=AGENT)
        with pytest.raises(ConfigurationError, match="UIMessage codec"):
            await serve_thread(protocol_graph(AblySaver(agent)), channel_name, client=agent)
    other = f"{channel_name}-protocol"
    async with serving(clients, other, lambda saver: protocol_graph(saver, "Hello.")):
        alice = await user(clients, other, "alice")
        await alice.send("run.start", HI)
        async with ClientSession(await clients(client_id="bob"), other) as vercel_user:
            sent = await vercel_user.send("hello")
            agent = await clients(client_id=AGENT)
            result = await serve_graph(chat_graph(AblySaver(agent), "Hi."), sent.invocation, client=agent)
        assert result.outcome == "rejected" and "agent protocol" in str(result.error)
