"""examples/langgraph-web end to end in a real browser: React `useStream` of `@langchain/react` on the Ably transport
(js/langgraph-transport), answered by `serve_thread`. Headless Chromium asks, watches the answer stream in, reloads
and finds the conversation hydrated from the channel, presses Stop on a second answer and asks again
(tests/web/langgraph_browser.mjs).

Needs Chromium at /usr/bin/chromium (or $CHROMIUM_PATH) and `npm ci --prefix examples/langgraph-web`
(playwright-core, esbuild and the JS packages); `make test` installs both. Missing prerequisites fail the test
rather than skip it, so CI cannot silently lose the browser coverage.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_ably_transport import local

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples" / "langgraph-web"
BROWSER_SCRIPT = Path(__file__).resolve().parent / "langgraph_browser.mjs"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _require_prerequisites() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: install Node.js >= 18")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.fail(f"{WEB / 'node_modules'} is missing: run `npm ci --prefix examples/langgraph-web` (or `make test`)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (or `make test`), or set CHROMIUM_PATH")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """examples/langgraph-web/app.py on a free port, on the embedded default (no Ably or OpenAI credentials; the
    local dev server's state in a folder of the module's own, stopped after)."""
    _require_prerequisites()
    home = tmp_path_factory.mktemp("local-home")
    env = {k: v for k, v in os.environ.items() if k not in ("ABLY_API_KEY", "ABLY_ENDPOINT", "OPENAI_API_KEY")}
    port = _free_port()
    app = subprocess.Popen([sys.executable, str(WEB / "app.py"), "--port", str(port)], stdout=subprocess.PIPE,
                           text=True, env={**env, "PYTHONUNBUFFERED": "1", local.ENV_HOME: str(home)})
    try:
        deadline = time.monotonic() + 120  # the first run may `npm ci` and bundle
        assert app.stdout is not None
        for line in app.stdout:
            if line.startswith("open "):
                yield line.removeprefix("open ").strip()
                break
            if time.monotonic() > deadline:
                break
        else:
            pytest.fail(f"app.py exited ({app.poll()}) before printing its URL")
    finally:
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
        local.stop(home)


def _status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_browser_streams_the_answer_hydrates_it_after_a_reload_and_stops_a_run(app_url, tmp_path):
    screenshot = tmp_path / "langgraph-web-chat.png"
    result = subprocess.run(["node", str(BROWSER_SCRIPT)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "APP_URL": app_url, "SCREENSHOT": str(screenshot),
                                 "CHROMIUM_PATH": CHROMIUM})
    print(result.stdout)
    print(f"screenshot: {screenshot}")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "first streamed texts" in result.stdout and "stopped after" in result.stdout
    assert "next answer" in result.stdout
    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000


def test_tokens_and_agents_are_given_only_for_threads_and_never_in_the_agents_name(app_url):
    # Every page believes the agent's clientId: a browser must not get a token in that name.
    assert _status(f"{app_url}api/token?clientId=agent&thread=abc") == 401
    assert _status(f"{app_url}api/token?clientId=user-1&thread=a%20b") == 404
    assert _status(f"{app_url}api/token?clientId=user-1&thread=abc") == 200
    assert _status(f"{app_url}api/threads/a%20b/serve", method="POST") == 404
