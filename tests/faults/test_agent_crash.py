"""An agent killed with -9 mid-run: clients learn the run is lost, the next process ends it (or adopts and finishes
it), and the thread goes on.

The dev server runs with a 1 s presence leave delay (Ably's is 15 s) so the bound is short enough for CI.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.graph import idempotency_key, serve_graph, watch_session
from langchain_ably_transport.session import AgentSession
from langchain_ably_transport.session.agent import AGENT_LOST_MESSAGE
from langchain_ably_transport.session.repair import LeftOpen
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage

from ..graph.graphs import chat_builder, chat_graph
from .crashing_agent import AGENT_ID

LEAVE_DELAY_S = 1.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def crash_server():
    with spawn(args=["--inbound-rate", "0", "--presence-leave-delay", str(LEAVE_DELAY_S)]) as running:
        yield running


def _start_worker(server, invocation, mode: str = "serve") -> subprocess.Popen[str]:
    return _worker(server, json.dumps(invocation.to_json()), mode)


def _worker(server, arg: str, mode: str) -> subprocess.Popen[str]:
    """`crashing_agent` in `mode`, in a process of its own."""
    return subprocess.Popen([sys.executable, "-m", "tests.faults.crashing_agent", server.url, server.key, arg, mode],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _streamed_text(session: ClientSession) -> str:
    return "".join(part.get("text", "") for entry in session.view() if entry["message"]["role"] == "assistant"
                   for part in entry["message"]["parts"] if part.get("type") == "text")


async def _crash_mid_stream(server, user: ClientSession, text: str, mode: str = "serve") -> str:
    """Send `text`, let a worker stream part of its answer, kill it with -9; the run id."""
    sent = await user.send(text)
    worker = _start_worker(server, sent.invocation, mode)
    try:
        run_id = await sent.run_id(timeout=30)
        assert await user.core.wait_for(lambda: len(_streamed_text(user)) > 50, 30), "the worker streams"
    finally:
        worker.kill()
        worker.wait()
    return run_id


async def _left_open(client: Any, channel_name: str) -> LeftOpen:
    """What the session's history shows open: streams still `streaming`, steps not ended."""
    left_open = LeftOpen()
    page = await client.channels.get(channel_name).history(limit=1000)
    for message in reversed(page.items):
        if (wire := WireMessage.from_ably(message)) is not None:
            left_open.fold(wire)
    return left_open


async def _lost_then_asked(server, clients, user: ClientSession, **agent_options: Any) -> tuple[str, Any, Any]:
    """A run whose agent was killed mid-stream and is now known lost, then the user's next message: the lost run's
    id, a connection for the next agent process (with `agent_options`), and the message sent."""
    lost = await _crash_mid_stream(server, user, "tell me everything")
    assert await user.core.wait_for(lambda: user.lost_runs() == [lost], 15)
    agent = await clients(server, client_id=AGENT_ID, **agent_options)
    return lost, agent, await user.send("are you back?")


@pytest.mark.parametrize("mode", ["serve", "serve-pooled"])
async def test_clients_learn_a_killed_agents_run_is_lost_within_the_presence_leave_delay(crash_server, clients,
                                                                                        channel_name, mode):
    """`serve-pooled`: the run is on a connection of a pool that is not the one its instance is present on."""
    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        run_id = await _crash_mid_stream(crash_server, user, "tell me everything", mode)
        killed_at = time.monotonic()
        assert user.lost_runs() == [], "a member is not gone until the leave delay passes"
        assert await user.core.wait_for(lambda: user.lost_runs() == [run_id], 15)
        detected_after = time.monotonic() - killed_at
        assert user.core.tree.run(run_id).status == names.RunStatus.ACTIVE, "lost, not yet ended by anyone"
        print(f"crash detected after {detected_after:.2f} s (leave delay {LEAVE_DELAY_S} s)")

    async with ClientSession(await clients(crash_server, client_id="bob"), channel_name) as late:
        assert late.lost_runs() == [run_id], "a client joining after the crash learns it from history and presence"


