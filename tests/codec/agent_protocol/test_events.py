"""`EventNormalizer`: LangGraph's v3 stream of real graphs, normalised to the protocol's JSON events."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, interrupt

from examples._fake_models import ScriptedChatModel, ScriptedToolModel
from langchain_ably_transport.codec.agent_protocol import EventNormalizer, to_json


async def normalized(graph: Any, graph_input: Any, thread: str = "t") -> list[dict[str, Any]]:
    normalizer = EventNormalizer("agent")
    config = {"configurable": {"thread_id": thread}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = await graph.astream_events(graph_input, config, version="v3", transformers=normalizer.transformers())
    events = [normalizer.running()]
    async for raw in run:
        events += normalizer.normalize(raw)
    events += normalizer.flush()
    for item in events:
        json.dumps(item, allow_nan=False)  # every event is JSON as it stands
    return events


def chat_then_approve() -> Any:
    model = ScriptedChatModel(replies=["Hello there friend"])

    async def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def approve(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"got {interrupt({'question': 'ok?'})}")]}

    sub = StateGraph(MessagesState)
    sub.add_node("approve", approve)
    sub.add_edge(START, "approve")
    sub.add_edge("approve", END)
    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_node("sub", sub.compile())
    graph.add_edge(START, "chat")
    graph.add_edge("chat", "sub")
    graph.add_edge("sub", END)
    return graph.compile(checkpointer=InMemorySaver())


def of(events: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [e for e in events if e["method"] == method]


@pytest.mark.asyncio
async def test_tokens_are_content_block_deltas_and_values_are_message_dicts() -> None:
    events = await normalized(chat_then_approve(), {"messages": [HumanMessage("hi")]})
    assert events[0]["params"]["data"] == {"event": "running", "graph_name": "agent"}
    data = [e["params"]["data"] for e in of(events, "messages")]
    assert [d["event"] for d in data] == ["message-start", "content-block-start", "content-block-delta",
                                          "content-block-delta", "content-block-delta", "content-block-finish",
                                          "message-finish"]
    assert "".join(d["delta"]["text"] for d in data if d["event"] == "content-block-delta") == "Hello there friend"
    assert {e["params"]["node"] for e in of(events, "messages")} == {"chat"}  # the SDK keys a message by its node
    root_values = [e["params"]["data"] for e in of(events, "values") if e["params"]["namespace"] == []]
    assert [m["type"] for m in root_values[-1]["messages"]] == ["human", "ai"]
    assert root_values[-1]["messages"][0]["content"] == "hi"


@pytest.mark.asyncio
async def test_an_interrupt_is_requested_once_and_subgraph_lifecycle_moves_to_its_namespace() -> None:
    events = await normalized(chat_then_approve(), {"messages": [HumanMessage("hi")]})
    requested = of(events, "input.requested")
    assert len(requested) == 1  # shown in the subgraph's values and again at the root: asked once
    assert requested[0]["params"]["data"]["payload"] == {"question": "ok?"}
    lifecycle = of(events, "lifecycle")[1:]
    assert [e["params"]["data"]["event"] for e in lifecycle] == ["started", "interrupted"]
    assert all(e["params"]["namespace"][0].startswith("sub:") for e in lifecycle)
    assert "namespace" not in lifecycle[0]["params"]["data"]
    assert all("__interrupt__" not in json.dumps(e["params"]["data"]) for e in of(events, "updates"))


@pytest.mark.asyncio
async def test_updates_and_checkpoints_take_the_protocol_shapes() -> None:
    events = await normalized(chat_then_approve(), {"messages": [HumanMessage("hi")]})
    updates = [e["params"]["data"] for e in of(events, "updates") if e["params"]["namespace"] == []]
    assert updates[0]["node"] == "chat" and updates[0]["values"]["messages"][0]["type"] == "ai"
    checkpoints = [e["params"]["data"] for e in of(events, "checkpoints") if e["params"]["namespace"] == []]
    assert checkpoints[0]["source"] == "input" and checkpoints[0]["step"] == -1
    assert checkpoints[1]["parent_id"] == checkpoints[0]["id"]


@pytest.mark.asyncio
async def test_tasks_are_told_in_their_namespace_without_their_inputs() -> None:
    events = await normalized(chat_then_approve(), {"messages": [HumanMessage("hi")]})
    tasks = of(events, "tasks")
    root = [e["params"]["data"] for e in tasks if e["params"]["namespace"] == []]
    assert [t["name"] for t in root if "triggers" in t] == ["chat", "sub"]  # each task's start
    assert any(t["name"] == "chat" and t.get("error") is None and "triggers" not in t for t in root)  # its result
    nested = [e for e in tasks if e["params"]["namespace"]]
    assert any(e["params"]["namespace"][0].startswith("sub:") and e["params"]["data"]["name"] == "approve"
               for e in nested)
    assert all("input" not in e["params"]["data"] and "result" not in e["params"]["data"] for e in tasks)


@pytest.mark.asyncio
async def test_resuming_completes_the_subgraph_and_asks_nothing_again() -> None:
    graph = chat_then_approve()
    normalizer_events = await normalized(graph, {"messages": [HumanMessage("hi")]}, thread="r")
    assert of(normalizer_events, "input.requested")
    events = await normalized(graph, Command(resume="yes"), thread="r")
    assert not of(events, "input.requested")
    whole = [e["params"]["data"] for e in of(events, "messages")]  # a message a node returned whole
    assert whole[0]["event"] == "message-start" and whole[-1]["event"] == "message-finish"
    assert any(d.get("delta", {}).get("text") == "got yes" for d in whole)


@pytest.mark.asyncio
async def test_tool_calls_stream_as_tool_call_deltas_and_tools_events() -> None:
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    agent = create_agent(ScriptedToolModel(tool="weather", args={"city": "Paris"}), [weather],
                         checkpointer=InMemorySaver())
    events = await normalized(agent, {"messages": [HumanMessage("weather?")]})
    deltas = [e["params"]["data"]["delta"] for e in of(events, "messages")
              if e["params"]["data"]["event"] == "content-block-delta"]
    assert "".join(d["args"] for d in deltas if d["type"] == "tool-call-delta") == '{"city": "Paris"}'
    tools = [e["params"]["data"] for e in of(events, "tools")]
    assert [t["event"] for t in tools] == ["tool-started", "tool-finished"]
    assert tools[0]["input"] == {"city": "Paris"}
    assert tools[1]["output"]["content"] == "sunny in Paris"


def test_to_json_turns_langchain_and_langgraph_objects_into_json() -> None:
    from langgraph.types import Interrupt

    value = {"messages": (HumanMessage("hi", id="1"),), "asked": Interrupt(value={"q": 1}, id="i"), "n": {1, 2},
             "other": object}
    data = to_json(value)
    assert data["messages"][0]["type"] == "human" and data["messages"][0]["id"] == "1"
    assert data["asked"] == {"id": "i", "value": {"q": 1}}
    assert sorted(data["n"]) == [1, 2] and isinstance(data["other"], str)
