"""The genuine ably-js 2.x SDK against the dev server: each `tests/js/*.test.mjs` file runs under `node --test`.

The JS tests read the server from `ABLY_ENDPOINT` / `ABLY_API_KEY`: the session's shared dev server, whose
publish-rate limit is off because the resume tests pipeline hundreds of publishes. Their npm dependencies
are pinned in `tests/js/package-lock.json` (`npm ci --prefix tests/js`); a missing install fails the run
rather than skipping it, so CI cannot silently lose the interop coverage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from langchain_ably_transport.devserver import RunningServer

JS_DIR = Path(__file__).resolve().parent.parent / "js"
JS_TESTS = sorted(JS_DIR.glob("*.test.mjs"))
NODE_TIMEOUT_S = 180

def test_js_tests_exist() -> None:
    assert JS_TESTS, f"no *.test.mjs files in {JS_DIR}"


@pytest.mark.parametrize("js_test", JS_TESTS, ids=[path.name for path in JS_TESTS])
def test_ably_js(js_test: Path, server: RunningServer) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20+ to run the ably-js interop tests")
    if not (JS_DIR / "node_modules" / "ably").is_dir():
        pytest.fail(f"{JS_DIR / 'node_modules'} is missing: run `npm ci --prefix tests/js` first")
    env = {**os.environ, "ABLY_ENDPOINT": server.url, "ABLY_API_KEY": server.key, "NO_COLOR": "1"}
    try:
        result = subprocess.run(
            [node, "--test", "--test-reporter=spec", js_test.name],
            cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=NODE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as timeout:
        output = _output(timeout.stdout, timeout.stderr)
        pytest.fail(f"node --test {js_test.name} ran over {NODE_TIMEOUT_S} s\n{output}")
    if result.returncode != 0:
        pytest.fail(f"node --test {js_test.name} exited {result.returncode}\n{_output(result.stdout, result.stderr)}")
    assert server.process.poll() is None, "the dev server died during the JS tests"


def _output(stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    def text(stream: str | bytes | None) -> str:
        return stream.decode(errors="replace") if isinstance(stream, bytes) else stream or ""

    return f"--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"
