"""Clients with the tokens the docs recommend: a web backend signs token requests with the key, a browser gets
`browser_capability(conversation)` under its user's clientId, agent workers `agent_capability()`."""

from __future__ import annotations

import uuid
from typing import Any

from ably import AblyRealtime, AblyRest

from langchain_ably_transport import agent_capability, browser_capability

AGENT_ID = "agent"


def new_conversation() -> str:
    return f"conversations:{uuid.uuid4().hex[:10]}"


async def browser_user(clients: Any, backend: AblyRest, client_id: str, conversation: str) -> AblyRealtime:
    """A user's connection whose tokens grant one conversation, fetched through `auth_callback` as a page's
    `authUrl` fetches them."""

    async def token_request(_params: Any) -> Any:
        return await backend.auth.create_token_request(
            {"client_id": client_id, "capability": browser_capability(conversation), "ttl": 600_000})

    return await clients(key=None, auth_callback=token_request)


async def agent_worker(clients: Any, backend: AblyRest, client_id: str = AGENT_ID) -> AblyRealtime:
    async def token_request(_params: Any) -> Any:
        return await backend.auth.create_token_request({"client_id": client_id, "capability": agent_capability()})

    return await clients(key=None, auth_callback=token_request)
