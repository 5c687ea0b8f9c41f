"""Ably's limits, configured on the server: message size, publish rate; nothing ACKed is lost."""

from __future__ import annotations

import asyncio

import pytest
from ably.util.exceptions import AblyException

from langchain_ably_transport import connect
from langchain_ably_transport.devserver import spawn


async def test_publish_rate_over_the_limit_is_nacked_with_42911_and_accepted_ones_are_kept():
    with spawn(args=["--inbound-rate", "50"]) as server:
        async with connect(server.key, server.url) as client:
            channel = client.channels.get("test:rate")
            outcomes = await asyncio.gather(
                *(channel.publish("n", str(i)) for i in range(150)), return_exceptions=True
            )
            refused = [o for o in outcomes if isinstance(o, AblyException)]
            accepted = [str(i) for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
            assert refused and {e.code for e in refused} == {42911}
            assert 40 <= len(accepted) <= 60, "about one second's worth is accepted"
            history = await channel.history(direction="forwards", limit=1000)
            assert [m.data for m in history.items] == accepted
            await asyncio.sleep(1.0)
            await channel.publish("n", "after the burst")


async def test_oversize_message_is_rejected_by_the_server_with_40009():
    with spawn(args=["--max-message-size", "1024"]) as server:
        async with connect(server.key, server.url) as client:
            channel = client.channels.get("test:size")
            with pytest.raises(AblyException) as rejected:
                await channel.publish("n", "x" * 2000)
            assert rejected.value.code == 40009
            await channel.publish("n", "x" * 1000)
            assert [len(m.data) for m in (await channel.history()).items] == [1000]


async def test_connected_details_advertise_the_configured_limits():
    with spawn(args=["--max-message-size", "2048", "--max-idle-interval", "5"]) as server:
        async with connect(server.key, server.url) as client:
            details = client.connection.connection_details
            assert details.max_idle_interval == 5000
            assert details.connection_state_ttl == 120000
