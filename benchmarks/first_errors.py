"""What a new user sees for each configuration mistake: how long until the error, and its first lines.

Each case runs in a fresh interpreter, as a user's script or the CLI would, with no Ably key in the environment
unless the case gives one. For each: the seconds until the process exited, the lines it wrote to stderr, its
first line and its last (the exception, for a traceback), and whether a stray "Task exception was never
retrieved" or a traceback reached the terminal. Every case is bounded (`--timeout`, default 40 s).

Reproduce (about 1 minute before the fixes, seconds after):

    .venv/bin/python benchmarks/first_errors.py
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from common import load_average, load_line

KEY = "dev.key:secret"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Case:
    name: str
    command: list[str]
    env: dict[str, str]


def connect_script(endpoint: str) -> str:
    return ("import asyncio\nfrom langchain_ably_transport import connect\n"
            "async def main():\n"
            f"    async with connect(key={KEY!r}, endpoint={endpoint!r}):\n"
            "        pass\n"
            "asyncio.run(main())\n")


SAVER_SCRIPT = ("from langchain_ably_transport import AblySaver\n"
                "with AblySaver.connect() as saver:\n"
                "    pass\n")


def cases() -> list[Case]:
    port = closed_port()
    python = [sys.executable, "-c"]
    cli = [sys.executable, "-m", "langchain_ably_transport.cli", "tail", "conversations:1", "--key", KEY]
    return [
        Case("connect(): a closed local port", [*python, connect_script(f"http://127.0.0.1:{port}")], {}),
        Case("connect(): no scheme (127.0.0.1:PORT)", [*python, connect_script(f"127.0.0.1:{port}")], {}),
        Case("tail: no scheme", [*cli, "--endpoint", f"127.0.0.1:{port}", "--no-follow"], {}),
        Case("tail: http//host:port", [*cli, "--endpoint", f"http//127.0.0.1:{port}", "--no-follow"], {}),
        Case("tail: port out of range", [*cli, "--endpoint", "http://127.0.0.1:99999", "--no-follow"], {}),
        Case("tail: port not a number", [*cli, "--endpoint", "http://127.0.0.1:80a", "--no-follow"], {}),
        Case("AblySaver.connect(): no credentials", [*python, SAVER_SCRIPT], {}),
    ]


def run(case: Case, timeout: float) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("ABLY_API_KEY", "ABLY_ENDPOINT")}
    started = time.perf_counter()
    try:
        done = subprocess.run(case.command, env={**env, **case.env}, capture_output=True, text=True, timeout=timeout)
        stderr, code = done.stderr, str(done.returncode)
    except subprocess.TimeoutExpired as expired:
        raw = expired.stderr or b""
        stderr, code = raw.decode() if isinstance(raw, bytes) else raw, f"still running after {timeout:g} s"
    seconds = time.perf_counter() - started
    lines = [line for line in stderr.splitlines() if line.strip()]
    return {
        "case": case.name, "seconds": seconds, "exit": code, "lines": len(lines),
        "first": lines[0] if lines else "", "last": lines[-1] if lines else "",
        "stray": "Task exception was never retrieved" in stderr, "traceback": "Traceback" in stderr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=40.0, help="seconds a case may take at most")
    args = parser.parse_args()
    before = load_average()
    print("| case | seconds | exit | stderr lines | traceback | stray task error | first line | last line |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for case in cases():
        r = run(case, args.timeout)
        print(f"| {r['case']} | {r['seconds']:.2f} | {r['exit']} | {r['lines']} | {r['traceback']} | {r['stray']} "
              f"| `{str(r['first'])[:110]}` | `{str(r['last'])[:110]}` |", flush=True)
    print(load_line(before))


if __name__ == "__main__":
    main()
