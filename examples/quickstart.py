"""The main demo: a LangChain chain streams into a durable session, and a client renders it live and from history.

1. A chain (`prompt | chat model | parser`) runs with `AblyCallbackHandler`: its input becomes the user's message
   and its tokens stream into a run on the session channel.
2. A client following the session live prints the reply as it streams.
3. A client that joins afterwards rebuilds the whole conversation from the channel alone.

Runs against Ably when ABLY_API_KEY (and optionally ABLY_ENDPOINT) is set; otherwise it runs on the embedded default
(`endpoint="local"`: this user's local dev server, started once and reused), so it works offline. The chat model is
a scripted fake unless OPENAI_API_KEY is set and `langchain-openai` is installed."""

from __future__ import annotations

import asyncio
import os
import uuid

from _ably import ably_or_local
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_ably_transport import AblyCallbackHandler, ClientSession, connect

QUESTION = "Why make an Ably channel the session of an agent?"
SCRIPTED_REPLY = (
    "Because the channel outlives every process: the agent streams into it, any device can join mid-answer, "
    "and a client that reloads rebuilds the conversation from history, with nothing lost."
)


def chat_model() -> BaseChatModel:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model="gpt-4o-mini")
        except ImportError:
            pass
    return GenericFakeChatModel(messages=iter([AIMessage(content=SCRIPTED_REPLY)]))


async def run(key: str | None, endpoint: str | None) -> None:
    session = f"conversations:demo-{uuid.uuid4().hex[:6]}"
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | chat_model() | StrOutputParser()
    async with connect(key, endpoint, client_id="agent") as agent, connect(key, endpoint, client_id="viewer") as viewer:
        async with ClientSession(viewer, session) as live:
            print(f"session {session!r}\n  user: {QUESTION}\n  agent (live): ", end="", flush=True)
            follow = asyncio.ensure_future(print_stream(live))
            handler = AblyCallbackHandler(agent, session=session)
            await chain.ainvoke({"question": QUESTION}, {"callbacks": [handler]})
            await handler.aflush()
            await live.wait_for(lambda: any(r.status != "active" for r in live.runs()), timeout=15)
            follow.cancel()
            await handler.aclose()
        async with connect(key, endpoint, client_id="late") as late, ClientSession(late, session) as rejoined:
            print("\n\na client joining later rebuilds the conversation from the channel:")
            for message in rejoined.messages():
                print(f"  {message.type}: {message.content}")


async def print_stream(session: ClientSession) -> None:
    async for _, events in session.events():
        for event in events:
            if event.direction == "output" and event.event.get("type") == "text-delta":
                print(event.event["delta"], end="", flush=True)


def main() -> None:
    key, endpoint = ably_or_local()
    asyncio.run(run(key, endpoint))


if __name__ == "__main__":
    main()
