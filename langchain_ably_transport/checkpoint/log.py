"""A channel as an append-only log of records: publish (within Ably's limits), page back, fetch by serial."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ably.types.message import Message
from ably.util.exceptions import AblyException

from ..errors import CheckpointRetentionError, CheckpointStorageError, ErrorCode
from ..ledger import MessageKind, Publication
from ..sdk.outbox import publish_now
from ..sdk.pacer import pacer_for, retry_rate_limited
from .records import CHUNK

log = logging.getLogger(__name__)

# A latest-checkpoint read usually needs only the newest message or two (a super-step is one message): a small
# first page keeps a cold read from downloading and decoding records it does not need, so its cost does not grow
# with the thread. Reads that must look further back (a shared channel's other traffic) go on in larger pages;
# full scans (`list`) take the largest pages from the start.
FIRST_PAGE_SIZE = 5
PAGE_SIZE = 100
FULL_SCAN_PAGE_SIZE = 1000
# Room in each message for its name, serial and framing: ably-python checks the whole encoded
# publish against 64 KiB, not just the data.
FRAME_OVERHEAD = 512
CHUNKED_BLOBS_KEPT = 16  # the newest chunked blobs of a channel, by digest: stored again, they are referenced


@dataclass(frozen=True)
class Entry:
    serial: str
    name: str | None
    data: Any
    timestamp: int | None = None  # Ably's, in ms


def _entries(page: Any) -> list[Entry]:
    return [Entry(m.serial, m.name, m.data, m.timestamp) for m in page.items]


class ChannelLog:
    """Records on one channel. Publishes are independent tasks: callers pipeline them freely."""

    def __init__(self, channel: Any, max_message_size: int, retry_for_s: float = 60.0) -> None:
        self.channel = channel
        self._pacer = pacer_for(channel.ably)
        self._chunked: OrderedDict[bytes, asyncio.Future[list[str]]] = OrderedDict()
        self.payload_limit = max_message_size - FRAME_OVERHEAD
        self._retry_for_s = retry_for_s

    @property
    def name(self) -> str:
        return self.channel.name

    def on(self, channel: Any) -> ChannelLog:
        """This log through `channel`, the same channel on another connection: the chunked blobs it stored are
        still there to reference (a serial names a message on every connection)."""
        moved = ChannelLog(channel, self.payload_limit + FRAME_OVERHEAD, self._retry_for_s)
        moved._chunked = self._chunked
        return moved

    async def publish(self, name: str, data: bytes) -> str:
        """Publish one record and return its serial, paced to the connection's publish rate (42911 waited out)."""
        if len(data) > self.payload_limit:
            raise CheckpointStorageError(f"record of {len(data)} bytes exceeds {self.payload_limit} on {self.name}")
        kind = MessageKind.CHECKPOINT_BLOB if name == CHUNK else MessageKind.CHECKPOINT_RECORD
        publication = Publication(kind, self.name)
        try:
            result = await retry_rate_limited(
                lambda: self._pacer.start(lambda: publish_now(self.channel, [Message(name=name, data=data)]),
                                          publication=publication),
                retry_for_s=self._retry_for_s)
        except AblyException as error:
            raise CheckpointStorageError(
                f"could not store a checkpoint record on {self.name}: {error.message}",
                code=error.code, status_code=error.status_code,
            ) from error
        return result.serials[0]

    async def publish_chunks(self, payload: bytes) -> list[str]:
        """Store a large blob, compressed, across as many chunk messages as it needs.

        A blob stored lately (or being stored) on this channel is not stored again: a node's large output is
        put twice, as its pending write and in the next checkpoint, and chunks are the saver's costliest
        writes (a connection publishes 50 messages a second, a chunk is at most 64 KiB).
        """
        key = hashlib.sha256(payload).digest()
        stored = self._chunked.get(key)
        if stored is None or (stored.done() and (stored.cancelled() or stored.exception() is not None)):
            stored = self._chunked[key] = asyncio.ensure_future(self._store_chunks(payload))
            while len(self._chunked) > CHUNKED_BLOBS_KEPT:
                self._chunked.popitem(last=False)
        self._chunked.move_to_end(key)
        return list(await asyncio.shield(stored))

    async def _store_chunks(self, payload: bytes) -> list[str]:
        compressed = zlib.compress(payload, 1)
        pieces = [compressed[i : i + self.payload_limit] for i in range(0, len(compressed), self.payload_limit)]
        return list(await asyncio.gather(*(self.publish(CHUNK, piece) for piece in pieces)))

    async def fetch_chunks(self, serials: list[str]) -> bytes:
        pieces = await asyncio.gather(*(self.fetch(serial) for serial in serials))
        return zlib.decompress(b"".join(bytes(entry.data) for entry in pieces))

    async def fetch(self, serial: str) -> Entry:
        try:
            message = await self.channel.get_message(serial)
        except AblyException as error:
            if error.code == ErrorCode.NOT_FOUND or error.status_code == 404:
                raise CheckpointRetentionError(
                    f"channel {self.name!r} no longer holds message {serial}, which a checkpoint needs: its "
                    "history expired. Add a persistence rule for this channel's namespace in your Ably app "
                    "(without one Ably keeps messages for 2 minutes).",
                    code=error.code, status_code=error.status_code,
                ) from error
            raise CheckpointStorageError(f"could not read {serial} from {self.name}: {error.message}",
                                         code=error.code) from error
        return Entry(message.serial, message.name, message.data, message.timestamp)

    async def newest_first(self, page_size: int | None = None, *, start: int | None = None,
                           ) -> AsyncIterator[list[Entry]]:
        """History pages, newest message first: `page_size` each, or `FIRST_PAGE_SIZE` then `PAGE_SIZE` (from the
        first page's oldest millisecond on: a message seen twice is folded twice, which is harmless); with `start`
        (ms), none older (Ably bills every message a page returns)."""
        since = {} if start is None else {"start": start}
        try:
            page = await self.channel.history(direction="backwards", limit=page_size or FIRST_PAGE_SIZE, **since)
            if page_size is None and page.has_next():
                yield _entries(page)
                page = await self.channel.history(direction="backwards", limit=PAGE_SIZE,
                                                  end=page.items[-1].timestamp, **since)
            while True:
                yield _entries(page)
                if not page.has_next():
                    return
                page = await page.next()
        except AblyException as error:
            raise CheckpointStorageError(f"could not read the history of {self.name}: {error.message}",
                                         code=error.code, status_code=error.status_code) from error
