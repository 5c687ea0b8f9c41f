"""`langchain-ably-transport tail`: the pure records and text it renders, and the command against the dev server."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage

from langchain_ably_transport.codec import DecodedEvent
from langchain_ably_transport.codec.langchain import ChunkTranslator, data_chunk, tool_output_chunk
from langchain_ably_transport.session import AgentSession, ClientSession
from langchain_ably_transport.session.tree import Node
from langchain_ably_transport.tail import (
    LiveRecords,
    TextRenderer,
    format_message,
    format_run,
    history_records,
)
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage
from langchain_ably_transport.wire.headers import RunEndError

# --- pure ---------------------------------------------------------------------------------------------------


def test_a_message_renders_its_role_agent_text_tool_calls_and_tasks():
    message = {
        "id": "m1", "role": "assistant", "metadata": {"agent": "researcher", "namespace": ["researcher:t1"]},
        "parts": [
            {"type": "text", "text": "Let me "}, {"type": "text", "text": "check."},
            {"type": "tool-weather", "toolCallId": "c1", "state": "output-available",
             "input": {"city": "Paris"}, "output": "sunny, 21C"},
            {"type": "dynamic-tool", "toolName": "search", "toolCallId": "c2", "state": "output-error",
             "input": {"q": "x"}, "errorText": "timed out"},
            {"type": "tool-book", "toolCallId": "c3", "state": "approval-requested", "input": {}},
            {"type": "data-task", "id": "t2", "data": {"node": "search", "namespace": ["researcher:t1"],
                                                       "status": "running", "agent": "researcher"}},
        ],
    }
    assert format_message(message) == [
        "assistant [researcher]: Let me check.",
        '  tool weather({"city": "Paris"}) → sunny, 21C',
        '  tool search({"q": "x"}) ✗ timed out',
        "  tool book({}) [approval-requested]",
        "  task researcher/search running",
    ]


def test_a_long_tool_output_is_cut_to_one_line():
    part = {"type": "tool-read", "toolCallId": "c", "state": "output-available", "input": "f.txt",
            "output": "line\n" * 100}
    (_, line) = format_message({"id": "m", "role": "assistant", "parts": [part]})
    assert "\n" not in line and line.endswith("…") and len(line) < 120


def _node(key: str, kind: str, events: list[DecodedEvent], **fields) -> Node:
    node = Node(key=key, kind=kind, serial=key, **fields)
    for event in events:
        node.owns(event.codec_message_id or "")
    node.events.extend(events)
    return node


def test_history_records_list_messages_then_their_runs_state_with_its_error():
    user = {"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    chain = [
        _node("u1", "input", [DecodedEvent("input", {"kind": "user-message", "message": user}, "u1", None, "1")]),
        _node("r1", "run", [
            DecodedEvent("output", {"type": "start", "messageMetadata": {"agent": "writer"}}, "a1", "r1", "2"),
            DecodedEvent("output", {"type": "text-start", "id": "x"}, "a1", "r1", "2"),
            DecodedEvent("output", {"type": "text-delta", "id": "x", "delta": "Hel"}, "a1", "r1", "2"),
            DecodedEvent("output", {"type": "text-delta", "id": "x", "delta": "lo"}, "a1", "r1", "2"),
        ], status=names.RunStatus.ERROR, end_reason="error",
              error=RunEndError(message="model overloaded", code=50000, status_code=500)),
    ]
    records = history_records(chain)
    assert [(r["type"], r.get("role"), r.get("agent"), r.get("text")) for r in records] == [
        ("message", "user", None, "hi"), ("message", "assistant", "writer", "Hello"), ("run", None, None, None)]
    assert records[1]["runId"] == "r1"
    assert format_run(records[2]) == "run r1 error: model overloaded (code 50000)"
    renderer = TextRenderer()
    assert "".join(map(renderer.render, records)) == (
        "user: hi\nassistant [writer]: Hello\nrun r1 error: model overloaded (code 50000)\n")


def _lifecycle(name: str, run_id: str, **headers: str) -> WireMessage:
    return WireMessage(name=name, transport={names.HEADER_RUN_ID: run_id, **headers})


def _out(run_id: str, cmid: str, *chunks: dict) -> tuple[WireMessage, list[DecodedEvent]]:
    wire = WireMessage(name=names.AI_OUTPUT, transport={names.HEADER_RUN_ID: run_id})
    return wire, [DecodedEvent("output", chunk, cmid, run_id, "s") for chunk in chunks]


def test_live_records_stream_text_on_one_line_and_print_lifecycle_as_it_happens():
    live, renderer = LiveRecords(), TextRenderer()
    feed = [
        (_lifecycle(names.RUN_START, "r1"), []),
        _out("r1", "a1", {"type": "start"}, {"type": "text-start", "id": "t"}, {"type": "text-delta", "id": "t",
                                                                                "delta": "Hello"}),
        _out("r1", "s1", {"type": "start", "messageMetadata": {"agent": "researcher"}},
             {"type": "text-delta", "id": "t", "delta": "Searching"}),
        _out("r1", "a1", {"type": "text-delta", "id": "t", "delta": " world"}),
        _out("r1", "a1", {"type": "tool-input-available", "toolCallId": "c1", "toolName": "weather",
                          "input": {"city": "Paris"}}),
        _out("r1", "a1", {"type": "tool-output-available", "toolCallId": "c1", "output": "sunny"},
             {"type": "data-task", "id": "t1", "data": {"node": "agent", "namespace": [], "status": "done"}},
             {"type": "finish", "finishReason": "stop"}),
        (_lifecycle(names.RUN_SUSPEND, "r1"), []),
        (_lifecycle(names.RUN_RESUME, "r1"), []),
        (_lifecycle(names.RUN_END, "r1", **{names.HEADER_RUN_REASON: "error", names.HEADER_ERROR_MESSAGE: "boom",
                                            names.HEADER_ERROR_CODE: "50000"}), []),
    ]
    records = [record for wire, events in feed for record in live.feed(wire, events)]
    assert [r["type"] for r in records] == [
        "run", "delta", "delta", "delta", "tool-call", "tool-result", "task", "message-end", "run", "run", "run"]
    assert records[-1] == {"type": "run", "runId": "r1", "event": "ended", "reason": "error",
                           "error": {"message": "boom", "code": 50000}}
    assert "".join(map(renderer.render, records)) == (
        "run r1 started\n"
        "assistant: Hello\n"
        "assistant [researcher]: Searching\n"
        "assistant:  world\n"
        '  tool weather({"city": "Paris"})\n'
        "  tool weather() → sunny\n"
        "  task agent done\n"
        "run r1 suspended\n"
        "run r1 resumed\n"
        "run r1 ended: error: boom (code 50000)\n"
    )


def test_a_stream_that_began_in_history_keeps_its_agent_label_live():
    live = LiveRecords()
    live.remember([{"type": "message", "codecMessageId": "a1", "agent": "critic",
                    "message": {"role": "assistant", "parts": []}}])
    (record,) = live.feed(*_out("r1", "a1", {"type": "text-delta", "id": "t", "delta": "…more"}))
    assert TextRenderer().render(record) == "assistant [critic]: …more"


def test_live_user_inputs_and_cancels_are_records_too():
    message = {"id": "m", "role": "user", "parts": [{"type": "text", "text": "stop that"}]}
    wire = WireMessage(name=names.AI_INPUT, transport={names.HEADER_ROLE: names.ROLE_USER})
    (user,) = LiveRecords().feed(wire, [DecodedEvent("input", {"kind": "user-message", "message": message},
                                                     "u2", None, "s")])
    (cancel,) = LiveRecords().feed(WireMessage(name=names.CANCEL, transport={names.HEADER_RUN_ID: "r1"}), [])
    renderer = TextRenderer()
    assert renderer.render(user) + renderer.render(cancel) == "user: stop that\ncancel requested for run r1\n"


# --- the command against the dev server ----------------------------------------------------------------------


async def _reply(text: str, *, delay: float = 0.0, extra: tuple[dict, ...] = (), tool_call: dict | None = None):
    """One streamed fake-model reply as the agent publishes it, with `extra` chunks before it finishes."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content=text, id=str(uuid.uuid4()))]))
    translator = ChunkTranslator()
    async for chunk in model.astream("hi"):
        for out in translator.feed(chunk):
            yield out
        await asyncio.sleep(delay)
    if tool_call:
        for out in translator.feed(AIMessageChunk(content="", tool_call_chunks=[{**tool_call, "index": 0}])):
            yield out
    for chunk in extra:
        yield chunk
    for out in translator.finish():
        yield out


