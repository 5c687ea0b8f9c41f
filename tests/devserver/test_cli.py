"""The dev server's command line: a user's mistake is one line on stderr and a failing exit, never a traceback;
`--uvloop` really runs the server on uvloop's loop."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from langchain_ably_transport import connect
from langchain_ably_transport.devserver import cli, spawn

from .helpers import Collector, eventually


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


def test_uvloop_asked_for_but_not_installed_is_one_line_and_a_failing_exit():
    hide_uvloop = "import sys; sys.modules['uvloop'] = None; from langchain_ably_transport.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", hide_uvloop, "devserver", "--port", "0", "--uvloop"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("devserver: --uvloop needs uvloop, which is not installed: pip install uvloop "
                                   "(or pip install 'langchain-ably-transport[uvloop]')")


@pytest.mark.parametrize(("flags", "loop"), [(["--uvloop"], "uvloop.Loop"), ([], "asyncio.unix_events.")],
                         ids=["uvloop", "asyncio"])  # uvloop is in the [dev] extra: without it, this fails
async def test_the_server_runs_on_the_loop_asked_for_and_serves_the_genuine_sdk(channel_name, capfd, flags, loop):
    # The server logs type(asyncio.get_running_loop()) before its ready line; its stderr is this process's fd 2.
    # The clients close before the server stops: ably-python's close() waits on a server that has gone.
    with spawn(args=[*flags, "--log-level", "INFO"]) as server:
        started = capfd.readouterr().err
        async with (
            connect(server.key, server.url, client_id="pub") as publisher,
            connect(server.key, server.url) as subscriber,
        ):
            received = Collector()
            await subscriber.channels.get(channel_name).subscribe(received.add)
            await publisher.channels.get(channel_name).publish("event", "over " + loop)
            await eventually(lambda: received.data == ["over " + loop])
    assert f"{server.url} on the {loop}" in started
