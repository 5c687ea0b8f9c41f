"""The README's demo works offline: it starts the embedded dev server, streams a reply live, reads it back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_the_quickstart_demo_streams_live_and_a_late_client_rebuilds_the_conversation():
    env = {k: v for k, v in os.environ.items() if k not in ("ABLY_API_KEY", "ABLY_ENDPOINT", "OPENAI_API_KEY")}
    result = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "embedded dev server" in out
    live, _, rebuilt = out.partition("a client joining later")
    assert "agent (live): Because the channel outlives every process" in live
    assert "human: Why make an Ably channel the session of an agent?" in rebuilt
    assert "ai: Because the channel outlives every process" in rebuilt
