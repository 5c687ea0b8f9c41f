"""Dropped sockets: resume keeps the connection, re-ACKs without republishing, replays with no gap."""

from __future__ import annotations

import asyncio

from ably.types.connectionstate import ConnectionState

from .helpers import Collector, eventually
from .raw import raw_connection


def _drop_socket(client) -> None:
    """Abort the TCP connection under the SDK, as a network failure would (no close handshake)."""
    client.connection.connection_manager.transport.websocket.transport.abort()


async def test_subscriber_dropped_mid_stream_receives_each_message_once_in_order(clients, channel_name):
    publisher = await clients()
    subscriber = await clients()
    received = Collector()
    await subscriber.channels.get(channel_name).subscribe(received.add)
    connection_id = subscriber.connection.connection_manager.connection_id
    states: list[ConnectionState] = []
    subscriber.connection.on(lambda change: states.append(change.current))
    channel = publisher.channels.get(channel_name)
    sent = [f"m{i}" for i in range(1000)]

    async def publish_all() -> None:
        for start in range(0, 1000, 50):
            await asyncio.gather(*(channel.publish("n", data) for data in sent[start : start + 50]))

    publishing = asyncio.create_task(publish_all())
    await eventually(lambda: len(received.messages) >= 300)
    _drop_socket(subscriber)
    await publishing
    await eventually(lambda: len(received.messages) >= 1000, timeout=30)
    await asyncio.sleep(0.2)
    assert received.data == sent
    assert ConnectionState.DISCONNECTED in states, "the socket really dropped"
    assert subscriber.connection.connection_manager.connection_id == connection_id, "the connection resumed"


async def test_publisher_dropped_mid_stream_loses_and_duplicates_nothing(clients, channel_name):
    publisher = await clients()
    channel = publisher.channels.get(channel_name)
    tasks = [asyncio.create_task(channel.publish("n", str(i))) for i in range(200)]
    await asyncio.sleep(0)
    _drop_socket(publisher)
    await asyncio.gather(*tasks)
    await eventually(lambda: publisher.connection.state == ConnectionState.CONNECTED)
    history = await channel.history(direction="forwards", limit=1000)
    assert [m.data for m in history.items] == [str(i) for i in range(200)]


async def test_resumed_connection_reacks_a_processed_msg_serial_without_republishing(server, clients, channel_name):
    frame = {"action": 15, "channel": channel_name, "msgSerial": 0, "messages": [{"name": "n", "data": "once"}]}
    async with raw_connection(server) as first:
        connected = await first.expect(4)
        await first.send(frame)
        ack = await first.expect(1)
    key = connected["connectionDetails"]["connectionKey"]
    async with raw_connection(server, resume=key) as second:
        resumed = await second.expect(4)
        assert resumed["connectionId"] == connected["connectionId"] and "error" not in resumed
        await second.send(frame)
        assert await second.expect(1) == ack
    history = await (await clients()).channels.get(channel_name).history()
    assert [m.data for m in history.items] == ["once"]


async def test_unknown_resume_key_gets_a_new_connection_and_80008(server):
    async with raw_connection(server, resume="nobody!nothing") as connection:
        connected = await connection.expect(4)
    assert connected["error"]["code"] == 80008
    assert connected["connectionDetails"]["connectionKey"] != "nobody!nothing"


async def test_reattach_with_channel_serial_replays_exactly_what_was_missed(server, clients, channel_name):
    channel = (await clients()).channels.get(channel_name)
    await channel.publish("n", "seen")
    async with raw_connection(server) as watcher:
        await watcher.expect(4)
        await watcher.send({"action": 10, "channel": channel_name})
        attached = await watcher.expect(11)
        await channel.publish("n", "live")
        last_seen = (await watcher.expect(15))["channelSerial"]
    await channel.publish("n", "missed-1")
    await channel.publish("n", "missed-2")
    async with raw_connection(server) as again:
        await again.expect(4)
        await again.send({"action": 10, "channel": channel_name, "channelSerial": last_seen, "flags": 32})
        reattached = await again.expect(11)
        replayed = [message["data"] for message in await again.messages(2)]
        await channel.publish("n", "after")
        live = (await again.expect(15))["messages"][0]["data"]
    assert reattached["flags"] & 4, "ATTACHED carries RESUMED"
    assert attached["channelSerial"] < last_seen
    assert replayed == ["missed-1", "missed-2"] and live == "after"


async def test_a_channel_attached_again_over_the_same_socket_resumes_with_nothing_delivered_twice(server, channel_name):
    """ably-python re-attaches every channel after an in-place re-authentication, with the `channelSerial` it has
    then, which may predate a message already on its way to it: replaying after that serial delivered the message
    twice (`test_auth`'s renewal test, about one run in thirty). Over the same socket nothing was missed."""
    async with raw_connection(server, format="json") as raw:
        await raw.expect(4)
        await raw.send({"action": 10, "channel": channel_name})
        before = (await raw.expect(11))["channelSerial"]
        await raw.send({"action": 15, "channel": channel_name, "msgSerial": 0, "messages": [{"data": "once"}]})
        assert [m["data"] for m in await raw.messages(1)] == ["once"]
        await raw.expect(1)
        await raw.send({"action": 10, "channel": channel_name, "channelSerial": before})
        again = await raw.expect(11)
        assert again["flags"] & 4, "resumed"
        assert again["channelSerial"] > before, "where the socket is, past the message it was sent"
        await raw.send({"action": 15, "channel": channel_name, "msgSerial": 1, "messages": [{"data": "next"}]})
        assert [m["data"] for m in await raw.messages(1)] == ["next"], "nothing replayed"


async def test_a_publish_sent_again_with_its_msg_serial_is_acked_as_before_and_not_published_twice(server,
                                                                                                 channel_name):
    """What a resumed SDK does with a publish whose ACK it missed: the server answers from what it remembers (the
    same serials; a NACK again for a refused one), and the channel holds the message once."""
    publish = {"action": 15, "channel": channel_name, "msgSerial": 0, "messages": [{"name": "n", "data": "once"}]}
    refused = {"action": 15, "channel": channel_name, "msgSerial": 1, "messages": [{"data": 5}]}
    async with raw_connection(server) as publisher:
        await publisher.expect(4)
        await publisher.send(publish)
        first = await publisher.expect(1)
        await publisher.send(refused)
        nack = await publisher.expect(2)
        await publisher.send(publish)
        await publisher.send(refused)
        assert await publisher.expect(1) == first
        assert await publisher.expect(2) == nack
    async with raw_connection(server) as reader:
        await reader.expect(4)
        await reader.send({"action": 10, "channel": channel_name, "params": {"rewind": "10"}})
        await reader.expect(11)
        assert [message["data"] for message in await reader.messages(1)] == ["once"]
        await reader.send({"action": 15, "channel": channel_name, "msgSerial": 0, "messages": [{"data": "later"}]})
        assert [message["data"] for message in await reader.messages(1)] == ["later"], "nothing else came before it"
