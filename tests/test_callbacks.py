"""AblyCallbackHandler on real LangChain chains (fake streaming chat models), read back by a ClientSession."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from langchain_ably_transport import AblyCallbackHandler, ClientSession, connect
from langchain_ably_transport.wire import names

from .codec.langchain.streams import ScriptedChatModel
from .conftest import flood_until_failed


def _model(*replies: str | AIMessage) -> GenericFakeChatModel:
    messages = [r if isinstance(r, AIMessage) else AIMessage(content=r) for r in replies]
    return GenericFakeChatModel(messages=iter(messages))


def _chain(*replies: str | AIMessage):
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    return prompt | _model(*replies) | StrOutputParser()


async def _conversation(clients, channel_name, turns: int) -> ClientSession:
    reader = ClientSession(await clients(), channel_name)
    await reader.__aenter__()
    done = await reader.wait_for(lambda: len([r for r in reader.runs() if r.status != names.RunStatus.ACTIVE])
                                 >= turns, timeout=15)
    assert done, f"{turns} runs should have ended: {[r.status for r in reader.runs()]}"
    return reader


@pytest.mark.parametrize("style", ["ainvoke", "astream", "abatch"])
async def test_async_invocation_styles_stream_each_chain_into_its_own_run(clients, channel_name, style):
    client = await clients(client_id="agent")
    handler = AblyCallbackHandler(client, session=channel_name, coalesce_window=0.0)
    chain = _chain("The answer is 42.", "The answer is 43.")
    config = {"callbacks": [handler]}
    if style == "ainvoke":
        outputs = [await chain.ainvoke({"question": "What is the answer?"}, config)]
    elif style == "astream":
        outputs = ["".join([part async for part in chain.astream({"question": "What is the answer?"}, config)])]
    else:
        outputs = await chain.abatch([{"question": "What is the answer?"}, {"question": "And then?"}], config)
    await handler.aflush()
    reader = await _conversation(clients, channel_name, len(outputs))
    try:
        runs = reader.runs()
        assert len(runs) == len(outputs) and all(r.status == names.RunStatus.COMPLETE for r in runs)
        published = sorted(m.content for m in reader.core.tree.nodes.values() and _all_messages(reader)
                           if isinstance(m, AIMessage))
        assert published == sorted(outputs)
    finally:
        await reader.__aexit__(None, None, None)
        await handler.aclose()


def _all_messages(reader: ClientSession):
    from langchain_ably_transport.codec.langchain import ui_messages_to_langchain
    from langchain_ably_transport.session.core import node_messages

    return ui_messages_to_langchain([e["message"] for n in reader.core.tree.nodes.values() for e in node_messages(n)])


def test_sync_invoke_stream_and_batch_work_with_no_event_loop_in_the_caller(server):
    session = "conversations:sync-callbacks"
    chain = _chain("one", "two", "three", "four")
    with AblyCallbackHandler.connect(session, server.key, server.url, coalesce_window=0.0) as handler:
        assert threading.current_thread() is threading.main_thread()
        first = chain.invoke({"question": "q1"}, {"callbacks": [handler]})
        second = "".join(chain.stream({"question": "q2"}, {"callbacks": [handler]}))
        rest = chain.batch([{"question": "q3"}, {"question": "q4"}], {"callbacks": [handler]})
        handler.flush()
        assert handler.errors == []

    async def read() -> list[str]:
        async with connect(server.key, server.url) as client, ClientSession(client, session) as reader:
            await reader.wait_for(lambda: sum(r.status == names.RunStatus.COMPLETE for r in reader.runs()) == 4)
            return [m.content for m in _all_messages(reader)]

    contents = asyncio.run(read())
    for question, answer in zip(["q1", "q2", "q3", "q4"], [first, second, *rest], strict=True):
        assert question in contents and answer in contents


async def test_tool_calls_and_results_become_one_multi_step_assistant_message(clients, channel_name):
    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    # GenericFakeChatModel cannot stream tool calls; this one streams exactly the chunks a provider would.
    caller = ScriptedChatModel(chunks=[
        AIMessageChunk(content="", tool_call_chunks=[{"name": "weather", "args": '{"city": "Paris"}',
                                                      "id": "call-1", "index": 0}])])
    answerer = _model("It is sunny in Paris.")

    async def agent(question: str) -> str:
        reply = await caller.ainvoke([HumanMessage(question)])
        result = await weather.ainvoke(reply.tool_calls[0] | {"type": "tool_call"})
        final = await answerer.ainvoke([HumanMessage(question), reply, result])
        return final.content

    handler = AblyCallbackHandler(await clients(), session=channel_name, coalesce_window=0.0)
    answer = await RunnableLambda(agent).ainvoke("Weather in Paris?", {"callbacks": [handler]})
    await handler.aflush()
    reader = await _conversation(clients, channel_name, 1)
    try:
        view = reader.view()
        assert [e["message"]["role"] for e in view] == ["user", "assistant"]
        parts = view[1]["message"]["parts"]
        assert [p["type"] for p in parts if p["type"] in ("step-start", "tool-weather", "text")] == [
            "step-start", "tool-weather", "step-start", "text"]
        tool_part = next(p for p in parts if p["type"] == "tool-weather")
        assert (tool_part["input"], tool_part["output"]) == ({"city": "Paris"}, "sunny in Paris")
        messages = reader.messages()
        assert isinstance(messages[2], ToolMessage) and messages[-1].content == answer == "It is sunny in Paris."
    finally:
        await reader.__aexit__(None, None, None)
        await handler.aclose()


async def test_an_erroring_chain_ends_its_run_with_the_error_and_the_chain_sees_its_own_error(clients, channel_name):
    def explode(_: str) -> str:
        raise ValueError("the retriever is down")

    handler = AblyCallbackHandler(await clients(), session=channel_name)
    chain = _chain("partial") | RunnableLambda(explode)
    with pytest.raises(ValueError, match="the retriever is down"):
        await chain.ainvoke({"question": "q"}, {"callbacks": [handler]})
    await handler.aflush()
    reader = await _conversation(clients, channel_name, 1)
    try:
        run = reader.runs()[0]
        assert run.status == names.RunStatus.ERROR and run.error.message == "the retriever is down"
    finally:
        await reader.__aexit__(None, None, None)
        await handler.aclose()


def _slow_tokens(reply: str, pause_s: float) -> RunnableLambda:
    """A chain step that streams `reply` from a model, a token every `pause_s` seconds, and returns it."""
    model = _model(reply)

    async def slow_tokens(question: str) -> str:
        text = ""
        async for chunk in model.astream(question):
            text += chunk.content
            await asyncio.sleep(pause_s)
        return text

    return RunnableLambda(slow_tokens)


async def test_a_client_cancel_stops_an_async_chain(clients, channel_name):
    slow_tokens = _slow_tokens(" ".join(f"token{i}" for i in range(2000)), 0.002)
    handler = AblyCallbackHandler(await clients(), session=channel_name, coalesce_window=0.0)
    async with ClientSession(await clients(), channel_name) as watcher:
        chain_task = asyncio.ensure_future(slow_tokens.ainvoke("go", {"callbacks": [handler]}))
        assert await watcher.wait_for(lambda: "token50" in str(watcher.view()), timeout=10)
        await watcher.cancel(watcher.runs()[0].key)
        with pytest.raises(Exception, match="cancelled"):
            await asyncio.wait_for(chain_task, 10)
        await handler.aflush()
        assert await watcher.wait_for(lambda: watcher.runs()[0].status == names.RunStatus.CANCELLED)
        assert "token1999" not in str(watcher.view())
    await handler.aclose()


async def test_a_chain_whose_connection_ably_ends_runs_to_its_end_and_its_run_reads_as_lost(strict, clients):
    """No client cancelled it: the chain gets its whole answer, not a `RunCancelledError`, and the run, which can
    publish nothing more, is lost for the clients (the agent's presence left with its connection)."""
    long_reply = " ".join(f"token{i}" for i in range(400))
    agent = await clients(strict, client_id="agent")
    session_name = f"test:{uuid.uuid4().hex[:12]}"
    handler = AblyCallbackHandler(agent, session=session_name, coalesce_window=0.0)
    async with ClientSession(await clients(strict, client_id="user"), session_name) as watcher:
        chain = _slow_tokens(long_reply, 0.005) | StrOutputParser()  # a step after the model: a callback to raise from
        chain_task = asyncio.ensure_future(chain.ainvoke("go", {"callbacks": [handler]}))
        assert await watcher.wait_for(lambda: "token20" in str(watcher.view()), timeout=10)
        await flood_until_failed(agent)
        assert await asyncio.wait_for(chain_task, 20) == long_reply
        await handler.aflush()
        assert await watcher.wait_for(lambda: watcher.lost_runs() == [watcher.runs()[0].key], 10), watcher.runs()
    await handler.aclose()


async def test_a_handler_bound_to_a_run_adds_the_chain_to_that_run_and_leaves_ending_it_to_its_owner(
        clients, channel_name):
    from langchain_ably_transport import AgentSession

    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("Summarise our chat")
        async with AgentSession(await clients(), channel_name) as agent:
            run = await agent.create_run(sent.invocation)
            await run.start()
            handler = AblyCallbackHandler(run=run)
            output = await _chain("A short summary.").ainvoke({"question": "summarise"}, {"callbacks": [handler]})
            await handler.aflush()
            assert user.runs()[0].status == names.RunStatus.ACTIVE, "the owner has not ended the run yet"
            await run.end()
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.COMPLETE)
        assert [m.content for m in user.messages()] == ["Summarise our chat", output]
        await handler.aclose()
