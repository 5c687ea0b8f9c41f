"""A graph that asks for approval, run as a child process: `start` stops at the interrupt and exits;
`resume` (a fresh process with only the thread id) answers it and finishes. Prints JSON results."""

from __future__ import annotations

import json
import operator
import sys
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from langchain_ably_transport import AblySaver


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def plan(state: State) -> State:
    return {"log": ["planned"]}


def approve(state: State) -> State:
    answer = interrupt({"question": "deploy?", "plan": state["log"]})
    return {"log": [f"approved:{answer}"]}


def deploy(state: State) -> State:
    return {"log": ["deployed"]}


def build(saver: AblySaver):
    graph = StateGraph(State)
    graph.add_node(plan)
    graph.add_node(approve)
    graph.add_node(deploy)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "approve")
    graph.add_edge("approve", "deploy")
    graph.add_edge("deploy", END)
    return graph.compile(checkpointer=saver)


def main(mode: str, url: str, key: str, thread_id: str) -> None:
    config = {"configurable": {"thread_id": thread_id}}
    with AblySaver.connect(key, url) as saver:
        graph = build(saver)
        if mode == "start":
            graph.invoke({"log": []}, config)
        else:
            pending = graph.get_state(config).interrupts
            answers = {item.id: "yes" for item in pending}
            graph.invoke(Command(resume=answers), config)
        state = graph.get_state(config)
        print(json.dumps({"log": state.values["log"], "next": list(state.next),
                          "interrupts": [{"id": i.id, "value": i.value} for i in state.interrupts]}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