async def test_the_next_process_ends_the_lost_run_and_the_thread_continues(crash_server, clients, channel_name):
    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        lost, agent, sent = await _lost_then_asked(crash_server, clients, user)
        result = await serve_graph(chat_graph(AblySaver(agent), "I am back."), sent.invocation, client=agent)

        assert result.outcome == "complete"
        node = user.core.tree.run(lost)
        assert node.status == names.RunStatus.ERROR and node.error.message == AGENT_LOST_MESSAGE
        assert await user.core.wait_for(lambda: user.core.tree.run(result.run_id) is not None and
                                        user.core.tree.run(result.run_id).status == names.RunStatus.COMPLETE, 10)
        assert user.lost_runs() == []
        assert user.messages()[-1].content == "I am back."

        state = await chat_graph(AblySaver(agent)).aget_state({"configurable": {"thread_id": channel_name}})
        kinds = [(type(m), m.content) for m in state.values["messages"]]
        assert kinds == [(HumanMessage, "tell me everything"), (HumanMessage, "are you back?"),
                         (AIMessage, "I am back.")], "the killed pass left no half reply in the graph's state"


async def test_a_healthy_agents_run_is_never_called_lost(crash_server, clients, channel_name):
    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        sent = await user.send("hello")
        async with AgentSession(await clients(crash_server, client_id=AGENT_ID), channel_name) as session:
            run = await session.create_run(sent.invocation)
            await run.start()
            await asyncio.sleep(LEAVE_DELAY_S * 2)
            async with ClientSession(await clients(crash_server, client_id="bob"), channel_name) as late:
                assert late.lost_runs() == [] and user.lost_runs() == []
            await run.end()
        assert await user.core.wait_for(lambda: user.core.tree.run(run.run_id).status == names.RunStatus.COMPLETE, 5)
        assert user.lost_runs() == []


async def test_a_run_another_process_of_the_agent_ended_stops_streaming_here(crash_server, clients, channel_name):
    """A partitioned agent that comes back after its run was ended elsewhere must not go on publishing."""
    from langchain_ably_transport.session.channel import ChannelWriter
    from langchain_ably_transport.wire.headers import run_end_message

    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        sent = await user.send("hello")
        async with AgentSession(await clients(crash_server, client_id=AGENT_ID), channel_name) as session:
            run = await session.create_run(sent.invocation)
            await run.start()
            other = (await clients(crash_server, client_id=AGENT_ID)).channels.get(channel_name)
            await ChannelWriter(other).publish(run_end_message(
                run_id=run.run_id, reason="error", invocation_id="another-process", error_message="lost"))
            assert await asyncio.wait_for(run.cancelled.wait(), 5) is True
            assert run.ended, "this invocation publishes no end of its own"

        def ends() -> int:
            return sum(w.name == names.RUN_END and w.transport[names.HEADER_RUN_ID] == run.run_id
                       for w in user.core._log)

        assert await user.core.wait_for(lambda: ends() > 0, 5)
        await asyncio.sleep(0.3)
        assert ends() == 1


async def test_a_js_client_that_joined_while_the_run_was_stuck_sees_it_end_as_error(crash_server, clients,
                                                                                    channel_name):
    """The anchor users complain about: the genuine @ably/ai-transport client, which knows nothing of presence."""
    from ..interop.test_ai_transport import js

    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        lost = await _crash_mid_stream(crash_server, user, "tell me everything")
        joiner = await js(crash_server, "client-join.mjs", SESSION=channel_name, TIMEOUT_MS="30000")
        assert await joiner.next_line() == {"joined": True}
        assert await user.core.wait_for(lambda: user.lost_runs() == [lost], 15)
        async with AgentSession(await clients(crash_server, client_id=AGENT_ID), channel_name) as next_process:
            assert next_process.core.tree.run(lost).status == names.RunStatus.ERROR or \
                await next_process.core.wait_for(lambda: next_process.core.tree.run(lost).status ==
                                                 names.RunStatus.ERROR, 5)
        result = await joiner.result()
    [stuck] = [run for run in result["atJoin"]["runs"] if run["runId"] == lost]
    [ended] = [run for run in result["runs"] if run["runId"] == lost]
    assert stuck["status"] == "active", "what every JS anchor shows for a killed agent's run"
    assert ended["status"] == "error" and ended["error"]["message"] == AGENT_LOST_MESSAGE


# --- adoption: the next process finishes the lost run instead of ending it ---


