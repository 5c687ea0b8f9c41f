"""The store's group commit: one transaction per event-loop turn, a failed unit rolled back alone, and what waits for
durability (ACKs, frames) released only after the COMMIT, in order."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from langchain_ably_transport.devserver.store import Store


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
