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
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .apps import CHROMIUM, PNG_SIGNATURE, served

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples" / "langgraph-web"
BROWSER_SCRIPT = Path(__file__).resolve().parent / "langgraph_browser.mjs"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """examples/langgraph-web/app.py, its dev server's state in a folder of the module's own."""
    with served(WEB, tmp_path_factory.mktemp("local-home")) as url:
        yield url


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
