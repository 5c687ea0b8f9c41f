"""Sub-agents of a served graph: their passes as messages of their own, labelled, and a visibility policy."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent  # a test-only dependency (the `dev` extra)
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.invocation import Invocation

from ..interop.test_ai_transport import _session, js
from .graphs import DeployModel, deploy


def supervisor_graph(saver: AblySaver) -> Any:
    """START -> supervisor (a streaming model) -> researcher -> writer -> END; both workers are
    `create_agent(name=...)` sub-agents: the researcher calls `deploy` and reports, the writer drafts."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content="Asking the researcher, then the writer.")]))

    async def supervisor(state: MessagesState) -> dict[str, Any]:
        last = None
        async for chunk in model.astream(state["messages"]):
            last = chunk if last is None else last + chunk
        return {"messages": [last]}

    writer_model = GenericFakeChatModel(messages=iter([AIMessage(content="The writer's draft is ready.")]))
    graph = StateGraph(MessagesState)
    graph.add_node("supervisor", supervisor)
    graph.add_node("researcher", create_agent(DeployModel(), tools=[deploy], name="researcher"))
    graph.add_node("writer", create_agent(writer_model, name="writer"))
    graph.add_edge(START, "supervisor")
    graph.add_edge("supervisor", "researcher")
    graph.add_edge("researcher", "writer")
    graph.add_edge("writer", END)
    return graph.compile(checkpointer=saver)


def _labelled(view: list[dict[str, Any]]) -> list[tuple[str | None, str]]:
    """Each assistant message as (agent, text), in view order."""
    out = []
    for entry in view:
        message = entry["message"]
        if message["role"] == "assistant":
            text = "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")
            out.append(((message.get("metadata") or {}).get("agent"), text))
    return out


def _tasks(view: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p["data"] for e in view for p in e["message"]["parts"] if p["type"] == "data-task"]


async def _serve(clients, channel_name, user, **options: Any) -> None:
    agent = await clients()
    sent = await user.send("ship it")
    result = await serve_graph(supervisor_graph(AblySaver(agent)), sent.invocation, client=agent, **options)
    assert result.outcome == "complete"
    assert await user.wait_for(lambda: user.runs() and user.runs()[0].status == names.RunStatus.COMPLETE)


async def test_each_sub_agent_pass_is_its_own_labelled_message_and_a_late_joiner_sees_them(clients, channel_name):
    async with ClientSession(await clients(), channel_name) as user:
        await _serve(clients, channel_name, user)
        view = user.view()
        assert _labelled(view) == ([
            (None, "Asking the researcher, then the writer."),
            ("researcher", ""), ("researcher", "Done: deployed to prod."),
            ("writer", "The writer's draft is ready."),
        ])
        metadata = [e["message"]["metadata"] for e in view if (e["message"].get("metadata") or {}).get("agent")]
        assert all(m["namespace"][0].split(":")[0] == m["agent"] for m in metadata)
        call = next(p for e in view for p in e["message"]["parts"] if p.get("toolCallId") == "call_deploy")
        assert (call["state"], call["output"]) == ("output-available", "deployed to prod")
        tasks = _tasks(view)
        assert {(t["node"], t.get("agent")) for t in tasks} == {
            ("supervisor", None), ("researcher", None), ("writer", None),
            ("model", "researcher"), ("tools", "researcher"), ("model", "writer")}
        assert {t["status"] for t in tasks} == {"done"}
    async with ClientSession(await clients(), channel_name) as late:
        assert await late.wait_for(lambda: len(_labelled(late.view())) == 4)
        assert _labelled(late.view()) == _labelled(view)
        assert _tasks(late.view()) == tasks


async def test_visibility_hides_one_agent_and_summarises_another(clients, channel_name):
    async with ClientSession(await clients(), channel_name) as user:
        await _serve(clients, channel_name, user, visibility={"writer": "hide", "researcher": "summary"})
        view = user.view()
        assert _labelled(view) == [(None, "Asking the researcher, then the writer.")]
        assert "writer's draft" not in str(view) and "deployed to prod" not in str(view)
        tasks = _tasks(view)
        assert "writer" not in str(tasks)
        assert {(t["node"], t.get("agent")) for t in tasks} == {
            ("supervisor", None), ("researcher", None), ("model", "researcher"), ("tools", "researcher")}


async def test_a_js_client_renders_the_sub_agents_messages_with_their_labels(server, clients):
    session = _session()
    client = await js(server, "client-send.mjs", SESSION=session, TEXT="ship it")
    invocation = Invocation.from_json((await client.next_line())["invocation"])
    agent = await clients(client_id="py-agent")
    assert (await serve_graph(supervisor_graph(AblySaver(agent)), invocation, client=agent)).outcome == "complete"
    view = await client.result()
    assert view["run"]["status"] == "complete" and not view["timedOut"]
    assistants = [m for m in view["messages"] if m["role"] == "assistant"]
    assert _labelled([{"message": m} for m in assistants]) == [
        (None, "Asking the researcher, then the writer."),
        ("researcher", ""), ("researcher", "Done: deployed to prod."),
        ("writer", "The writer's draft is ready."),
    ]
    tool = [p for m in assistants for p in m["parts"] if p["type"] == "tool-deploy"]
    assert [(t["state"], t["output"]) for t in tool] == [("output-available", "deployed to prod")]
