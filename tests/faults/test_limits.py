"""Ably's limits, each met as documented (docs/security.md, "Limits"), on a dev server with Ably's real limits.

The shared `server` fixture lifts the publish rate; these tests spawn their own server with every default:
50 msg/s per connection and 64 KiB messages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from contextlib import AsyncExitStack
from typing import Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langchain_ably_transport import AblyCallbackHandler, AblySaver, ClientSession
from langchain_ably_transport.checkpoint.log import FRAME_OVERHEAD
from langchain_ably_transport.checkpoint.records import CHUNK
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.sdk.pacer import pacer_for
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.invocation import Invocation

from ..codec.langchain.streams import ScriptedChatModel
from ..graph.graphs import DeployModel, chat_graph
from ..interop.test_ai_transport import js

MARKER = "\n\n[output truncated: "
# A 200 KB log: three times what one Ably message may carry.
LOG = "".join(f"{i:06d} GET /api/items/{uuid.UUID(int=i * 7919)} 200\n" for i in range(3600))


@pytest.fixture(scope="module")
def limited():
    """A dev server with every one of Ably's default limits."""
    with spawn() as running:
        yield running


def _library_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("langchain_ably_transport") and r.levelno >= logging.WARNING]


def _conversation() -> str:
    return f"conversations:{uuid.uuid4().hex[:10]}"


def _text(session: ClientSession) -> str:
    return "".join(p.get("text", "") for e in session.view() if e["message"]["role"] == "assistant"
                   for p in e["message"]["parts"] if p["type"] == "text")


# --- the publish rate ---


async def test_streams_and_checkpoints_over_the_publish_rate_are_paced_and_every_token_arrives(
        limited, clients, caplog):
    """Six graph runs and a callback-handler chain stream at once on one agent connection, with the graphs'
    checkpoints on it too: about four times its 50 msg/s. Every token reaches the live clients."""
    caplog.set_level(logging.WARNING)
    agent = await clients(limited, client_id="agent")
    users = await clients(limited, client_id="user")
    replies = [" ".join(f"r{i}w{j}" for j in range(300)) for i in range(7)]
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(ClientSession(users, _conversation())) for _ in replies]
        sent = [await session.send("go") for session in sessions[:-1]]
        handler = AblyCallbackHandler(agent, session=sessions[-1].core.name)
        stack.push_async_callback(handler.aclose)
        chain = GenericFakeChatModel(messages=iter([AIMessage(content=replies[-1])])) | StrOutputParser()
        served = await asyncio.gather(
            *(serve_graph(chat_graph(AblySaver(agent), reply, delay=0.001), s.invocation, client=agent)
              for reply, s in zip(replies, sent, strict=False)),
            chain.ainvoke("go", {"callbacks": [handler]}))
        await handler.aflush()
        assert [r.outcome for r in served[:-1]] == ["complete"] * 6
        assert served[-1] == replies[-1] and handler.errors == []
        for session, reply in zip(sessions, replies, strict=True):
            assert await session.wait_for(
                lambda s=session: any(r.status == names.RunStatus.COMPLETE for r in s.runs()), timeout=30), (
                    session.core.name, [r.status for r in session.runs()], len(session.core._log), _text(session)[:100])
            assert _text(session) == reply, "the live view has every token"
    assert pacer_for(agent).paced > 0, "the connection really was over its rate"
    assert _library_warnings(caplog) == [], "nothing refused, nothing repaired"


# --- a tool output over the message size ---


@tool
def read_log() -> str:
    """Read the service's access log."""
    return LOG


class LogReader(DeployModel):
    """Calls `read_log`, then says how long the log it read was: proof the model saw all of it."""

    def _turn(self, messages: list[BaseMessage]) -> list[AIMessageChunk]:
        if isinstance(messages[-1], ToolMessage):
            return [AIMessageChunk(content=f"The log has {len(messages[-1].content)} characters.")]
        call = {"name": "read_log", "args": "{}", "id": "call_log", "index": 0}
        return [AIMessageChunk(content="", tool_call_chunks=[call])]


def log_agent(saver: AblySaver) -> Any:
    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await LogReader().ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([read_log]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=saver)


async def test_a_tool_output_over_the_message_size_reaches_the_js_client_cut_with_a_marker_and_the_run_goes_on(
        limited, clients):
    conversation = _conversation()
    client = await js(limited, "client-send.mjs", SESSION=conversation, TEXT="How long is the log?")
    invocation = Invocation.from_json((await client.next_line())["invocation"])
    agent = await clients(limited, client_id="agent")
    result = await serve_graph(log_agent(AblySaver(agent)), invocation, client=agent)
    assert result.outcome == "complete"
    view = await client.result()
    assert view["run"]["status"] == "complete" and view["run"]["text"] == f"The log has {len(LOG)} characters."
    [part] = [p for m in view["messages"] for p in m["parts"] if p["type"] == "tool-read_log"]
    head, marker = part["output"].split(MARKER)
    assert part["state"] == "output-available" and LOG.startswith(head) and len(head) > 50_000
    assert marker == f"{len(LOG)} bytes in all, over the 65536-byte Ably message limit]"
    cold = await log_agent(AblySaver(await clients(limited))).aget_state({"configurable": {"thread_id": conversation}})
    assert [m.content for m in cold.values["messages"] if isinstance(m, ToolMessage)] == [LOG], "state keeps it whole"


