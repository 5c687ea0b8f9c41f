"""examples/web end to end in a real browser: headless Chromium asks the agent, watches the answer stream in,
reloads and finds the conversation again, then cancels a second answer (tests/web/browser.mjs).

Needs Chromium at /usr/bin/chromium (or $CHROMIUM_PATH) and `npm ci --prefix examples/web` (playwright-core,
esbuild and the JS SDKs); `make test` installs both. Missing prerequisites fail the test rather than skip it, so
CI cannot silently lose the browser coverage.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .apps import CHROMIUM, PNG_SIGNATURE, served

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples" / "web"
BROWSER_SCRIPT = Path(__file__).resolve().parent / "browser.mjs"


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """examples/web/app.py, the local dev server's state in the test's own folder."""
    with served(WEB, tmp_path) as url:
        yield url


def test_a_browser_streams_the_answer_rerenders_it_after_a_reload_and_cancels_a_run(app_url, tmp_path):
    screenshot = tmp_path / "web-chat.png"
    result = subprocess.run(["node", str(BROWSER_SCRIPT)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "APP_URL": app_url, "SCREENSHOT": str(screenshot),
                                 "CHROMIUM_PATH": CHROMIUM})
    print(result.stdout)
    print(f"screenshot: {screenshot}")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "first streamed text" in result.stdout and "cancelled after" in result.stdout
    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
