"""The session's I/O over one Ably channel: publishing wire messages and reading history before attach."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable
from typing import Any

from ably import AblyRealtime
from ably.types.message import Message

from ..connection import attach_serial
from ..ratelimit import retry_rate_limited
from ..wire.envelope import WireMessage

HISTORY_PAGE_SIZE = 100


class ChannelWriter:
    """`codec.ChannelWriter` over an ably-python channel: creates awaited, appends pipelined."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    async def publish(self, message: WireMessage) -> str | None:
        result = await retry_rate_limited(lambda: self.channel.publish(Message(**message.to_publish())))
        return result.serials[0] if result.serials else None

    async def publish_all(self, messages: list[WireMessage]) -> list[str | None]:
        """One atomic publish of several messages (the parts of a user message)."""
        result = await retry_rate_limited(
            lambda: self.channel.publish([Message(**m.to_publish()) for m in messages]))
        return list(result.serials)

    def append(self, serial: str, message: WireMessage) -> Awaitable[Any]:
        # ably-python assigns the msgSerial in the task's first step, so call order is wire order. An append
        # refused for the rate (42911) is not retried, which could reorder it: the encoder repairs the
        # message with an update carrying its whole text when the stream ends.
        return asyncio.ensure_future(self.channel.append_message(Message(serial=serial, **_mutation(message))))

    async def update(self, serial: str, message: WireMessage) -> Any:
        return await retry_rate_limited(
            lambda: self.channel.update_message(Message(serial=serial, **_mutation(message))))


def _mutation(message: WireMessage) -> dict[str, Any]:
    fields = message.to_publish()
    fields.pop("name", None)
    return fields


async def history_before_attach(client: AblyRealtime, channel: Any, page_size: int = HISTORY_PAGE_SIZE):
    """Pages of the channel's messages up to its attach point, newest first, as ably-python Messages."""
    params: dict[str, Any] = {"limit": page_size, "direction": "backwards"}
    serial = attach_serial(channel)
    if serial:
        params["from_serial"] = serial
    path = f"/channels/{urllib.parse.quote(channel.name, safe='')}/messages"
    page = await client.request("GET", path, "5", params=params)
    while True:
        yield [Message.from_encoded(item) for item in page.items]
        if not page.has_next():
            return
        page = await page.next()
