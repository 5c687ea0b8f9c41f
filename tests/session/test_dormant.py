"""A session opened again in the same process starts from what its last core folded, and reads only what came since."""

from __future__ import annotations

import asyncio

from langchain_ably_transport import ConnectionPool
from langchain_ably_transport.codec.encoder import MessageEncoder
from langchain_ably_transport.session import ClientSession
from langchain_ably_transport.session.channel import ChannelWriter
from langchain_ably_transport.wire import build_transport_headers

HEADERS = build_transport_headers(
    role="assistant", codec_message_id="M", run_id="R", run_client_id="", parent="U", invocation_id="I",
    input_codec_message_id="U", step_id="I-step-0", step_client_id="",
)


def _history_reads(client) -> list[int]:
    """The messages each REST history request of `client` returns (Ably bills each one), as they come."""
    reads: list[int] = []
    request = client.request

    async def counted(method, path, *args, **kwargs):
        response = await request(method, path, *args, **kwargs)
        if method == "GET" and path.endswith("/messages"):
            reads.append(len(response.items))
        return response

    client.request = counted
    return reads


def _parts(session: ClientSession) -> list:
    return [entry["message"]["parts"] for entry in session.view()]


async def test_a_session_opened_again_reads_only_the_history_since_and_sees_what_a_fresh_one_sees(clients,
                                                                                                 channel_name):
    sender_client, reader_client = await clients(), await clients()
    async with ClientSession(sender_client, channel_name) as sender:
        for n in range(12):
            await asyncio.sleep(0.01 if n == 11 else 0)  # the newest alone in its millisecond: the read since is exact
            await sender.send(f"message {n}")
        async with ClientSession(reader_client, channel_name) as first:
            assert len(first.view()) == 12
        for n in range(12, 14):
            await sender.send(f"message {n}")
        reads = _history_reads(reader_client)
        async with ClientSession(reader_client, channel_name) as again, \
                ClientSession(await clients(), channel_name) as fresh:
            assert len(fresh.view()) == 14
            assert _parts(again) == _parts(fresh)
    assert reads == [3]  # the newest one folded, and the two sent since (afresh: all 14)


async def test_the_connections_of_one_pool_share_a_dormant_session_and_other_clients_do_not(server, clients,
                                                                                          channel_name):
    async with ConnectionPool(server.key, server.url, max_connections=2, streams_per_connection=1) as pool, \
            pool.lease("one") as first_connection, pool.lease("two") as second_connection, \
            ClientSession(await clients(), channel_name) as sender:
        assert first_connection is not second_connection
        for n in range(5):
            await asyncio.sleep(0.01 if n == 4 else 0)  # the newest alone in its millisecond
            await sender.send(f"message {n}")
        async with ClientSession(first_connection, channel_name) as first:
            assert len(first.view()) == 5
        await sender.send("message 5")
        outside = await clients()
        pooled, other = _history_reads(second_connection), _history_reads(outside)
        async with ClientSession(second_connection, channel_name) as again, \
                ClientSession(outside, channel_name) as fresh:
            assert len(again.view()) == len(fresh.view()) == 6
    assert (pooled, other) == ([2], [6])  # the newest folded and the one sent since; outside the pool, all afresh


async def test_a_session_opened_again_pages_back_from_the_oldest_message_it_held(clients, channel_name):
    sender_client, reader_client = await clients(), await clients()
    async with ClientSession(sender_client, channel_name) as sender:
        for n in range(105):
            await sender.send(f"message {n}")
        async with ClientSession(reader_client, channel_name, history_pages=1) as first:
            assert len(first.view()) == 100  # one page
        reads = _history_reads(reader_client)
        async with ClientSession(reader_client, channel_name, history_pages=1) as again:
            assert len(again.view()) == 100 and await again.load_older() == 5
            texts = [entry["message"]["parts"][0]["text"] for entry in again.view()]
    assert texts == [f"message {n}" for n in range(105)]
    assert len(reads) == 2 and reads[0] <= 2  # the newest held (and its millisecond's); then the page before it


async def test_a_session_closed_while_a_stream_was_open_is_read_afresh(clients, channel_name):
    """The stream's later appends change a message the closing core holds: its next core must not start from it.
    The writer publishes through an encoder alone, so the reader's is the only core of the session."""
    writer_client, reader_client = await clients(client_id="agent"), await clients()
    encoder = MessageEncoder(ChannelWriter(writer_client.channels.get(channel_name)), HEADERS, coalesce_window=0)
    await encoder.write({"type": "text-start", "id": "t"})
    await encoder.write({"type": "text-delta", "id": "t", "delta": "one "})
    async with ClientSession(reader_client, channel_name) as first:
        assert await first.wait_for(lambda: _text(first) == "one ")
    await encoder.write({"type": "text-delta", "id": "t", "delta": "two"})
    await encoder.write({"type": "text-end", "id": "t"})
    await encoder.close()
    reads = _history_reads(reader_client)
    async with ClientSession(reader_client, channel_name) as again:
        assert _text(again) == "one two"
    assert reads == [1]  # the stream's whole message, read afresh (from a dormant core: none, its serial is known)


def _text(session: ClientSession) -> str:
    return "".join(part.get("text", "") for entry in session.view() if entry["message"]["role"] == "assistant"
                   for part in entry["message"]["parts"] if part["type"] == "text")
