"""Ably tokens issued by your backend: JWTs for browsers and agent workers, signed with the API key.

A browser must never hold the API key, and an agent worker need not: each fetches a short-lived token from your
backend (ably-js `authCallback`/`authUrl`, ably-python `auth_callback`), which signs it with the key's secret, so
the key never leaves the server. The token fixes what its holder may do (a capability, e.g. `browser_capability`
or `agent_capability`) and, for a user, who it is (`clientId`); Ably checks the signature and both on every
operation. This is Ably's JWT format (https://ably.com/docs/auth/token/jwt), checked against the dev server.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

import jwt

from .errors import ConfigurationError

DEFAULT_CAPABILITY: Mapping[str, list[str]] = {"*": ["*"]}
DEFAULT_TTL = 3600.0  # seconds, Ably's default token lifetime
_KEY_SHAPE = "An Ably API key looks like appId.keyId:secret (as in the dashboard)"
_CAPABILITY_SHAPE = 'A capability maps channel patterns to lists of operations, e.g. {"conversations:1": ["subscribe"]}'


def issue_token(
    key: str,
    *,
    client_id: str | None = None,
    capability: Mapping[str, list[str]] | str | None = None,
    ttl: float = DEFAULT_TTL,
) -> str:
    """An Ably JWT (HS256) signed with `key`'s secret, valid for `ttl` seconds; return it from a token endpoint.

    `capability` is a mapping (or its JSON text) of channel patterns to operations, everything (`{"*": ["*"]}`)
    by default; `client_id` fixes the holder's clientId (leave it out for an anonymous client). Raises
    `ConfigurationError` for a key, ttl, clientId or capability out of shape. Ably intersects the capability with
    the key's own.
    """
    key_name, secret = _split_key(key)
    now = time.time()
    claims: dict[str, Any] = {
        "iat": int(now),
        "exp": _expiry(now, ttl),
        "x-ably-capability": _capability_json(DEFAULT_CAPABILITY if capability is None else capability),
    }
    if client_id is not None:
        claims["x-ably-clientId"] = _checked_client_id(client_id)
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key_name, "typ": "JWT"})


def _split_key(key: str) -> tuple[str, str]:
    """(key name `appId.keyId`, secret); the message never quotes the key, which holds the secret."""
    if not isinstance(key, str):
        raise ConfigurationError(f"{_KEY_SHAPE}, not a {type(key).__name__}")
    name, sep, secret = key.strip().partition(":")
    app_id, dot, key_id = name.partition(".")
    if not (sep and secret and dot and app_id and key_id):
        raise ConfigurationError(f"{_KEY_SHAPE}; the key given is not")
    return name, secret


def _expiry(now: float, ttl: float) -> int:
    """`exp` in whole seconds, rounded up so the token lives at least `ttl` seconds."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise ConfigurationError(f"A token's ttl is a positive number of seconds, not {ttl!r}")
    return math.ceil(now + ttl)


def _capability_json(capability: Mapping[str, list[str]] | str) -> str:
    """The capability as the compact JSON text Ably's `x-ably-capability` claim takes."""
    grants = _parsed(capability) if isinstance(capability, str) else capability
    if not isinstance(grants, Mapping) or not grants:
        raise ConfigurationError(_CAPABILITY_SHAPE)
    for resource, operations in grants.items():
        if not isinstance(resource, str) or not resource or not _is_operations(operations):
            raise ConfigurationError(f"{_CAPABILITY_SHAPE}; {resource!r} maps to {operations!r}")
    return json.dumps({resource: list(ops) for resource, ops in grants.items()}, separators=(",", ":"))


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ConfigurationError(f"{_CAPABILITY_SHAPE}; the capability text is not JSON") from None


def _is_operations(operations: object) -> bool:
    return (isinstance(operations, (list, tuple)) and bool(operations)
            and all(isinstance(op, str) and op for op in operations))


def _checked_client_id(client_id: str) -> str:
    if not isinstance(client_id, str) or not client_id:
        raise ConfigurationError(f"A token's client_id is a non-empty string (or None), not {client_id!r}")
    return client_id
