"""The embedded default: `ABLY_ENDPOINT=local` (or `endpoint="local"`) runs on this user's local dev server.

For trying the package with no Ably account. It is explicit: a missing key never falls back to it. The first
process that asks starts the dev server (`python -m langchain_ably_transport.devserver`, as a child process of
its own session, so it outlives the process that started it); later ones, from any process of the same user,
reuse it. Its history is a SQLite file in the user's cache folder, so a thread that `AblySaver` stored in one
process continues in the next, and after the server restarts. `langchain-ably-transport local stop` stops it.

Nothing here imports the dev server: it runs as a program.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ConfigurationError

LOCAL = "local"
ENV_HOME = "LANGCHAIN_ABLY_TRANSPORT_HOME"  # where the local server keeps its state; default: the cache folder
READY_TIMEOUT_S = 15.0
_DEVSERVER_MODULES = ("aiohttp", "msgpack")
_announced: set[str] = set()


@dataclass(frozen=True)
class LocalServer:
    """The running local dev server: its URL, the key it accepts, its process id and its history file."""

    url: str
    key: str
    pid: int
    data: str


def home() -> Path:
    """The folder of the local server's state: `$LANGCHAIN_ABLY_TRANSPORT_HOME`, else the user's cache folder."""
    explicit = os.environ.get(ENV_HOME)
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "langchain-ably-transport"


def local_server() -> LocalServer:
    """The user's running local dev server, started if none is; prints one line saying where it runs."""
    _require_devserver()
    folder = home()
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / "server.lock"):
        server = running(folder) or _start(folder)
    if server.url not in _announced:
        _announced.add(server.url)
        print(f"langchain-ably-transport: local Ably dev server at {server.url} (history in {server.data})",
              file=sys.stderr, flush=True)
    return server


def running(folder: Path | None = None) -> LocalServer | None:
    """The local server recorded in `folder`, if its process is alive and accepts connections."""
    state = (folder or home()) / "server.json"
    try:
        server = LocalServer(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return server if _alive(server.pid) and _accepts(server.url) else None


def stop(folder: Path | None = None) -> LocalServer | None:
    """Stop the local server recorded in `folder` (SIGTERM, then wait); returns it, or None if none ran."""
    server = running(folder)
    if server is None:
        return None
    os.kill(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return server


def _start(folder: Path) -> LocalServer:
    key = _previous_key(folder) or f"local.{secrets.token_hex(4)}:{secrets.token_urlsafe(18)}"
    data = str(folder / "history.sqlite3")
    ready = folder / "server.out"
    command = [sys.executable, "-m", "langchain_ably_transport.devserver", "--port", "0", "--data", data,
               "--key", key]
    with open(ready, "w") as out, open(folder / "server.log", "a") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=log,
                                   start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = _ready_url(ready, process)
    server = LocalServer(url=url, key=key, pid=process.pid, data=data)
    (folder / "server.json").write_text(json.dumps(asdict(server)))
    return server


def _ready_url(ready: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = ready.read_text().strip()
        if line.startswith("ready "):
            return line.removeprefix("ready ")
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise ConfigurationError(f"The local dev server did not start within {READY_TIMEOUT_S:g} s; "
                             f"see {ready.with_name('server.log')}")


def _previous_key(folder: Path) -> str | None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return str(json.loads((folder / "server.json").read_text())["key"])
    return None


def _require_devserver() -> None:
    missing = [name for name in _DEVSERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigurationError(f"ABLY_ENDPOINT=local runs the dev server, which needs {', '.join(missing)}: "
                                 "pip install 'langchain-ably-transport[devserver]'")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process at a time decides whether to start the server."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # a server this process started, exited, is reaped here
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _accepts(url: str) -> bool:
    address = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), timeout=1):
            return True
    except OSError:
        return False
