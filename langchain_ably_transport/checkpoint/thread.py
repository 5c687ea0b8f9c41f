"""One thread's checkpoints on its channel: reading (warm or cold), writing, erasing.

Reads are strongly consistent: each latest-checkpoint read first folds in whatever was published since
this process last looked (one history request, however long the thread). A cold process pages back only
until it holds the newest checkpoint (see `ThreadIndex.covers_latest`), then fetches the values that
checkpoint names by serial, in parallel: the cost follows the state's size, not the thread's length.

Writes cost no message of their own as a rule: a task's writes wait (at most `writes_wait_s`) for the next
checkpoint and travel in its message, so a super-step is one message. A put may be held too (`hold`, which
`serve_graph` asks for): it waits (at most `checkpoint_wait_s`) for the puts after it, and a burst of
super-steps shares one message. Writes that may end the run (an error, an interrupt, a resume) are published at
once with everything waiting, and a read first publishes whatever waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from ..errors import CheckpointStorageError
from .index import ThreadIndex, version_key
from .log import FULL_SCAN_PAGE_SIZE, ChannelLog, Entry
from .records import (
    CHECKPOINT,
    ERASE,
    WRITES,
    CheckpointRecord,
    EraseRecord,
    Record,
    Typed,
    WritesRecord,
    blobs_of,
    decode,
    pack,
    pack_checkpoints,
    pack_writes,
)
from .values import BlobRef, Layout, Ref, Written, blob_key, blob_refs, lay_out, materialise, rebase

CARRIED_VALUE_BYTES = 256
log = logging.getLogger(__name__)
InFlight = tuple[str, str]  # (namespace, checkpoint id) of writes under way


class BlobCache:
    """Decoded blobs by (channel, blob key), least recently used dropped past `max_bytes`, and a channel's all
    dropped when the saver stops caching its thread (`drop`): what is cached follows the warm threads."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._by_channel: dict[str, set[tuple[str, str]]] = {}
        self._bytes = 0
        self._max = max_bytes

    def get(self, key: tuple[str, str]) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple[str, str], value: bytes) -> None:
        if key in self._items:
            return
        self._items[key] = value
        self._by_channel.setdefault(key[0], set()).add(key)
        self._bytes += len(value)
        while self._bytes > self._max and len(self._items) > 1:
            self._forget(next(iter(self._items)))

    def drop(self, channel: str) -> None:
        for key in self._by_channel.get(channel, set()).copy():
            self._forget(key)

    def _forget(self, key: tuple[str, str]) -> None:
        self._bytes -= len(self._items.pop(key))
        keys = self._by_channel[key[0]]
        keys.discard(key)
        if not keys:
            del self._by_channel[key[0]]


@dataclass
class HeldPut:
    """A put laid out but not yet published, waiting for the puts after it to share their message."""

    record: CheckpointRecord
    blobs: dict[str, bytes]  # inline in its record, by key
    placed: dict[str, BlobRef]  # moved to chunk messages, by key
    values: dict[str, Any]
    new_versions: dict[str, Any]


