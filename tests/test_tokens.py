"""`issue_token`: Ably JWTs a backend mints for browsers and agents, read back as Ably reads them (header and
claims), then used by genuine ably-python clients against the dev server: what the capability allows works, the
rest is refused with 40160, and an expired token is refused and renewed through the `auth_callback`."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from ably.util.exceptions import AblyException

from langchain_ably_transport.capabilities import agent_capability, browser_capability
from langchain_ably_transport.errors import ConfigurationError, ConnectionFailedError
from langchain_ably_transport.tokens import issue_token

SECRET = "the-secret-of-a-key-is-43-characters-long-"
KEY = f"appId.keyId:{SECRET}"


def _claims(token: str, secret: str = SECRET) -> dict[str, Any]:
    return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["iat", "exp"]})


def _liveness_channel() -> str:
    """The agents' liveness channel: the one a browser token grants besides its conversation."""
    return next(name for name in browser_capability("conversations:1") if name != "conversations:1")


def _conversation() -> str:
    return f"conversations:{uuid.uuid4().hex[:12]}"


# --- the JWT itself ---------------------------------------------------------------------------------------------


def test_the_header_names_the_key_and_hs256():
    header = jwt.get_unverified_header(issue_token(KEY))
    assert header == {"alg": "HS256", "kid": "appId.keyId", "typ": "JWT"}


def test_the_claims_carry_the_capability_as_json_text_the_client_id_and_the_lifetime():
    before = time.time()
    token = issue_token(KEY, client_id="alice", capability=browser_capability("conversations:1"), ttl=600)
    claims = _claims(token)
    assert isinstance(claims["x-ably-capability"], str)
    assert json.loads(claims["x-ably-capability"]) == browser_capability("conversations:1")
    assert claims["x-ably-clientId"] == "alice"
    after = time.time()
    assert int(before) <= claims["iat"] <= after
    assert before + 600 <= claims["exp"] <= after + 601, "at least the ttl, rounded up to a whole second"


def test_by_default_everything_for_an_hour_and_no_client_id():
    claims = _claims(issue_token(KEY))
    assert json.loads(claims["x-ably-capability"]) == {"*": ["*"]}
    assert "x-ably-clientId" not in claims
    assert 3600 <= claims["exp"] - claims["iat"] <= 3601


def test_a_capability_given_as_json_text_is_carried_as_the_same_grants():
    text = '{"conversations:*": ["subscribe", "history"]}'
    assert json.loads(_claims(issue_token(KEY, capability=text))["x-ably-capability"]) == json.loads(text)


def test_the_signature_is_the_keys_secret_and_nothing_else():
    token = issue_token(KEY)
    with pytest.raises(jwt.InvalidSignatureError):
        _claims(token, secret="another-secret-just-as-long-as-the-first")
    assert SECRET not in base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()


@pytest.mark.parametrize(
    "key", [f"appIdkeyId:{SECRET}", f".keyId:{SECRET}", f"appId.:{SECRET}", f":{SECRET}", "appId.keyId", "appId.keyId:",
            "", None],
)
def test_a_malformed_key_is_a_configuration_error_that_never_quotes_it(key):
    with pytest.raises(ConfigurationError, match=r"appId\.keyId:secret") as refused:
        issue_token(key)  # type: ignore[arg-type]
    assert "\n" not in str(refused.value) and SECRET not in str(refused.value)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "60"])
def test_a_ttl_that_is_not_a_positive_number_of_seconds_is_refused(ttl):
    with pytest.raises(ConfigurationError, match="positive number of seconds"):
        issue_token(KEY, ttl=ttl)


@pytest.mark.parametrize(
    "capability",
    [{}, {"ch": "subscribe"}, {"ch": []}, {"ch": [1]}, {"": ["subscribe"]}, ["ch"], "not json", '{"ch": "subscribe"}',
     "[]"],
)
def test_a_capability_that_is_not_channels_to_lists_of_operations_is_refused(capability):
    with pytest.raises(ConfigurationError, match="lists of operations") as refused:
        issue_token(KEY, capability=capability)
    assert "\n" not in str(refused.value)


def test_an_empty_client_id_is_refused():
    with pytest.raises(ConfigurationError, match="client_id"):
        issue_token(KEY, client_id="")


