"""Python sessions against the genuine `@ably/ai-transport` 0.8.0 JS SDK (Vercel codec), through the dev server.

The JS side runs the harness scripts in `tests/js/ai-transport/` (see their README): each prints JSON lines,
invocation lines first and its result last.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langchain_ably_transport import AblySaver
from langchain_ably_transport.codec.langchain import tool_output_chunk
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.session import AgentSession, ClientSession
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.invocation import Invocation

from ..graph.graphs import hitl_agent
from ..session.test_sessions import _model_chunks

HARNESS = Path(__file__).resolve().parent.parent / "js" / "ai-transport"


class JsScript:
    """A running harness script: its JSON lines as they come, and its exit."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.lines: list[dict[str, Any]] = []

    async def next_line(self, timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            stderr = await self.process.stderr.read() if self.process.stderr else b""
            raise AssertionError(f"{self.name} ended early: {stderr.decode(errors='replace')[-3000:]}")
        line = json.loads(raw)
        self.lines.append(line)
        return line

    async def result(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        out, err = await asyncio.wait_for(self.process.communicate(), timeout)
        lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        assert self.process.returncode == 0, f"{self.name} exited {self.process.returncode}: {lines}\n{err.decode()}"
        return (self.lines + lines)[-1]


async def js(server, script: str, **env: str) -> JsScript:
    node = shutil.which("node")
    if node is None or not (HARNESS.parent / "node_modules" / "@ably" / "ai-transport").is_dir():
        pytest.fail("node and `npm ci --prefix tests/js` are needed for the @ably/ai-transport interop tests")
    process = await asyncio.create_subprocess_exec(
        node, str(HARNESS / script), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ABLY_ENDPOINT": server.url, "ABLY_API_KEY": server.key, **env},
    )
    return JsScript(process, script)


def _session() -> str:
    return f"conversations:{uuid.uuid4().hex[:10]}"


def _texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], "".join(p.get("text", "") for p in m["parts"] if p["type"] == "text")) for m in messages]


async def _python_agent(client, invocation: dict[str, str], chunks) -> Any:
    async with AgentSession(client, invocation["sessionName"], coalesce_window=0.0) as session:
        run = await session.create_run(Invocation.from_json(invocation))
        await run.start()
        result = await run.pipe(chunks)
        await run.end("cancelled" if result.reason == "cancelled" else "complete")
        return result


async def test_js_client_renders_a_python_agents_text_tool_call_and_result(server, clients):
    session = _session()
    client = await js(server, "client-send.mjs", SESSION=session, TEXT="Weather in Paris?")
    invocation = (await client.next_line())["invocation"]

    async def reply():
        async for chunk in _model_chunks("Let me check.", tool_call={
                "name": "weather", "args": '{"city": "Paris"}', "id": "call-1"}):
            yield chunk
        yield tool_output_chunk(ToolMessage(content="sunny, 21C", tool_call_id="call-1"))

    result = await _python_agent(await clients(client_id="py-agent"), invocation, reply())
    assert result.reason == "complete"
    view = await client.result()
    assert view["run"]["status"] == "complete"
    user, assistant = view["messages"]
    assert _texts([user]) == [("user", "Weather in Paris?")]
    text = [p["text"] for p in assistant["parts"] if p["type"] == "text"]
    tool = [p for p in assistant["parts"] if p["type"] == "tool-weather"]
    assert text == ["Let me check."]
    assert [(t["toolCallId"], t["state"], t["input"], t["output"]) for t in tool] == [
        ("call-1", "output-available", {"city": "Paris"}, "sunny, 21C")]


async def test_js_client_cancel_stops_the_python_run(server, clients):
    session = _session()
    client = await js(server, "client-send.mjs", SESSION=session, TEXT="Tell me a story", CANCEL_AFTER_CHARS="40")
    invocation = (await client.next_line())["invocation"]
    story = " ".join(f"word{i}" for i in range(300))
    result = await _python_agent(await clients(), invocation, _model_chunks(story, delay=0.02))
    assert result.reason == "cancelled"
    view = await client.result()
    assert view["cancelled"] is True and view["run"]["status"] == "cancelled"
    told = view["run"]["text"]
    assert len(told) >= 40 and "word299" not in told


async def test_python_client_renders_a_js_agents_reply(server, clients):
    session = _session()
    async with ClientSession(await clients(client_id="py-user"), session) as client:
        sent = await client.send("What is 2+2?")
        agent = await js(server, "agent-answer.mjs", INVOCATION=json.dumps(sent.invocation.to_json()),
                         REPLY="Two plus two is four.", DELAY_MS="5")
        answer = await agent.result()
        assert answer["outcome"] == "complete" and await sent.run_id() == answer["runId"]
        assert await client.wait_for(lambda: any(r.status == names.RunStatus.COMPLETE for r in client.runs()))
        messages = client.messages()
    assert [type(m) for m in messages] == [HumanMessage, AIMessage]
    assert (messages[0].content, messages[1].content) == ("What is 2+2?", "Two plus two is four.")


