"""How soon the dev server is ready: from starting its process to its `ready URL` line.

Each sample starts `python -m langchain_ably_transport.devserver --port 0 --data :memory:` and times the ready
line, then stops it. BASELINE, measured in the same run and alternating with it: a bare interpreter that prints one
line (`python -c "print('ready')"`), the floor any Python program pays. Every wait is bounded (`--timeout`).

Reproduce (about a minute):

    .venv/bin/python benchmarks/devserver_startup.py [--samples 200]
"""

from __future__ import annotations

import argparse
import selectors
import statistics
import subprocess
import sys
import time

from common import BenchmarkError, load_average, load_line, percentile, positive

SERVER = [sys.executable, "-m", "langchain_ably_transport.devserver", "--port", "0", "--data", ":memory:"]
BARE = [sys.executable, "-c", "print('ready')"]


def time_to_ready(command: list[str], timeout: float) -> float:
    """Seconds from starting `command` to its first line, which must start with `ready`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        with selectors.DefaultSelector() as selector:
            assert process.stdout is not None
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise BenchmarkError(f"{command[2]}: no ready line within {timeout:g} s")
            line = process.stdout.readline()
        elapsed = time.perf_counter() - started
        if not line.startswith("ready"):
            raise BenchmarkError(f"{' '.join(command)} printed {line!r} instead of its ready line")
        return elapsed
    finally:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def report(name: str, samples: list[float], baseline: float) -> str:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    return (f"| {name} | {len(ordered)} | {median * 1000:.1f} | {percentile(ordered, 99) * 1000:.1f} "
            f"| {median / baseline:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=positive, default=200, help="starts of each (default 200)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a start may take at most")
    args = parser.parse_args()
    before = load_average()
    server, bare = [], []
    for _ in range(args.samples):
        bare.append(time_to_ready(BARE, args.timeout))
        server.append(time_to_ready(SERVER, args.timeout))
    baseline = statistics.median(bare)
    print(load_line(before))
    print("| process | samples | p50 ms | p99 ms | p50 against the baseline |")
    print("| --- | --- | --- | --- | --- |")
    print(report("bare interpreter (BASELINE)", bare, baseline))
    print(report("dev server, ready", server, baseline))
    print(f"target: ready in < 500 ms; p50 {'met' if statistics.median(server) < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
