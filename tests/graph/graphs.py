"""Graphs the serving tests run, importable by child processes too."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt

from langchain_ably_transport import AblySaver, connect
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire.invocation import Invocation


def chat_graph(saver: AblySaver, *replies: str, delay: float = 0.0) -> Any:
    """START -> chat (a streaming fake model) -> END."""
    texts = iter(replies)
    return chat_builder(lambda state: next(texts), delay=delay).compile(checkpointer=saver)


def chat_node(reply: Callable[[MessagesState], str], *, delay: float = 0.0) -> Callable[..., Any]:
    """A node that streams `reply(state)` word by word, `delay` seconds apart."""

    async def chat(state: MessagesState) -> dict[str, Any]:
        model = GenericFakeChatModel(messages=iter([AIMessage(content=reply(state))]))
        last = None
        async for chunk in model.astream(state["messages"]):
            last = chunk if last is None else last + chunk
            await asyncio.sleep(delay)
        return {"messages": [last]}

    return chat


def chat_builder(reply: Callable[[MessagesState], str], *, delay: float = 0.0) -> StateGraph:
    """START -> chat -> END, uncompiled; `chat` streams `reply(state)` word by word, `delay` seconds apart."""
    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat_node(reply, delay=delay))
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    return graph


def approval_graph(saver: AblySaver) -> Any:
    """START -> plan -> approve (interrupt) -> act -> END; `act` answers with the approval it got."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content="I plan to deploy.")]))

    async def plan(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def approve(state: MessagesState) -> dict[str, Any]:
        answer = interrupt({"question": "Deploy to production?"})
        return {"messages": [AIMessage(content=f"Approval received: {answer}.")]}

    return linear_graph(saver, plan, approve)


def linear_graph(saver: AblySaver, *nodes: Any) -> Any:
    """START -> each node (named after its function) in turn -> END, over `MessagesState`."""
    graph = StateGraph(MessagesState)
    names = [node.__name__ for node in nodes]
    for name, node in zip(names, nodes, strict=True):
        graph.add_node(name, node)
    for source, target in zip([START, *names], [*names, END], strict=True):
        graph.add_edge(source, target)
    return graph.compile(checkpointer=saver)


class DeployModel(BaseChatModel):
    """A tool-calling model: it streams a `deploy(env="prod")` call (arguments in two fragments), and once the
    tool has answered, a sentence quoting the answer."""

    @property
    def _llm_type(self) -> str:
        return "deploy-script"

    def bind_tools(self, tools: Any, **kwargs: Any) -> DeployModel:
        return self

    def _turn(self, messages: list[BaseMessage]) -> list[AIMessageChunk]:
        if isinstance(messages[-1], ToolMessage):
            return [AIMessageChunk(content="Done: "), AIMessageChunk(content=f"{messages[-1].content}.")]
        fragments = [{"name": "deploy", "args": '{"env": ', "id": "call_deploy", "index": 0},
                     {"name": None, "args": '"prod"}', "id": None, "index": 0}]
        return [AIMessageChunk(content="", tool_call_chunks=[fragment]) for fragment in fragments]

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        merged = sum(self._turn(messages)[1:], self._turn(messages)[0])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=merged.content,
                                                                        tool_calls=merged.tool_calls))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Any:
        for message in self._turn(messages):
            yield ChatGenerationChunk(message=message)


@tool
def deploy(env: str) -> str:
    """Deploy the service to an environment."""
    return f"deployed to {env}"


def hitl_agent(saver: AblySaver, interrupt_mode: str = "batched") -> Any:
    """`create_agent` with `deploy` gated by LangChain's `HumanInTheLoopMiddleware`."""
    from langchain.agents import create_agent  # a test-only dependency (the `dev` extra)
    from langchain.agents.middleware import HumanInTheLoopMiddleware

    middleware = HumanInTheLoopMiddleware(interrupt_on={"deploy": True}, interrupt_mode=interrupt_mode)
    return create_agent(DeployModel(), tools=[deploy], middleware=[middleware], checkpointer=saver)


async def _serve_once(url: str, key: str, invocation: str) -> None:
    async with connect(key, url, client_id="graph-worker") as client:
        result = await serve_graph(approval_graph(AblySaver(client)), Invocation.from_json(invocation), client=client)
        print(json.dumps({"outcome": result.outcome, "run_id": result.run_id,
                          "interrupts": [i.id for i in result.interrupts]}))


