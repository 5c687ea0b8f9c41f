"""Mutable messages: update, delete and append, live deltas, late-joiner aggregates, versions, limits."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from ably.types.message import Message, MessageAction
from ably.types.operations import MessageOperation
from ably.util.exceptions import AblyException

from langchain_ably_transport.devserver import spawn

from .helpers import Collector, eventually


async def _stream(channel, first: str, deltas: list[str]) -> str:
    serial = (await channel.publish("reply", first)).serials[0]
    await asyncio.gather(*(channel.append_message(Message(serial=serial, data=d)) for d in deltas))
    return serial


async def test_live_subscriber_gets_deltas_and_late_joiner_gets_the_aggregate(clients, channel_name):
    writer = await clients(client_id="agent", transport_params={"appendRollupWindow": 0})
    early = Collector()
    await (await clients()).channels.get(channel_name).subscribe(early.add)
    serial = await _stream(writer.channels.get(channel_name), "Hel", ["lo", ", ", "world"])
    await eventually(lambda: len(early.messages) == 4)
    assert [m.action for m in early.messages] == [MessageAction.MESSAGE_CREATE] + [MessageAction.MESSAGE_APPEND] * 3
    assert "".join(early.data) == "Hello, world"
    assert all(m.serial == serial for m in early.messages)
    assert early.messages[1].name == "reply"

    late = Collector()
    late_channel = (await clients()).channels.get(channel_name)
    await late_channel.subscribe(late.add)
    await writer.channels.get(channel_name).append_message(Message(serial=serial, data="!"))
    await eventually(lambda: len(late.messages) == 1)
    assert late.messages[0].action == MessageAction.MESSAGE_UPDATE
    assert late.messages[0].data == "Hello, world!"

    history = await late_channel.history()
    assert [(m.serial, m.data, m.action) for m in history.items] == [
        (serial, "Hello, world!", MessageAction.MESSAGE_UPDATE)
    ]


async def test_rollup_window_concatenates_appends_into_fewer_deliveries(clients, channel_name):
    writer = await clients(transport_params={"appendRollupWindow": 100})
    received = Collector()
    await (await clients()).channels.get(channel_name).subscribe(received.add)
    channel = writer.channels.get(channel_name)
    serial = await _stream(channel, "", [str(i % 10) for i in range(40)])
    await eventually(lambda: "".join(received.data) == "0123456789" * 4)
    assert len(received.messages) < 10, "appends inside the window are rolled up"
    assert (await channel.get_message(serial)).data == "0123456789" * 4


async def test_update_and_delete_are_versions(clients, channel_name):
    client = await clients(client_id="editor")
    channel = client.channels.get(channel_name)
    serial = (await channel.publish("doc", "v1")).serials[0]
    updated = await channel.update_message(
        Message(serial=serial, data="v2"), MessageOperation(description="fix typo", metadata={"k": "v"})
    )
    deleted = await channel.delete_message(Message(serial=serial))
    assert serial < updated.version_serial < deleted.version_serial
    current = await channel.get_message(serial)
    assert current.action == MessageAction.MESSAGE_DELETE and current.data == "v2"
    versions = await channel.get_message_versions(serial)
    assert [(v.action, v.data) for v in versions.items] == [
        (MessageAction.MESSAGE_UPDATE, "v2"), (MessageAction.MESSAGE_DELETE, "v2"),
    ]
    assert versions.items[0].version.description == "fix typo"
    assert versions.items[0].version.client_id == "editor"


async def test_append_that_would_exceed_max_size_is_rejected_and_message_kept(clients, channel_name):
    client = await clients(transport_params={"appendRollupWindow": 0})
    channel = client.channels.get(channel_name)
    serial = (await channel.publish("big", "x" * 60000)).serials[0]
    with pytest.raises(AblyException) as rejected:
        await channel.append_message(Message(serial=serial, data="y" * 6000))
    assert rejected.value.code == 40009
    await channel.append_message(Message(serial=serial, data="z"))
    assert (await channel.get_message(serial)).data == "x" * 60000 + "z"


async def test_mutation_of_unknown_serial_is_not_found(clients, channel_name):
    channel = (await clients()).channels.get(channel_name)
    with pytest.raises(AblyException) as missing:
        await channel.update_message(Message(serial="01700000000000-000@nope:000", data="x"))
    assert missing.value.code == 40400


async def test_mutations_need_the_channel_rule():
    from langchain_ably_transport import connect

    with spawn(args=["--mutable", "conversations"]) as server:
        async with connect(server.key, server.url) as client:
            plain = client.channels.get("other:chat")
            serial = (await plain.publish("n", "v")).serials[0]
            with pytest.raises(AblyException) as refused:
                await plain.append_message(Message(serial=serial, data="more"))
            assert refused.value.code == 93002
            enabled = client.channels.get("conversations:1")
            serial = (await enabled.publish("n", "v")).serials[0]
            await enabled.append_message(Message(serial=serial, data="more"))
            assert (await enabled.get_message(serial)).data == "vmore"


async def test_rest_patch_appends(server, clients, channel_name):
    client = await clients()
    channel = client.channels.get(channel_name)
    serial = (await channel.publish("n", "a")).serials[0]
    token = (await client.auth.request_token()).token
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.patch(
            f"/channels/{channel_name}/messages/{serial.replace('@', '%40')}", json={"action": 5, "data": "b"}
        )
    assert response.status_code == 200 and response.json()["versionSerial"] > serial
    assert (await channel.get_message(serial)).data == "ab"