# --- against the dev server, with the genuine SDK ---------------------------------------------------------------


def _callback(key: str, **token_options: Any):
    """A backend's token endpoint as an `auth_callback`; `issued` counts the tokens it gave."""
    issued: list[str] = []

    async def auth_callback(_token_params: Any) -> str:
        issued.append(issue_token(key, **token_options))
        return issued[-1]

    auth_callback.issued = issued  # type: ignore[attr-defined]
    return auth_callback


async def test_a_browser_token_connects_as_its_user_and_reaches_only_its_conversation(server, clients):
    mine, other = _conversation(), _conversation()
    callback = _callback(server.key, client_id="alice", capability=browser_capability(mine))
    client = await clients(key=None, auth_callback=callback, client_id="alice")
    assert client.auth.client_id == "alice"

    channel = client.channels.get(mine)
    received: asyncio.Queue[Any] = asyncio.Queue()
    await channel.subscribe(received.put_nowait)
    await channel.publish("note", "hello")
    message = await asyncio.wait_for(received.get(), 5)
    assert (message.data, message.client_id) == ("hello", "alice")
    assert [m.client_id for m in (await channel.history()).items] == ["alice"]
    liveness = client.channels.get(_liveness_channel())
    await liveness.attach()

    for name in (other, f"langgraph-state:{mine.partition(':')[2]}"):
        with pytest.raises(AblyException) as refused:
            await client.channels.get(name).attach()
        assert refused.value.code == 40160, name
    with pytest.raises(AblyException) as refused:
        await liveness.publish("alive", "x")
    assert refused.value.code == 40160


async def test_an_agent_token_reaches_every_conversation_and_the_state_channels(server, clients):
    callback = _callback(server.key, client_id="agent", capability=agent_capability())
    client = await clients(key=None, auth_callback=callback, client_id="agent")
    await client.channels.get(_conversation()).publish("note", "reply")
    await client.channels.get(f"langgraph-state:{uuid.uuid4().hex[:8]}").publish("checkpoint", "{}")
    with pytest.raises(AblyException) as refused:
        await client.channels.get(f"elsewhere:{uuid.uuid4().hex[:8]}").attach()
    assert refused.value.code == 40160


async def test_a_token_signed_with_another_secret_is_refused(server, clients):
    name = server.key.partition(":")[0]
    with pytest.raises(ConnectionFailedError) as refused:
        await clients(key=None, auth_callback=_callback(f"{name}:{SECRET}"), connect_timeout=5)
    assert refused.value.code == 40101


async def test_an_expired_token_is_refused_and_the_callback_renews_it(server, clients):
    conversation = _conversation()
    expired = issue_token(server.key, client_id="alice", capability=browser_capability(conversation), ttl=0.01)
    await asyncio.sleep(_claims(expired, server.key.partition(":")[2])["exp"] - time.time() + 0.05)
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(f"/channels/{conversation}/messages", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json()["error"]["code"] == 40142

    issued: list[str] = []

    async def expired_then_fresh(_token_params: Any) -> str:
        issued.append(expired if not issued else issue_token(server.key, client_id="alice",
                                                             capability=browser_capability(conversation)))
        return issued[-1]

    # ably-python 3.1.4 renews at once but reconnects only after disconnected_retry_timeout (ms).
    client = await clients(key=None, auth_callback=expired_then_fresh, client_id="alice",
                           disconnected_retry_timeout=300)
    await client.channels.get(conversation).publish("note", "after renewal")
    assert len(issued) == 2 and issued[0] == expired


async def test_short_lived_tokens_are_renewed_on_the_live_connection(server, clients):
    conversation = _conversation()
    callback = _callback(server.key, client_id="alice", capability=browser_capability(conversation), ttl=1)
    client = await clients(key=None, auth_callback=callback, client_id="alice")
    connection_id = client.connection.connection_manager.connection_id
    deadline = time.monotonic() + 6
    while len(callback.issued) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert len(callback.issued) >= 3, "the server asked for a new token before each one expired"
    await client.channels.get(conversation).publish("note", "still connected")
    assert client.connection.connection_manager.connection_id == connection_id
