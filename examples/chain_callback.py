"""`AblyCallbackHandler` on a plain LangChain chain: every call streams into the session as a run of its own.

The chain (`prompt | chat model | parser`) knows nothing about Ably: the handler, passed in the call's
config, publishes the chain's input as the user's message and the model's tokens as the reply. A
`ClientSession` (what a browser or another service would run) prints each reply live, token by token.

Runs against Ably when ABLY_API_KEY (and optionally ABLY_ENDPOINT) is set; otherwise it runs on the embedded default
(`endpoint="local"`: this user's local dev server, started once and reused), so it works offline. The chat model is
scripted unless OPENAI_API_KEY is set and `langchain-openai` is installed.

    python examples/chain_callback.py
"""

from __future__ import annotations

import asyncio
import uuid

from _ably import ably_or_local
from _fake_models import chat_model
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_ably_transport import AblyCallbackHandler, ClientSession, connect

QUESTIONS = ["What does AblyCallbackHandler publish?", "And when the chain raises?"]
REPLIES = [
    "The chain's input as the user's message, then the model's tokens as one assistant message, live.",
    "The run ends with an error carrying the exception's message, and the chain still gets its exception.",
]


async def run(key: str | None, endpoint: str | None) -> None:
    session = f"conversations:chain-{uuid.uuid4().hex[:6]}"
    prompt = ChatPromptTemplate.from_messages([("system", "Answer in one sentence."), ("human", "{question}")])
    chain = prompt | chat_model(*REPLIES, in_call_order=True) | StrOutputParser()

    async with (
        connect(key, endpoint, client_id="agent") as agent,
        connect(key, endpoint, client_id="viewer") as viewer,
        ClientSession(viewer, session) as live,
    ):
        print(f"session {session!r}")
        follow = asyncio.ensure_future(print_replies(live))
        # One handler for the whole session: each outermost chain call becomes a run of its own.
        handler = AblyCallbackHandler(agent, session=session)
        for turn, question in enumerate(QUESTIONS, start=1):
            print(f"  user: {question}", flush=True)
            answer = await chain.ainvoke({"question": question}, {"callbacks": [handler]})
            await handler.aflush()  # everything published, and this chain's run ended
            await live.wait_for(lambda n=turn: sum(r.status != "active" for r in live.runs()) >= n)
            print(f"\n  the client's copy equals what ainvoke returned: {live.messages()[-1].content == answer}")
        follow.cancel()
        await handler.aclose()
        print("runs on the channel:", ", ".join(f"{r.key[:8]}… {r.status}" for r in live.runs()))


async def print_replies(session: ClientSession) -> None:
    """Print text deltas as the client receives them: this is what a UI would render."""
    async for _, events in session.events():
        for event in events:
            if event.direction != "output":
                continue
            if event.event.get("type") == "text-start":
                print("  agent (live): ", end="", flush=True)
            elif event.event.get("type") == "text-delta":
                print(event.event["delta"], end="", flush=True)


def main() -> None:
    key, endpoint = ably_or_local()
    asyncio.run(run(key, endpoint))


if __name__ == "__main__":
    main()
