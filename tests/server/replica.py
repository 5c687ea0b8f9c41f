"""The app a replica of the serving tests runs (`uvicorn tests.server.replica:app --factory`), and its graph.

The graph answers each message with the number of the turn, so a reply shows whether the thread went on (its
state came from `AblySaver`, whichever replica served the turn before), and which replica served it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from starlette.applications import Starlette

from langchain_ably_transport.server import create_app

REPLICA = os.environ.get("REPLICA_NAME", "in-process")


def counting_builder(delay: float = 0.0) -> StateGraph:
    """START -> chat -> END; `chat` streams "turn N from REPLICA" word by word, `delay` seconds apart."""

    async def chat(state: MessagesState) -> dict[str, Any]:
        turn = sum(isinstance(message, HumanMessage) for message in state["messages"])
        text = " ".join(["turn", str(turn), "from", REPLICA, *(["word"] * (int(delay > 0) * 20))])
        model = GenericFakeChatModel(messages=iter([AIMessage(content=text)]))
        last = None
        async for chunk in model.astream(state["messages"]):
            last = chunk if last is None else last + chunk
            await asyncio.sleep(delay)
        return {"messages": [last]}

    builder = StateGraph(MessagesState)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", END)
    return builder


def demo_identify(request: Any, session: str) -> str | None:
    """Tests only: the clientId the request names. A real app reads its own login (docs/deploy.md)."""
    return request.query_params.get("clientId") or None


def app() -> Starlette:
    return create_app(counting_builder(float(os.environ.get("REPLY_DELAY_S", "0"))),
                      key=os.environ["ABLY_API_KEY"], endpoint=os.environ["ABLY_ENDPOINT"], identify=demo_identify,
                      grace_period_s=float(os.environ.get("GRACE_PERIOD_S", "25")))