@pytest.mark.parametrize("echo", ["true", "false"])
async def test_the_next_process_adopts_the_lost_run_finishes_it_and_then_answers(crash_server, clients, channel_name,
                                                                                 echo):
    """With Ably's echo, and without (a pool's connections: the adopter folds its own claim at its ACK)."""
    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        lost, agent, sent = await _lost_then_asked(crash_server, clients, user, transport_params={"echo": echo})
        cut = await _left_open(agent, channel_name)
        assert len(cut.streams(lost)) == 1 and len(cut.steps(lost)) == 1, "the killed agent left its text open"
        result = await serve_graph(chat_graph(AblySaver(agent), "I carried on.", "I am back."), sent.invocation,
                                   client=agent, on_lost="adopt")

        assert result.outcome == "complete" and result.run_id != lost
        repaired = await _left_open(agent, channel_name)
        assert repaired.streams(lost) == [] and repaired.steps(lost) == [], "the adopter closed the cut-off answer"
        assert await user.core.wait_for(lambda: user.core.tree.run(lost).status == names.RunStatus.COMPLETE, 10)
        assert user.lost_runs() == []
        runs = [node.key for node in user.runs()]
        assert runs.count(lost) == 1 and len(runs) == 2, "one run was finished, not a second one started"
        assert await user.core.wait_for(lambda: user.messages()[-1].content == "I am back.", 10)
        assert any(message.content == "I carried on." for message in user.messages())

        state = await chat_graph(AblySaver(agent)).aget_state({"configurable": {"thread_id": channel_name}})
        kinds = [(type(m), m.content) for m in state.values["messages"]]
        assert kinds == [(HumanMessage, "tell me everything"), (AIMessage, "I carried on."),
                         (HumanMessage, "are you back?"), (AIMessage, "I am back.")]


async def test_a_run_adopted_as_often_as_allowed_is_ended_error_instead(crash_server, clients, channel_name):
    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        lost, agent, sent = await _lost_then_asked(crash_server, clients, user)
        result = await serve_graph(chat_graph(AblySaver(agent), "I am back."), sent.invocation, client=agent,
                                   on_lost="adopt", max_adoptions=0)
        assert result.outcome == "complete"
        assert await user.core.wait_for(lambda: user.core.tree.run(lost).status == names.RunStatus.ERROR, 10)
        assert "agent lost 1 times" in user.core.tree.run(lost).error.message


async def test_a_users_forged_claim_does_not_stop_the_agent_adopting(crash_server, clients, channel_name):
    """A claim is an `ai-run-resume` with `lcat-adoption`; those a user publishes count for nothing, so they can
    neither win the run nor use up its adoptions."""
    from ably.types.message import Message

    from langchain_ably_transport.wire.headers import run_resume_message

    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        lost, agent, sent = await _lost_then_asked(crash_server, clients, user)
        mallory = await clients(crash_server, client_id="mallory")
        for attempt in ("1", "2", "3"):  # were they believed, the run would look adopted (and crashed) 3 times
            forged = run_resume_message(run_id=lost, invocation_id=f"forged-{attempt}")
            forged.transport[names.HEADER_ADOPTION] = attempt
            await mallory.channels.get(channel_name).publish(Message(**forged.to_publish()))
        result = await serve_graph(chat_graph(AblySaver(agent), "I carried on.", "I am back."), sent.invocation,
                                   client=agent, on_lost="adopt")
        assert result.outcome == "complete"
        assert await user.core.wait_for(lambda: user.core.tree.run(lost).status == names.RunStatus.COMPLETE, 10)
        assert any(message.content == "I carried on." for message in user.messages())


@pytest.mark.parametrize("echo", ["true", "false"])
async def test_a_watcher_adopts_a_lost_run_with_no_new_message_from_the_user(crash_server, clients, channel_name,
                                                                            echo):
    """What a replica does for the sessions it served recently: the user sends nothing, the run is finished. With
    Ably's echo, and without (a replica's pool)."""
    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        agent = await clients(crash_server, client_id=AGENT_ID, transport_params={"echo": echo})
        stop = asyncio.Event()
        graph = chat_builder(lambda state: idempotency_key()).compile(checkpointer=AblySaver(agent))
        watching = asyncio.ensure_future(watch_session(graph, channel_name, client=agent, watch_s=60, stop=stop))
        lost = await _crash_mid_stream(crash_server, user, "tell me everything")
        killed_at = time.monotonic()
        assert await user.core.wait_for(lambda: user.core.tree.run(lost).status == names.RunStatus.COMPLETE, 20)
        print(f"adopted and finished {time.monotonic() - killed_at:.2f} s after the kill (leave {LEAVE_DELAY_S} s)")
        assert [node.key for node in user.runs()] == [lost], "the same run, no second one"
        key = user.messages()[-1].content
        assert key.startswith(f"{lost}:chat:"), "the step's key: the run, then LangGraph's task"
        assert _streamed_text(user).startswith(f"{key} word0"), "the killed agent's pass had the same key"
        stop.set()
        [adopted] = await asyncio.wait_for(watching, 10)
        assert (adopted.outcome, adopted.run_id) == ("complete", lost)
        assert (await _left_open(agent, channel_name)).streams(lost) == []


