"""Scripted chat models for the examples, so they run offline; `chat_model()` picks OpenAI when it can.

`ScriptedChatModel` answers the n-th user message with the n-th reply of its script. It decides from the
conversation it is given, not from a counter of its own, so a model built in another process (or after the
state was reloaded from the channel) carries on where the conversation is.
`ScriptedToolModel` streams one tool call, then, once the tool has answered, a sentence quoting its result:
the shape of a real tool-calling turn, enough for `create_agent` and its middlewares.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph


def chat_model(*replies: str, in_call_order: bool = False, delay: float = 0.0) -> BaseChatModel:
    """`ChatOpenAI` when OPENAI_API_KEY is set and `langchain-openai` is installed, else a scripted model:
    by default `ScriptedChatModel` (the reply follows the conversation's turn, streamed `delay` seconds a word);
    `in_call_order=True` answers successive calls with successive replies, for chains that send each question on
    its own."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model="gpt-4o-mini")
        except ImportError:
            pass
    if in_call_order:
        return GenericFakeChatModel(messages=iter([AIMessage(content=reply) for reply in replies]))
    return ScriptedChatModel(replies=list(replies), delay=delay)


def tool_calling_model(tool: str, args: dict[str, Any], done_prefix: str = "Done:") -> BaseChatModel:
    """`ChatOpenAI` when it can (it decides which tool to call), else `ScriptedToolModel` calling `tool`."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model="gpt-4o-mini")
        except ImportError:
            pass
    return ScriptedToolModel(tool=tool, args=args, done_prefix=done_prefix)


class _StreamingFake(BaseChatModel):
    """A chat model whose turn is a list of chunks: `invoke` merges them, `stream` yields them, `delay` seconds
    apart in `astream` (and in `ainvoke` under LangGraph, which streams a node's model calls)."""

    delay: float = 0.0

    def _turn(self, messages: list[BaseMessage]) -> list[AIMessageChunk]:
        raise NotImplementedError

    def bind_tools(self, tools: Any, **kwargs: Any) -> BaseChatModel:
        return self  # the script already knows which tool it calls

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        chunks = self._turn(messages)
        merged = sum(chunks[1:], chunks[0])
        message = AIMessage(content=merged.content, tool_calls=merged.tool_calls)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        # LangChain's `stream`/`astream` report each chunk to the callbacks (`on_llm_new_token`) themselves.
        for chunk in self._turn(messages):
            yield ChatGenerationChunk(message=chunk)

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._turn(messages):
            await asyncio.sleep(self.delay)
            yield ChatGenerationChunk(message=chunk)


def chat_builder(system: tuple[str, str], *replies: str, delay: float = 0.0) -> StateGraph:
    """START -> chat -> END, uncompiled: one model pass (`chat_model(*replies, delay=delay)`) over the whole thread,
    after the `system` message. The node calls `ainvoke`, which LangGraph streams token by token."""
    model = chat_model(*replies, delay=delay)

    async def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke([system, *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    return graph


class ScriptedChatModel(_StreamingFake):
    """Answers the n-th user message of the conversation with `replies[n - 1]` (the last one after that),
    streamed word by word."""

    replies: list[str]

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    def _turn(self, messages: list[BaseMessage]) -> list[AIMessageChunk]:
        turn = sum(isinstance(m, HumanMessage) for m in messages)
        reply = self.replies[min(max(turn, 1), len(self.replies)) - 1]
        words = reply.split(" ")
        return [AIMessageChunk(content=word if i == 0 else f" {word}") for i, word in enumerate(words)]


class ScriptedToolModel(_StreamingFake):
    """Calls `tool` with `args` (streaming the arguments in two fragments, as providers do); once the last
    message is the tool's answer, replies `"<done_prefix> <tool output>."`."""

    tool: str
    args: dict[str, Any]
    done_prefix: str = "Done:"

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-call"

    def _turn(self, messages: list[BaseMessage]) -> list[AIMessageChunk]:
        if isinstance(messages[-1], ToolMessage):
            return [AIMessageChunk(content=f"{self.done_prefix} "), AIMessageChunk(content=f"{messages[-1].content}.")]
        arguments = json.dumps(self.args)
        half = len(arguments) // 2
        call_id = f"call_{self.tool}"
        fragments = [{"name": self.tool, "args": arguments[:half], "id": call_id, "index": 0},
                     {"name": None, "args": arguments[half:], "id": None, "index": 0}]
        return [AIMessageChunk(content="", tool_call_chunks=[fragment]) for fragment in fragments]
