"""What the benchmark scripts share: their error, order statistics, table cells, argument types, the machine's state.

The scripts run as `python benchmarks/<script>.py`, which puts this directory on `sys.path`, so they (and the
child processes they spawn, which inherit that path) import this module as `common`. Only helpers whose logic is
the same in every script live here; a script's own variant stays in the script.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import statistics
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any


class BenchmarkError(RuntimeError):
    """A run that could not produce a figure (lost messages, a failed publish, agent or child process, a server that
    did not start)."""


# --- order statistics ---


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))]


def median_of(values: Iterable[float | None]) -> float | None:
    """The median of the values present (None left out), or None when there are none."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


# --- table cells ---


def cell(value: float | None, spec: str, width: int) -> str:
    """`value` formatted with `spec`, right-aligned in `width`; "-" where there is no value."""
    return f"{'-' if value is None else format(value, spec):>{width}}"


def ratio(value: float | None, base: float | None) -> str:
    """`value / base` as "1.23x"; "-" where either is missing or the base is zero."""
    return "-" if value is None or not base else f"{value / base:.2f}x"


# --- the command line ---


def positive(text: str) -> int:
    """An argparse type: an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def quiet_sdk_logs() -> None:
    """ably-python logs every publish failed by a cut-off connection; the reports say it once instead."""
    logging.getLogger("ably").setLevel(logging.CRITICAL)


def run_sampled(description: str, samples: int, measure: Callable[[int], Awaitable[Any]],
                report: Callable[[Any, str], str], timeout_s: float = 600.0) -> None:
    """A sampling benchmark's `main`: `--samples` (default `samples`), the SDK's logs quiet, the load average taken
    before, `measure(samples)` bounded by `timeout_s`, and `report(its result, the load before)` printed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--samples", type=positive, default=samples)
    args = parser.parse_args()
    quiet_sdk_logs()
    before = load_average()
    print(report(asyncio.run(asyncio.wait_for(measure(args.samples), timeout_s)), before))


# --- the machine ---


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def load_line(before: str) -> str:
    """The report header's line on the machine's load, before the run and now."""
    return (f"load average (1/5/15 min) before: {before}, after: {load_average()} "
            "(anything else running competes for the same cores)")


def core_wait_seconds(pid: int) -> float | None:
    """Seconds a process's main thread has spent runnable but waiting for a core, from /proc/<pid>/schedstat (None
    where that is unavailable): for a single-threaded event loop, time its callbacks were due and could not run."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far, from /proc (None where that is unavailable)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
