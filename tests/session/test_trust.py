"""Whose agent messages a session believes, from one configuration: the argument, else $ABLY_TRUSTED_AGENTS."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from langchain_ably_transport.session.liveness import ANONYMOUS_AGENT_MEMBER
from langchain_ably_transport.session.trust import TRUSTED_AGENTS_ENV, agent_trust, client_trust, configured_agents


def _client(client_id: str | None) -> SimpleNamespace:
    return SimpleNamespace(auth=SimpleNamespace(client_id=client_id))


def test_an_agent_trusts_itself_and_the_configured_agents_and_nobody_else_by_default(monkeypatch):
    monkeypatch.delenv(TRUSTED_AGENTS_ENV, raising=False)
    assert agent_trust(_client("agent")) == {"agent"}
    assert agent_trust(_client("agent"), ["planner"]) == {"agent", "planner"}
    monkeypatch.setenv(TRUSTED_AGENTS_ENV, "planner, researcher,,")
    assert agent_trust(_client("agent")) == {"agent", "planner", "researcher"}
    assert agent_trust(_client("agent"), []) == {"agent"}, "an argument overrides the environment"


def test_a_client_trusts_every_publisher_until_agents_are_configured(monkeypatch):
    monkeypatch.delenv(TRUSTED_AGENTS_ENV, raising=False)
    assert client_trust(_client("alice")) is None
    assert client_trust(_client("alice"), ["agent"]) == {"agent", "alice"}
    monkeypatch.setenv(TRUSTED_AGENTS_ENV, "agent")
    assert client_trust(_client("alice")) == {"agent", "alice"}
    assert configured_agents() == {"agent"}


@pytest.mark.parametrize("client_id", [None, "*"])
def test_an_identity_without_a_concrete_client_id_is_the_anonymous_publisher(monkeypatch, client_id):
    monkeypatch.delenv(TRUSTED_AGENTS_ENV, raising=False)
    assert agent_trust(_client(client_id)) == {None, ANONYMOUS_AGENT_MEMBER}
