"""Starting a web example for a browser test: its app on a free port, on the embedded default, until the test ends.

Missing prerequisites (node, the example's `npm ci`, Chromium) fail the test rather than skip it, so CI cannot
silently lose the browser coverage.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from langchain_ably_transport import local

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START_S = 120  # the first run may `npm ci` and bundle


def require(example: Path) -> None:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: install Node.js >= 18")
    if not (example / "node_modules" / "playwright-core").is_dir():
        pytest.fail(f"{example / 'node_modules'} is missing: run `npm ci --prefix {example}` (or `make test`)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (or `make test`), or set CHROMIUM_PATH")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(example: Path, home: Path) -> Iterator[str]:
    """`example/app.py`'s URL, with no Ably or OpenAI credentials and the local dev server's state in `home`,
    stopped after."""
    require(example)
    env = {k: v for k, v in os.environ.items() if k not in ("ABLY_API_KEY", "ABLY_ENDPOINT", "OPENAI_API_KEY")}
    app = subprocess.Popen([sys.executable, str(example / "app.py"), "--port", str(_free_port())],
                           stdout=subprocess.PIPE, text=True,
                           env={**env, "PYTHONUNBUFFERED": "1", local.ENV_HOME: str(home)})
    try:
        deadline = time.monotonic() + START_S
        assert app.stdout is not None
        for line in app.stdout:
            if line.startswith("open "):
                yield line.removeprefix("open ").strip()
                break
            if time.monotonic() > deadline:
                break
        else:
            pytest.fail(f"{example.name}/app.py exited ({app.poll()}) before printing its URL")
    finally:
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
        local.stop(home)
