"""Double texting: a second input while a run of the session is still active, under each policy."""

from __future__ import annotations

import asyncio

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire import names

from .graphs import chat_graph

SLOW = " ".join(f"w{i}" for i in range(150))


async def _two_inputs(clients, channel_name, policy: str):
    agent_a, agent_b = await clients(), await clients()
    user = ClientSession(await clients(), channel_name)
    await user.__aenter__()
    first = await user.send("first question")
    serving_first = asyncio.ensure_future(serve_graph(chat_graph(AblySaver(agent_a), SLOW, delay=0.01),
                                                      first.invocation, client=agent_a, on_active=policy))
    await first.run_id()
    second = await user.send("second question")
    serving_second = asyncio.ensure_future(serve_graph(chat_graph(AblySaver(agent_b), "Second answer."),
                                                       second.invocation, client=agent_b, on_active=policy))
    results = await asyncio.wait_for(asyncio.gather(serving_first, serving_second), 30)
    return user, results


async def test_queue_runs_the_second_input_after_the_first_ends(clients, channel_name):
    user, (first, second) = await _two_inputs(clients, channel_name, "queue")
    try:
        assert (first.outcome, second.outcome) == ("complete", "complete")
        runs = {r.key: r for r in user.runs()}
        assert runs[first.run_id].serial < runs[second.run_id].serial
        ended_first = next(w.serial for w in user.core._log
                           if w.name == names.RUN_END and w.transport.get(names.HEADER_RUN_ID) == first.run_id)
        started_second = next(w.serial for w in user.core._log
                              if w.name == names.RUN_START and w.transport.get(names.HEADER_RUN_ID) == second.run_id)
        assert ended_first < started_second, "the queued run starts only once the first has ended"
    finally:
        await user.__aexit__(None, None, None)


async def test_interrupt_cancels_the_active_run_and_answers_the_new_input(clients, channel_name):
    user, (first, second) = await _two_inputs(clients, channel_name, "interrupt")
    try:
        assert (first.outcome, second.outcome) == ("cancelled", "complete")
        assert await user.wait_for(lambda: user.messages()[-1].content == "Second answer.")
    finally:
        await user.__aexit__(None, None, None)


async def test_reject_refuses_the_new_input_and_leaves_the_active_run_alone(clients, channel_name):
    user, (first, second) = await _two_inputs(clients, channel_name, "reject")
    try:
        assert (first.outcome, second.outcome) == ("complete", "error")
        assert await user.wait_for(lambda: any(r.status == names.RunStatus.ERROR for r in user.runs()))
        rejected = next(r for r in user.runs() if r.key == second.run_id)
        assert rejected.error.code == 40900 and "another run" in rejected.error.message
    finally:
        await user.__aexit__(None, None, None)
