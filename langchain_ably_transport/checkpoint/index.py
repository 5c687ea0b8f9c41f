"""What a process knows of one thread: its records folded into checkpoints and writes. Pure, no I/O.

Records may be folded in any order (a cold reader pages history newest first, a writer adds its own as
they are ACKed), so every rule here is order-independent: a checkpoint put twice keeps its newest record,
a regular write keeps its first record and a special write (error, interrupt, resume...) its last, as
other savers' insert-if-absent and upsert do. Serials of one channel sort in publish order, and the records
of one message sort by their place in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import writes_sort_key

from .records import CheckpointRecord, EraseRecord, Record, Typed, WritesRecord
from .values import Ref, rebase


@dataclass(frozen=True)
class StoredWrite:
    serial: str
    task_id: str
    channel: str
    value: Typed
    task_path: str
    idx: int
    place: int = 0

    @property
    def position(self) -> tuple[str, int]:
        """Where the write was made: its message, then its record's place in that message."""
        return self.serial, self.place


def version_key(version: Any) -> str:
    return f"{type(version).__name__}:{version}"


class ThreadIndex:
    def __init__(self) -> None:
        self.checkpoints: dict[tuple[str, str], tuple[str, CheckpointRecord]] = {}
        self.writes: dict[tuple[str, str], dict[tuple[str, int], dict[str, StoredWrite]]] = {}
        self.refs: dict[tuple[str, str, str], Ref] = {}
        self.deleted: set[tuple[str, str]] = set()
        self.erased_at: str | None = None
        self.head: str | None = None
        self.oldest: str | None = None
        self.complete = False

    def saw(self, serial: str) -> None:
        """Widen the loaded window to include `serial` (any message, ours or not)."""
        if self.head is None or serial > self.head:
            self.head = serial
        if self.oldest is None or serial < self.oldest:
            self.oldest = serial

    def apply(self, serial: str, records: list[Record]) -> None:
        """Fold in one message's records; `saw` is separate, as a writer's own records do not widen the read
        window."""
        if self.erased_at is not None and serial < self.erased_at:
            return
        for place, record in enumerate(records):
            if isinstance(record, EraseRecord):
                self._erase(serial, record)
            elif isinstance(record, CheckpointRecord):
                self._add_checkpoint(serial, record)
            else:
                self._add_writes(serial, place, record)

    def _erase(self, serial: str, record: EraseRecord) -> None:
        if not record.thread:
            self.deleted.update(record.checkpoints)
            return
        if self.erased_at is None or serial > self.erased_at:
            self.erased_at = serial
        self.checkpoints = {k: v for k, v in self.checkpoints.items() if v[0] > serial}
        for writes in self.writes.values():
            for candidates in writes.values():
                for slot in [slot for slot, w in candidates.items() if w.serial < serial]:
                    del candidates[slot]
        self.complete = True

    def _add_checkpoint(self, serial: str, record: CheckpointRecord) -> None:
        key = (record.ns, record.id)
        current = self.checkpoints.get(key)
        if current is not None and current[0] > serial:
            return
        record.values = {ch: (version, rebase(ref, serial, {})) for ch, (version, ref) in record.values.items()}
        record.blobs = {}
        record.writes = []
        self.checkpoints[key] = (serial, record)
        for channel, (version, ref) in record.values.items():
            self.refs[(record.ns, channel, version_key(version))] = ref

    def _add_writes(self, serial: str, place: int, record: WritesRecord) -> None:
        """Keep, per write key, the earliest insert and the latest upsert; an upsert, if any, wins.

        That is what applying the records in publish order gives (a record of only special writes
        upserts, any other inserts if absent), whatever order they are folded in.
        """
        stored = self.writes.setdefault((record.ns, record.checkpoint_id), {})
        slot = "upsert" if all(idx < 0 for idx, _, _ in record.writes) else "insert"
        for idx, channel, value in record.writes:
            candidates = stored.setdefault((record.task_id, idx), {})
            existing = candidates.get(slot)
            if existing is None or (existing.position < (serial, place)) == (slot == "upsert"):
                candidates[slot] = StoredWrite(serial, record.task_id, channel, value, record.task_path, idx, place)

    # --- queries ---

    def get(self, ns: str, checkpoint_id: str) -> tuple[str, CheckpointRecord] | None:
        if (ns, checkpoint_id) in self.deleted:
            return None
        return self.checkpoints.get((ns, checkpoint_id))

    def latest(self, ns: str) -> tuple[str, CheckpointRecord] | None:
        ids = [cid for (cns, cid) in self.checkpoints if cns == ns and (cns, cid) not in self.deleted]
        return self.checkpoints[(ns, max(ids))] if ids else None

    def newest_first(self, ns: str | None = None) -> list[tuple[str, CheckpointRecord]]:
        live = [
            entry for key, entry in self.checkpoints.items()
            if key not in self.deleted and (ns is None or key[0] == ns)
        ]
        return sorted(live, key=lambda entry: entry[1].id, reverse=True)

    def pending_writes(self, ns: str, checkpoint_id: str) -> list[StoredWrite]:
        candidates = self.writes.get((ns, checkpoint_id), {}).values()
        writes = [c.get("upsert") or c["insert"] for c in candidates if c]
        return sorted(writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))

    def write_serials(self, ns: str, checkpoint_id: str) -> list[str]:
        candidates = self.writes.get((ns, checkpoint_id), {}).values()
        return sorted({w.serial for c in candidates for w in c.values()})

    def covers_latest(self, ns: str) -> bool:
        """Whether the loaded window holds the newest checkpoint of `ns` (so a cold read may stop).

        It does once it holds a checkpoint of `ns`, or a root checkpoint together with every child
        namespace record that root checkpoint names; a namespace it does not name has none.
        """
        if self.complete or self.latest(ns) is not None:
            return True
        root = self.latest("")
        if root is None:
            return False
        children = root[1].children
        return not children or (self.oldest is not None and min(children.values()) >= self.oldest)