class ThreadStore:
    def __init__(self, log: ChannelLog, serde: SerializerProtocol, blobs: BlobCache,
                 writes_wait_s: float = 0.5, checkpoint_wait_s: float = 0.25) -> None:
        self.log = log
        self.index = ThreadIndex()
        self._serde = serde
        self._blobs = blobs
        self._written: dict[tuple[str, str], Written] = {}
        self._children: dict[str, tuple[str, str]] = {}
        self._older: AsyncIterator[list[Entry]] | None = None
        self._lock = asyncio.Lock()
        self._in_flight: dict[asyncio.Future[None], list[InFlight]] = {}
        self._waiting: dict[str, list[WritesRecord]] = {}
        self._writes_wait_s = writes_wait_s
        self._checkpoint_wait_s = checkpoint_wait_s
        self._writer = asyncio.Lock()  # one checkpoint message at a time: held puts name each other's blobs
        self._held: list[HeldPut] = []
        self._held_refs: dict[tuple[str, str, str], Ref] = {}
        self._flush_timer: asyncio.Handle | None = None
        self._flush_due = 0.0
        self._flushes: set[asyncio.Task[None]] = set()
        self._refreshed_for: str | None = None  # the serving whose first read refreshed last
        self._read_until: int | None = None  # the latest timestamp read: a refresh asks for nothing older

    def move_to(self, log: ChannelLog) -> None:
        """Read and publish through `log` (this thread's channel on another connection) from now on. What the store
        knows of the thread still holds; a scan of older history starts again from the newest page (a record
        folded twice is harmless), since the pages under way came through the connection left."""
        self.log = log
        if self._older is not None:
            self._older = log.newest_first()

    # --- loading ---

    async def latest(self, ns: str, serving: str | None = None) -> tuple[str, CheckpointRecord] | None:
        """The newest checkpoint of `ns`, after folding in what the channel has that this process has not seen; only
        once per `serving` (see `saver.SERVING_KEY`): its later reads find what its first found, plus its own puts."""
        await self.flush()
        async with self._lock:
            if serving is None or serving != self._refreshed_for:
                await self._refresh()
                self._refreshed_for = serving
            await self._scan_older(lambda: self.index.covers_latest(ns))
        return await self._with_early_writes(self.index.latest(ns))

    async def by_id(self, ns: str, checkpoint_id: str) -> tuple[str, CheckpointRecord] | None:
        await self.flush()
        if self.index.get(ns, checkpoint_id) is None:
            async with self._lock:
                await self._refresh()
                await self._scan_older(lambda: self.index.get(ns, checkpoint_id) is not None)
        return await self._with_early_writes(self.index.get(ns, checkpoint_id))

    async def load_all(self) -> None:
        """Everything the channel holds for this thread, in the largest pages (folding is idempotent)."""
        await self.flush()
        async with self._lock:
            if self.index.complete:
                await self._refresh()
                return
            async for page in self.log.newest_first(FULL_SCAN_PAGE_SIZE):
                self._fold(page)
                if self.index.complete:
                    break
            self.index.complete = True
            self._older = None

    async def _refresh(self) -> None:
        """Fold in every record newer than the newest this process has read (its own since, and the few of that
        record's millisecond, come back too: a message no newer was stored no later)."""
        known = self.index.head
        pages = self.log.newest_first(start=None if known is None else self._read_until)
        async for page in pages:
            self._fold([entry for entry in page if known is None or entry.serial > known])
            if known is None:
                self._older = pages
                return
            if not page or page[-1].serial <= known:
                break
        else:
            if known is None:
                self.index.complete = True
        await pages.aclose()

    async def _scan_older(self, enough: Callable[[], bool]) -> None:
        while not self.index.complete and not enough():
            if self._older is None:
                await self._refresh()
                continue
            try:
                page = await anext(self._older)
            except StopAsyncIteration:
                self.index.complete = True
                return
            self._fold(page)

    def _fold(self, entries: list[Entry]) -> None:
        for entry in entries:
            self.index.saw(entry.serial)
            if entry.timestamp is not None and (self._read_until is None or entry.timestamp > self._read_until):
                self._read_until = entry.timestamp
            self._apply(entry.serial, decode(entry.name, entry.data))

    def _apply(self, serial: str, records: list[Record]) -> None:
        for record in records:
            if isinstance(record, CheckpointRecord):
                for key, payload in record.blobs.items():
                    self._blobs.put((self.log.name, blob_key(("at", serial, key))), payload)
        self.index.apply(serial, records)

    async def _with_early_writes(self, entry: tuple[str, CheckpointRecord] | None):
        """Fetch writes for this checkpoint published before it, if they lie outside the loaded window."""
        if entry is None:
            return None
        oldest = self.index.oldest
        missing = [s for s in entry[1].early if oldest is None or s < oldest]
        for fetched in await asyncio.gather(*(self.log.fetch(serial) for serial in missing)):
            self.index.apply(fetched.serial, decode(fetched.name, fetched.data))
        return entry

    # --- values ---

    async def values(self, record: CheckpointRecord) -> dict[str, Any]:
        """The checkpoint's channel values, freshly deserialised (callers may mutate them)."""
        blobs = await self._blobs_for([blob for _, ref in record.values.values() for blob in blob_refs(ref)])
        loads = self._serde.loads_typed
        return {ch: materialise(ref, blobs, loads) for ch, (_, ref) in record.values.items() if ref[0] != "empty"}

    def remember(self, record: CheckpointRecord) -> None:
        """What was read is what the next put appends to; its lists are decoded only if a put needs them."""
        for channel, (version, ref) in record.values.items():
            if ref[0] == "list":
                self._written[(record.ns, channel)] = Written(version, None, -1, ref)

    async def _previous(self, ns: str, channel: str) -> Written | None:
        written = self._written.get((ns, channel))
        if written is None or written.length >= 0:
            return written
        blobs = await self._blobs_for(blob_refs(written.ref))
        value = materialise(written.ref, blobs, self._serde.loads_typed)
        return Written(written.version, value, len(value), written.ref)

    async def _blobs_for(self, refs: list[BlobRef]) -> dict[str, bytes]:
        """The blobs `refs` name, from the cache or fetched; what was fetched is kept here too, since the cache
        may drop it (its thread no longer cached, or its bytes over the limit) before it is used."""
        wanted = {blob_key(ref): ref for ref in refs}
        found = {key: blob for key in wanted if (blob := self._blobs.get((self.log.name, key))) is not None}
        missing = [ref for key, ref in wanted.items() if key not in found]
        records = {ref[1] for ref in missing if ref[0] == "at"}
        for fetched in await asyncio.gather(*(self._load_record_blobs(serial) for serial in records),
                                            *(self._load_chunks(ref) for ref in missing if ref[0] == "chunks")):
            found.update(fetched)
        return {key: found[key] for key in wanted}

    async def _load_record_blobs(self, serial: str) -> dict[str, bytes]:
        entry = await self.log.fetch(serial)
        blobs = {blob_key(("at", serial, key)): payload
                 for key, payload in blobs_of(bytes(entry.data)).items()}
        for key, payload in blobs.items():
            self._blobs.put((self.log.name, key), payload)
        return blobs

    async def _load_chunks(self, ref: BlobRef) -> dict[str, bytes]:
        key, payload = blob_key(ref), await self.log.fetch_chunks(ref[1])
        self._blobs.put((self.log.name, key), payload)
        return {key: payload}

    async def write_value(self, value: Any) -> Any:
        """A pending write's value: inline, or fetched from its chunk messages."""
        if isinstance(value, list) and value[0] == "chunks":
            return self._serde.loads_typed((value[1], await self.log.fetch_chunks(value[2])))
        return self._serde.loads_typed(value)

    # --- writing ---

    async def put(
        self, ns: str, checkpoint: dict[str, Any], parent: str | None, metadata: Typed,
        new_versions: dict[str, Any], run_id: str | None, hold: bool = False,
    ) -> None:
        """Publish the checkpoint, with the puts held before it; with `hold`, it is held in turn: it waits (at
        most `checkpoint_wait_s`, or until `flush` or `publish_soon`) for the puts after it, to share their
        message."""
        async with self._writer:
            await self._hold(ns, checkpoint, parent, metadata, new_versions, run_id)
            if not hold:
                await self._publish_held()
        if hold:
            self._flush_within(self._checkpoint_wait_s)

    async def _hold(self, ns: str, checkpoint: dict[str, Any], parent: str | None, metadata: Typed,
                    new_versions: dict[str, Any], run_id: str | None) -> None:
        """Lay the put out beside the held ones. If it would not fit in their message, they are published first
        and it is laid out again alone: held puts name each other's blobs `here`, in the one message."""
        stripped = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        record = CheckpointRecord(
            ns=ns, id=checkpoint["id"], parent=parent, checkpoint=self._serde.dumps_typed(stripped),
            metadata=metadata, values={}, run_id=run_id,
        )
        while True:
            layout = Layout(prefix=f"{len(self._held)}." if self._held else "")
            record.values = await self._lay_out(ns, checkpoint, new_versions, layout)
            held = HeldPut(record, layout.blobs, {}, checkpoint["channel_values"], new_versions)
            if not self._held or sum(self._inline_size(h) for h in [*self._held, held]) <= self.log.payload_limit:
                break
            await self._publish_held()
        for key in [k for k, payload in held.blobs.items() if len(payload) > self.log.payload_limit // 2]:
            held.placed[key] = ("chunks", await self.log.publish_chunks(held.blobs.pop(key)))
        record.values = {ch: (v, rebase(ref, None, held.placed)) for ch, (v, ref) in record.values.items()}
        self._held.append(held)
        for channel, (version, ref) in record.values.items():
            self._held_refs[(ns, channel, version_key(version))] = ref
        self._remember_written(held)

    async def _lay_out(self, ns: str, checkpoint: dict[str, Any], new_versions: dict[str, Any],
                       layout: Layout) -> dict[str, list[Any]]:
        """`[version, ref]` by channel: new values laid out in `layout`, unchanged ones referenced."""
        values = checkpoint["channel_values"]
        refs: dict[str, list[Any]] = {}
        for channel, version in checkpoint["channel_versions"].items():
            if channel in new_versions:
                previous = await self._previous(ns, channel)
                ref = lay_out(channel, values[channel], previous, self._serde.dumps_typed, layout) \
                    if channel in values else ("empty",)
            else:
                key = (ns, channel, version_key(version))
                ref = self._held_refs.get(key) or self.index.refs.get(key)
                if ref is None:
                    continue
                ref = self._carried(channel, ref, layout)
            refs[channel] = [version, ref]
        return refs

    def _inline_size(self, held: HeldPut) -> int:
        """About what a held put adds to its message (before compression): its blobs that stay inline, its
        checkpoint and its metadata."""
        inline = sum(len(payload) for payload in held.blobs.values() if len(payload) <= self.log.payload_limit // 2)
        return inline + len(held.record.checkpoint[1]) + len(held.record.metadata[1])

    def _carried(self, channel: str, ref: Ref, layout: Layout) -> Ref:
        """An unchanged small value is copied into the new record rather than referenced: a cold read then
        needs no fetch from a record written long ago, for a few bytes per put."""
        if ref[0] != "value" or ref[2][0] != "at":
            return ref
        payload = self._blobs.get((self.log.name, blob_key(ref[2])))
        if payload is None or len(payload) > CARRIED_VALUE_BYTES:
            return ref
        return ("value", ref[1], layout.add_blob(channel, payload))

    async def _publish_held(self) -> None:
        """The held puts and every waiting write in one message (the writes alone when nothing is held). What
        does not fit goes first: the writes as a batch of their own, then blobs, largest first, to chunk
        messages that the records name by serial. Called with the writer lock held."""
        held = self._held
        if not held:
            await self._publish_waiting()
            return
        placed = {key: ref for h in held for key, ref in h.placed.items()}
        while True:
            for h in held:
                await self._settle(h.record.ns, h.record.id)
            writes = [w for waiting in self._waiting.values() for w in waiting]
            for place, h in enumerate(held):
                record = h.record
                record.early = self.index.write_serials(record.ns, record.id)
                record.children = self._children_of(record.id) if record.ns == "" else {}
                record.blobs = h.blobs
                record.values = {ch: (v, rebase(ref, None, placed)) for ch, (v, ref) in record.values.items()}
                record.writes = writes if place == 0 else []
            data = pack_checkpoints([h.record for h in held])
            if len(data) <= self.log.payload_limit:
                break
            if writes:
                await self._publish_waiting()
                continue
            inline = [(h, key) for h in held for key in h.blobs]
            if not inline:
                break
            owner, key = max(inline, key=lambda item: len(item[0].blobs[item[1]]))
            placed[key] = owner.placed[key] = ("chunks", await self.log.publish_chunks(owner.blobs.pop(key)))
        serial = await self._publish_with(CHECKPOINT, data, self._take())
        self._held, self._held_refs = [], {}
        self._apply(serial, [r for h in held for r in (*h.record.writes, h.record)])
        for h in held:
            self._after_put(serial, h)
        self._stop_timer_if_idle()

    async def _publish_with(self, name: str, data: bytes, writes: list[WritesRecord]) -> str:
        """Publish a message that carries `writes`, which wait again for the next message if it fails."""
        try:
            with self._publishing([(w.ns, w.checkpoint_id) for w in writes]):
                return await self.log.publish(name, data)
        except BaseException:
            for write in reversed(writes):
                self._waiting.setdefault(write.ns, []).insert(0, write)
            raise

    def _take(self) -> list[WritesRecord]:
        """Every waiting write, in the order they were made (per namespace)."""
        taken = [w for waiting in self._waiting.values() for w in waiting]
        self._waiting.clear()
        return taken

    async def flush(self) -> None:
        """Publish now whatever waits: the held puts and the queued writes, in as few messages as fit."""
        async with self._writer:
            await self._publish_held()

    def publish_soon(self) -> None:
        """Publish the held puts as soon as the loop allows, without waiting for it."""
        if self._held:
            self._flush_within(0)

    async def _publish_waiting(self) -> None:
        """The waiting writes, without a checkpoint, in as few messages as fit."""
        for batch in self._batches(self._take()):
            serial = await self._publish_with(WRITES, pack_writes(batch), batch)
            self._apply(serial, list(batch))
        self._stop_timer_if_idle()

    def _batches(self, writes: list[WritesRecord]) -> list[list[WritesRecord]]:
        """`writes` split, in order, into batches that each fit in a message."""
        if len(writes) <= 1 or len(pack_writes(writes)) <= self.log.payload_limit:
            return [writes] if writes else []
        half = len(writes) // 2
        return self._batches(writes[:half]) + self._batches(writes[half:])

    def _flush_within(self, delay: float) -> None:
        """Publish what waits `delay` seconds from now, or sooner if a flush is due sooner already."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if self._flush_timer is not None:
            if self._flush_due <= due:
                return
            self._flush_timer.cancel()
        # The due time is kept here: for a time already past, uvloop's `call_at` returns a plain `Handle`, which has
        # no `when()` (uvicorn runs on uvloop when it is installed).
        self._flush_timer, self._flush_due = loop.call_at(due, self._flush_waited), due

    def _stop_timer_if_idle(self) -> None:
        if not self._waiting and not self._held and self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None

    def _flush_waited(self) -> None:
        self._flush_timer = None
        task = asyncio.ensure_future(self._flush_logged())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except CheckpointStorageError as error:
            log.warning("what waits on %s waits for the next checkpoint or flush: %s", self.log.name, error)

    @contextmanager
    def _publishing(self, keys: list[InFlight]) -> Iterator[None]:
        """Mark writes against these checkpoints under way until they are queued, or ACKed and indexed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight[done] = keys
        try:
            yield
        finally:
            del self._in_flight[done]
            done.set_result(None)

    def _children_of(self, checkpoint_id: str) -> dict[str, str]:
        """The newest record of each child namespace whose checkpoints are newer than this root checkpoint.

        Those are its tasks' subgraphs (ids are time-ordered and a task runs after its checkpoint is made),
        whichever order the records were published in: async durability can publish a subgraph's
        checkpoints before its parent's, and even before the parent's parent. Children held with the root
        checkpoint share its message, so it need not name them.
        """
        return {ns: serial for ns, (serial, child_id) in self._children.items() if child_id > checkpoint_id}

    async def _settle(self, ns: str, checkpoint_id: str) -> None:
        """Wait for the writes against this checkpoint that are under way, so that its message carries them.

        Checkpoints are published one message at a time (under the writer lock), so only writes can be
        under way: a task's large values go to chunk messages before its writes are queued. Writes wait for
        nothing, so this cannot deadlock.
        """
        key = (ns, checkpoint_id)
        while pending := [done for done, keys in self._in_flight.items() if key in keys]:
            await asyncio.wait(pending)

    def _after_put(self, serial: str, held: HeldPut) -> None:
        record = held.record
        if record.ns == "":
            self._children = {ns: child for ns, child in self._children.items() if child[1] > record.id}
        elif record.ns not in self._children or self._children[record.ns][0] < serial:
            self._children[record.ns] = (serial, record.id)
        self._remember_written(held)

    def _remember_written(self, held: HeldPut) -> None:
        """The put's new values, as the next put of each channel appends to them."""
        record = held.record
        for channel, (version, ref) in record.values.items():
            if channel in held.new_versions and channel in held.values:
                value = held.values[channel]
                length = len(value) if isinstance(value, list) else 0
                self._written[(record.ns, channel)] = Written(version, value, length, ref)

    async def put_writes(self, ns: str, checkpoint_id: str, task_id: str, task_path: str,
                         writes: list[tuple[int, str, Typed]]) -> None:
        """Queue a task's writes for the next checkpoint record; a special write (idx < 0: an error, an
        interrupt, a resume) may end the run, so it and everything waiting are published before this returns."""
        with self._publishing([(ns, checkpoint_id)]):
            stored: list[tuple[int, str, Any]] = []
            for idx, channel, (kind, payload) in writes:
                if len(payload) > self.log.payload_limit // 2:
                    stored.append((idx, channel, ["chunks", kind, await self.log.publish_chunks(payload)]))
                else:
                    stored.append((idx, channel, (kind, payload)))
        self._waiting.setdefault(ns, []).append(WritesRecord(ns, checkpoint_id, task_id, task_path, stored))
        if any(idx < 0 for idx, _, _ in writes):
            await self.flush()
        else:
            self._flush_within(self._writes_wait_s)

    @property
    def waiting(self) -> bool:
        """Whether puts or writes wait to be published."""
        return bool(self._waiting or self._held)

    @property
    def settled(self) -> bool:
        """Whether nothing waits to be published or is being published: a read from another connection would find
        everything this store wrote."""
        return not (self.waiting or self._writer.locked() or self._in_flight or self._flushes)

    async def erase(self, record: EraseRecord) -> None:
        async with self._writer:
            await self._publish_held()
            serial = await self.log.publish(ERASE, pack(record.to_record()))
            self._apply(serial, [record])
            if record.thread:
                self._written.clear()
                self._children.clear()
