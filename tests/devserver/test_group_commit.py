"""The store's group commit: one transaction per event-loop turn, a failed unit rolled back alone, and what waits for
durability (ACKs, frames) released only after the COMMIT, in order."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from langchain_ably_transport.devserver.store import BUSY_UNITS, Store

from .raw import raw_connection


def _event(store: Store, serial: str) -> None:
    store.append_event("c", serial, 15, 1, {"n": serial})


def _durable(path: str) -> list[str]:
    """What another connection reads: only committed rows."""
    with sqlite3.connect(path) as other:
        return [row[0] for row in other.execute("SELECT channel_serial FROM events ORDER BY channel_serial")]


async def test_the_writes_of_one_turn_commit_together_and_acks_wait_for_the_commit(tmp_path):
    path = str(tmp_path / "h.sqlite3")
    store = Store(path)
    released: list[str] = []
    with store.transaction():
        _event(store, "a")
    store.after_commit(lambda: released.append("ack a"))
    with pytest.raises(ValueError), store.transaction():
        _event(store, "b")
        raise ValueError("this unit fails")
    with store.transaction():
        _event(store, "c")
    store.after_commit(lambda: released.append("ack c"))
    assert released == [] and _durable(path) == [], "nothing is durable, nor acknowledged, before the turn ends"
    await asyncio.sleep(0)
    assert _durable(path) == ["a", "c"] and released == ["ack a", "ack c"]
    store.after_commit(lambda: released.append("idle"))
    assert released[-1] == "idle", "with nothing waiting, an action runs at once"
    store.close()


def test_without_an_event_loop_each_unit_commits_itself(tmp_path):
    path = str(tmp_path / "h.sqlite3")
    store = Store(path)
    with store.transaction():
        _event(store, "a")
    assert _durable(path) == ["a"]
    store.close()


def _message(serial: str, message_id: str, timestamp: int = 1) -> dict:
    return {"serial": serial, "id": message_id, "timestamp": timestamp, "data": serial}


async def test_a_duplicate_is_found_before_and_after_its_group_executes_and_after_a_restart(tmp_path):
    path = str(tmp_path / "d.sqlite3")
    store = Store(path)
    assert store.messages_with_id("c", "m1") is None  # the channel's ids, loaded empty
    with store.transaction():
        store.insert_message("c", _message("s1", "m1"), "s1")
    assert store.messages_with_id("c", "m1")["serial"] == "s1"  # deferred, not yet written
    assert _durable_messages(path) == []
    with pytest.raises(ValueError), store.transaction():
        store.insert_message("c", _message("s2", "m2"), "s2")
        raise ValueError("this unit fails")
    assert store.messages_with_id("c", "m2") is None
    await asyncio.sleep(0)
    assert _durable_messages(path) == ["s1"]
    store.close()
    restarted = Store(path)
    assert restarted.messages_with_id("c", "m1")["serial"] == "s1"
    assert restarted.messages_with_id("other", "m1") is None
    restarted.close()


def test_an_expired_message_is_no_duplicate(tmp_path):
    store = Store(str(tmp_path / "e.sqlite3"))
    with store.transaction():
        store.insert_message("c", _message("s1", "m1", timestamp=1), "s1")
    assert store.messages_with_id("c", "m1") is not None
    store.expire(before_ms=2)
    assert store.messages_with_id("c", "m1") is None
    store.close()


def _durable_messages(path: str) -> list[str]:
    with sqlite3.connect(path) as other:
        return [row[0] for row in other.execute("SELECT serial FROM messages ORDER BY id")]


async def test_a_busy_store_commits_at_most_once_per_interval_and_a_quiet_one_at_once(tmp_path):
    path = str(tmp_path / "i.sqlite3")
    interval = 0.5
    store = Store(path, commit_interval_s=interval)

    async def turn(*serials: str) -> list[str]:
        for serial in serials:
            with store.transaction():
                _event(store, serial)
        await asyncio.sleep(0)
        return _durable(path)

    assert await turn("a") == ["a"], "a quiet store commits at the end of the turn"
    busy = [f"b{i}" for i in range(BUSY_UNITS)]
    assert await turn(*busy) == ["a", *busy], "and so does the turn that makes it busy"
    assert await turn("c") == ["a", *busy], f"then, {BUSY_UNITS} units within the interval: the next waits for it"
    with store.transaction():
        _event(store, "d")
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(_durable(path)) > len(busy) + 1:
            break
    assert _durable(path) == ["a", *busy, "c", "d"], "and commits with what came meanwhile when it ends"
    await asyncio.sleep(interval)
    assert await turn("e") == ["a", *busy, "c", "d", "e"], "quiet again: at the end of the turn"
    store.close()


async def test_a_burst_of_publishes_is_acknowledged_in_merged_frames_each_serial_once(server, channel_name):
    async with raw_connection(server, echo="false") as publisher:
        await publisher.expect(4)
        await publisher.send({"action": 10, "channel": channel_name})
        await publisher.expect(11)
        for msg_serial in range(60):
            await publisher.send({"action": 15, "channel": channel_name, "msgSerial": msg_serial,
                                  "messages": [{"name": "n", "data": str(msg_serial)}]})
        acks: list[dict] = []
        while sum(ack["count"] for ack in acks) < 60:
            acks.append(await publisher.expect(1))
    acknowledged = [ack["msgSerial"] + i for ack in acks for i in range(ack["count"])]
    assert acknowledged == list(range(60)), "every msgSerial once, in order"
    assert all(len(ack["res"]) == ack["count"] and all(r["serials"] for r in ack["res"]) for ack in acks)
    assert len(acks) < 60, f"a burst is ACKed in merged frames, not {len(acks)} one by one"


async def test_the_wal_reaches_the_database_file_from_a_thread_not_inside_a_commit(tmp_path):
    path = str(tmp_path / "w.sqlite3")
    store = Store(path)

    def in_database_file() -> list[str]:
        """What the database file itself holds, WAL ignored (`immutable`): what a checkpoint copied there."""
        with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as file_only:
            try:
                return [row[0] for row in file_only.execute("SELECT channel_serial FROM events")]
            except sqlite3.OperationalError:  # not even the schema is there yet
                return []

    with store.transaction():
        _event(store, "a")
    await asyncio.sleep(0)
    assert _durable(path) == ["a"] and in_database_file() == [], "a commit only appends to the WAL"
    for _ in range(300):
        await asyncio.sleep(0.01)
        if in_database_file():
            break
    assert in_database_file() == ["a"], "the checkpointer copied it within about a second"
    store.close()
