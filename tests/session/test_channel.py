"""The session's channel I/O against the dev server: reading history a page at a time."""

from __future__ import annotations

import gc
import weakref

import pytest

from langchain_ably_transport.session.channel import recent_history


async def test_a_history_reader_pages_back_and_holds_no_page_it_handed_out(clients, channel_name):
    """A session keeps its history reader for its life, to page back on demand. Holding the pages it handed out
    would keep every session's folded history alive twice, for the collector to walk at every young collection."""
    client = await clients(client_id="alice")
    channel = client.channels.get(channel_name)
    await channel.attach()
    for number in range(3):
        await channel.publish("note", str(number))
    reader = recent_history(client, channel, page_size=2)

    newest = await anext(reader)
    assert [message.data for message in newest] == ["2", "1"]
    handed_out = [weakref.ref(message) for message in newest]
    del newest
    gc.collect()
    assert [ref() for ref in handed_out] == [None, None]

    oldest = await anext(reader)
    assert [message.data for message in oldest] == ["0"]
    handed_out = [weakref.ref(message) for message in oldest]
    del oldest
    gc.collect()
    assert [ref() for ref in handed_out] == [None]
    with pytest.raises(StopAsyncIteration):
        await anext(reader)
