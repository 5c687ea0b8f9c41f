"""How a channel value is laid out in records: inline, in chunk messages, or as a list of segments. Pure.

A list that grows by appends (a message history) is stored as segments: each put stores only the new
items as one more segment and references the old ones, so storage grows with the conversation, not with
its square. Small unsealed segments at the tail are merged once there are too many of them, and a merged
segment of `SEAL_SIZE` bytes is never rewritten again: every item is rewritten a bounded number of times.

Refs (msgpack arrays, stored in checkpoint records; in memory, tuples: a warm thread's index holds thousands, and
the collector stops tracking a tuple of strings and numbers, where it walks every list at each full pass):
- `["empty"]`: the channel has a version but no value;
- `["value", type, blob]`: one serde pair;
- `["list", [[blob, count, size], ...]]`: segments, each a msgpack list of serde pairs.
Blob refs: `["here", key]` (in the record being written), `["at", serial, key]` (in the record at that
serial), `["chunks", [serial, ...]]` (compressed bytes split across chunk messages).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from .records import Typed, typed

SEAL_SIZE = 32 * 1024
MAX_TAIL = 8

Ref = Sequence[Any]
BlobRef = Sequence[Any]
Serialize = Callable[[Any], Typed]


@dataclass
class Layout:
    """The blobs one put adds, keyed as its `["here", key]` refs name them.

    `prefix` keeps the keys of the puts that share a message apart (`["at", serial, key]` names a blob by
    message)."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    prefix: str = ""

    def add_blob(self, channel: str, payload: bytes) -> BlobRef:
        key = f"{self.prefix}{channel}#{len(self.blobs)}"
        self.blobs[key] = payload
        return ("here", key)


@dataclass(frozen=True)
class Written:
    """The last value of a channel this process stored or read, to store the next one as an append.

    A list read back but not yet decoded has `value=None` and `length=-1`.
    """

    version: Any
    value: Any
    length: int
    ref: Ref


def lay_out(channel: str, value: Any, previous: Written | None, serialize: Serialize, layout: Layout) -> Ref:
    """The ref for `value`, adding whatever new blobs it needs to `layout`."""
    if isinstance(value, list) and value:
        return ("list", _segments(channel, value, previous, serialize, layout))
    kind, payload = serialize(value)
    return ("value", kind, layout.add_blob(channel, payload))


def _segments(
    channel: str, value: list[Any], previous: Written | None, serialize: Serialize, layout: Layout
) -> tuple[Sequence[Any], ...]:
    """The previous segments plus one for the new items, the unsealed tail merged into it when long."""
    kept = list(previous.ref[1]) if previous is not None and _extends(value, previous) else []
    tail_start = _tail_start(kept)
    if len(kept) - tail_start >= MAX_TAIL:
        kept = kept[:tail_start]
    start = sum(count for _, count, _ in kept)
    payload = msgpack.packb([list(serialize(item)) for item in value[start:]], use_bin_type=True)
    return (*kept, (layout.add_blob(channel, payload), len(value) - start, len(payload)))


def _extends(value: list[Any], previous: Written) -> bool:
    """Whether `value` is the previous list (unchanged since it was stored) plus new items."""
    old = previous.value
    if previous.ref[0] != "list" or not isinstance(old, list) or len(old) != previous.length:
        return False
    return len(value) > len(old) and value[: len(old)] == old


def _tail_start(segments: Sequence[Sequence[Any]]) -> int:
    """Index of the first segment after the last sealed one."""
    for index in range(len(segments) - 1, -1, -1):
        if segments[index][2] >= SEAL_SIZE:
            return index + 1
    return 0


def blob_refs(ref: Ref) -> list[BlobRef]:
    """Every blob a ref needs, in order."""
    if ref[0] == "value":
        return [ref[2]]
    if ref[0] == "list":
        return [segment[0] for segment in ref[1]]
    return []


def rebase(ref: Ref, serial: str | None, placed: dict[str, BlobRef]) -> Ref:
    """The ref with `["here", key]` resolved: to chunk messages where placed, else to `serial`'s record
    (left as it is while that record's serial is not known yet); as tuples throughout, however it came."""

    def resolve(blob: BlobRef) -> BlobRef:
        if blob[0] == "here":
            blob = placed.get(blob[1]) or (("at", serial, blob[1]) if serial else blob)
        return ("chunks", tuple(blob[1])) if blob[0] == "chunks" else tuple(blob)

    if ref[0] == "value":
        return ("value", ref[1], resolve(ref[2]))
    if ref[0] == "list":
        return ("list", tuple((resolve(blob), count, size) for blob, count, size in ref[1]))
    return tuple(ref)


def materialise(ref: Ref, blobs: dict[str, bytes], deserialize: Callable[[Typed], Any]) -> Any:
    """The value of `ref`, given every blob it needs keyed by `blob_key`."""
    if ref[0] == "value":
        return deserialize((ref[1], blobs[blob_key(ref[2])]))
    items: list[Any] = []
    for blob, _, _ in ref[1]:
        items.extend(deserialize(typed(item)) for item in msgpack.unpackb(blobs[blob_key(blob)], raw=False))
    return items


def blob_key(blob: BlobRef) -> str:
    """A hashable identity for a blob ref (chunk lists by their first serial)."""
    if blob[0] == "at":
        return f"at:{blob[1]}:{blob[2]}"
    if blob[0] == "chunks":
        return f"chunks:{blob[1][0]}:{len(blob[1])}"
    return f"here:{blob[1]}"
