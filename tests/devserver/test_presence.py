"""Presence: enter, update, leave, SYNC on attach, LEAVE on close, REST presence and its history."""

from __future__ import annotations

import asyncio

import httpx

from .helpers import Collector, eventually


async def test_members_are_synced_entered_and_left(server, clients, channel_name):
    alice = await clients(client_id="alice")
    await alice.channels.get(channel_name).presence.enter({"status": "here"})
    watcher = await clients()
    watching = watcher.channels.get(channel_name)
    events = Collector()
    await watching.presence.subscribe(events.add)
    members = await watching.presence.get()
    assert [(m.client_id, m.data) for m in members] == [("alice", {"status": "here"})]

    await alice.channels.get(channel_name).presence.update({"status": "busy"})
    await eventually(lambda: [e.action for e in events.messages][-1:] == [4])
    await alice.close()
    await eventually(lambda: [e.action for e in events.messages][-1:] == [3], message="LEAVE on close")
    assert await watching.presence.get() == []


async def test_a_closed_connection_leaves_every_channel_it_entered_and_only_those(server, clients, channel_name):
    """The server leaves a member where its connection entered presence, on each channel, and nowhere else."""
    alice = await clients(client_id="alice")
    bob = await clients(client_id="bob")
    names = [f"{channel_name}-{n}" for n in range(3)]
    for name in names[:2]:
        await alice.channels.get(name).presence.enter(name)
    await bob.channels.get(names[2]).presence.enter("stays")
    await alice.channels.get(names[2]).attach()  # attached without entering: nothing to leave there
    watcher = await clients()
    watched = [watcher.channels.get(name).presence for name in names]
    assert [[m.client_id for m in await p.get()] for p in watched] == [["alice"], ["alice"], ["bob"]]
    await alice.close()
    for _ in range(50):
        members = [[m.client_id for m in await p.get()] for p in watched]
        if members == [[], [], ["bob"]]:
            break
        await asyncio.sleep(0.1)
    assert members == [[], [], ["bob"]]


async def test_rest_presence_and_presence_history(server, clients, channel_name):
    bob = await clients(client_id="bob")
    presence = bob.channels.get(channel_name).presence
    await presence.enter("hi")
    await presence.leave()
    await presence.enter("back")
    token = (await bob.auth.request_token()).token
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        current = (await http.get(f"/channels/{channel_name}/presence")).json()
        history = (await http.get(f"/channels/{channel_name}/presence/history",
                                  params={"direction": "forwards"})).json()
    assert [(m["clientId"], m["data"]) for m in current] == [("bob", "back")]
    assert [(m["action"], m["data"]) for m in history] == [(2, "hi"), (3, "hi"), (2, "back")]


async def test_member_of_a_dropped_connection_leaves_when_its_state_expires():
    from langchain_ably_transport import connect
    from langchain_ably_transport.devserver import spawn

    from .raw import raw_connection

    with spawn(args=["--connection-state-ttl", "1"]) as server:
        async with connect(server.key, server.url) as watcher:
            watching = watcher.channels.get("test:ttl")
            events = Collector()
            await watching.presence.subscribe(events.add)
            async with raw_connection(server, clientId="ghost") as ghost:
                await ghost.expect(4)
                await ghost.send({"action": 14, "channel": "test:ttl", "msgSerial": 0,
                                  "presence": [{"action": 2, "data": "boo"}]})
                await ghost.expect(1)
                await eventually(lambda: [e.action for e in events.messages] == [2])
            # The socket is gone without CLOSE: the member stays while the connection could resume.
            await asyncio.sleep(0.5)
            assert [e.action for e in events.messages] == [2]
            await eventually(lambda: [e.action for e in events.messages] == [2, 3], timeout=5)
            assert events.messages[-1].client_id == "ghost" and events.messages[-1].data == "boo"


async def test_member_of_a_dropped_connection_leaves_after_the_presence_leave_delay_though_still_resumable():
    from langchain_ably_transport import connect
    from langchain_ably_transport.devserver import spawn

    from .raw import raw_connection

    with spawn(args=["--connection-state-ttl", "60", "--presence-leave-delay", "0.5"]) as server:
        async with connect(server.key, server.url) as watcher:
            watching = watcher.channels.get("test:leave-delay")
            events = Collector()
            await watching.presence.subscribe(events.add)
            async with raw_connection(server, clientId="ghost") as ghost:
                connected = await ghost.expect(4)
                await ghost.send({"action": 14, "channel": "test:leave-delay", "msgSerial": 0,
                                  "presence": [{"action": 2, "data": "boo"}]})
                await ghost.expect(1)
            await eventually(lambda: [e.action for e in events.messages] == [2, 3], timeout=5)
            async with raw_connection(server, clientId="ghost",
                                      resume=connected["connectionDetails"]["connectionKey"]) as back:
                assert "error" not in await back.expect(4), "the connection itself is still resumable"


async def test_a_drop_shorter_than_the_leave_delay_is_not_a_leave():
    from langchain_ably_transport import connect
    from langchain_ably_transport.devserver import spawn

    with spawn(args=["--presence-leave-delay", "1"]) as server:
        async with connect(server.key, server.url) as watcher, \
                connect(server.key, server.url, client_id="alice") as alice:
            watching = watcher.channels.get("test:short-drop")
            events = Collector()
            await watching.presence.subscribe(events.add)
            await alice.channels.get("test:short-drop").presence.enter("here")
            await eventually(lambda: [e.action for e in events.messages] == [2])
            alice.connection.connection_manager.transport.websocket.transport.abort()
            await asyncio.sleep(2)
            assert [e.action for e in events.messages] == [2], "the SDK resumed within the delay"
            assert [m.client_id for m in await watching.presence.get()] == ["alice"]
