"""`connect()` and `client_options()`: endpoints, credentials from the environment, errors that say what to do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from langchain_ably_transport import ConfigurationError, ConnectionFailedError, ErrorCode, client_options, connect


def test_http_endpoint_url_selects_plain_transport_port_and_token_auth():
    options = client_options("app.key:secret", "http://127.0.0.1:8080", client_id="alice")
    assert options == {
        "endpoint": "127.0.0.1", "tls": False, "port": 8080, "key": "app.key:secret", "client_id": "alice",
        "use_token_auth": True,
    }


def test_https_endpoint_and_routing_policy_names_keep_basic_auth():
    assert client_options("a.b:c", "https://ably.example:8443") == {
        "endpoint": "ably.example", "tls": True, "tls_port": 8443, "key": "a.b:c",
    }
    assert client_options("a.b:c", "main") == {"endpoint": "main", "key": "a.b:c"}
    assert client_options("a.b:c") == {"key": "a.b:c"}


def test_environment_supplies_key_and_endpoint(monkeypatch):
    monkeypatch.setenv("ABLY_API_KEY", "env.key:secret")
    monkeypatch.setenv("ABLY_ENDPOINT", "https://host.example")
    assert client_options() == {"endpoint": "host.example", "tls": True, "tls_port": 443, "key": "env.key:secret"}


def test_missing_credentials_are_a_configuration_error_that_names_every_way_out(monkeypatch):
    monkeypatch.delenv("ABLY_API_KEY", raising=False)
    monkeypatch.delenv("ABLY_ENDPOINT", raising=False)
    with pytest.raises(ConfigurationError, match=r"No Ably credentials: pass key=.*ABLY_ENDPOINT=local"):
        client_options()
    assert client_options(endpoint="main", token="t") == {"endpoint": "main", "token": "t"}


@pytest.mark.parametrize(("endpoint", "says"), [
    ("127.0.0.1:8080", r"has a port but no scheme: write http://127.0.0.1:8080"),
    ("localhost:8080", r"has a port but no scheme: write http://localhost:8080"),
    ("http//127.0.0.1:8080", r"is neither http://host:port or https://host:port nor an Ably routing policy"),
    ("ftp://host", r"is not http://host:port or https://host:port"),
    ("http://127.0.0.1:99999", r"has a bad port \(Port out of range 0-65535\)"),
    ("http://127.0.0.1:80a", r"has a bad port \(Port could not be cast to integer value as '80a'\)"),
    ("http://:8080", r"is not http://host:port"),
    ("http://host:8080/path", r"is not http://host:port"),
])
def test_an_endpoint_out_of_shape_is_a_one_line_configuration_error_before_anything_connects(endpoint, says):
    with pytest.raises(ConfigurationError, match=says) as raised:
        client_options("a.b:c", endpoint)
    assert "\n" not in str(raised.value)


def test_routing_policy_names_and_hosts_are_endpoints():
    assert client_options("a.b:c", "nonprod:sandbox")["endpoint"] == "nonprod:sandbox"
    assert client_options("a.b:c", "realtime.example.com")["endpoint"] == "realtime.example.com"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_port_fails_within_2_s_naming_the_endpoint():
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError, match=f"Could not connect to {endpoint} \\(connection refused"):
        async with connect("a.b:c", endpoint):
            pass
    assert time.monotonic() - started < 2.0


async def test_a_wrong_key_fails_at_once_with_the_code_the_client_raises(server):
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError, match="credentials refused; check the API key") as raised:
        async with connect(server.key.split(":")[0] + ":wrong", server.url):
            pass
    assert raised.value.code == ErrorCode.TOKEN_REQUEST_FAILED
    assert time.monotonic() - started < 2.0


_USER_SCRIPTS = {
    "a refused port": ("import asyncio\nfrom langchain_ably_transport import connect\n"
                       "async def main():\n    async with connect(key='a.b:c', endpoint='http://127.0.0.1:{port}'):\n"
                       "        pass\nasyncio.run(main())\n", ConnectionFailedError),
    "no scheme": ("import asyncio\nfrom langchain_ably_transport import connect\n"
                  "async def main():\n    async with connect(key='a.b:c', endpoint='127.0.0.1:{port}'):\n"
                  "        pass\nasyncio.run(main())\n", ConfigurationError),
    "no credentials, sync face": ("from langchain_ably_transport import AblySaver\n"
                                  "with AblySaver.connect() as saver:\n    pass\n", ConfigurationError),
}


@pytest.mark.parametrize("case", list(_USER_SCRIPTS))
def test_a_users_script_sees_its_own_error_at_once_and_no_stray_task_traceback(case):
    """What reaches the terminal: the package's error raised from the user's own call, within 2 s, with no
    "Task exception was never retrieved" from the SDK, and none of the frames of the sync face's loop thread."""
    script, error = _USER_SCRIPTS[case]
    env = {k: v for k, v in os.environ.items() if k not in ("ABLY_API_KEY", "ABLY_ENDPOINT")}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script.format(port=_closed_port())], env=env, capture_output=True,
                          text=True, timeout=30)
    elapsed = time.monotonic() - started
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and lines[-1].startswith(f"langchain_ably_transport.errors.{error.__name__}: ")
    assert "Task exception was never retrieved" not in done.stderr and "concurrent/futures" not in done.stderr
    assert done.stderr.count("Traceback") == 1 and elapsed < 2.0 + _import_time()


def _import_time() -> float:
    """A fresh interpreter's time to import the package, which the user's script pays before anything fails."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import langchain_ably_transport"], check=True, timeout=30)
    return time.monotonic() - started


@pytest.mark.parametrize("endpoint", ["127.0.0.1:8080", "http//127.0.0.1:8080", "http://127.0.0.1:99999"])
def test_the_cli_prints_one_line_for_a_users_mistake(endpoint):
    env = {k: v for k, v in os.environ.items() if k not in ("ABLY_API_KEY", "ABLY_ENDPOINT")}
    done = subprocess.run([sys.executable, "-m", "langchain_ably_transport.cli", "tail", "s", "--key", "a.b:c",
                           "--endpoint", endpoint, "--no-follow"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("tail: The endpoint")


async def test_connect_reaches_a_server_on_a_non_default_port(server):
    assert server.url.rsplit(":", 1)[1] not in ("80", "443")
    async with connect(server.key, server.url, client_id="alice") as client:
        channel = client.channels.get("test:connect")
        await channel.publish("n", "x")
        assert [m.client_id for m in (await channel.history()).items] == ["alice"]
    assert client.connection.state == "closed"


async def test_a_listener_removed_from_a_channel_that_lives_on_is_not_kept(clients, channel_name):
    """ably-python 3.1.4's `off` kept every removed listener (and so every session that watched a shared channel)."""
    import gc
    import weakref

    channel = (await clients()).channels.get(channel_name)

    class Watcher:
        def on_presence(self, member: object) -> None: ...

    watchers = [Watcher() for _ in range(3)]
    for watcher in watchers:
        await channel.presence.subscribe(watcher.on_presence)
        channel.presence.unsubscribe(watcher.on_presence)
    gone = [weakref.ref(watcher) for watcher in watchers]
    del watchers, watcher
    gc.collect()
    assert [ref() for ref in gone] == [None, None, None]
