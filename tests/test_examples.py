"""The examples work offline, on the embedded default and a scripted model, and print what happens."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_ably_transport import local

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def local_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The examples' embedded default (`endpoint="local"`), kept in a folder of the tests' own and stopped after."""
    home = tmp_path_factory.mktemp("local-home")
    yield home
    local.stop(home)


def _run(example: str, home: Path) -> str:
    """Run an example as a user would, with no Ably or OpenAI credentials; its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("ABLY_API_KEY", "ABLY_ENDPOINT", "OPENAI_API_KEY")}
    result = subprocess.run([sys.executable, str(EXAMPLES / example)], capture_output=True, text=True, timeout=60,
                            env={**env, local.ENV_HOME: str(home)})
    assert result.returncode == 0, result.stderr
    assert "using the embedded dev server (endpoint='local')" in result.stdout
    assert "langchain-ably-transport: local Ably dev server at http://127.0.0.1:" in result.stderr
    return result.stdout


def test_the_quickstart_demo_streams_live_and_a_late_client_rebuilds_the_conversation(local_home):
    out = _run("quickstart.py", local_home)
    live, _, rebuilt = out.partition("a client joining later")
    assert "agent (live): Because the channel outlives every process" in live
    assert "human: Why make an Ably channel the session of an agent?" in rebuilt
    assert "ai: Because the channel outlives every process" in rebuilt


def test_chain_callback_streams_each_chain_call_live_as_a_run_of_its_own(local_home):
    lines = _run("chain_callback.py", local_home).splitlines()
    assert "  agent (live): The chain's input as the user's message, then the model's tokens as one assistant " \
           "message, live." in lines
    assert "  agent (live): The run ends with an error carrying the exception's message, and the chain still gets " \
           "its exception." in lines
    assert lines.count("  the client's copy equals what ainvoke returned: True") == 2
    runs = next(line for line in lines if line.startswith("runs on the channel:"))
    assert runs.count("complete") == 2


def test_checkpointer_continues_the_thread_from_the_channel_with_a_fresh_saver(local_home):
    out = _run("checkpointer.py", local_home)
    first, _, second = out.partition("a fresh saver restores")
    assert "  ai: Nice to meet you, Ada." in first
    assert "get_state: 2 messages, next=()" in first
    assert "get_state_history: 3 checkpoints, steps [1, 0, -1] (newest first)" in first
    assert second.startswith(" 2 messages from the channel")
    assert second.split("second invocation, same thread:\n")[1].splitlines()[:4] == [
        "  human: Hi, I'm Ada.", "  ai: Nice to meet you, Ada.", "  human: What's my name?",
        "  ai: You told me your name is Ada, and this is our second exchange."]
    assert "get_state after the second invocation: 4 messages" in second


def test_hitl_suspends_in_one_process_and_a_second_process_resumes_and_completes(local_home):
    lines = _run("hitl_two_processes.py", local_home).splitlines()
    workers = [line for line in lines if line.startswith("  [worker pid ")]
    assert len(workers) == 2 and workers[0].endswith(" suspended") and workers[1].endswith(" complete")
    assert workers[0].split()[2] != workers[1].split()[2]  # two processes (pids differ)
    assert workers[0].split()[4] == workers[1].split()[4]  # ... serving the same run
    assert lines.index(workers[0]) < lines.index("client: the run is suspended, the worker has exited") \
        < lines.index("client: approval requested for deploy({'env': 'prod'}); approving") < lines.index(workers[1])
    assert "client: the same run completed; tool output: 'deployed to prod'" in lines
    assert "client: agent's last words: Done: deployed to prod." in lines


def test_multi_agent_labels_each_assistant_message_with_its_agent(local_home):
    lines = _run("multi_agent.py", local_home).splitlines()
    assert any(line.startswith("run ") and line.endswith(" complete") for line in lines)
    assert [line for line in lines if line.startswith("  [")] == [
        "  [supervisor] I'll ask the researcher for the facts, then the writer for the note.",
        "  [researcher] calls search_docs({'topic': 'checkpointer'}) -> "
        "'AblySaver keeps LangGraph checkpoints in Ably channels, no database needed'",
        "  [researcher] Found: AblySaver keeps LangGraph checkpoints in Ably channels, no database needed.",
        "  [writer] New: AblySaver, LangGraph checkpoints in Ably channels, no database.",
    ]
