"""The message ledger: every message this package publishes, counted by kind, for the process, each run and
each channel.

Ably bills every published message, and a connection, like a channel, accepts 50 a second: what a turn
publishes is its cost and its share of the rate. Every publish of the package goes through one connection's
`PublishPacer`, which records here what the server accepted (a publish refused and retried counts once, when it
is accepted; appends that waited their turn and went out as one, as Ably's rollup would, count once).

A message names its run when its headers do (outputs, lifecycle); others (`AblySaver`'s records, written from
inside a graph's tasks) are counted to the run `attributed_to` marks in their context, as `serve_graph` marks
each run it serves. Per-run and per-channel counts are kept for the newest `SCOPES_KEPT` runs and channels
each, so a process serving thousands of conversations holds a bounded amount; the process totals are never
dropped.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum

log = logging.getLogger(__name__)
SCOPES_KEPT = 4096


class MessageKind(StrEnum):
    """What a published message was for."""

    OUTPUT_CREATE = "output-create"  # an `ai-output`: a stream's first message or a discrete chunk
    OUTPUT_APPEND = "output-append"  # an append to a stream, after rollup
    OUTPUT_UPDATE = "output-update"  # a stream repaired with its whole text
    LIFECYCLE = "lifecycle"  # `ai-run-*` and `ai-step-*`
    INPUT = "input"  # `ai-input` and `ai-cancel` (a client's, or `AblyCallbackHandler`'s own)
    PRESENCE = "presence"  # an agent instance entering presence on the liveness channel, once per connection (or pool)
    CHECKPOINT_RECORD = "checkpoint-record"  # `AblySaver`: a checkpoint or a task's writes
    CHECKPOINT_BLOB = "checkpoint-blob"  # `AblySaver`: one chunk of a large value
    PROTOCOL_EVENTS = "protocol-events"  # the agent-protocol codec: a batch of events (or a part of a large one)
    PROTOCOL_RESPONSE = "protocol-response"  # the agent-protocol codec: the answer to a client's command


@dataclass(frozen=True)
class MessageCounts(Mapping[MessageKind, int]):
    """Messages by kind (a read-only mapping; kinds never published read as 0), with their `total`."""

    by_kind: Mapping[MessageKind, int] = field(default_factory=dict)

    def __getitem__(self, kind: MessageKind) -> int:
        return self.by_kind.get(kind, 0)

    def __iter__(self) -> Iterator[MessageKind]:
        return iter(kind for kind in MessageKind if self.by_kind.get(kind))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def __add__(self, other: MessageCounts) -> MessageCounts:
        return MessageCounts(dict(Counter(self.by_kind) + Counter(other.by_kind)))

    def __sub__(self, other: MessageCounts) -> MessageCounts:
        return MessageCounts(dict(Counter(self.by_kind) - Counter(other.by_kind)))

    def as_dict(self) -> dict[str, int]:
        """`{kind: count}` for logging or a metrics exporter, kinds never published left out."""
        return {kind.value: self[kind] for kind in self}


@dataclass(frozen=True)
class Publication:
    """What one publish is, for the ledger: its kind, its channel, and its run (None: the run in context)."""

    kind: MessageKind
    channel: str | None = None
    run_id: str | None = None


_current_run: ContextVar[str | None] = ContextVar("langchain_ably_transport_run", default=None)


@contextmanager
def attributed_to(run_id: str) -> Iterator[None]:
    """Count what is published in this context (and the tasks it starts) without a run of its own to `run_id`."""
    token = _current_run.set(run_id)
    try:
        yield
    finally:
        _current_run.reset(token)


def current_run() -> str | None:
    return _current_run.get()


Watcher = Callable[[MessageKind, int, "str | None"], None]


class MessageLedger:
    """Counts of published messages: the process's, and per run id and per channel name (the newest ones); and of
    publishes Ably refused for rate, by error code (each one waited out and sent again, never dropped)."""

    def __init__(self, scopes_kept: int = SCOPES_KEPT) -> None:
        self._refusals: Counter[int] = Counter()
        self._process: Counter[MessageKind] = Counter()
        self._runs: OrderedDict[str, Counter[MessageKind]] = OrderedDict()
        self._channels: OrderedDict[str, Counter[MessageKind]] = OrderedDict()
        self._kept = scopes_kept
        self._watchers: list[Watcher] = []

    def record(self, kind: MessageKind, count: int = 1, *, channel: str | None = None,
               run_id: str | None = None) -> None:
        self._process[kind] += count
        for scopes, key in ((self._runs, run_id), (self._channels, channel)):
            if key:
                _scope(scopes, key, self._kept)[kind] += count
        for watcher in self._watchers:
            watcher(kind, count, run_id)

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call `watcher(kind, count, run_id)` on every message recorded, as it is (metrics that need the moment,
        such as a run's first output); returns the function that stops it."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    def refused(self, code: int) -> None:
        if not self._refusals:
            log.warning("Ably refused a publish for rate (%d): publishes back off and retry; see ledger.refusals()",
                        code)
        self._refusals[code] += 1

    def refusals(self) -> dict[int, int]:
        """Publishes refused for rate since the process started (or since `reset`): 42911 over a connection's
        rate, 42910 over the account's."""
        return dict(self._refusals)

    def process(self) -> MessageCounts:
        """Everything published since the process started (or since `reset`)."""
        return MessageCounts(dict(self._process))

    def run(self, run_id: str) -> MessageCounts:
        """What was published for one run on its session channel (outputs, lifecycle, presence)."""
        return MessageCounts(dict(self._runs.get(run_id, {})))

    def channel(self, name: str) -> MessageCounts:
        """What was published on one channel: a session's, or a thread's `AblySaver` state channel."""
        return MessageCounts(dict(self._channels.get(name, {})))

    def reset(self) -> None:
        self._refusals.clear()
        self._process.clear()
        self._runs.clear()
        self._channels.clear()


def _scope(scopes: OrderedDict[str, Counter[MessageKind]], key: str, kept: int) -> Counter[MessageKind]:
    counts = scopes.get(key)
    if counts is None:
        counts = scopes[key] = Counter()
        while len(scopes) > kept:
            scopes.popitem(last=False)
    else:
        scopes.move_to_end(key)
    return counts


ledger = MessageLedger()
"""The process's ledger: what every client of this package published."""