async def _answer(client, invocation, chunks) -> str:
    async with AgentSession(client, invocation.session_name, coalesce_window=0.0) as session:
        run = await session.create_run(invocation)
        await run.start()
        result = await run.pipe(chunks)
        await run.end("complete" if result.reason == "complete" else result.reason)
        return run.run_id


def _tail(server, session: str, *flags: str):
    return asyncio.create_subprocess_exec(
        sys.executable, "-m", "langchain_ably_transport.cli", "tail", session, "--endpoint", server.url,
        "--key", server.key, *flags, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


class _Output:
    """What a child process has written on one stream so far, read on demand."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream, self.text = stream, ""

    async def until(self, needle: str, timeout: float = 20.0) -> str:
        async def read() -> None:
            while needle not in self.text:
                chunk = await self.stream.read(4096)
                if not chunk:
                    raise AssertionError(f"stream closed before {needle!r}; got {self.text!r}")
                self.text += chunk.decode()

        try:
            await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {needle!r} within {timeout}s; got {self.text!r}") from None
        return self.text


async def test_tail_prints_the_history_then_the_reply_as_it_streams_and_exits_0_on_sigint(
        server, clients, channel_name):
    async with ClientSession(await clients(client_id="alice"), channel_name) as user:
        await user.send("What's the weather?")
        process = await _tail(server, channel_name)
        stdout, stderr = _Output(process.stdout), _Output(process.stderr)
        try:
            assert "1 messages" in await stderr.until("messages")
            await stdout.until("user: What's the weather?\n")
            sent = await user.send("And tomorrow?")
            reply, gate = "It will be sunny tomorrow in Paris.", asyncio.Event()

            async def held_halfway():  # the rest of the reply waits until the first half has been printed
                async for chunk in _reply(reply, delay=0.01):
                    yield chunk
                    if chunk.get("type") == "text-delta" and chunk["delta"] == "sunny":
                        await gate.wait()

            answering = asyncio.create_task(_answer(await clients(client_id="agent"), sent.invocation,
                                                    held_halfway()))
            assert (await stdout.until("assistant: It will be sunny")).endswith("sunny")
            assert not answering.done()
            gate.set()
            run_id = await answering
            output = await stdout.until(f"run {run_id} ended: complete\n")
        finally:
            process.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(process.wait(), 15)
    assert code == 0
    assert output.splitlines() == [
        "user: What's the weather?", "user: And tomorrow?", f"run {run_id} started", f"assistant: {reply}",
        f"run {run_id} ended: complete"]


async def test_tail_json_no_follow_prints_the_history_as_json_lines_and_exits(server, clients, channel_name):
    async with ClientSession(await clients(client_id="alice"), channel_name) as user:
        sent = await user.send("Weather in Paris?")
        task = data_chunk("task", {"node": "agent", "namespace": [], "status": "done"}, id="task-1")
        run_id = await _answer(await clients(client_id="agent"), sent.invocation, _reply(
            "Checking.", tool_call={"name": "weather", "args": '{"city": "Paris"}', "id": "call-1"},
            extra=(tool_output_chunk(ToolMessage(content="sunny", tool_call_id="call-1")), task)))
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.COMPLETE)
    process = await _tail(server, channel_name, "--json", "--no-follow")
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    records = [json.loads(line) for line in stdout.decode().splitlines()]
    assert [(r["type"], r.get("role"), r.get("text")) for r in records] == [
        ("message", "user", "Weather in Paris?"), ("message", "assistant", "Checking."), ("run", None, None)]
    assert records[2] == {"type": "run", "runId": run_id, "status": "complete", "reason": "complete"}
    parts = {part["type"]: part for part in records[1]["message"]["parts"]}
    assert parts["tool-weather"]["output"] == "sunny"
    assert parts["data-task"]["data"]["status"] == "done"
    assert stderr.decode().splitlines()[-1] == "2 messages"
