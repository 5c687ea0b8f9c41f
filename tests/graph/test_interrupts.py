"""Several pending interrupts (parallel tasks, a subgraph), answered by id together or one by one."""

from __future__ import annotations

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire import names

from .graphs import parallel_questions_graph


def _thread(channel_name: str) -> dict:
    return {"configurable": {"thread_id": channel_name}}


def _interrupt_ids(user: ClientSession) -> dict[str, str]:
    parts = [p["data"] for e in user.view() for p in e["message"]["parts"] if p["type"] == "data-interrupt"]
    return {part["value"]: part["id"] for part in parts}


async def _suspended(clients, channel_name):
    agent = await clients()
    user = ClientSession(await clients(), channel_name)
    await user.__aenter__()
    sent = await user.send("two questions")
    first = await serve_graph(parallel_questions_graph(AblySaver(agent)), sent.invocation, client=agent)
    assert first.outcome == "suspended" and len(first.interrupts) == 2
    await user.wait_for(lambda: len(_interrupt_ids(user)) == 2)
    return agent, user, first


async def test_parallel_and_subgraph_interrupts_answered_together(clients, channel_name):
    agent, user, first = await _suspended(clients, channel_name)
    try:
        ids = _interrupt_ids(user)
        answer = await user.answer(first.run_id, {ids["question a"]: "A", ids["question b"]: "B"})
        done = await serve_graph(parallel_questions_graph(AblySaver(agent)), answer.invocation, client=agent)
        assert (done.outcome, done.run_id) == ("complete", first.run_id)
        state = await parallel_questions_graph(AblySaver(agent)).aget_state(_thread(channel_name))
        assert [m.content for m in state.values["messages"]][-3:] == ["a=A", "b=B", "joined"]
    finally:
        await user.__aexit__(None, None, None)


async def test_answered_one_by_one_and_a_duplicate_answer_is_refused(clients, channel_name):
    agent, user, first = await _suspended(clients, channel_name)
    try:
        ids = _interrupt_ids(user)
        only_b = await user.answer(first.run_id, {ids["question b"]: "B"})
        partial = await serve_graph(parallel_questions_graph(AblySaver(agent)), only_b.invocation, client=agent)
        assert partial.outcome == "suspended" and [i.id for i in partial.interrupts] == [ids["question a"]]
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.SUSPENDED)
        only_a = await user.answer(first.run_id, {ids["question a"]: "A"})
        done = await serve_graph(parallel_questions_graph(AblySaver(agent)), only_a.invocation, client=agent)
        assert done.outcome == "complete"
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.COMPLETE)
        late = await user.answer(first.run_id, {ids["question a"]: "too late"})
        refused = await serve_graph(parallel_questions_graph(AblySaver(agent)), late.invocation, client=agent)
        assert refused.outcome == "rejected" and "not suspended" in str(refused.error)
        state = await parallel_questions_graph(AblySaver(agent)).aget_state(_thread(channel_name))
        assert "a=too late" not in [m.content for m in state.values["messages"]]
    finally:
        await user.__aexit__(None, None, None)
