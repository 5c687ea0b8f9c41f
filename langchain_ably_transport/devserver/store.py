"""Durable channel storage on SQLite: the event log, message aggregates and their versions.

Every write commits before the caller acknowledges it, so an ACKed message survives a kill -9 of the
server (WAL journal; `:memory:` keeps nothing: a temporary database, deleted when the server stops). Rows hold wire
dicts packed with msgpack, which keeps binary payloads intact.

Group commit: the writes of one event-loop turn share one transaction, committed at the end of the turn. What
must wait for durability (ACKs, and every frame a socket sends meanwhile, so their order holds) waits in
`after_commit`. A COMMIT per message was most of the server's CPU per message. A busy server (its last `BUSY_UNITS`
units came within one commit interval) commits at most once per `commit_interval_s` (1 ms): a write that comes
sooner after the last commit waits for the interval's end, with everything else that comes meanwhile. Its ACKs and
deliveries then leave in merged frames (`protocol.coalesce`), which halves the CPU per message at load, for both the
server and its clients. A quieter server commits at the end of the turn, so that waiting costs latency only under
load.

Deferred writes: a unit's statements are collected, not executed, and a group's are executed together, one
`executemany` per statement, before any read and at the commit. A unit that raises leaves nothing to roll back, and
a message costs two row inserts instead of five statements (a savepoint and its release were a third of the
store's time). Statements run in the order each first appeared, so every table keeps its rows in publish order,
and an update comes after the insert of its row.

Indexes: only what the reads need, since each is one more B-tree insert per message. Presence history has a partial
index that messages skip, and duplicate ids are checked in memory (older files drop the indexes this replaced).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgpack

from .protocol import Action

log = logging.getLogger(__name__)
BUSY_UNITS = 4
"""Units of writes within one commit interval that show a server under load (4,000/s at the default 1 ms)."""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    channel_serial TEXT NOT NULL,
    action INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_serial ON events (channel, channel_serial);
DROP INDEX IF EXISTS events_by_position;
CREATE INDEX IF NOT EXISTS presence_by_position ON events (channel, id) WHERE action = {int(Action.PRESENCE)};
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    serial TEXT NOT NULL,
    channel_serial TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    message_id TEXT,
    body BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_serial ON messages (channel, serial);
DROP INDEX IF EXISTS messages_by_id;
CREATE INDEX IF NOT EXISTS messages_by_position ON messages (channel, id);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    serial TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_by_serial ON versions (channel, serial);
CREATE TABLE IF NOT EXISTS horizons (channel TEXT PRIMARY KEY, channel_serial TEXT NOT NULL);
"""


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(blob: bytes) -> Any:
    return msgpack.unpackb(blob, raw=False, strict_map_key=False)


