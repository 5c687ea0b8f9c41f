"""`as_history`: a live log folded as Ably's history returns it, checked against the dev server's history; and
the packed form a process keeps such a log in."""

from __future__ import annotations

import asyncio

from langchain_ably_transport.codec.encoder import MessageEncoder
from langchain_ably_transport.session.channel import ChannelWriter
from langchain_ably_transport.wire import WireMessage, build_transport_headers
from langchain_ably_transport.wire.aggregate import as_history
from langchain_ably_transport.wire.envelope import packed, unpacked
from langchain_ably_transport.wire.names import Action

HEADERS = build_transport_headers(
    role="assistant", codec_message_id="M", run_id="R", run_client_id="", parent="U", invocation_id="I",
    input_codec_message_id="U", step_id="I-step-0", step_client_id="",
)
FIELDS = ("name", "data", "transport", "codec", "action", "serial", "version_serial", "client_id", "timestamp")


def _fields(wire: WireMessage) -> tuple:
    return tuple(getattr(wire, name) for name in FIELDS)


async def test_a_live_log_as_history_is_what_the_history_returns(clients, channel_name):
    writer, reader = await clients(client_id="agent"), await clients()
    live: list[WireMessage] = []
    await reader.channels.get(channel_name).subscribe(lambda message: live.append(WireMessage.from_ably(message)))
    encoder = MessageEncoder(ChannelWriter(writer.channels.get(channel_name)), HEADERS, coalesce_window=0)
    for chunk in ({"type": "start", "messageId": "M"}, {"type": "text-start", "id": "t"},
                  *({"type": "text-delta", "id": "t", "delta": word} for word in ("one ", "two ", "three")),
                  {"type": "text-end", "id": "t"}, {"type": "finish"}):
        await encoder.write(chunk)
    await encoder.close()
    history = [WireMessage.from_ably(m) for m in reversed((await reader.channels.get(channel_name).history()).items)]
    for _ in range(100):  # until the live log has every message, the last one (`finish`) included
        if live and live[-1].serial == history[-1].serial:
            break
        await asyncio.sleep(0.02)
    assert Action.APPEND in [w.action for w in live] and len(live) > len(history)
    assert [_fields(w) for w in as_history(live)] == [_fields(w) for w in history]


def test_an_update_replaces_the_data_and_a_replay_is_held_once():
    create = WireMessage(name="ai-output", data="", transport={"stream": "true"}, action=Action.CREATE, serial="s1",
                         timestamp=5)
    append = WireMessage(data="par", transport={"stream": "true", "status": "streaming"}, action=Action.APPEND,
                         serial="s1", version_serial="v1", timestamp=5)
    update = WireMessage(data="whole", transport={"stream": "true", "status": "complete"}, action=Action.UPDATE,
                         serial="s1", version_serial="v2", timestamp=5)
    other = WireMessage(name="ai-run-end", action=Action.CREATE, serial="s2", timestamp=6)
    [stream, end] = as_history([create, append, create, update, other, other])
    assert (stream.name, stream.data, stream.transport["status"], stream.action, stream.version_serial) == (
        "ai-output", "whole", "complete", Action.UPDATE, "v2")
    assert end is other


def test_packed_messages_unpack_to_the_same_messages():
    messages = [
        WireMessage(name="ai-output", data="text", transport={"stream": "true"}, codec={"kind": "text"},
                    action=Action.UPDATE, serial="s1", version_serial="v1", client_id="agent", connection_id="c",
                    timestamp=5),
        WireMessage(name="ai-output", data={"a": [1, 2.5, None, True]}, ephemeral=True, action=Action.CREATE,
                    serial="s2", timestamp=6),
        WireMessage(name="lg.bytes", data=b"\x00\xff", serial="s3", timestamp=7),
        WireMessage(name="ai-run-end"),
    ]
    assert unpacked(packed(messages)) == messages
