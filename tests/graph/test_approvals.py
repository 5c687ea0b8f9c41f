"""LangChain's human-in-the-loop middleware served as the UIMessage tool-approval flow, through the dev server."""

from __future__ import annotations

import pytest

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire import names

from .graphs import hitl_agent


def _tool_parts(user: ClientSession) -> list[tuple[str, dict]]:
    return [(e["codecMessageId"], p) for e in user.view() for p in e["message"]["parts"]
            if p["type"] == "tool-deploy"]


@pytest.mark.parametrize("mode", ["batched", "per_call"])
async def test_an_approved_tool_call_resumes_the_run_and_the_tool_runs(clients, channel_name, mode):
    agent = await clients()
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("deploy to prod")
        first = await serve_graph(hitl_agent(AblySaver(agent), mode), sent.invocation, client=agent)
        assert first.outcome == "suspended" and len(first.interrupts) == 1
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.SUSPENDED)
        [(codec_message_id, part)] = _tool_parts(user)
        assert part["state"] == "approval-requested" and part["toolCallId"] == "call_deploy"
        assert part["input"] == {"env": "prod"} and part["approval"]["id"].startswith(first.interrupts[0].id)
        assert not [p for e in user.view() for p in e["message"]["parts"] if p["type"] == "data-interrupt"]

        answer = await user.approve(codec_message_id, "call_deploy", approved=True)
        second = await serve_graph(hitl_agent(AblySaver(await clients()), mode), answer.invocation, client=agent)
        assert (second.outcome, second.run_id) == ("complete", first.run_id)
        assert await answer.run_id() == first.run_id
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.COMPLETE)
        [(_, part)] = _tool_parts(user)
        assert (part["state"], part["output"]) == ("output-available", "deployed to prod")
        assert user.messages()[-1].text.endswith("Done: deployed to prod.")


async def test_a_denial_with_a_reason_reaches_the_model_and_the_tool_never_runs(clients, channel_name):
    agent = await clients()
    async with ClientSession(await clients(), channel_name) as user:
        sent = await user.send("deploy to prod")
        first = await serve_graph(hitl_agent(AblySaver(agent)), sent.invocation, client=agent)
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.SUSPENDED)
        [(codec_message_id, _)] = _tool_parts(user)
        answer = await user.approve(codec_message_id, "call_deploy", approved=False, reason="not on a Friday")
        second = await serve_graph(hitl_agent(AblySaver(agent)), answer.invocation, client=agent)
        assert (second.outcome, second.run_id) == ("complete", first.run_id)
        assert await user.wait_for(lambda: user.runs()[0].status == names.RunStatus.COMPLETE)
        [(_, part)] = _tool_parts(user)
        assert part["state"] == "output-denied"
        assert "not on a Friday" in user.messages()[-1].text and "deployed to prod" not in str(user.view())
