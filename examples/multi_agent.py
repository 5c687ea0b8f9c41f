"""A supervisor and two sub-agents served on one session: every message says which agent wrote it.

The graph: a supervisor node, then a `researcher` (a `create_agent` sub-agent with a `search_docs` tool),
then a `writer` (a `create_agent` sub-agent with no tools); a fixed pipeline, to keep the example short.
`serve_graph` answers the user's message with one run: the supervisor's pass is the run's main message, and
each sub-agent pass is an assistant message of its own whose metadata names its agent
(`{"agent": "researcher", "namespace": [...]}`). The client prints every assistant message with that label.

Needs `langchain` for `create_agent` (`pip install langchain`; `pip install -e '.[dev]'` has it).
Runs against Ably when ABLY_API_KEY (and optionally ABLY_ENDPOINT) is set; otherwise it runs on the embedded default
(`endpoint="local"`: this user's local dev server, started once and reused), so it works offline. The models are
scripted unless OPENAI_API_KEY is set and `langchain-openai` is installed.

    python examples/multi_agent.py
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from _ably import ably_or_local
from _fake_models import chat_model, tool_calling_model
from langchain.agents import create_agent
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_ably_transport import AblySaver, ClientSession, connect
from langchain_ably_transport.graph import serve_graph

QUESTION = "Write a one-line release note about the new checkpointer."


@tool
def search_docs(topic: str) -> str:
    """Search the project's documentation."""
    return "AblySaver keeps LangGraph checkpoints in Ably channels, no database needed"


def supervisor_graph(saver: AblySaver) -> Any:
    """START -> supervisor -> researcher -> writer -> END."""
    supervisor_model = chat_model("I'll ask the researcher for the facts, then the writer for the note.")

    async def supervisor(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await supervisor_model.ainvoke(state["messages"])]}

    researcher = create_agent(tool_calling_model("search_docs", {"topic": "checkpointer"}, "Found:"),
                              tools=[search_docs], name="researcher",
                              system_prompt="Find the facts with search_docs and report them.")
    writer = create_agent(chat_model("New: AblySaver, LangGraph checkpoints in Ably channels, no database."),
                          name="writer", system_prompt="Write the release note from the research.")

    graph = StateGraph(MessagesState)
    graph.add_node("supervisor", supervisor)
    graph.add_node("researcher", researcher)
    graph.add_node("writer", writer)
    graph.add_edge(START, "supervisor")
    graph.add_edge("supervisor", "researcher")
    graph.add_edge("researcher", "writer")
    graph.add_edge("writer", END)
    return graph.compile(checkpointer=saver)


def describe(message: dict[str, Any]) -> str:
    """An assistant UIMessage as one line: its text, or the tool calls it made and their results."""
    text = "".join(part.get("text", "") for part in message["parts"] if part["type"] == "text")
    calls = [f"calls {part['type'].removeprefix('tool-')}({part['input']}) -> {part.get('output')!r}"
             for part in message["parts"] if part["type"].startswith("tool-")]
    return text or "; ".join(calls)


async def run(key: str | None, endpoint: str | None) -> None:
    session = f"conversations:team-{uuid.uuid4().hex[:6]}"
    async with (
        connect(key, endpoint, client_id="agent") as agent,
        connect(key, endpoint, client_id="user") as ably,
        ClientSession(ably, session) as user,
    ):
        print(f"session {session!r}\nuser: {QUESTION}")
        sent = await user.send(QUESTION)
        # In production this runs in the agent's endpoint, from the invocation the client POSTs.
        result = await serve_graph(supervisor_graph(AblySaver(agent)), sent.invocation, client=agent)
        print(f"run {result.run_id[:8]}… {result.outcome}")
        await user.wait_for(lambda: bool(user.runs()) and user.runs()[0].status != "active")

        for entry in user.view():
            message = entry["message"]
            if message["role"] == "assistant":
                # Sub-agent passes carry their agent's name; the root graph's (the supervisor's) carry none.
                label = (message.get("metadata") or {}).get("agent") or "supervisor"
                print(f"  [{label}] {describe(message)}")


def main() -> None:
    key, endpoint = ably_or_local()
    asyncio.run(run(key, endpoint))


if __name__ == "__main__":
    main()
