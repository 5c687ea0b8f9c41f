"""`connect()` and `client_options()`: endpoints, credentials from the environment, the SDK fixes."""

from __future__ import annotations

import ably
import pytest
from ably.transport.websockettransport import WebSocketTransport

from langchain_ably_transport import ConfigurationError, client_options, connect
from langchain_ably_transport.connection import PORTLESS_WEBSOCKET_VERSIONS, install_sdk_fixes


def test_http_endpoint_url_selects_plain_transport_port_and_token_auth():
    options = client_options("app.key:secret", "http://127.0.0.1:8080", client_id="alice")
    assert options == {
        "endpoint": "127.0.0.1", "tls": False, "port": 8080, "key": "app.key:secret", "client_id": "alice",
        "use_token_auth": True, "default_token_params": {"client_id": "alice"},
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


def test_missing_credentials_and_bad_endpoints_are_configuration_errors(monkeypatch):
    monkeypatch.delenv("ABLY_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="No Ably credentials"):
        client_options()
    with pytest.raises(ConfigurationError, match="endpoint URL"):
        client_options("a.b:c", "ftp://host")
    assert client_options(endpoint="main", token="t") == {"endpoint": "main", "token": "t"}


def test_websocket_port_fix_is_installed_for_the_versions_that_need_it():
    install_sdk_fixes()
    patched = WebSocketTransport.connect.__module__ == "langchain_ably_transport.connection"
    assert patched == ably.lib_version.startswith(PORTLESS_WEBSOCKET_VERSIONS)


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