@dataclass(frozen=True)
class Event:
    """One stored protocol message of a channel (MESSAGE or PRESENCE), as fanned out when it happened."""

    position: int
    channel_serial: str
    action: int
    timestamp: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a query, and the cursor (a row position) that continues it, if any."""

    items: list[dict[str, Any]]
    next_cursor: int | None


@dataclass(frozen=True)
class Query:
    """History-style query bounds: times in ms (inclusive), a channelSerial ceiling, a cursor."""

    forwards: bool = False
    limit: int = 100
    start: int | None = None
    end: int | None = None
    until_serial: str | None = None
    cursor: int | None = None
    not_before: int | None = None


class WalCheckpointer:
    """Copies the WAL into the database file every `interval_s`, from a thread and a connection of its own.

    SQLite's automatic checkpoint runs inside a commit, on the event loop: copying the pages and syncing the file
    stalled a publish every second or so, which was most of the durable server's p99 at 200 msg/s (4-5 ms, against
    about 1 ms without). A PASSIVE checkpoint never blocks the writer, and SQLite releases the GIL while it works.
    """

    def __init__(self, path: str, interval_s: float = 1.0) -> None:
        self._path = path
        self._interval = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devserver-wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopping.wait(self._interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    log.exception("a WAL checkpoint failed; the next one retries")
        finally:
            db.close()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def _connect(path: str) -> sqlite3.Connection:
    """The store's database at `path`. `:memory:` opens a private temporary database instead, deleted when closed,
    unsynced and with its journal in memory: SQLite's `:memory:` database takes longer to COMMIT the larger it grows
    (6 us at 20,000 rows, 130 us at 200,000), and a busy server commits every millisecond, so a long test or
    benchmark slowed the server down as it went."""
    if path == ":memory:":
        db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA journal_mode=MEMORY")
        return db
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA wal_autocheckpoint=0")  # a thread of its own checkpoints (`WalCheckpointer`)
    return db


class Store:
    """All persistence of one server; one SQLite connection used from the event-loop thread."""

    def __init__(self, path: str, commit_interval_s: float = 0.001) -> None:
        self._db = _connect(path)
        self._db.executescript(_SCHEMA)
        self._checkpointer = WalCheckpointer(path) if path != ":memory:" else None
        self.series = self._series()
        self._group_open = False
        self._commit_interval = commit_interval_s
        self._last_commit = 0.0
        self._recent_units: deque[float] = deque(maxlen=BUSY_UNITS)  # when the last units began
        self._waiting: list[Callable[[], None]] = []
        self._unit: list[tuple[str, tuple[Any, ...]]] | None = None  # the statements of the unit being written
        self._deferred: dict[str, list[tuple[Any, ...]]] = {}  # the group's, by statement, in first-seen order
        # The packed bodies of the messages the unit writes, by (channel, serial), and the group's not yet executed:
        # what a read of one message looks up before it would have to execute the group's writes.
        self._unit_bodies: dict[tuple[str, str], bytes] = {}
        self._deferred_bodies: dict[tuple[str, str], bytes] = {}
        # Per channel, loaded on its first duplicate check: the serial of each message id stored (what retention
        # keeps), so that a fresh id, the common case, costs no query.
        self._ids: dict[str, dict[str, str]] = {}
        self._unit_ids: list[tuple[str, str, str]] = []

    def close(self) -> None:
        self.commit()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._db.close()

    def _series(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'series'").fetchone()
        if row:
            return str(row[0])
        series = "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))
        self._db.execute("INSERT INTO meta (key, value) VALUES ('series', ?)", (series,))
        return series

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One unit of writes, in the turn's group transaction; a unit that raises writes nothing."""
        committed_by_loop = self._open_group()
        self._recent_units.append(time.monotonic())
        unit = self._unit = []
        self._unit_bodies, self._unit_ids = {}, []
        try:
            yield
        finally:
            self._unit = None
        for statement, row in unit:
            self._deferred.setdefault(statement, []).append(row)
        self._deferred_bodies.update(self._unit_bodies)
        for channel, message_id, serial in self._unit_ids:
            if (ids := self._ids.get(channel)) is not None:
                ids.setdefault(message_id, serial)
        if not committed_by_loop:
            self.commit()

    def _write(self, statement: str, row: tuple[Any, ...]) -> None:
        if self._unit is None:
            raise RuntimeError("a store write belongs inside `transaction()`")
        self._unit.append((statement, row))

    def _flush(self) -> None:
        """Execute the group's deferred writes (before a read, and at the commit). If they fail, nothing of the
        group is durable: it is rolled back, and what waited for it (ACKs among it) is dropped."""
        deferred, self._deferred = self._deferred, {}
        self._deferred_bodies = {}
        try:
            for statement, rows in deferred.items():
                if len(rows) == 1:
                    self._db.execute(statement, rows[0])  # a quiet turn's one row: cheaper than executemany
                else:
                    self._db.executemany(statement, rows)
        except sqlite3.Error:
            self._abandon_group()
            raise

    def _abandon_group(self) -> None:
        log.exception("the store could not write; %d waiting frames dropped", len(self._waiting))
        self._group_open = False
        self._ids.clear()  # it knows ids of rows rolled back: reloaded on the next check
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")
        self._waiting.clear()

    def _read(self, statement: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        self._flush()
        return self._db.execute(statement, args)

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once what was written so far is committed: now, if nothing waits."""
        if self._group_open:
            self._waiting.append(action)
        else:
            action()

    def commit(self) -> None:
        """Commit the turn's group, then run what waited for it, in order."""
        if not self._group_open:
            return
        try:
            self._flush()
            self._db.execute("COMMIT")
        except sqlite3.Error:  # nothing of the group is durable: its ACKs must not go out
            if self._group_open:
                self._abandon_group()
            return
        self._group_open = False
        self._last_commit = time.monotonic()
        waiting, self._waiting = self._waiting, []
        for action in waiting:
            action()

    def _open_group(self) -> bool:
        """Begin a group if none is open, for the loop to commit at the end of the turn or, when busy, once the
        commit interval since the last commit ends; whether the loop commits it (False: no loop runs, so the unit
        commits itself)."""
        if self._group_open:
            return True
        self._db.execute("BEGIN")
        self._group_open = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        now = time.monotonic()
        wait = self._last_commit + self._commit_interval - now
        if wait > 0 and self._busy(now):
            loop.call_later(wait, self.commit)
        else:
            loop.call_soon(self.commit)
        return True

    def _busy(self, now: float) -> bool:
        """Whether the last `BUSY_UNITS` units all began within the commit interval: a server under load."""
        recent = self._recent_units
        return len(recent) == BUSY_UNITS and now - recent[0] < self._commit_interval

    # --- writes (call inside `transaction()`) ---

    def append_event(self, channel: str, channel_serial: str, action: int, timestamp: int, body: dict) -> None:
        self._write("INSERT INTO events (channel, channel_serial, action, timestamp, body) VALUES (?, ?, ?, ?, ?)",
                    (channel, channel_serial, action, timestamp, pack(body)))

    def insert_message(self, channel: str, message: dict[str, Any], channel_serial: str) -> None:
        body = self._remember(channel, message)
        self._write("INSERT INTO messages (channel, serial, channel_serial, timestamp, message_id, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (channel, message["serial"], channel_serial, message["timestamp"], message.get("id"), body))

    def replace_message(self, channel: str, message: dict[str, Any]) -> None:
        self._write("UPDATE messages SET body = ? WHERE channel = ? AND serial = ?",
                    (self._remember(channel, message), channel, message["serial"]))

    def _remember(self, channel: str, message: dict[str, Any]) -> bytes:
        """`message` packed, and kept where a read of it finds it until the group's writes are executed."""
        body = pack(message)
        self._unit_bodies[(channel, message["serial"])] = body
        if message.get("id") is not None:
            self._unit_ids.append((channel, message["id"], message["serial"]))
        return body

    def add_version(self, channel: str, message: dict[str, Any]) -> None:
        self._write("INSERT INTO versions (channel, serial, timestamp, body) VALUES (?, ?, ?, ?)",
                    (channel, message["serial"], message["version"]["timestamp"], pack(message)))

    def expire(self, before_ms: int) -> int:
        """Drop everything published before `before_ms`; returns the number of events dropped."""
        self._ids.clear()  # reloaded from what is left, on each channel's next duplicate check
        with self.transaction():
            self._flush()
            self._db.execute(
                "INSERT INTO horizons (channel, channel_serial)"
                " SELECT channel, MAX(channel_serial) FROM events WHERE timestamp < ? GROUP BY channel"
                " ON CONFLICT (channel) DO UPDATE SET channel_serial = excluded.channel_serial",
                (before_ms,),
            )
            dropped = self._db.execute("DELETE FROM events WHERE timestamp < ?", (before_ms,)).rowcount
            self._db.execute("DELETE FROM messages WHERE timestamp < ?", (before_ms,))
            self._db.execute(
                "DELETE FROM versions WHERE NOT EXISTS (SELECT 1 FROM messages m"
                " WHERE m.channel = versions.channel AND m.serial = versions.serial)"
            )
        return dropped

    # --- reads ---

    def last_channel_serial(self, channel: str) -> str | None:
        row = self._read("SELECT MAX(channel_serial) FROM events WHERE channel = ?", (channel,)).fetchone()
        return row[0] if row else None

    def horizon(self, channel: str) -> str | None:
        """The newest channelSerial retention has dropped: resuming from before it has lost continuity."""
        row = self._read("SELECT channel_serial FROM horizons WHERE channel = ?", (channel,)).fetchone()
        return row[0] if row else None

    def message(self, channel: str, serial: str) -> dict[str, Any] | None:
        """The message `serial` as it stands: an append or an update reads it, so it is looked up among the group's
        deferred writes first, and does not force them out one append at a time."""
        if (pending := self._deferred_bodies.get((channel, serial))) is not None:
            return unpack(pending)
        row = self._db.execute(
            "SELECT body FROM messages WHERE channel = ? AND serial = ?", (channel, serial)
        ).fetchone()
        return unpack(row[0]) if row else None

    def messages_with_id(self, channel: str, message_id: str) -> dict[str, Any] | None:
        """The message published with `message_id`: the duplicate check of every publish that names its id, as
        ably-python's do. A fresh id costs a dictionary lookup, and a repeated one a read of its message."""
        serial = self._channel_ids(channel).get(message_id)
        return None if serial is None else self.message(channel, serial)

    def _channel_ids(self, channel: str) -> dict[str, str]:
        ids = self._ids.get(channel)
        if ids is None:
            rows = self._read("SELECT message_id, serial FROM messages WHERE channel = ? AND message_id IS NOT NULL"
                              " ORDER BY id", (channel,)).fetchall()
            ids = self._ids[channel] = {}
            for message_id, serial in rows:
                ids.setdefault(message_id, serial)
        return ids

    def events_after(self, channel: str, channel_serial: str) -> list[Event]:
        rows = self._read(
            "SELECT id, channel_serial, action, timestamp, body FROM events"
            " WHERE channel = ? AND channel_serial > ? ORDER BY id",
            (channel, channel_serial),
        ).fetchall()
        return [Event(r[0], r[1], r[2], r[3], unpack(r[4])) for r in rows]

    def latest_messages(self, channel: str, count: int, since_ms: int | None) -> list[tuple[str, dict]]:
        """The newest `count` message aggregates (oldest first) with the channelSerial each was created at."""
        rows = self._read(
            "SELECT channel_serial, body FROM messages WHERE channel = ? AND timestamp >= ?"
            " ORDER BY id DESC LIMIT ?",
            (channel, since_ms or 0, count),
        ).fetchall()
        return [(r[0], unpack(r[1])) for r in reversed(rows)]

    def history(self, channel: str, query: Query) -> Page:
        return self._page("messages", "channel_serial", channel, query, extra="")

    def presence_history(self, channel: str, query: Query) -> Page:
        page = self._page("events", "channel_serial", channel, query, extra=f" AND action = {int(Action.PRESENCE)}")
        return Page([item["presence"][0] for item in page.items], page.next_cursor)

    def versions(self, channel: str, serial: str, query: Query) -> Page:
        return self._page("versions", "serial", channel, query, extra="", serial=serial)

    def _page(self, table: str, serial_column: str, channel: str, query: Query, extra: str,
              serial: str | None = None) -> Page:
        clauses = [f"channel = ?{extra}"]
        args: list[Any] = [channel]
        if serial is not None:
            clauses.append("serial = ?")
            args.append(serial)
        bounds = [
            ("timestamp >= ?", query.start), ("timestamp <= ?", query.end),
            ("timestamp >= ?", query.not_before), (f"{serial_column} <= ?", query.until_serial),
            ("id > ?" if query.forwards else "id < ?", query.cursor),
        ]
        for clause, value in bounds:
            if value is not None:
                clauses.append(clause)
                args.append(value)
        order = "ASC" if query.forwards else "DESC"
        rows = self._read(
            f"SELECT id, body FROM {table} WHERE {' AND '.join(clauses)} ORDER BY id {order} LIMIT ?",
            (*args, query.limit + 1),
        ).fetchall()
        items = [unpack(body) for _, body in rows[: query.limit]]
        next_cursor = rows[query.limit - 1][0] if len(rows) > query.limit else None
        return Page(items, next_cursor)

