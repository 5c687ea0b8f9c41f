"""The pure storage model: list values stored as appended segments, and the order-independent index."""

from __future__ import annotations

import gc

import msgpack

from langchain_ably_transport.checkpoint.index import ThreadIndex
from langchain_ably_transport.checkpoint.records import (
    CheckpointRecord,
    EraseRecord,
    WritesRecord,
    decode,
    pack,
    pack_writes,
    unpack,
)
from langchain_ably_transport.checkpoint.values import (
    MAX_TAIL,
    SEAL_SIZE,
    Layout,
    Written,
    blob_key,
    lay_out,
    materialise,
    rebase,
)


def serialize(item):
    return ("msgpack", msgpack.packb(item))


def deserialize(pair):
    return msgpack.unpackb(pair[1])


def _store(turns: int, item_size: int = 300):
    """Lay out a list growing by one item per put; returns (bytes stored, final ref, all blobs)."""
    previous = None
    stored = 0
    blobs: dict[str, bytes] = {}
    value: list[str] = []
    for turn in range(turns):
        value = [*value, f"{turn:06d}" + "x" * item_size]
        layout = Layout()
        ref = rebase(lay_out("messages", value, previous, serialize, layout), f"serial-{turn:06d}", {})
        for key, payload in layout.blobs.items():
            blobs[blob_key(["at", f"serial-{turn:06d}", key])] = payload
        stored += sum(len(p) for p in layout.blobs.values())
        previous = Written(turn, value, len(value), ref)
    return stored, previous.ref, blobs, value


def test_a_growing_list_stores_each_put_as_a_new_segment_and_reads_back_whole():
    _, ref, blobs, value = _store(50)
    assert materialise(ref, blobs, deserialize) == value
    assert ref[0] == "list" and sum(count for _, count, _ in ref[1]) == 50


def test_storage_grows_linearly_with_the_list_not_quadratically():
    small, _, _, _ = _store(200)
    large, ref, _, _ = _store(800)
    assert large / small < 4.5, "4x the items cost about 4x the bytes (quadratic would be 16x)"
    unsealed = [s for s in ref[1] if s[2] < SEAL_SIZE]
    assert len(unsealed) <= MAX_TAIL, "the unsealed tail stays short, so reads fetch few blobs"


def test_a_list_changed_other_than_by_appending_is_stored_whole():
    layout = Layout()
    first = rebase(lay_out("m", ["a", "b"], None, serialize, layout), "s1", {})
    previous = Written(1, ["a", "b"], 2, first)
    replaced = lay_out("m", ["a", "B", "c"], previous, serialize, Layout())
    assert len(replaced[1]) == 1 and replaced[1][0][1] == 3


def test_a_list_mutated_after_it_was_stored_is_not_trusted():
    stored = ["a", "b"]
    layout = Layout()
    ref = rebase(lay_out("m", stored, None, serialize, layout), "s1", {})
    previous = Written(1, stored, 2, ref)
    stored.append("sneaky")
    new = lay_out("m", [*stored, "c"], previous, serialize, Layout())
    assert len(new[1]) == 1, "stored whole rather than as an append to a list that changed underneath"


def _checkpoint(checkpoint_id: str, ns: str = "") -> CheckpointRecord:
    return CheckpointRecord(ns=ns, id=checkpoint_id, parent=None, checkpoint=("null", b""),
                            metadata=("null", b""), values={})


def test_index_folds_records_in_any_order_to_the_same_state():
    records = [
        ("s1", _checkpoint("c1")),
        ("s2", WritesRecord("", "c1", "t", "", [(0, "a", ("json", b"first")), (-3, "__interrupt__", ("json", b"i1"))])),
        ("s3", WritesRecord("", "c1", "t", "", [(0, "a", ("json", b"second"))])),
        ("s4", WritesRecord("", "c1", "t", "", [(-3, "__interrupt__", ("json", b"i2"))])),
        ("s5", _checkpoint("c2")),
    ]
    forwards, backwards = ThreadIndex(), ThreadIndex()
    for serial, record in records:
        forwards.apply(serial, [record])
    for serial, record in reversed(records):
        backwards.apply(serial, [record])
    for index in (forwards, backwards):
        writes = {(w.channel, w.value[1]) for w in index.pending_writes("", "c1")}
        assert writes == {("a", b"first"), ("__interrupt__", b"i2")}, "regular: first wins; special: last wins"
        assert index.latest("")[1].id == "c2"


def test_erasing_a_thread_hides_everything_before_it():
    index = ThreadIndex()
    index.apply("s1", [_checkpoint("c1")])
    index.apply("s2", [EraseRecord(thread=True)])
    index.apply("s3", [_checkpoint("c3")])
    assert index.latest("")[1].id == "c3" and index.get("", "c1") is None
    late = ThreadIndex()
    late.apply("s2", [EraseRecord(thread=True)])
    late.apply("s1", [_checkpoint("c1")])
    assert late.latest("") is None and late.complete


def test_records_round_trip_and_garbage_decodes_to_nothing():
    record = _checkpoint("c1", ns="child:1")
    [decoded] = decode("lg.checkpoint", pack(record.to_record()))
    assert decoded.id == "c1"
    assert decode("lg.checkpoint", b"garbage") == []
    assert decode("ai-output", pack(record.to_record())) == []


def test_a_checkpoint_record_carries_the_writes_that_waited_for_it_and_a_batch_keeps_their_order():
    first = WritesRecord("", "c1", "t", "", [(0, "a", ("json", b"first"))])
    second = WritesRecord("", "c1", "t", "", [(0, "a", ("json", b"second"))])
    upserts = [WritesRecord("", "c1", "t", "", [(-3, "__interrupt__", ("json", v))]) for v in (b"i1", b"i2")]
    record = _checkpoint("c2")
    record.writes = [first, second]
    carried = decode("lg.checkpoint", pack(record.to_record()))
    assert [type(r).__name__ for r in carried] == ["WritesRecord", "WritesRecord", "CheckpointRecord"]
    batch = decode("lg.writes", pack_writes(upserts))
    index = ThreadIndex()
    index.apply("s2", batch)
    index.apply("s1", carried)
    writes = {(w.channel, w.value[1]) for w in index.pending_writes("", "c1")}
    assert writes == {("a", b"first"), ("__interrupt__", b"i2")}, "within a message too: regular first, special last"
    assert index.latest("")[1].id == "c2" and index.latest("")[1].writes == []


def test_the_refs_an_index_holds_are_tuples_the_collector_stops_tracking():
    """A warm thread's index holds a ref per channel per checkpoint, thousands in a busy agent. Decoded, they are
    msgpack's lists, which every full collection walks; held, they are tuples of strings and numbers, which the
    collector stops tracking after its first look."""
    decoded = unpack(pack({"ref": ["list", [[["here", "messages#0"], 3, 120], [["chunks", ["s-1", "s-2"]], 2, 9000]]],
                           "empty": ["empty"]}))
    record = _checkpoint("c1")
    record.values = {"messages": ["v2", decoded["ref"]], "other": ["v1", decoded["empty"]]}
    index = ThreadIndex()
    index.apply("serial-7", [record])
    refs = [ref for _, ref in index.latest("")[1].values.values()]
    assert refs == [("list", ((("at", "serial-7", "messages#0"), 3, 120), (("chunks", ("s-1", "s-2")), 2, 9000))),
                    ("empty",)]
    for _ in range(6):  # a tuple is let go once its items are: a level of nesting (5 here) per collection
        gc.collect()
    assert not any(gc.is_tracked(ref) for ref in refs)
    assert not any(gc.is_tracked(pair) for pair in index.latest("")[1].values.values())
