"""`EventBatcher`: seq and event ids, one message per window, and cuts only at the size limit."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from langchain_ably_transport.codec.agent_protocol import EventBatcher, event
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage


class Channel:
    """What the batcher published, in order, as a channel would hold it."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[WireMessage] = []
        self.delay = delay

    async def publish(self, message: WireMessage) -> None:
        await asyncio.sleep(self.delay)
        self.messages.append(message)

    def events(self) -> list[dict[str, Any]]:
        """The events back, parts joined by event id, as a reader does."""
        out: list[dict[str, Any]] = []
        parts: dict[str, list[str]] = {}
        for message in self.messages:
            if names.HEADER_PART in message.transport:
                pieces = parts.setdefault(message.transport[names.HEADER_EVENT_ID], [])
                pieces.append(message.data)
                if len(pieces) == int(message.transport[names.HEADER_PARTS]):
                    out.append(json.loads("".join(pieces)))
            else:
                out += message.data["events"]
        return out


def text_events(n: int, size: int = 10) -> list[dict[str, Any]]:
    return [event("messages", [], {"event": "content-block-delta", "index": 0,
                                   "delta": {"type": "text-delta", "text": "x" * size}}) for _ in range(n)]


@pytest.mark.asyncio
async def test_events_added_within_a_window_go_out_as_one_message_numbered_from_next_seq() -> None:
    channel = Channel()
    batcher = EventBatcher(channel.publish, run_id="r", invocation_id="abc-def", seq=itertools.count(7))
    batcher.add(text_events(50))
    await batcher.close()
    assert len(channel.messages) == 1
    message = channel.messages[0]
    assert message.name == names.PROTOCOL_EVENTS
    assert message.transport[names.HEADER_RUN_ID] == "r"
    assert (message.transport[names.HEADER_FIRST_SEQ], message.transport[names.HEADER_LAST_SEQ]) == ("7", "56")
    assert [e["seq"] for e in channel.events()] == list(range(7, 57))
    assert channel.events()[0]["event_id"] == "synth:r:7"


@pytest.mark.asyncio
async def test_a_steady_stream_costs_one_message_per_window_not_one_per_event() -> None:
    channel = Channel(delay=0.002)
    batcher = EventBatcher(channel.publish, run_id="r", invocation_id="i", seq=itertools.count(0), window=0.04)
    for _ in range(100):  # 100 events a second for a second
        batcher.add(text_events(1))
        await asyncio.sleep(0.01)
    await batcher.close()
    assert 15 <= len(channel.messages) <= 30  # one per 40 ms window, whatever the event rate
    assert [e["seq"] for e in channel.events()] == list(range(100))


@pytest.mark.asyncio
async def test_a_batch_over_the_limit_is_cut_between_events() -> None:
    channel = Channel()
    batcher = EventBatcher(channel.publish, run_id="r", invocation_id="i", seq=itertools.count(0), max_bytes=2000)
    batcher.add(text_events(40, size=100))
    await batcher.close()
    assert len(channel.messages) > 1
    assert all(len(json.dumps(m.data).encode()) <= 2000 for m in channel.messages)
    assert [e["seq"] for e in channel.events()] == list(range(40))


@pytest.mark.asyncio
async def test_an_event_larger_than_a_message_is_sent_in_parts_cut_between_characters() -> None:
    channel = Channel()
    batcher = EventBatcher(channel.publish, run_id="r", invocation_id="i", seq=itertools.count(0), max_bytes=1000)
    big = event("values", [], {"messages": [{"type": "ai", "content": "é€😀" * 2000}]})
    batcher.add([*text_events(1), big, *text_events(1)])
    await batcher.close()
    parts = [m for m in channel.messages if names.HEADER_PART in m.transport]
    assert len(parts) > 10 and all(len(m.data.encode()) <= 1000 for m in parts)
    assert [e["seq"] for e in channel.events()] == [0, 1, 2]
    assert channel.events()[1]["params"]["data"] == big["params"]["data"]


@pytest.mark.asyncio
async def test_a_failed_publish_is_raised_by_close() -> None:
    async def failing(message: WireMessage) -> None:
        raise RuntimeError("refused")

    batcher = EventBatcher(failing, run_id="r", invocation_id="i", seq=itertools.count(0))
    batcher.add(text_events(1))
    with pytest.raises(RuntimeError, match="refused"):
        await batcher.close()


@pytest.mark.asyncio
async def test_the_first_event_after_a_quiet_window_goes_out_at_once() -> None:
    channel = Channel()
    batcher = EventBatcher(channel.publish, run_id="r", invocation_id="i", seq=itertools.count(0), window=0.2)
    batcher.add(text_events(1))
    await asyncio.sleep(0.05)
    assert len(channel.messages) == 1  # a window of 0.2 s was not waited for
    batcher.add(text_events(1))
    await asyncio.sleep(0.05)
    assert len(channel.messages) == 1  # the next waits for the window since the last publish
    await batcher.close()
    assert len(channel.messages) == 2
