"""`AblySaver`: a LangGraph checkpointer with no database, the thread's state kept in an Ably channel.

1. A small chat graph is compiled with `AblySaver` and answers a first message.
2. `get_state` and `get_state_history` read the thread back: its messages and one checkpoint per super-step.
3. A *fresh* saver, on a new Ably connection with nothing cached (as a new process or serverless invocation
   would be), compiles the same graph and continues the thread: the earlier messages come from the channel.

Runs against Ably when ABLY_API_KEY (and optionally ABLY_ENDPOINT) is set; otherwise it runs on the embedded default
(`endpoint="local"`: this user's local dev server, started once and reused), so it works offline. The chat model is
scripted unless OPENAI_API_KEY is set and `langchain-openai` is installed.

    python examples/checkpointer.py
"""

from __future__ import annotations

import uuid
from typing import Any

from _ably import ably_or_local
from _fake_models import chat_model
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_ably_transport import AblySaver

SYSTEM = ("system", "You are a terse assistant. Remember what the user tells you.")
REPLIES = ["Nice to meet you, Ada.", "You told me your name is Ada, and this is our second exchange."]


def builder() -> StateGraph:
    """START -> chat -> END; the model sees the whole thread, so its answer depends on the restored state."""
    model = chat_model(*REPLIES)

    def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke([SYSTEM, *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    return graph


def show(label: str, messages: list[Any]) -> None:
    print(label)
    for message in messages:
        print(f"  {message.type}: {message.content}")


def run(key: str | None, endpoint: str | None) -> None:
    thread_id = f"demo-{uuid.uuid4().hex[:6]}"
    config = {"configurable": {"thread_id": thread_id}}
    print(f"thread {thread_id!r}: its checkpoints go to the channel 'langgraph-state:{thread_id}'")

    # Sync code: `AblySaver.connect()` owns an Ably client on a loop thread of its own.
    with AblySaver.connect(key, endpoint) as saver:
        graph = builder().compile(checkpointer=saver)
        result = graph.invoke({"messages": [("user", "Hi, I'm Ada.")]}, config)
        show("first invocation:", result["messages"])

        snapshot = graph.get_state(config)
        print(f"get_state: {len(snapshot.values['messages'])} messages, next={snapshot.next}, "
              f"checkpoint {snapshot.config['configurable']['checkpoint_id']}")
        history = list(graph.get_state_history(config))
        print(f"get_state_history: {len(history)} checkpoints, steps "
              f"{[h.metadata['step'] for h in history]} (newest first)")

    # A new saver and a new connection: nothing is in memory, everything is read from the channel.
    with AblySaver.connect(key, endpoint) as fresh:
        graph = builder().compile(checkpointer=fresh)
        restored = graph.get_state(config).values["messages"]
        print(f"a fresh saver restores {len(restored)} messages from the channel")
        result = graph.invoke({"messages": [("user", "What's my name?")]}, config)
        show("second invocation, same thread:", result["messages"])
        print(f"get_state after the second invocation: {len(graph.get_state(config).values['messages'])} messages")


def main() -> None:
    key, endpoint = ably_or_local()
    run(key, endpoint)


if __name__ == "__main__":
    main()
