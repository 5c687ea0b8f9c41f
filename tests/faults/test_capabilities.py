"""The documented token recipes (`browser_capability`, `agent_capability`) on the dev server, with genuine clients.

The browser's tokens come from token requests a web backend signs with the key (ably-python's
`create_token_request`), fetched through `auth_callback` as an ably-js page fetches them through `authUrl`.
"""

from __future__ import annotations

import pytest
from ably.types.message import Message
from ably.util.exceptions import AblyException
from langchain_core.messages import AIMessage, HumanMessage

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire import names

from ..graph.graphs import chat_graph
from .browsers import agent_worker, browser_user, new_conversation

INSUFFICIENT_CAPABILITY = 40160
INVALID_CLIENT_ID = 40012


async def test_a_browser_token_reads_and_publishes_its_conversation_and_an_agent_token_answers_it(
        clients, backend):
    conversation = new_conversation()
    browser = await browser_user(clients, backend, "alice", conversation)
    agent = await agent_worker(clients, backend)
    async with ClientSession(browser, conversation) as alice:
        sent = await alice.send("hello")
        result = await serve_graph(chat_graph(AblySaver(agent), "Hello, Alice."), sent.invocation, client=agent)
        assert result.outcome == "complete"
        assert await alice.wait_for(lambda: [m.content for m in alice.messages()] == ["hello", "Hello, Alice."])
        channel = browser.channels.get(conversation)
        await channel.presence.enter({"typing": False})
        assert [m.client_id for m in await channel.presence.get()] == ["alice"]
    async with ClientSession(await browser_user(clients, backend, "alice", conversation), conversation) as reloaded:
        assert [type(m) for m in reloaded.messages()] == [HumanMessage, AIMessage], "history, after a reload"


async def test_a_browser_token_cannot_read_graph_state_nor_touch_another_conversation(clients, backend):
    conversation = new_conversation()
    browser = await browser_user(clients, backend, "alice", conversation)
    agent = await agent_worker(clients, backend)
    async with ClientSession(browser, conversation) as alice:
        sent = await alice.send("my plan is secret")
        await serve_graph(chat_graph(AblySaver(agent), "Noted."), sent.invocation, client=agent)
    state = browser.channels.get(f"langgraph-state:{conversation}")
    other, another = browser.channels.get(new_conversation()), browser.channels.get(new_conversation())
    # A failed attach leaves its channel FAILED (the SDK then refuses locally), so publishing gets its own.
    for operation in (state.history, state.attach, other.history, other.attach,
                      lambda: another.publish("ai-input", "hi")):
        with pytest.raises(AblyException) as refused:
            await operation()
        assert refused.value.code == INSUFFICIENT_CAPABILITY
    assert (await AblySaver(agent).aget_tuple({"configurable": {"thread_id": conversation}})) is not None


async def test_the_server_refuses_a_message_published_under_another_client_id(clients, backend):
    """ably-python refuses this itself; a hostile client sends the frame anyway, and Ably (here the dev server)
    refuses it, with nothing stored."""
    conversation = new_conversation()
    browser = await browser_user(clients, backend, "alice", conversation)
    channel = browser.channels.get(conversation)
    await channel.attach()
    with pytest.raises(AblyException) as refused_by_the_sdk:
        await channel.publish(Message(name="ai-input", data="hi", client_id="bob"))
    forged = {"action": 15, "channel": conversation,
              "messages": [{"name": "ai-input", "data": "hi", "clientId": "bob"}]}
    with pytest.raises(AblyException) as refused:
        await browser.connection.connection_manager.send_protocol_message(forged)
    assert refused_by_the_sdk.value.code == refused.value.code == INVALID_CLIENT_ID
    await channel.publish("ai-input", "as myself")
    assert [(m.client_id, m.data) for m in (await channel.history()).items] == [("alice", "as myself")]


async def test_capabilities_cannot_stop_a_user_from_publishing_agent_message_names(clients, backend):
    """What `docs/security.md` says capabilities leave to the library: a user may publish any name on its
    conversation, agent lifecycle included; Ably stamps it with the user's clientId, which the library's
    trusted-agent and run-owner checks rely on."""
    conversation = new_conversation()
    browser = await browser_user(clients, backend, "alice", conversation)
    agent = await agent_worker(clients, backend)
    async with ClientSession(browser, conversation) as alice:
        sent = await alice.send("hello")
        await serve_graph(chat_graph(AblySaver(agent), "Hi."), sent.invocation, client=agent)
        run_id = await sent.run_id()
        forged = Message(name=names.RUN_END, extras={"ai": {"transport": {names.HEADER_RUN_ID: run_id}}})
        await browser.channels.get(conversation).publish(forged)
        assert await alice.wait_for(lambda: any(w.name == names.RUN_END and w.client_id == "alice"
                                                for w in alice.core._log))
