"""The dev server's store as its history grows: what a busy server's group commit costs early and late.

A busy dev server commits a group of writes every millisecond (`devserver/store.py`). Each sample here is one such
group, timed from its first write to the end of its commit: `GROUP` messages, each an event row and a message row
on one of `CHANNELS` channels, as a publish writes them. The store is filled to `--rows` messages; the samples of the
first and of the last `BLOCK` groups are compared.

Rows, in the same run:
- BASELINE: the store's code on SQLite's own `:memory:` database (what `--data :memory:` opened before): its COMMIT
  takes longer the larger the database grows;
- `:memory:` as shipped: a private temporary database, unsynced, with its journal in memory;
- a file (durable mode: WAL, synchronous=NORMAL, checkpointed by a thread).

Reproduce, from the project root (about 1.5 minutes on 2 cores):

    .venv/bin/python benchmarks/devserver_store.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable

from common import load_average, load_line, percentile, positive

from langchain_ably_transport.devserver import store as store_module
from langchain_ably_transport.devserver.store import Store

GROUP = 10
BLOCK = 1000
CHANNELS = 2000
BODY = {"name": "ai-output", "data": "x" * 300, "extras": {"headers": {"lcat-run-id": "r" * 32}}}


def sqlites_own_memory(path: str) -> sqlite3.Connection:
    return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)


def fill(store: Store, rows: int) -> tuple[list[float], list[float]]:
    """Write `rows` messages in groups; the microseconds of each group in the first and the last block."""
    channels = [f"conversations:{i:06d}" for i in range(CHANNELS)]
    groups = rows // GROUP
    early: list[float] = []
    late: list[float] = []
    for group in range(groups):
        started = time.perf_counter()
        with store.transaction():
            for index in range(group * GROUP, (group + 1) * GROUP):
                channel, serial = channels[index * 7919 % CHANNELS], f"{index:020d}"
                message = {**BODY, "serial": serial, "timestamp": index, "id": f"m{index}"}
                store.append_event(channel, serial, 1, index, {"messages": [message]})
                store.insert_message(channel, message, serial)
        store.commit()
        elapsed = (time.perf_counter() - started) * 1e6
        if group < BLOCK:
            early.append(elapsed)
        elif group >= groups - BLOCK:
            late.append(elapsed)
    return early, late


def measure(label: str, path: str, rows: int, connect: Callable[[str], sqlite3.Connection] | None = None
            ) -> tuple[str, list[float], list[float]]:
    shipped = store_module._connect
    if connect is not None:
        store_module._connect = connect
    try:
        store = Store(path)
    finally:
        store_module._connect = shipped
    try:
        early, late = fill(store, rows)
    finally:
        store.close()
    return label, early, late


def report(results: list[tuple[str, list[float], list[float]]], rows: int, load_before: str) -> str:
    base_late = statistics.median(results[0][2])
    lines = [f"The dev server's store: a group of {GROUP} messages (event + message rows, {CHANNELS:,} channels) "
             f"from its first write to the end of its commit, in the first and the last {BLOCK:,} groups of "
             f"{rows:,} messages; baseline: {results[0][0]}", load_line(load_before), "",
             f"{'store':<34}{'early p50 us':>13}{'p99':>8}{'late p50 us':>13}{'p99':>8}{'late/early':>11}"
             f"{'late vs base':>14}"]
    for label, early, late in results:
        early_p50, late_p50 = statistics.median(early), statistics.median(late)
        lines.append(f"{label:<34}{early_p50:>13.1f}{percentile(sorted(early), 99):>8.1f}{late_p50:>13.1f}"
                     f"{percentile(sorted(late), 99):>8.1f}{late_p50 / early_p50:>10.2f}x"
                     f"{late_p50 / base_late:>13.2f}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=positive, default=200_000, help="messages written to each store")
    args = parser.parse_args()
    if args.rows < 2 * BLOCK * GROUP:
        parser.error(f"--rows must be at least {2 * BLOCK * GROUP}")
    load_before = load_average()
    with tempfile.TemporaryDirectory() as directory:
        results = [
            measure("BASELINE SQLite's own :memory:", ":memory:", args.rows, sqlites_own_memory),
            measure(":memory: as shipped", ":memory:", args.rows),
            measure("file (durable)", os.path.join(directory, "store.sqlite3"), args.rows),
        ]
    print(report(results, args.rows, load_before))


if __name__ == "__main__":
    main()
