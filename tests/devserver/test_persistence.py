"""Durability: what was ACKed survives a kill -9 and a restart on the same data file; retention expires."""

from __future__ import annotations

import asyncio

from langchain_ably_transport import connect
from langchain_ably_transport.devserver import start

from .raw import raw_connection


async def test_acked_messages_survive_kill_and_restart_on_the_same_file(tmp_path):
    data = str(tmp_path / "ably.sqlite3")
    server = start(data=data, args=["--inbound-rate", "0"])
    try:
        async with connect(server.key, server.url, transport_params={"appendRollupWindow": 0}) as client:
            channel = client.channels.get("test:durable")
            results = await asyncio.gather(*(channel.publish("n", str(i)) for i in range(100)))
            serials = [r.serials[0] for r in results]
        server.kill()
        server = start(data=data, args=["--inbound-rate", "0"])
        async with connect(server.key, server.url) as client:
            channel = client.channels.get("test:durable")
            history = await channel.history(direction="forwards", limit=1000)
            assert [m.data for m in history.items] == [str(i) for i in range(100)]
            assert [m.serial for m in history.items] == serials
            newer = (await channel.publish("n", "after restart")).serials[0]
            assert newer > serials[-1], "serials keep increasing across restarts"
    finally:
        server.stop()


async def test_retention_expires_history_and_resume_past_it_reports_lost_continuity():
    server = start(args=["--retention", "1"])
    try:
        async with connect(server.key, server.url) as client:
            channel = client.channels.get("test:short-lived")
            await channel.attach()
            await channel.publish("n", "soon gone")
            old_serial = (await channel.history()).items[0].serial.split(":")[0]
            await asyncio.sleep(2.0)
            assert (await channel.history()).items == []
        async with raw_connection(server) as raw:
            await raw.expect(4)
            await raw.send({"action": 10, "channel": "test:short-lived", "channelSerial": old_serial})
            attached = await raw.expect(11)
        assert not attached["flags"] & 4 and attached["error"]["code"] == 80016
    finally:
        server.stop()
