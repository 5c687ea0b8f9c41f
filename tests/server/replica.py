"""The app a replica of the serving tests runs (`uvicorn tests.server.replica:app --factory`), and its graph.

The graph answers each message with the number of the turn, so a reply shows whether the thread went on (its
state came from `AblySaver`, whichever replica served the turn before), and which replica served it.
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.graph import MessagesState, StateGraph
from starlette.applications import Starlette

from langchain_ably_transport.server import create_app

from ..graph.graphs import chat_builder

REPLICA = os.environ.get("REPLICA_NAME", "in-process")


def counting_builder(delay: float = 0.0) -> StateGraph:
    """START -> chat -> END; `chat` streams "turn N from REPLICA" word by word, `delay` seconds apart."""

    def reply(state: MessagesState) -> str:
        turn = sum(isinstance(message, HumanMessage) for message in state["messages"])
        return " ".join(["turn", str(turn), "from", REPLICA, *(["word"] * (int(delay > 0) * 20))])

    return chat_builder(reply, delay=delay)


def demo_identify(request: Any, session: str) -> str | None:
    """Tests only: the clientId the request names. A real app reads its own login (docs/deploy.md)."""
    return request.query_params.get("clientId") or None


def app() -> Starlette:
    return create_app(counting_builder(float(os.environ.get("REPLY_DELAY_S", "0"))),
                      key=os.environ["ABLY_API_KEY"], endpoint=os.environ["ABLY_ENDPOINT"], identify=demo_identify,
                      grace_period_s=float(os.environ.get("GRACE_PERIOD_S", "25")))
