"""Protocol events onto the channel: numbered, batched per rollup window, and split only when too large.

Ably accepts 50 messages a second per connection and channel, and bills each: a model streaming 100 tokens a
second must not cost 100 messages. `EventBatcher` stamps each event with the thread's next `seq` and a stable
`event_id`, `synth:<run id>:<seq>`. That is the shape LangGraph's SDK reads a run's id from, and the only one: a
root lifecycle event without it ends whatever run the client is waiting on. It publishes what gathered since
its last publish as one `lg-events` message, `{"events": [...]}`, headed with its run and seq range. It does so at
most once per window (40 ms, Ably's rollup) and at once when the last publish is a window old, so that the first
token of a reply waits for nothing. Publishes are sequential, so the channel holds a run's events in `seq` order,
and history replays a run exactly.

A batch that would pass the message limit (64 KiB) is cut between events; one event that alone passes it (a
long thread's `values`) is sent as its JSON text cut into consecutive `part`/`parts` messages, which a reader
joins by the event's `event-id` before parsing. Events are never trimmed or turned into deltas.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ...wire import names
from ...wire.envelope import WireMessage, data_size
from ..encoder import DEFAULT_COALESCE_WINDOW, DEFAULT_ENVELOPE_RESERVE, DEFAULT_MAX_MESSAGE_BYTES
from .events import Event

log = logging.getLogger(__name__)

Publish = Callable[[WireMessage], Awaitable[Any]]
_EMPTY_BATCH = len('{"events": []}')


def event_text(stamped: Event) -> str:
    return json.dumps(stamped, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class EventBatcher:
    """`add()` events as they come; `close()` publishes the rest and raises the first publish failure."""

    def __init__(self, publish: Publish, *, run_id: str, invocation_id: str, seq: Iterator[int],
                 window: float = DEFAULT_COALESCE_WINDOW,
                 max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES - DEFAULT_ENVELOPE_RESERVE) -> None:
        self._publish = publish
        self._headers = {names.HEADER_RUN_ID: run_id, names.HEADER_INVOCATION_ID: invocation_id}
        self._run_id = run_id
        self._seq = seq  # the thread's: a run cancelled by a newer one may still be publishing its last events
        self._window = window
        self._max_bytes = max_bytes
        self._pending: list[tuple[Event, int]] = []  # each stamped event with its bytes as Ably counts them
        self._wake = asyncio.Event()
        self._closing = False
        self._flusher = asyncio.ensure_future(self._flush_forever())

    def add(self, events: list[Event]) -> None:
        for unstamped in events:
            seq = next(self._seq)
            stamped = {**unstamped, "event_id": f"synth:{self._run_id}:{seq}", "seq": seq}
            self._pending.append((stamped, data_size(stamped)))
        if events:
            self._wake.set()

    async def close(self) -> None:
        """Publish what is pending; the first publish failure (events after it are not published) is raised."""
        self._closing = True
        self._wake.set()
        await self._flusher

    async def _flush_forever(self) -> None:
        """Publish at most once a window, at once when the last publish is a window old: the first token of a
        reply waits for nothing, and a steady stream goes out one message per window."""
        loop = asyncio.get_running_loop()
        last = -self._window
        while True:
            await self._wake.wait()
            if not self._closing and (wait := last + self._window - loop.time()) > 0:
                await asyncio.sleep(wait)
            self._wake.clear()
            last = loop.time()
            batch, self._pending = self._pending, []
            for message in self._messages(batch):
                await self._publish(message)
            if self._closing and not self._pending:
                return

    def _messages(self, batch: list[tuple[Event, int]]) -> list[WireMessage]:
        """Consecutive events in as few messages as the size limit allows; an event too large alone in parts."""
        messages: list[WireMessage] = []
        group: list[Event] = []
        size = _EMPTY_BATCH
        for stamped, length in batch:
            if length + _EMPTY_BATCH > self._max_bytes:
                messages += self._group(group) + self._parts(stamped)
                group, size = [], _EMPTY_BATCH
                continue
            if group and size + length + 2 > self._max_bytes:
                messages += self._group(group)
                group, size = [], _EMPTY_BATCH
            group.append(stamped)
            size += length + 2  # the separator ably-python's JSON puts between list items
        return messages + self._group(group)

    def _group(self, group: list[Event]) -> list[WireMessage]:
        if not group:
            return []
        return [WireMessage(name=names.PROTOCOL_EVENTS, data={"events": group},
                            transport=self._seq_headers(group[0]["seq"], group[-1]["seq"]))]

    def _parts(self, stamped: Event) -> list[WireMessage]:
        chunks = _utf8_chunks(event_text(stamped), self._max_bytes)
        headers = self._seq_headers(stamped["seq"], stamped["seq"])
        headers[names.HEADER_EVENT_ID] = stamped["event_id"]
        return [WireMessage(name=names.PROTOCOL_EVENTS, data=chunk,
                            transport={**headers, names.HEADER_PART: str(i), names.HEADER_PARTS: str(len(chunks))})
                for i, chunk in enumerate(chunks)]

    def _seq_headers(self, first: int, last: int) -> dict[str, str]:
        return {**self._headers, names.HEADER_FIRST_SEQ: str(first), names.HEADER_LAST_SEQ: str(last)}


def _utf8_chunks(text: str, max_bytes: int) -> list[str]:
    """`text` cut into pieces of at most `max_bytes` UTF-8 bytes, never inside a character."""
    raw = text.encode()
    chunks: list[str] = []
    start = 0
    while start < len(raw):
        end = min(len(raw), start + max_bytes)
        while end < len(raw) and raw[end] & 0xC0 == 0x80:  # a continuation byte: the cut backs off to the lead
            end -= 1
        chunks.append(raw[start:end].decode())
        start = end
    return chunks
