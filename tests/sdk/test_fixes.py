"""The SDK seam: version-checked, applied to a client the user built, and each fix's behaviour against the dev server.

The drop and token-expiry tests of tests/faults run with user-built clients too (`user_built` there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.parse

import pytest
from ably import AblyRealtime
from ably.types.connectionstate import ConnectionEvent

from langchain_ably_transport import AblySaver, ClientSession, ConfigurationError, UnsupportedSdkError, connect
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.sdk import fixes
from langchain_ably_transport.sdk.pacer import inbound_rate


def _host_and_port(url: str) -> tuple[str, int]:
    address = urllib.parse.urlsplit(url)
    return address.hostname or "", address.port or 80


def test_an_unchecked_sdk_version_is_refused_with_how_to_install_a_checked_one():
    fixes.check_version("3.1.4")
    with pytest.raises(UnsupportedSdkError, match=r"ably-python 3\.2\.0 is installed.*'ably>=3\.1\.4,<3\.2'"):
        fixes.check_version("3.2.0")
    assert issubclass(UnsupportedSdkError, ConfigurationError)


async def test_a_user_built_client_with_a_key_over_plain_http_is_refused_with_how_to_fix_it(server, channel_name):
    host, port = _host_and_port(server.url)
    client = AblyRealtime(key=server.key, endpoint=host, port=port, tls=False, auto_connect=False)
    try:
        for hand_over in (lambda: ClientSession(client, channel_name), lambda: AblySaver(client)):
            with pytest.raises(ConfigurationError, match=r"over plain HTTP.*client_options\(key, endpoint\)"):
                hand_over()
    finally:
        await client.close()


def test_a_client_built_before_the_package_is_handed_over_and_connects_with_the_fixes(server):
    """In a fresh interpreter: the fixes are not installed until the package is handed a client; a client the user
    built (on the dev server's port, which 3.1.4 cannot reach unfixed) then works from its first connection."""
    host, port = _host_and_port(server.url)
    script = textwrap.dedent(f"""
        import asyncio
        from ably import AblyRealtime
        from langchain_ably_transport import ClientSession
        from langchain_ably_transport.sdk import fixes

        async def main():
            client = AblyRealtime(key={server.key!r}, endpoint={host!r}, port={port}, tls=False,
                                  use_token_auth=True, client_id="user")
            before = fixes.installed()
            async with ClientSession(client, "user-built:1") as session:
                await session.send("hello")
                assert await session.wait_for(lambda: len(session.view()) == 1, timeout=10)
            print(before, fixes.installed(), client.auth.client_id)
            await client.close()

        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "user"]


async def test_the_publish_rate_the_server_announces_is_kept():
    with spawn(args=["--inbound-rate", "7"]) as limited:
        async with connect(limited.key, limited.url) as client:
            assert client.connection.connection_details.max_inbound_rate == 7
            assert inbound_rate(client) == 7.0


async def test_rest_requests_do_not_reauthorise_the_connection(server, channel_name):
    """With token auth, each history request (every session open, every checkpoint read) used to send the unchanged
    token on the realtime connection, and each CONNECTED answering it re-attached every channel."""
    async with connect(server.key, server.url, client_id="reader") as client:
        updates: list[object] = []

        def on_update(change: object) -> None:
            updates.append(change)

        client.connection.on(ConnectionEvent.UPDATE, on_update)
        channel = client.channels.get(channel_name)
        await channel.attach()
        for _ in range(5):
            await channel.history()
        assert updates == []
        assert channel.state == "attached"


async def test_a_user_built_client_with_a_token_callback_and_a_client_id_connects(server, backend, channel_name):
    """3.1.4 takes a token string's clientId to be None, and refuses the client_id it was built with (40102)."""
    from langchain_ably_transport import issue_token

    async def token(params: object) -> str:
        return issue_token(server.key, client_id="alice")

    host, port = _host_and_port(server.url)
    client = AblyRealtime(auth_callback=token, client_id="alice", endpoint=host, port=port, tls=False)
    try:
        async with ClientSession(client, channel_name) as session:
            await session.send("hi")
            assert await session.wait_for(lambda: len(session.view()) == 1, timeout=10)
        history = await client.channels.get(channel_name).history()
        assert [message.client_id for message in history.items] == ["alice"]
    finally:
        await client.close()


@pytest.mark.parametrize("fixed", [False, True])
def test_a_failed_connection_attempt_prints_no_stray_task_traceback(fixed):
    """3.1.4 closes the transport of a failed attempt in a task that raises; `adopt` makes that close a no-op. The
    unfixed run shows the stray traceback is real, so the fixed run's silence means something."""
    script = textwrap.dedent(f"""
        import asyncio
        from ably import AblyRealtime
        from langchain_ably_transport.sdk import adopt

        async def main():
            client = AblyRealtime(key="a.b:c", endpoint="127.0.0.1:9")  # no such host: every attempt fails
            if {fixed}:
                adopt(client)
            await asyncio.sleep(2)
            await client.close()
            await asyncio.sleep(0.3)

        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ("Task exception was never retrieved" in done.stderr) is not fixed