async def test_a_chain_whose_tool_output_is_over_the_message_size_streams_it_cut_and_the_chain_goes_on(
        limited, clients, caplog):
    caplog.set_level(logging.WARNING)
    call = AIMessageChunk(content="", tool_call_chunks=[{"name": "read_log", "args": "{}", "id": "c1", "index": 0}])
    caller, answerer = ScriptedChatModel(chunks=[call]), GenericFakeChatModel(messages=iter([AIMessage("Read.")]))

    async def chain(question: str) -> str:
        request = await caller.ainvoke([HumanMessage(question)])
        result = await read_log.ainvoke(request.tool_calls[0] | {"type": "tool_call"})
        assert result.content == LOG, "the chain gets the whole output"
        return (await answerer.ainvoke([HumanMessage(question), request, result])).content

    conversation = _conversation()
    handler = AblyCallbackHandler(await clients(limited, client_id="agent"), session=conversation)
    assert await RunnableLambda(chain).ainvoke("Read the log", {"callbacks": [handler]}) == "Read."
    await handler.aflush()
    assert handler.errors == []
    async with ClientSession(await clients(limited), conversation) as reader:
        assert await reader.wait_for(lambda: [r.status for r in reader.runs()] == [names.RunStatus.COMPLETE])
        [part] = [p for e in reader.view() for p in e["message"]["parts"] if p["type"] == "tool-read_log"]
        assert part["state"] == "output-available" and MARKER in part["output"] and _text(reader) == "Read."
    await handler.aclose()
    assert [w for w in _library_warnings(caplog) if "cut to fit" not in w] == []


async def test_a_tool_call_input_over_the_message_size_ends_the_run_with_40009_and_the_chain_goes_on(
        limited, clients):
    """JS parses a tool call's input from one message, so it cannot be split: the reply is published up to
    there and the run ends `error` 40009, visibly; the chain itself carries on (it has the whole call)."""
    arguments = '{"content": "' + "x" * 100_000 + '"}'
    call = AIMessageChunk(content="", tool_call_chunks=[{"name": "write_file", "args": arguments, "id": "c1",
                                                         "index": 0}])
    conversation = _conversation()
    handler = AblyCallbackHandler(await clients(limited, client_id="agent"), session=conversation)
    model = ScriptedChatModel(chunks=[AIMessageChunk(content="Writing it. "), call])
    reply = await (RunnableLambda(lambda question: question) | model).ainvoke("Write the file",
                                                                               {"callbacks": [handler]})
    await handler.aflush()
    assert reply.tool_calls[0]["args"]["content"] == "x" * 100_000
    assert [error.code for error in handler.errors] == [40009]
    async with ClientSession(await clients(limited), conversation) as reader:
        assert await reader.wait_for(lambda: [r.status for r in reader.runs()] == [names.RunStatus.ERROR])
        assert reader.runs()[0].error.code == 40009 and "message limit" in reader.runs()[0].error.message
        assert _text(reader) == "Writing it. "
    await handler.aclose()


# --- a 20 MB checkpoint ---


class BlobState(TypedDict):
    blob: bytes


def blob_graph(saver: AblySaver, size: int) -> Any:
    graph = StateGraph(BlobState)
    graph.add_node("make", lambda state: {"blob": os.urandom(size)})
    graph.add_edge(START, "make")
    graph.add_edge("make", END)
    return graph.compile(checkpointer=saver)


async def test_a_20_mb_state_round_trips_through_the_saver_within_the_size_and_rate_limits(limited, clients):
    """Incompressible, so it really is about 330 chunk messages, paced to the connection's rate (about 7 s;
    `benchmarks/limits.py` times it). The node's write and the checkpoint hold the same 20 MB: stored once."""
    thread_id = uuid.uuid4().hex
    config = {"configurable": {"thread_id": thread_id}}
    writer = await clients(limited)
    made = await blob_graph(AblySaver(writer), 20 * 1024 * 1024).ainvoke({"blob": b""}, config)
    state = await blob_graph(AblySaver(await clients(limited)), 0).aget_state(config)
    assert len(state.values["blob"]) == 20 * 1024 * 1024 and state.values["blob"] == made["blob"]
    stored = (await writer.channels.get(f"langgraph-state:{thread_id}").history(limit=1000)).items
    chunks = sum(m.name == CHUNK for m in stored)
    assert 20 * 1024 * 1024 / (65536 - FRAME_OVERHEAD) <= chunks < 1.01 * 20 * 1024 * 1024 / (65536 - FRAME_OVERHEAD)
    assert pacer_for(writer).paced > 0
