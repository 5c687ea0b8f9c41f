"""Start a dev server in a child process and wait for its `ready URL` line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .config import DEFAULT_KEY


class DevServerStartError(RuntimeError):
    """The dev server exited or stayed silent instead of printing its ready line."""


@dataclass
class RunningServer:
    """A dev server child process: its URL (for `ABLY_ENDPOINT`) and the key it accepts."""

    url: str
    key: str
    process: subprocess.Popen[str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """kill -9: the crash a durability test needs."""
        self.process.kill()
        self.process.wait()


def start(
    *, port: int = 0, data: str = ":memory:", key: str = DEFAULT_KEY, args: Sequence[str] = (),
    ready_timeout: float = 30.0,
) -> RunningServer:
    """Start a dev server child process and return once it accepts connections (`stop()` it when done)."""
    command = [sys.executable, "-m", "langchain_ably_transport.devserver", "--port", str(port), "--data", data,
               "--key", key, *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(ready_timeout)
    line = ready[0].strip() if ready else ""
    if not line.startswith("ready "):
        process.kill()
        process.wait()
        raise DevServerStartError(f"dev server did not become ready ({' '.join(command)}): {line or 'no output'}")
    return RunningServer(url=line.removeprefix("ready "), key=key, process=process)


@contextmanager
def spawn(**options: object) -> Iterator[RunningServer]:
    """`with spawn() as server:` a fresh in-memory dev server on a free port, stopped on exit."""
    server = start(**options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
