"""Publish, subscribe and history through the genuine ably-python SDK, in JSON and msgpack."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from ably.types.message import Message

from .helpers import Collector, eventually


@pytest.mark.parametrize("binary", [True, False], ids=["msgpack", "json"])
async def test_subscriber_receives_what_was_published_in_order(clients, channel_name, binary):
    publisher = await clients(client_id="pub", use_binary_protocol=binary)
    subscriber = await clients(use_binary_protocol=not binary)
    received = Collector()
    await subscriber.channels.get(channel_name).subscribe(received.add)
    channel = publisher.channels.get(channel_name)
    payloads = ["text", b"\x00\xffbinary", {"json": [1, 2]}]
    for payload in payloads:
        await channel.publish("event", payload)
    await eventually(lambda: len(received.messages) == 3)
    assert [bytes(d) if isinstance(d, bytearray) else d for d in received.data] == [
        "text", b"\x00\xffbinary", {"json": [1, 2]},
    ]
    first = received.messages[0]
    assert first.name == "event" and first.client_id == "pub"
    assert first.serial and first.serial < received.messages[1].serial < received.messages[2].serial


async def test_publish_returns_serials_and_pipelined_acks_match(clients, channel_name):
    client = await clients()
    channel = client.channels.get(channel_name)
    results = await asyncio.gather(*(channel.publish("n", str(i)) for i in range(50)))
    serials = [r.serials[0] for r in results]
    assert serials == sorted(serials) and len(set(serials)) == 50
    history = await channel.history(direction="forwards", limit=100)
    assert [m.data for m in history.items] == [str(i) for i in range(50)]
    assert [m.serial for m in history.items] == serials


async def test_echo_false_skips_own_messages(clients, channel_name):
    quiet = await clients(transport_params={"echo": "false"})
    other = await clients()
    own = Collector()
    await quiet.channels.get(channel_name).subscribe(own.add)
    await quiet.channels.get(channel_name).publish("mine", "x")
    await other.channels.get(channel_name).publish("theirs", "y")
    await eventually(lambda: len(own.messages) == 1)
    await asyncio.sleep(0.1)
    assert [m.name for m in own.messages] == ["theirs"]


async def test_history_pages_backwards_and_forwards(clients, channel_name):
    client = await clients()
    channel = client.channels.get(channel_name)
    await asyncio.gather(*(channel.publish("n", str(i)) for i in range(7)))
    page = await channel.history(limit=3)
    seen = [m.data for m in page.items]
    while page.has_next():
        page = await page.next()
        seen += [m.data for m in page.items]
    assert seen == [str(i) for i in reversed(range(7))]
    forwards = await channel.history(direction="forwards", limit=4)
    assert [m.data for m in forwards.items] == ["0", "1", "2", "3"]
    assert [m.data for m in (await forwards.next()).items] == ["4", "5", "6"]


async def test_history_time_bounds(clients, channel_name):
    client = await clients()
    channel = client.channels.get(channel_name)
    await channel.publish("n", "early")
    await asyncio.sleep(0.05)
    middle = (await channel.history()).items[0].timestamp + 10
    await asyncio.sleep(0.05)
    await channel.publish("n", "late")
    assert [m.data for m in (await channel.history(end=middle)).items] == ["early"]
    assert [m.data for m in (await channel.history(start=middle)).items] == ["late"]


async def test_history_until_attach_with_from_serial(clients, channel_name):
    client = await clients()
    channel = client.channels.get(channel_name)
    await channel.publish("n", "before")
    await channel.attach()
    await channel.publish("n", "after")
    attach_serial = channel._RealtimeChannel__attach_serial
    response = await client.request(
        "GET", f"/channels/{channel_name}/messages", "5", params={"from_serial": attach_serial}
    )
    assert [item["data"] for item in response.items] == ["before"]


async def test_rest_publish_is_idempotent_by_message_id(server, clients, channel_name):
    client = await clients()
    channel = client.channels.get(channel_name)
    token = (await client.auth.request_token()).token
    body = [{"id": "fixed-id:0", "name": "n", "data": "once"}]
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        first = await http.post(f"/channels/{channel_name}/messages", json=body)
        again = await http.post(f"/channels/{channel_name}/messages", json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["serials"] == again.json()["serials"]
    assert [m.data for m in (await channel.history()).items] == ["once"]


async def test_rewind_replays_recent_messages_on_attach(clients, channel_name):
    from ably.types.channeloptions import ChannelOptions

    client = await clients()
    await asyncio.gather(*(client.channels.get(channel_name).publish("n", str(i)) for i in range(5)))
    late = await clients()
    received = Collector()
    channel = late.channels.get(channel_name, ChannelOptions(params={"rewind": "2"}))
    await channel.subscribe(received.add)
    await eventually(lambda: len(received.messages) == 2)
    assert received.data == ["3", "4"]


async def test_get_message_by_serial_and_update(clients, channel_name):
    client = await clients()
    channel = client.channels.get(channel_name)
    serial = (await channel.publish("n", "v1")).serials[0]
    await channel.update_message(Message(serial=serial, data="v2"))
    assert (await channel.get_message(serial)).data == "v2"


async def test_browser_envelope_and_cors(server, clients, channel_name):
    client = await clients()
    await client.channels.get(channel_name).publish("n", "x")
    token = (await client.auth.request_token()).token
    async with httpx.AsyncClient(base_url=server.url) as http:
        preflight = await http.options(f"/channels/{channel_name}/messages",
                                       headers={"Origin": "http://app.example:8000"})
        enveloped = await http.get(
            f"/channels/{channel_name}/messages",
            params={"envelope": "json", "limit": "1", "access_token": token},
        )
    assert preflight.status_code == 204
    # ably-js sends browser REST requests credentialed: a wildcard origin would be refused, as with Ably.
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.example:8000"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    body = enveloped.json()
    assert body["statusCode"] == 200 and [m["data"] for m in body["response"]] == ["x"]
    assert body["headers"]["link"].startswith("<./messages?")
    assert "Link" in enveloped.headers["Access-Control-Expose-Headers"]