if __name__ == "__main__":  # a worker process that serves one invocation of the approval graph and exits
    asyncio.run(_serve_once(*sys.argv[1:4]))


def parallel_questions_graph(saver: AblySaver) -> Any:
    """START -> (ask_a, ask_b in parallel; ask_b inside a subgraph) -> join -> END; each ask interrupts."""
    from langchain_core.messages import AIMessage as Reply

    def ask_a(state: MessagesState) -> dict[str, Any]:
        return {"messages": [Reply(content=f"a={interrupt('question a')}")]}

    def ask_b(state: MessagesState) -> dict[str, Any]:
        return {"messages": [Reply(content=f"b={interrupt('question b')}")]}

    inner = StateGraph(MessagesState)
    inner.add_node("ask_b", ask_b)
    inner.add_edge(START, "ask_b")
    inner.add_edge("ask_b", END)

    def join(state: MessagesState) -> dict[str, Any]:
        return {"messages": [Reply(content="joined")]}

    graph = StateGraph(MessagesState)
    graph.add_node("ask_a", ask_a)
    graph.add_node("branch_b", inner.compile())
    graph.add_node("join", join)
    graph.add_edge(START, "ask_a")
    graph.add_edge(START, "branch_b")
    graph.add_edge(["ask_a", "branch_b"], "join")
    graph.add_edge("join", END)
    return graph.compile(checkpointer=saver)


def nested_chat_graph(saver: AblySaver, *replies: str, delay: float = 0.0) -> Any:
    """The chat graph as a subgraph node of a parent graph: its model streams from inside the subgraph."""
    graph = StateGraph(MessagesState)
    graph.add_node("researcher", chat_graph(None, *replies, delay=delay))  # type: ignore[arg-type]
    graph.add_edge(START, "researcher")
    graph.add_edge("researcher", END)
    return graph.compile(checkpointer=saver)


class PacedChatModel(BaseChatModel):
    """Streams `reply` word by word, `delay` seconds apart, from `ainvoke` too: LangGraph's v3 stream (what the
    agent-protocol codec reads) streams a model's tokens when a node invokes it, not when it iterates `astream`."""

    reply: str
    delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "paced-script"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> Any:
        for i, word in enumerate(self.reply.split(" ")):
            await asyncio.sleep(self.delay)
            yield ChatGenerationChunk(message=AIMessageChunk(content=word if i == 0 else f" {word}"))


def _paced_node(reply: str, delay: float = 0.0) -> Callable[..., Any]:
    model = PacedChatModel(reply=reply, delay=delay)

    async def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    return chat


def protocol_graph(saver: Any, reply: str = "Happy to help with that.", *, delay: float = 0.0,
                   approve: bool = False) -> Any:
    """START -> chat (streams `reply` word by word, `delay` s apart) [-> approve (interrupt) -> END]: what the
    agent-protocol tests serve; `approve` asks the user, and answers with the answer it got."""
    def approval(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"Answer received: {interrupt({'question': 'Go ahead?'})}.")]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", _paced_node(reply, delay))
    graph.add_edge(START, "chat")
    if approve:
        graph.add_node("approve", approval)
        graph.add_edge("chat", "approve")
    graph.add_edge("approve" if approve else "chat", END)
    return graph.compile(checkpointer=saver)


def protocol_subgraph_graph(saver: Any) -> Any:
    """START -> research (a subgraph whose node streams "Found it.") -> answer (streams the answer) -> END."""
    research = StateGraph(MessagesState)
    research.add_node("search", _paced_node("Found it."))
    research.add_edge(START, "search")
    research.add_edge("search", END)
    graph = StateGraph(MessagesState)
    graph.add_node("research", research.compile())
    graph.add_node("answer", _paced_node("Here is the answer."))
    graph.add_edge(START, "research")
    graph.add_edge("research", "answer")
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=saver)


def protocol_tool_agent(saver: Any) -> Any:
    """`create_agent` calling `deploy` once, then quoting its answer."""
    from langchain.agents import create_agent

    return create_agent(DeployModel(), [deploy], checkpointer=saver)