async def test_a_watcher_that_is_stopped_ends_at_once_having_adopted_nothing(crash_server, clients, channel_name):
    agent = await clients(crash_server, client_id=AGENT_ID)
    stop = asyncio.Event()
    watching = asyncio.ensure_future(watch_session(chat_graph(AblySaver(agent), "unused"), channel_name,
                                                   client=agent, watch_s=60, stop=stop))
    await asyncio.sleep(0.5)
    stop.set()
    assert await asyncio.wait_for(watching, 5) == []


def _claims(user: ClientSession, run_id: str) -> list[str]:
    """The invocation ids that claimed `run_id`, in channel order, each once: an adopter cut off by a loaded
    machine's stall claims its run again (`fence`), under the same invocation id."""
    claims = [w.transport[names.HEADER_INVOCATION_ID] for w in user.core._log
              if names.HEADER_ADOPTION in w.transport and w.transport[names.HEADER_RUN_ID] == run_id]
    return list(dict.fromkeys(claims))


def _streams_under(user: ClientSession, invocation_id: str) -> bool:
    return any(w.name == names.AI_OUTPUT and w.transport.get(names.HEADER_INVOCATION_ID) == invocation_id
               for w in user.core._log)


async def test_a_run_that_crashes_every_adopter_ends_error_after_max_adoptions(crash_server, clients, channel_name):
    """The run's agent is killed, then each of the two processes that adopt it in turn: the third adopter, allowed
    two adoptions, ends it `error` with its cause instead of serving it."""
    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        lost = await _crash_mid_stream(crash_server, user, "tell me everything")
        for attempt in (1, 2):
            adopter = _worker(crash_server, channel_name, "watch")
            try:
                assert await user.core.wait_for(lambda n=attempt: len(_claims(user, lost)) == n, 30)
                assert await user.core.wait_for(lambda: _streams_under(user, _claims(user, lost)[-1]), 10)
            finally:
                adopter.kill()
                adopter.wait()
        agent = await clients(crash_server, client_id=AGENT_ID)
        stop = asyncio.Event()
        last = asyncio.ensure_future(watch_session(chat_graph(AblySaver(agent), "never served"), channel_name,
                                                   client=agent, watch_s=30, stop=stop, max_adoptions=2))
        assert await user.core.wait_for(lambda: user.core.tree.run(lost).status == names.RunStatus.ERROR, 20)
        stop.set()
        assert await asyncio.wait_for(last, 10) == []
        assert "agent lost 3 times" in user.core.tree.run(lost).error.message
        assert len(_claims(user, lost)) == 2 and "never served" not in _streamed_text(user)


async def test_a_run_whose_agent_died_before_the_graph_checkpointed_is_restarted_from_its_input(
        crash_server, clients, channel_name):
    async with ClientSession(await clients(crash_server, client_id="alice"), channel_name) as user:
        sent = await user.send("are you there?")
        worker = _start_worker(crash_server, sent.invocation, "start")
        try:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "started"
            lost = await sent.run_id(timeout=10)
        finally:
            worker.kill()
            worker.wait()
        agent = await clients(crash_server, client_id=AGENT_ID)
        graph = chat_graph(AblySaver(agent), "Yes, from the start.")
        assert (await graph.aget_state({"configurable": {"thread_id": channel_name}})).values == {}, "no checkpoint"
        stop = asyncio.Event()
        watching = asyncio.ensure_future(watch_session(graph, channel_name, client=agent, watch_s=30, stop=stop))
        assert await user.core.wait_for(lambda: user.core.tree.run(lost).status != names.RunStatus.ACTIVE, 20)
        stop.set()
        [result] = await asyncio.wait_for(watching, 10)
        assert (result.outcome, result.run_id) == ("complete", lost)
        assert user.messages()[-1].content == "Yes, from the start."
        state = await graph.aget_state({"configurable": {"thread_id": channel_name}})
        assert [m.content for m in state.values["messages"]] == ["are you there?", "Yes, from the start."]

