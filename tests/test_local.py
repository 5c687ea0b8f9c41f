"""The embedded default: `endpoint="local"` with nothing configured, across processes and a server restart."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_ably_transport import ConfigurationError, client_options, local

README = Path(__file__).resolve().parents[1] / "README.md"
ANNOUNCEMENT = re.compile(r"^langchain-ably-transport: local Ably dev server at (http://127\.0\.0\.1:\d+) "
                          r"\(history in (.+)\)$")


def _readme_thread_script() -> str:
    """The README quickstart's `thread.py`, as a user would copy it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return next(block for block in blocks if 'AblySaver.connect(endpoint="local")' in block)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    local.stop(tmp_path)


def _unconfigured_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ABLY_API_KEY", "ABLY_ENDPOINT")}
    return {**env, local.ENV_HOME: str(home)}


def _run_script(script: Path, home: Path) -> tuple[list[str], str]:
    """Run the script in a process of its own; what it printed (its list) and the one line saying where it ran."""
    done = subprocess.run([sys.executable, str(script)], env=_unconfigured_env(home), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    announcements = [line for line in done.stderr.splitlines() if ANNOUNCEMENT.match(line)]
    assert len(announcements) == 1, done.stderr
    return ast.literal_eval(done.stdout.strip()), announcements[0]


def test_two_processes_continue_one_thread_with_nothing_configured_and_a_restart_keeps_it(home, tmp_path_factory):
    script = tmp_path_factory.mktemp("user") / "thread.py"
    script.write_text(_readme_thread_script())
    first, where = _run_script(script, home)
    assert first == ["visit 1"]
    server = local.running(home)
    assert server is not None and ANNOUNCEMENT.match(where).groups() == (server.url, str(home / "history.sqlite3"))

    second, again = _run_script(script, home)
    assert second == ["visit 1", "visit 2"]
    assert again == where and local.running(home) == server, "the second process reused the running server"

    stopped = subprocess.run([sys.executable, "-m", "langchain_ably_transport.cli", "local", "stop"],
                             env=_unconfigured_env(home), capture_output=True, text=True, timeout=30)
    assert stopped.stdout.startswith(f"stopped: {server.url} (pid {server.pid}") and local.running(home) is None

    third, _ = _run_script(script, home)
    assert third == ["visit 1", "visit 2", "visit 3"], "the restarted server read the history file"
    restarted = local.running(home)
    assert restarted is not None and restarted.pid != server.pid and restarted.key == server.key


def test_local_is_explicit_and_a_missing_key_never_falls_back_to_it(monkeypatch, home):
    monkeypatch.delenv("ABLY_API_KEY", raising=False)
    monkeypatch.delenv("ABLY_ENDPOINT", raising=False)
    monkeypatch.setenv(local.ENV_HOME, str(home))
    with pytest.raises(ConfigurationError, match="No Ably credentials"):
        client_options()
    assert local.running(home) is None
    monkeypatch.setenv("ABLY_ENDPOINT", "local")
    options = client_options()
    server = local.running(home)
    assert server is not None and options["key"] == server.key and options["port"] == int(server.url.split(":")[-1])
