"""Publishing through the SDK seam: creates and a stream's appends are written at once, in order, without a task
each (the pacer starts them; `outbox.publish_now` and `outbox.append_now` write them; the socket takes them at once,
and one writer task per transport sends what must wait)."""

from __future__ import annotations

import asyncio

import pytest
from ably.types.message import Message
from ably.util.exceptions import AblyException

from langchain_ably_transport import connect
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.ledger import ledger
from langchain_ably_transport.sdk.outbox import publish_now
from langchain_ably_transport.session.channel import ChannelWriter
from langchain_ably_transport.wire.envelope import WireMessage

from .test_fixes import tasks_created


async def _stream(client, channel_name: str) -> tuple[ChannelWriter, str, list[str]]:
    """A writer on `channel_name`, the serial of a message it created to append to, and what a subscriber gets."""
    channel = client.channels.get(channel_name)
    delivered: list[str] = []
    await channel.subscribe(lambda message: delivered.append(message.data or ""))
    writer = ChannelWriter(channel)
    return writer, await writer.publish(WireMessage(name="ai-output", data="")), delivered


_CONNECTING = {"ConnectionManager.connect_base", "WebSocketTransport.ws_connect"}


async def _wait_for(delivered: list[str], text: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while "".join(delivered) != text and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


async def test_a_streams_appends_are_written_in_order_without_a_task_each(server, channel_name):
    text = "".join(f"t{i} " for i in range(200))
    async with connect(server.key, server.url) as client:
        states: list[str] = []
        client.connection.on(lambda change: states.append(str(change.current)))
        for attempt in range(3):  # a connection made meanwhile (this one's, broken on a starved machine, or another
            # client's in this loop, an earlier test's reconnecting) takes tasks: that attempt does not count
            name = f"{channel_name}-{attempt}"
            writer, serial, delivered = await _stream(client, name)
            states.clear()
            with tasks_created() as counts:
                appended = []
                for i in range(200):
                    appended.append(writer.append(serial, WireMessage(data=f"t{i} ")))
                    if i % 10 == 9:
                        await asyncio.sleep(0)  # a model yields between chunks
                await asyncio.gather(*appended)
            await _wait_for(delivered, text)
            broke = list(states) + sorted(_CONNECTING & set(counts))
            if not broke:
                break
        history = await client.channels.get(name).history()
    assert not broke, f"a connection was made during each of three attempts: {broke}"
    assert "".join(delivered) == text, "every append delivered once, in order"
    assert history.items[0].data == text
    del counts["async_generator_athrow"]  # the loop closing some earlier async generator that was collected
    assert counts.total() == 0, f"a socket that takes every write at once needs no task: {counts}"


async def test_a_create_is_written_in_its_callers_step_and_creates_keep_the_call_order(server, channel_name):
    """`outbox.publish_now`: an awaited create takes no task (ably-python's publish coroutine took one, and a turn of
    the loop to start it and another to hand its ACK back); creates started one after another without awaiting,
    with an append between them, reach the channel in the order they were called."""
    async with connect(server.key, server.url) as client:
        channel = client.channels.get(channel_name)
        writer = ChannelWriter(channel)
        first = await writer.publish(WireMessage(name="ai-output", data="a"))  # attached, and the rate known
        with tasks_created() as counts:
            serial = await writer.publish(WireMessage(name="ai-output", data="b"))
        assert serial and serial > first
        assert counts.total() == 0, f"an awaited create needs no task: {counts}"
        started = [asyncio.ensure_future(writer.publish(WireMessage(name=f"create-{i}", data=str(i))))
                   for i in range(5)]
        await asyncio.sleep(0)  # each takes its first step, in creation order: the creates are written there
        appended = writer.append(serial, WireMessage(data="+"))
        started.append(asyncio.ensure_future(writer.publish(WireMessage(name="create-5", data="5"))))
        serials = await asyncio.gather(*started)
        await appended
        history = (await channel.history(direction="forwards")).items
    assert serials == sorted(serials), "serials in call order"
    assert [m.name for m in history[2:]] == [f"create-{i}" for i in range(6)]
    assert history[1].data == "b+", "the append between the creates applied"


async def test_a_create_no_one_awaits_yet_is_written_when_publish_is_called(server, channel_name):
    """A discrete create (its serial awaited by no one at once) takes its place in the connection's order when
    `publish` is called, with no task: the encoder need not give it a turn of the loop before its next write."""
    async with connect(server.key, server.url) as client:
        channel = client.channels.get(channel_name)
        writer = ChannelWriter(channel)
        serial = await writer.publish(WireMessage(name="ai-output", data="a"))  # attached, and the rate known
        with tasks_created() as counts:
            started = [writer.publish(WireMessage(name=f"create-{i}", data=str(i))) for i in range(3)]
            appended = writer.append(serial, WireMessage(data="+"))
            started.append(writer.publish(WireMessage(name="create-3", data="3")))
            serials = await asyncio.gather(*started)
            await appended
        history = (await channel.history(direction="forwards")).items
    del counts["async_generator_athrow"]  # the loop closing some earlier async generator that was collected
    assert counts.total() == 0, f"written when called: {counts}"
    assert serials == sorted(serials), "serials in call order"
    assert [m.name for m in history[1:]] == [f"create-{i}" for i in range(4)]
    assert history[0].data == "a+", "the append between the creates applied"


async def test_creates_refused_for_the_accounts_rate_are_sent_again_first_and_land_in_call_order(channel_name):
    """Creates that the account's rate refuses (42910) are started again once the back-off ends, first in the pacer's
    queue: every one lands, in the order `publish` was called, and each refusal is counted."""
    refused_before = ledger.refusals().get(42910, 0)
    with spawn(args=["--inbound-rate", "0", "--account-rate", "20"]) as limited:
        async with connect(limited.key, limited.url) as client:
            writer = ChannelWriter(client.channels.get(channel_name))
            await writer.publish(WireMessage(name="first", data=""))  # attached
            names = [f"create-{i}" for i in range(40)] + [f"later-{i}" for i in range(5)]
            started = [writer.publish(WireMessage(name=name, data="")) for name in names[:40]]
            await asyncio.sleep(0.02)  # refused by now, and backing off
            started += [writer.publish(WireMessage(name=name, data="")) for name in names[40:]]
            serials = await asyncio.wait_for(asyncio.gather(*started), 30)
            history = (await client.channels.get(channel_name).history(direction="forwards", limit=100)).items
    assert ledger.refusals().get(42910, 0) > refused_before, "the account's rate was met"
    assert [m.name for m in history[1:]] == names, "every create, in call order"
    assert serials == [m.serial for m in history[1:]]


async def test_a_create_is_refused_as_ably_python_refuses_it_before_sending(server, channel_name):
    async with connect(server.key, server.url, client_id="agent") as client:
        writer = ChannelWriter(client.channels.get(channel_name))
        with pytest.raises(AblyException) as too_big:
            await writer.publish(WireMessage(name="ai-output", data="x" * 70_000))
        assert too_big.value.code == 40009
        with pytest.raises(AblyException) as someone_else:
            publish_now(client.channels.get(channel_name), [Message(name="ai-output", data="", client_id="mallory")])
        assert someone_else.value.code == 40012
        serial = await writer.publish(WireMessage(name="ai-output", data="and then one that is fine"))
        history = (await client.channels.get(channel_name).history()).items
    assert [(m.serial, m.data) for m in history] == [(serial, "and then one that is fine")], "the refused ones not sent"


async def test_an_append_refused_before_it_is_sent_fails_its_future_and_raises_nothing(server, channel_name):
    async with connect(server.key, server.url) as client:
        writer = ChannelWriter(client.channels.get(channel_name))
        refused = writer.append("", WireMessage(data="no serial"))  # ably-python refuses it before sending
        with pytest.raises(AblyException) as error:
            await refused
        assert error.value.code == 40003
        serial = await writer.publish(WireMessage(name="ai-output", data=""))
        await writer.append(serial, WireMessage(data="then one that is fine"))
        assert (await client.channels.get(channel_name).history()).items[0].data == "then one that is fine"


async def test_writes_wait_their_turn_in_order_while_the_socket_is_paused(server, channel_name):
    """A full socket buffer (websockets pauses writing): writes queue behind one writer task and go out in order
    once it drains."""
    async with connect(server.key, server.url) as client:
        writer, serial, delivered = await _stream(client, channel_name)
        websocket = client.connection.connection_manager.transport.websocket
        websocket.pause_writing()
        with tasks_created() as counts:
            appended = [writer.append(serial, WireMessage(data=f"t{i} ")) for i in range(20)]
            await asyncio.sleep(0.1)
            assert sum(future.done() for future in appended) <= 1, "the first is written; the rest wait for room"
            websocket.resume_writing()
            await asyncio.gather(*appended)
        assert counts["TransportWriter._drain"] == 1, counts
        text = "".join(f"t{i} " for i in range(20))
        await _wait_for(delivered, text)
    assert "".join(delivered) == text, "every append delivered once, in order"
