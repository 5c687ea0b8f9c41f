"""The saver's records on a channel: names, (de)serialisation and compression. Pure, no I/O.

Every message the saver publishes has a name starting with `lg.` and zlib-compressed msgpack data, so
records coexist with any other traffic on the channel (foreign messages are ignored). Serialised values
travel as serde's `(type, bytes)` pairs, untouched, which keeps `EncryptedSerializer` working.

One message carries at least one super-step, since Ably bills per message: a checkpoint record holds the
writes that waited for it (its parent's, as a rule), and the checkpoints of a burst of super-steps may share one
message (`pack_checkpoints`). Writes that cannot wait travel as a batch of their own.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

CHECKPOINT = "lg.checkpoint"
WRITES = "lg.writes"
CHUNK = "lg.chunk"
ERASE = "lg.erase"
RUN = "lg.run"
RECORD_NAMES = frozenset({CHECKPOINT, WRITES, CHUNK, ERASE, RUN})

Typed = tuple[str, bytes]
log = logging.getLogger(__name__)


def pack(record: dict[str, Any]) -> bytes:
    return zlib.compress(msgpack.packb(record, use_bin_type=True), 1)


def unpack(data: bytes) -> dict[str, Any]:
    return msgpack.unpackb(zlib.decompress(data), raw=False, strict_map_key=False, use_list=True)


def typed(value: Any) -> Typed:
    """A serde pair as msgpack hands it back (a list) or as serde made it (a tuple)."""
    kind, payload = value
    return str(kind), bytes(payload)


@dataclass
class CheckpointRecord:
    """One `put`: the checkpoint without its values, its metadata, and where each channel value lives.

    `values` maps channel -> (version, ref) for every channel of the checkpoint (not only the new ones),
    so a reader needs this record alone to find every value. `early` lists the serials of writes for
    this checkpoint published before it (async durability can do that); `children` the newest record
    of each child namespace whose checkpoints are newer than this root checkpoint (its tasks'
    subgraphs), so a cold reader finds a suspended subgraph without scanning further.
    """

    ns: str
    id: str
    parent: str | None
    checkpoint: Typed
    metadata: Typed
    values: dict[str, Sequence[Any]]
    blobs: dict[str, bytes] = field(default_factory=dict)
    run_id: str | None = None
    early: list[str] = field(default_factory=list)
    children: dict[str, str] = field(default_factory=dict)
    writes: list[WritesRecord] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return {
            "ns": self.ns, "id": self.id, "parent": self.parent, "checkpoint": list(self.checkpoint),
            "metadata": list(self.metadata), "values": self.values, "blobs": self.blobs, "run_id": self.run_id,
            "early": self.early, "children": self.children, "writes": [w.to_record() for w in self.writes],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CheckpointRecord:
        return cls(
            ns=record["ns"], id=record["id"], parent=record.get("parent"),
            checkpoint=typed(record["checkpoint"]), metadata=typed(record["metadata"]),
            values=record.get("values") or {}, blobs=record.get("blobs") or {}, run_id=record.get("run_id"),
            early=record.get("early") or [], children=record.get("children") or {},
            writes=[WritesRecord.from_record(w) for w in record.get("writes") or []],
        )


@dataclass
class WritesRecord:
    """One `put_writes`: `(idx, channel, value)` triples of a task against a checkpoint."""

    ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    writes: list[tuple[int, str, Any]]

    def to_record(self) -> dict[str, Any]:
        return {
            "ns": self.ns, "checkpoint_id": self.checkpoint_id, "task_id": self.task_id,
            "task_path": self.task_path, "writes": [[idx, ch, list(value)] for idx, ch, value in self.writes],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> WritesRecord:
        return cls(
            ns=record["ns"], checkpoint_id=record["checkpoint_id"], task_id=record["task_id"],
            task_path=record.get("task_path", ""),
            writes=[(int(idx), str(ch), _write_value(value)) for idx, ch, value in record["writes"]],
        )


@dataclass
class EraseRecord:
    """A deletion: the whole thread before this record (`thread=True`), or the listed checkpoints."""

    thread: bool = False
    checkpoints: list[tuple[str, str]] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return {"thread": self.thread, "checkpoints": [list(c) for c in self.checkpoints]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EraseRecord:
        return cls(thread=bool(record.get("thread")), checkpoints=[(ns, cid) for ns, cid in record["checkpoints"]])


def pack_writes(batch: list[WritesRecord]) -> bytes:
    """Writes published on their own: every `put_writes` that waited, in the order they were made."""
    return pack({"batch": [w.to_record() for w in batch]})


def pack_checkpoints(checkpoints: list[CheckpointRecord]) -> bytes:
    """One message for `checkpoints`, in the order they were put: one record alone, as earlier versions
    stored it, or a batch. Their blob keys must differ (`Layout.prefix`)."""
    if len(checkpoints) == 1:
        return pack(checkpoints[0].to_record())
    return pack({"batch": [c.to_record() for c in checkpoints]})


def blobs_of(data: bytes) -> dict[str, bytes]:
    """Every blob a checkpoint message holds, by key."""
    record = unpack(data)
    return {key: blob for one in record.get("batch") or [record] for key, blob in (one.get("blobs") or {}).items()}


def _writes_of(record: dict[str, Any]) -> list[WritesRecord]:
    """A batch, or one `put_writes` as earlier versions stored it."""
    return [WritesRecord.from_record(w) for w in record["batch"]] if "batch" in record \
        else [WritesRecord.from_record(record)]


def _checkpoint_of(record: dict[str, Any]) -> list[Record]:
    """Each checkpoint's writes, then the checkpoint (the order they were made in)."""
    records: list[Record] = []
    for one in record.get("batch") or [record]:
        checkpoint = CheckpointRecord.from_record(one)
        records += [*checkpoint.writes, checkpoint]
    return records


def _erase_of(record: dict[str, Any]) -> list[Record]:
    return [EraseRecord.from_record(record)]


def _write_value(value: list[Any]) -> Any:
    """A serde pair, or `["chunks", type, serials]` for a value too large to sit in the record."""
    if len(value) == 3 and value[0] == "chunks":
        return ["chunks", str(value[1]), [str(s) for s in value[2]]]
    return typed(value)


Record = CheckpointRecord | WritesRecord | EraseRecord

_DECODERS = {CHECKPOINT: _checkpoint_of, WRITES: _writes_of, ERASE: _erase_of}


def decode(name: str | None, data: Any) -> list[Record]:
    """The records an Ably message holds, in the order they apply; none for chunks and foreign or unreadable
    messages."""
    decoder = _DECODERS.get(name or "")
    if decoder is None or not isinstance(data, bytes | bytearray):
        return []
    try:
        return list(decoder(unpack(bytes(data))))
    except (zlib.error, ValueError, KeyError, TypeError, msgpack.ExtraData, msgpack.FormatError) as exc:
        log.warning("ignoring an unreadable %s record (%d bytes): %s", name, len(data), exc)
        return []
