"""serve_graph: a LangGraph graph answering session inputs, through the dev server, across processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.sdk import fixes
from langchain_ably_transport.session import Run
from langchain_ably_transport.wire import names

from .graphs import approval_graph, chat_builder, chat_graph

WORKER = Path(__file__).with_name("graphs.py")


async def test_a_message_graph_answers_and_its_state_lives_in_the_saver(clients, channel_name):
    agent = await clients()
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("hello graph")
        result = await serve_graph(chat_graph(AblySaver(agent), "Hello, human."), sent.invocation, client=agent)
        assert result.outcome == "complete" and await sent.run_id() == result.run_id
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.COMPLETE)
        assert [m.content for m in user.messages()] == ["hello graph", "Hello, human."]
        tasks = [p["data"] for e in user.view() for p in e["message"]["parts"] if p["type"] == "data-task"]
        assert tasks == [{"node": "chat", "namespace": [], "status": "done"}], "one part per task, latest state"
    state = await chat_graph(AblySaver(agent)).aget_state({"configurable": {"thread_id": channel_name}})
    assert [m.content for m in state.values["messages"]] == ["hello graph", "Hello, human."]


async def test_a_streamed_answers_tokens_go_to_the_channel_from_the_models_task(clients, channel_name, monkeypatch):
    """Each token the model makes while the run waits for it is written in the model's task (`Run.write_now`), not
    yielded to the serving task: a turn of the event loop less per token. The answer is the same, exactly."""
    agent = await clients()
    words = [f"word{i} " for i in range(60)]
    taken: list[tuple[asyncio.Task[object] | None, str]] = []
    write_now = Run.write_now

    def recorded(run: Run, chunk: dict[str, object]) -> bool:
        took = write_now(run, chunk)
        if took:
            taken.append((asyncio.current_task(), str(chunk.get("delta"))))
        return took

    monkeypatch.setattr(Run, "write_now", recorded)
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("stream it")
        serving = asyncio.ensure_future(serve_graph(chat_graph(AblySaver(agent), "".join(words), delay=0.002),
                                                    sent.invocation, client=agent))
        assert (await asyncio.wait_for(serving, 20)).outcome == "complete"
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.COMPLETE)
        assert [m.content for m in user.messages()] == ["stream it", "".join(words)]
    assert len(taken) >= len(words) // 2, f"only {len(taken)} of {len(words)} tokens were written at once"
    assert serving not in {task for task, _ in taken}, "written in the model's task, not the serving one"


async def test_the_graph_starts_while_the_step_it_streams_into_is_being_opened(clients, channel_name, monkeypatch):
    """The pass opens its step (`ai-step-start`, whose serial every output carries) on its first chunk; the graph
    and its model start meanwhile, so the round trip adds nothing before the first token (a slow one here)."""
    agent = await clients()
    loop = asyncio.get_running_loop()
    called: list[float] = []
    opened: list[float] = []
    open_step = Run._open_step

    async def slow_open_step(run: Run) -> tuple[str, str]:
        await asyncio.sleep(0.3)
        step = await open_step(run)
        opened.append(loop.time())
        return step

    def reply(state: object) -> str:
        called.append(loop.time())
        return "Hello, human."

    monkeypatch.setattr(Run, "_open_step", slow_open_step)
    graph = chat_builder(reply).compile(checkpointer=AblySaver(agent))
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("hello graph")
        assert (await serve_graph(graph, sent.invocation, client=agent)).outcome == "complete"
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.COMPLETE)
        assert [m.content for m in user.messages()] == ["hello graph", "Hello, human."]
    assert called and opened and called[0] < opened[0] - 0.2, "the model ran while the step was being opened"


async def test_a_token_that_fails_in_the_models_task_fails_the_run_and_nothing_raises(clients, channel_name,
                                                                                       monkeypatch):
    """LangChain logs and forgets what a callback raises: a write that fails in the model's task is taken to the
    serving task instead, which ends the run `error` as a failed write there would."""
    from langchain_ably_transport.codec import MessageEncoder

    agent = await clients()
    write_now = MessageEncoder.write_now
    calls = 0

    def failing_fifth(encoder: MessageEncoder, chunk: dict[str, object]) -> bool:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise RuntimeError("the write failed")
        return write_now(encoder, chunk)

    monkeypatch.setattr(MessageEncoder, "write_now", failing_fifth)
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("fail midway")
        words = "".join(f"w{i} " for i in range(30))
        result = await serve_graph(chat_graph(AblySaver(agent), words, delay=0.002), sent.invocation, client=agent)
        assert (result.outcome, str(result.error)) == ("error", "the write failed")
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.ERROR)
    assert calls >= 5


async def test_an_interrupt_suspends_the_run_and_the_answer_resumes_the_same_run(clients, channel_name):
    agent = await clients()
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("please deploy")
        first = await serve_graph(approval_graph(AblySaver(agent)), sent.invocation, client=agent)
        assert first.outcome == "suspended" and len(first.interrupts) == 1
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.SUSPENDED)
        parts = [p for e in user.view() for p in e["message"]["parts"] if p["type"] == "data-interrupt"]
        assert parts[0]["data"] == {"id": first.interrupts[0].id, "value": {"question": "Deploy to production?"}}
        answer = await user.send("yes", run_id=first.run_id)
        second = await serve_graph(approval_graph(AblySaver(await clients())), answer.invocation, client=agent)
        assert (second.outcome, second.run_id) == ("complete", first.run_id)
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.COMPLETE)
        assert "Approval received: yes." in [m.content for m in user.messages()]


def _worker(server, invocation) -> dict:
    result = subprocess.run([sys.executable, str(WORKER), server.url, server.key, json.dumps(invocation.to_json())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


async def test_a_fresh_process_resumes_a_run_another_process_suspended(server, clients, channel_name):
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("deploy it")
        first = await asyncio.to_thread(_worker, server, sent.invocation)
        assert first["outcome"] == "suspended"
        answer = await user.send("approved", run_id=first["run_id"])
        second = await asyncio.to_thread(_worker, server, answer.invocation)
        assert second == {"outcome": "complete", "run_id": first["run_id"], "interrupts": []}
        lifecycle = [w.name for w in user.core._log
                     if w.name in names.RUN_LIFECYCLE_NAMES and w.transport.get(names.HEADER_RUN_ID) == first["run_id"]]
        assert lifecycle == [names.RUN_START, names.RUN_SUSPEND, names.RUN_RESUME, names.RUN_END]
        assert await user.wait_for(lambda: "Approval received: approved." in [m.content for m in user.messages()])


async def test_cancel_stops_the_graph_and_the_thread_continues(clients, channel_name):
    agent = await clients()
    story = " ".join(f"part{i}" for i in range(500))
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("a long story")
        serving = asyncio.ensure_future(serve_graph(chat_graph(AblySaver(agent), story, "Short now.", delay=0.005),
                                                    sent.invocation, client=agent))
        run_id = await sent.run_id()
        assert await user.wait_for(lambda: "part20" in str(user.view()), timeout=10)
        await user.cancel(run_id)
        result = await asyncio.wait_for(serving, 10)
        assert result.outcome == "cancelled"
        assert "part499" not in str(user.view())
        follow_up = await user.send("shorter please")
        again = await serve_graph(chat_graph(AblySaver(agent), "Short now."), follow_up.invocation, client=agent)
        assert again.outcome == "complete"
        assert await user.wait_for(lambda: user.messages()[-1].content == "Short now.")


async def test_cancel_inside_a_subgraph_stops_its_model_and_nothing_is_published_after(clients, channel_name):
    from .graphs import nested_chat_graph

    agent = await clients()
    story = " ".join(f"part{i}" for i in range(500))
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("a long nested story")
        serving = asyncio.ensure_future(serve_graph(nested_chat_graph(AblySaver(agent), story, delay=0.005),
                                                    sent.invocation, client=agent))
        run_id = await sent.run_id()
        assert await user.wait_for(lambda: "part20" in str(user.view()), timeout=10)
        started = asyncio.get_running_loop().time()
        await user.cancel(run_id)
        result = await asyncio.wait_for(serving, 10)
        stopped_within = asyncio.get_running_loop().time() - started
        assert result.outcome == "cancelled" and stopped_within < 2.0
        await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.CANCELLED)
        await asyncio.sleep(0.3)
        log = user.core._log
        closed = [i for i, w in enumerate(log) if w.transport.get(names.HEADER_STATUS) == "cancelled"]
        assert closed, "the open stream was closed cancelled"
        streamed_after = [w for w in log[closed[-1] + 1:] if w.action == names.Action.APPEND and w.data]
        assert streamed_after == [], "no token after the closing append"
        follow_up = await user.send("and now?")
        again = await serve_graph(nested_chat_graph(AblySaver(agent), "Fine."), follow_up.invocation, client=agent)
        assert again.outcome == "complete"


async def test_a_quick_node_shows_only_its_end_and_a_slow_one_shows_running_while_it_runs(clients, channel_name):
    """A task part is a billed message: `running` is held back RUNNING_PART_DELAY_S, so a node done by then costs
    one message, and a slow, silent one still shows as running before it ends."""
    from langgraph.graph import MessagesState

    from langchain_ably_transport.graph.tasks import RUNNING_PART_DELAY_S

    from .graphs import linear_graph

    async def quick(state: MessagesState) -> dict:
        return {}

    async def slow(state: MessagesState) -> dict:
        await asyncio.sleep(RUNNING_PART_DELAY_S + 0.5)
        return {"messages": [{"role": "assistant", "content": "done slowly"}]}

    agent = await clients()
    seen: list[tuple[str, str, float]] = []
    async with ClientSession(await clients(), channel_name) as user:
        user.core.listen(lambda wire, events, live: seen.extend(
            (e[1]["data"]["node"], e[1]["data"]["status"], asyncio.get_running_loop().time())
            for e in events if e[1].get("type") == "data-task"))
        sent = await user.send("go")
        result = await serve_graph(linear_graph(AblySaver(agent), quick, slow), sent.invocation, client=agent)
        assert result.outcome == "complete"
        assert await user.wait_for(lambda: len(seen) == 3)
    assert [(node, status) for node, status, _ in seen] == [("quick", "done"), ("slow", "running"), ("slow", "done")]
    assert seen[2][2] - seen[1][2] >= 0.4, "running was shown while the node ran, not at its end"


async def test_a_node_whose_answer_streams_needs_no_running_part(clients, channel_name):
    """Its text shows it running: a streaming model node costs one task part, its end, however long it streams."""
    from langchain_ably_transport.graph.tasks import RUNNING_PART_DELAY_S

    from .graphs import chat_graph

    words = 12
    agent = await clients()
    seen: list[tuple[str, str]] = []
    async with ClientSession(await clients(), channel_name) as user:
        user.core.listen(lambda wire, events, live: seen.extend(
            (e[1]["data"]["node"], e[1]["data"]["status"]) for e in events if e[1].get("type") == "data-task"))
        sent = await user.send("go")
        reply = " ".join(f"w{i}" for i in range(words))
        graph = chat_graph(AblySaver(agent), reply, delay=2 * RUNNING_PART_DELAY_S / words)
        result = await serve_graph(graph, sent.invocation, client=agent)
        assert result.outcome == "complete"
        assert await user.wait_for(lambda: bool(seen) and user.messages()[-1].content == reply)
    assert seen == [("chat", "done")], "streamed for twice the running delay, yet only its end was shown"


async def test_a_turns_checkpoints_share_a_message_before_its_answer_streams_and_one_after(clients, channel_name):
    """`serve_graph` lets the saver hold a run's checkpoints: those made before the answer streams are stored as it
    starts to show (an adopter resumes the streaming step), the rest before the run ends."""
    from langchain_ably_transport import MessageKind

    from .graphs import chat_node, linear_graph

    async def plan(state: dict) -> dict:
        return {}

    async def wrap(state: dict) -> dict:
        return {}

    chat = chat_node(lambda state: "a reply in five words", delay=0.01)
    agent = await clients()
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("go")
        result = await serve_graph(linear_graph(AblySaver(agent), plan, chat, wrap), sent.invocation, client=agent)
    assert result.outcome == "complete"
    assert result.messages[MessageKind.CHECKPOINT_RECORD] == 2, "input, start and plan in one; chat and wrap in one"
    cold = linear_graph(AblySaver(await clients()), plan, chat, wrap)
    config = {"configurable": {"thread_id": channel_name}}
    history = [h async for h in cold.aget_state_history(config)]
    assert [h.next for h in history] == [(), ("wrap",), ("chat",), ("plan",), ("__start__",)]
    assert [m.content for m in history[0].values["messages"]] == ["go", "a reply in five words"]


async def test_a_slow_silent_step_finds_the_checkpoint_it_started_from_stored_while_it_runs(clients, channel_name):
    """Held checkpoints wait at most `checkpoint_wait_s`: a process that dies during a long tool call loses no step
    finished before it."""
    from .graphs import linear_graph

    release = asyncio.Event()

    async def quick(state: dict) -> dict:
        return {}

    async def slow(state: dict) -> dict:
        await asyncio.wait_for(release.wait(), 10)
        return {}

    agent = await clients()
    cold = linear_graph(AblySaver(await clients()), quick, slow)
    config = {"configurable": {"thread_id": channel_name}}
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("go")
        saver = AblySaver(agent, checkpoint_wait_s=0.2, writes_wait_s=30)  # only the checkpoints' wait applies
        serving = asyncio.ensure_future(serve_graph(linear_graph(saver, quick, slow), sent.invocation, client=agent))
        try:
            deadline = asyncio.get_running_loop().time() + 5
            while (await cold.aget_state(config)).next != ("slow",) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            assert (await cold.aget_state(config)).next == ("slow",), "stored while `slow` still runs"
        finally:
            release.set()
        assert (await asyncio.wait_for(serving, 10)).outcome == "complete"


async def test_a_served_turn_reads_its_thread_once_and_the_next_serving_sees_another_agents_turn(
        clients, channel_name, monkeypatch):
    """A serving owns the thread while it runs, so only its first read asks the channel; a later serving, of the
    same session by the same saver, asks again, and finds what another agent stored in between."""
    from ably.http.http import Http

    from .graphs import chat_builder

    reads: list[str] = []
    fixes.install()  # first: what is counted here is asked for above the SDK's replacements (its reads, 21)
    request = Http.make_request

    async def counted(self, method, path, *args, **kwargs):
        if method == "GET" and "langgraph-state" in path and path.split("?")[0].endswith("/messages"):
            reads.append(path)
        return await request(self, method, path, *args, **kwargs)

    monkeypatch.setattr(Http, "make_request", counted)
    builder = chat_builder(lambda state: f"reply to {state['messages'][-1].content}")
    first, second = await clients(), await clients()
    graphs = {first: builder.compile(checkpointer=AblySaver(first)),
              second: builder.compile(checkpointer=AblySaver(second))}
    async with ClientSession(await clients(), channel_name) as user:
        for turn, agent in enumerate([first, second, first]):
            sent = await user.send(f"q{turn}")
            reads.clear()
            result = await serve_graph(graphs[agent], sent.invocation, client=agent)
            assert result.outcome == "complete"
            assert len(reads) == 1, f"turn {turn}: one history request for the thread, not {len(reads)}"
    state = await graphs[first].aget_state({"configurable": {"thread_id": channel_name}})
    assert [m.content for m in state.values["messages"]] == [
        "q0", "reply to q0", "q1", "reply to q1", "q2", "reply to q2"], "the third turn saw the second agent's"


async def test_a_thread_that_cannot_be_read_ends_the_started_run_error_and_nothing_raises(
        clients, channel_name, monkeypatch):
    """The thread is read while the run starts (the two round trips overlap): a read that fails ends the run `error`,
    so the client sees why, and `serve_graph` returns instead of raising into the caller's handler."""
    from ably.http.http import Http
    from ably.util.exceptions import AblyException

    fixes.install()  # first: what is counted here is asked for above the SDK's replacements (its reads, 21)
    request = Http.make_request

    async def failing(self, method, path, *args, **kwargs):
        if method == "GET" and "langgraph-state" in path:
            raise AblyException("history is unavailable", 503, 50300)
        return await request(self, method, path, *args, **kwargs)

    monkeypatch.setattr(Http, "make_request", failing)
    agent = await clients()
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("hello graph")
        result = await serve_graph(chat_graph(AblySaver(agent), "Hello, human."), sent.invocation, client=agent)
        assert result.outcome == "error" and await sent.run_id() == result.run_id
        assert await user.wait_for(lambda: bool(user.runs()) and user.runs()[0].status == names.RunStatus.ERROR)
        error = user.runs()[0].error
        assert error is not None and "the thread could not be read" in error.message
