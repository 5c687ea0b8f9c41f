"""A replica's metrics in the Prometheus text format (version 0.0.4): runs, refusals, messages, first-output latency.

| metric | type | what |
| --- | --- | --- |
| `lcat_runs_total{outcome}` | counter | runs served, by outcome (complete, suspended, cancelled, error, ...) |
| `lcat_runs_active` | gauge | runs being served now |
| `lcat_runs_adopted_total{outcome}` | counter | runs whose replica died, adopted by this one's watch, by outcome |
| `lcat_sessions_watched` | gauge | recently served sessions watched for lost runs (`server.watch`) |
| `lcat_invocations_refused_total{reason}` | counter | invocations answered 4xx/5xx, by reason |
| `lcat_messages_published_total{kind}` | counter | messages this process published, by kind (the ledger) |
| `lcat_publish_refusals_total{code}` | counter | publishes Ably refused for rate (each waited out and sent again) |
| `lcat_first_output_seconds` | histogram | from a run's start to its first output: its first token's latency |
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping

from ..ledger import MessageKind, MessageLedger

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RUNS_REMEMBERED = 4096  # runs whose start is remembered until their first output


class Histogram:
    """Cumulative buckets, a sum and a count, as Prometheus reads them."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS_S) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value

    def lines(self, name: str) -> list[str]:
        lines, cumulative = [], 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            cumulative += count
            lines.append(f'{name}_bucket{{le="{"+Inf" if bound == float("inf") else f"{bound:g}"}"}} {cumulative}')
        return [*lines, f"{name}_sum {self.total:.6f}", f"{name}_count {cumulative}"]


class FirstOutputClock:
    """Watches the ledger: a run's first lifecycle message is its start, its first output create its first token."""

    def __init__(self) -> None:
        self.histogram = Histogram()
        self._started: OrderedDict[str, float] = OrderedDict()

    def __call__(self, kind: MessageKind, count: int, run_id: str | None) -> None:
        if run_id is None:
            return
        if kind == MessageKind.LIFECYCLE and run_id not in self._started:
            self._started[run_id] = time.monotonic()
            while len(self._started) > RUNS_REMEMBERED:
                self._started.popitem(last=False)
        elif kind == MessageKind.OUTPUT_CREATE and (started := self._started.pop(run_id, None)) is not None:
            self.histogram.observe(time.monotonic() - started)


def render(*, outcomes: Mapping[str, int], active: int, adopted: Mapping[str, int], watched: int,
           refused: Mapping[str, int], ledger: MessageLedger, first_output: Histogram) -> str:
    """The exposition text."""
    lines: list[str] = []
    lines += _family("lcat_runs_total", "counter", "Runs served by this replica, by outcome.",
                     _labelled("lcat_runs_total", "outcome", outcomes))
    lines += _family("lcat_runs_active", "gauge", "Runs being served now.", [f"lcat_runs_active {active}"])
    lines += _family("lcat_runs_adopted_total", "counter", "Runs adopted from a replica that died, by outcome.",
                     _labelled("lcat_runs_adopted_total", "outcome", adopted))
    lines += _family("lcat_sessions_watched", "gauge", "Recently served sessions watched for lost runs.",
                     [f"lcat_sessions_watched {watched}"])
    lines += _family("lcat_invocations_refused_total", "counter", "Invocations refused, by reason.",
                     _labelled("lcat_invocations_refused_total", "reason", refused))
    published = {str(kind): count for kind, count in ledger.process().items()}
    lines += _family("lcat_messages_published_total", "counter", "Messages this process published, by kind.",
                     _labelled("lcat_messages_published_total", "kind", published))
    refusals = {str(code): count for code, count in ledger.refusals().items()}
    lines += _family("lcat_publish_refusals_total", "counter", "Publishes Ably refused for rate, by error code.",
                     _labelled("lcat_publish_refusals_total", "code", refusals))
    lines += _family("lcat_first_output_seconds", "histogram", "Seconds from a run's start to its first output.",
                     first_output.lines("lcat_first_output_seconds"))
    return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def _labelled(name: str, label: str, values: Mapping[str, int]) -> list[str]:
    return [f'{name}{{{label}="{key}"}} {count}' for key, count in sorted(Counter(values).items())]
