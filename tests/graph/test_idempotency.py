"""`idempotency_key()`: the same when a step runs again from the same checkpoint, different for other steps."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

from langchain_ably_transport.errors import ConfigurationError
from langchain_ably_transport.graph import idempotency_key


class Steps(TypedDict):
    keys: list[str]


def _graph(fail_once: list[bool]) -> Any:
    """START -> first -> second; `second` fails the first time it runs, after reading its key."""
    seen: list[str] = []

    def first(state: Steps) -> dict[str, Any]:
        return {"keys": [*state.get("keys", []), idempotency_key()]}

    def second(state: Steps) -> dict[str, Any]:
        seen.append(idempotency_key())
        if fail_once:
            fail_once.pop()
            raise RuntimeError("the process died here")
        return {"keys": [*state["keys"], idempotency_key()]}

    builder = StateGraph(Steps)
    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    graph = builder.compile(checkpointer=InMemorySaver())
    graph.seen = seen
    return graph


def test_a_step_run_again_from_its_checkpoint_has_the_same_key_and_other_steps_do_not():
    graph = _graph(fail_once=[True])
    config = {"configurable": {"thread_id": "t", "lcat_run_id": "run-1"}}
    with pytest.raises(RuntimeError):
        graph.invoke({"keys": []}, config)
    state = graph.invoke(None, config)  # resumed from the checkpoint after `first`, as an adopter does
    first_key, second_key = state["keys"]
    assert graph.seen == [second_key, second_key], "the failed try and the retry had one key"
    assert first_key != second_key and first_key.startswith("run-1:first:") and second_key.startswith("run-1:second:")

    again = _graph(fail_once=[])
    other_run = again.invoke({"keys": []}, {"configurable": {"thread_id": "t2", "lcat_run_id": "run-2"}})
    assert other_run["keys"][1].startswith("run-2:second:") and other_run["keys"][1] != second_key


def test_outside_a_running_graph_it_says_what_it_is_for():
    with pytest.raises(ConfigurationError, match="graph's nodes and tools"):
        idempotency_key({"configurable": {"thread_id": "t"}})
