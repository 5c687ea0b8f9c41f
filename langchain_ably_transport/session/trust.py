"""Whose agent messages a session believes: one configuration for `AgentSession`, `ClientSession` and `serve_graph`.

Ably's capabilities let any client that may publish on a conversation publish `ai-run-start`, `ai-output` and
agent-like presence there; Ably stamps each message with its publisher's verified `clientId`, so the clientId is
what a session can trust. The trusted set is the `trusted_agents` argument, else `$ABLY_TRUSTED_AGENTS`
(comma-separated clientIds), plus the session's own identity:

- an agent always trusts itself, so by default it believes only its own processes: a forged run start is
  ignored, not queued behind;
- a client trusts the configured agents; configured nowhere, it believes every publisher (it cannot know its
  agents' clientIds), as JS clients do.

An identity without a concrete clientId (a key without `client_id`, or `*`) is the anonymous publisher (None) and
the presence member an anonymous agent enters as.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ably import AblyRealtime

from .liveness import ANONYMOUS_AGENT_MEMBER

TRUSTED_AGENTS_ENV = "ABLY_TRUSTED_AGENTS"

Trusted = frozenset[str | None]


def configured_agents(trusted_agents: Iterable[str] | None = None) -> frozenset[str] | None:
    """The agents configured by argument, else by `$ABLY_TRUSTED_AGENTS`; None where neither says."""
    if trusted_agents is not None:
        return frozenset(trusted_agents)
    listed = os.environ.get(TRUSTED_AGENTS_ENV)
    if listed is None:
        return None
    return frozenset(client_id.strip() for client_id in listed.split(",") if client_id.strip())


def own_identity(client: AblyRealtime) -> Trusted:
    """The clientIds this client publishes and enters presence under."""
    client_id = client.auth.client_id
    if client_id and client_id != "*":
        return frozenset({client_id})
    return frozenset({None, ANONYMOUS_AGENT_MEMBER})


def agent_trust(client: AblyRealtime, trusted_agents: Iterable[str] | None = None) -> Trusted:
    """An agent's trusted set: its own identity and the configured agents."""
    return own_identity(client) | (configured_agents(trusted_agents) or frozenset())


def client_trust(client: AblyRealtime, trusted_agents: Iterable[str] | None = None) -> Trusted | None:
    """A client's trusted set: the configured agents and its own identity; None (every publisher) if unconfigured."""
    configured = configured_agents(trusted_agents)
    return None if configured is None else own_identity(client) | configured
