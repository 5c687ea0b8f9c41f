"""The dev server's command line: a user's mistake is one line on stderr and a failing exit, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from langchain_ably_transport.devserver import cli


@pytest.mark.parametrize(("args", "says"), [
    (["--data", "/nonexistent/folder/history.sqlite3"], "devserver: cannot start on 127.0.0.1:0 with --data "
                                                        "/nonexistent/folder/history.sqlite3: unable to open"),
    (["--key", "not-a-key"], "devserver: An API key looks like appId.keyId:secret, not 'not-a-key'"),
])
def test_a_bad_flag_is_one_line_and_a_failing_exit(args, says):
    done = subprocess.run([sys.executable, "-m", "langchain_ably_transport.cli", "devserver", "--port", "0", *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and done.stderr.startswith(says)


def test_every_flag_has_help():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    flags = {action.option_strings[0]: action.help for action in parser._actions if action.option_strings}
    assert "--protocol-rate" in flags and "--log-level" in flags
    assert [flag for flag, text in flags.items() if not text] == []
    assert "ably-dev.sqlite3" in flags["--data"]
