"""Hostile and malformed input gets Ably error codes on its own connection; everyone else is unaffected."""

from __future__ import annotations

import asyncio
import time

import msgpack
import pytest

from langchain_ably_transport.devserver.auth import mint_jwt
from langchain_ably_transport.devserver.config import ApiKey

from .helpers import Collector, eventually
from .raw import raw_connection

FATAL_FRAMES = {
    "malformed JSON": ("{not json", 40000),
    "lone surrogate in JSON": ('{"action": 15, "channel": "test:x", "msgSerial": 0, "messages": [{"data": "\\ud800"}]}',
                               40000),
    "not an object": ("[1, 2]", 40000),
    "unknown action": ({"action": 99}, 40000),
    "message without msgSerial": ({"action": 15, "channel": "test:x", "messages": [{"data": "x"}]}, 40000),
}


@pytest.fixture
async def bystander(clients, channel_name):
    """A genuine client streaming on the same server throughout; it must get every ACKed message once."""
    publisher = await clients()
    subscriber = await clients()
    received = Collector()
    await subscriber.channels.get(channel_name).subscribe(received.add)
    channel = publisher.channels.get(channel_name)
    acked: list[str] = []

    async def publish(data: str) -> None:
        await channel.publish("n", data)
        acked.append(data)

    async def keep_publishing() -> None:
        for i in range(10_000):
            await publish(str(i))
            await asyncio.sleep(0.01)

    task = asyncio.create_task(keep_publishing())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await publish("after")
    await eventually(lambda: "after" in received.data, message="the bystander kept receiving")
    # A publish cancelled in flight may still land (unACKed); every ACKed one lands once, in order.
    assert [d for d in received.data if d in acked] == acked
    assert len(received.data) <= len(acked) + 1


@pytest.mark.parametrize("frame, code", FATAL_FRAMES.values(), ids=FATAL_FRAMES.keys())
async def test_protocol_violation_fails_only_that_connection(server, bystander, frame, code):
    async with raw_connection(server) as hostile:
        await hostile.expect(4)
        await hostile.send(frame)
        error = await hostile.expect(9)
        assert error["error"]["code"] == code and "channel" not in error
        assert await hostile.closed()


async def test_malformed_msgpack_fails_only_that_connection(server, bystander):
    async with raw_connection(server, format="msgpack") as hostile:
        await hostile.expect(4)
        await hostile.send(b"\xc1\xff\x00")
        assert (await hostile.expect(9))["error"]["code"] == 40000


NACKED_FRAMES = {
    "no messages": ({"action": 15, "channel": "test:x", "msgSerial": 0}, 40000),
    "number as data": ({"action": 15, "channel": "test:x", "msgSerial": 0, "messages": [{"data": 5}]}, 40013),
    "invalid channel name": ({"action": 15, "channel": ":bad", "msgSerial": 0, "messages": [{"data": "x"}]}, 40010),
    "missing channel": ({"action": 15, "msgSerial": 0, "messages": [{"data": "x"}]}, 40010),
    "name not a string": ({"action": 15, "channel": "test:x", "msgSerial": 0, "messages": [{"name": 1}]}, 40000),
    "append without serial": ({"action": 15, "channel": "test:x", "msgSerial": 0,
                               "messages": [{"action": 5, "data": "x"}]}, 40000),
    "bad base64": ({"action": 15, "channel": "test:x", "msgSerial": 0,
                    "messages": [{"data": "***", "encoding": "base64"}]}, 40000),
}


@pytest.mark.parametrize("frame, code", NACKED_FRAMES.values(), ids=NACKED_FRAMES.keys())
async def test_bad_publish_is_nacked_and_the_connection_keeps_working(server, bystander, frame, code):
    async with raw_connection(server) as sloppy:
        await sloppy.expect(4)
        await sloppy.send(frame)
        nack = await sloppy.expect(2)
        assert (nack["msgSerial"], nack["count"], nack["error"]["code"]) == (0, 1, code)
        await sloppy.send({"action": 15, "channel": "test:x", "msgSerial": 1, "messages": [{"data": "fine"}]})
        assert (await sloppy.expect(1))["msgSerial"] == 1


@pytest.mark.parametrize("name", ["", ":leading-colon", "ctrl\nchar", "[qualifier"])
async def test_attach_to_invalid_channel_name_is_a_channel_error(server, bystander, name):
    async with raw_connection(server) as client:
        await client.expect(4)
        await client.send({"action": 10, "channel": name})
        error = await client.expect(9)
        assert error["channel"] == name and error["error"]["code"] == 40010
        await client.send({"action": 0, "id": "still-alive"})
        assert (await client.expect(0))["id"] == "still-alive"


async def test_bad_credentials_are_refused_at_connect(server, bystander):
    key = ApiKey.parse(server.key)
    expired = mint_jwt(key, ttl_ms=1000, now_ms=int(time.time() * 1000) - 60_000)
    forged = mint_jwt(ApiKey(key.name, "not-the-secret-at-all-but-long-enough"))
    cases = [({"key": "dev.key:nope"}, 40101), ({"accessToken": expired}, 40142),
             ({"accessToken": forged}, 40101), ({"accessToken": "not-a-jwt"}, 40144),
             ({"key": server.key, "format": "xml"}, 40000)]
    for params, code in cases:
        async with raw_connection(server, **params) as client:
            assert (await client.expect(9))["error"]["code"] == code, params


async def test_oversize_frame_closes_only_that_socket(server, bystander):
    async with raw_connection(server) as client:
        await client.expect(4)
        huge = msgpack.packb({"action": 15, "channel": "test:x", "msgSerial": 0, "messages": [{"data": "x" * 600_000}]})
        await client.send(huge)
        assert await client.closed()