async def test_js_and_python_clients_joining_mid_stream_converge(server, clients):
    session = _session()
    async with ClientSession(await clients(), session) as sender:
        sent = await sender.send("a long story please")
        story = " ".join(f"w{i}" for i in range(120))
        agent = asyncio.create_task(_python_agent(await clients(), sent.invocation.to_json(),
                                                  _model_chunks(story, delay=0.02)))
        await sender.wait_for(lambda: "w10" in str(sender.view()), timeout=10)
        joiner = await js(server, "client-join.mjs", SESSION=session, WAIT_FOR_TEXT="w119")
        async with ClientSession(await clients(), session) as late:
            at_join = _texts([e["message"] for e in late.view()])
            await agent
            assert await late.wait_for(lambda: _texts([e["message"] for e in late.view()])[-1][1] == story)
        joined = await joiner.result()
    assert "w119" not in at_join[-1][1], "the Python joiner really joined mid-stream"
    assert _texts(joined["messages"]) == [("user", "a long story please"), ("assistant", story)]


async def test_js_edit_and_regenerate_of_python_replies_build_the_js_branches(server, clients):
    session = _session()
    client = await js(server, "client-edit-regenerate.mjs", SESSION=session)
    agent_connection = await clients()
    for number in (1, 2, 3):
        line = await client.next_line()
        await _python_agent(agent_connection, line["invocation"], _model_chunks(f"Answer {number}."))
    result = await client.result()
    branches = [[(m["role"], m["text"]) for m in b["messages"]] for b in result["branches"]]
    assert branches == [
        [("user", "First question"), ("assistant", "Answer 1.")],
        [("user", "Edited question"), ("assistant", "Answer 2.")],
        [("user", "Edited question"), ("assistant", "Answer 3.")],
    ]
    assert [(a["siblingCount"], a["index"]) for a in result["anchors"]] == [(2, 1), (2, 1)]


async def test_js_client_renders_a_chain_streamed_by_the_callback_handler(server, clients):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    from langchain_ably_transport import AblyCallbackHandler

    session = _session()
    client = await js(server, "client-send.mjs", SESSION=session, TEXT="Tell me about Ably")
    invocation = Invocation.from_json((await client.next_line())["invocation"])
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | GenericFakeChatModel(
        messages=iter([AIMessage(content="Ably is a realtime messaging platform.")])) | StrOutputParser()
    async with AgentSession(await clients(), session) as agent:
        run = await agent.create_run(invocation)
        await run.start()
        handler = AblyCallbackHandler(run=run)
        output = await chain.ainvoke({"q": "Tell me about Ably"}, {"callbacks": [handler]})
        await handler.aflush()
        await run.end()
    view = await client.result()
    assert view["run"]["status"] == "complete"
    assert _texts(view["messages"]) == [("user", "Tell me about Ably"), ("assistant", output)]
    await handler.aclose()


@pytest.mark.parametrize("approved", [True, False])
async def test_js_client_approves_a_tool_call_and_serve_graph_resumes_the_run(server, clients, approved):
    session = _session()
    agent = await clients(client_id="py-agent")
    client = await js(server, "client-approve.mjs", SESSION=session, APPROVED="1" if approved else "0",
                      REASON="not on a Friday")
    sent = await client.next_line()
    first = await serve_graph(hitl_agent(AblySaver(agent)), Invocation.from_json(sent["invocation"]), client=agent)
    assert first.outcome == "suspended"
    answer = await client.next_line()
    assert answer["runId"] == first.run_id
    assert answer["approvals"] == [{"toolCallId": "call_deploy", "approvalId": f"{first.interrupts[0].id}:0"}]
    second = await serve_graph(hitl_agent(AblySaver(agent)), Invocation.from_json(answer["invocation"]), client=agent)
    assert (second.outcome, second.run_id) == ("complete", first.run_id)
    view = await client.result()
    assert view["run"]["status"] == "complete" and not view["timedOut"]
    assert [e["type"] for e in view["lifecycle"]] == ["start", "suspend", "resume", "end"]
    tool = [p for m in view["messages"] for p in m["parts"] if p["type"] == "tool-deploy"]
    if approved:
        assert [(t["state"], t["output"]) for t in tool] == [("output-available", "deployed to prod")]
        assert view["run"]["text"].endswith("Done: deployed to prod.")
    else:
        assert [t["state"] for t in tool] == ["output-denied"]
        assert "not on a Friday" in view["run"]["text"]
