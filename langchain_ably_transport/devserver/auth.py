"""Credentials, tokens, capabilities and clientId rules, as Ably applies them.

Tokens are HS256 JWTs signed with an app key (`kid` = key name). Tokens the server issues through
`requestToken` are JWTs too, so they stay valid across a restart with no token table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt

from .config import ApiKey, ServerConfig
from .protocol import AblyError, Flag

WILDCARD_CLIENT = "*"
MAX_TOKEN_TTL_MS = 24 * 3600 * 1000
DEFAULT_TOKEN_TTL_MS = 3600 * 1000
TOKEN_REQUEST_SKEW_MS = 2 * 60 * 1000

OPERATIONS = frozenset(
    {
        "publish", "subscribe", "presence", "history", "stats", "channel-metadata",
        "annotation-publish", "annotation-subscribe", "message-update-own", "message-update-any",
        "message-delete-own", "message-delete-any", "object-subscribe", "object-publish",
        "push-subscribe", "push-admin", "privileged-headers", "*",
    }
)
_OP_MODES = {
    "subscribe": Flag.SUBSCRIBE | Flag.PRESENCE_SUBSCRIBE,
    "publish": Flag.PUBLISH,
    "presence": Flag.PRESENCE,
    "annotation-publish": Flag.ANNOTATION_PUBLISH,
    "annotation-subscribe": Flag.ANNOTATION_SUBSCRIBE,
}


_CHANNELS_REMEMBERED = 4096


def invalid_credentials(message: str) -> AblyError:
    return AblyError(40101, 401, message)


class Capability:
    """A capability: channel patterns (`*`, `ns:*`, `prefix*`, exact names) to permitted operations."""

    def __init__(self, grants: dict[str, list[str]]) -> None:
        self.grants = grants
        self._by_channel: dict[str, frozenset[str]] = {}  # what `operations` found, per channel: asked per publish

    @classmethod
    def parse(cls, value: Any) -> Capability:
        grants = json.loads(value) if isinstance(value, str) else value
        if not isinstance(grants, dict) or not grants:
            raise AblyError(40000, 400, "A capability is a non-empty JSON object of channel -> [operations]")
        for pattern, ops in grants.items():
            if not isinstance(ops, list) or not ops or not all(op in OPERATIONS for op in ops):
                raise AblyError(40000, 400, f"Invalid capability operations for {pattern!r}: {ops!r}")
        return cls(grants)

    def to_json(self) -> str:
        return json.dumps({k: sorted(v) for k, v in sorted(self.grants.items())}, separators=(",", ":"))

    def operations(self, channel: str) -> frozenset[str]:
        ops = self._by_channel.get(channel)
        if ops is None:
            ops = frozenset(op for pattern, granted in self.grants.items() if _matches(pattern, channel)
                            for op in granted)
            if len(self._by_channel) >= _CHANNELS_REMEMBERED:
                self._by_channel.clear()
            self._by_channel[channel] = ops
        return ops


def _matches(pattern: str, channel: str) -> bool:
    if pattern == "*":
        return not channel.startswith("[")
    if pattern.endswith("*"):
        return channel.startswith(pattern[:-1])
    return pattern == channel


@dataclass(frozen=True)
class Identity:
    """Who a connection or request is: its key, capabilities (all must permit) and clientId.

    `client_id` is None for an anonymous client and `*` for a wildcard identity that may act as anyone.
    """

    key_name: str
    capabilities: tuple[Capability, ...]
    client_id: str | None
    expires_ms: int | None = None
    token: str | None = None

    def permits(self, channel: str, op: str) -> bool:
        for capability in self.capabilities:
            ops = capability.operations(channel)
            if "*" not in ops and op not in ops:
                return False
        return True

    def modes(self, channel: str) -> int:
        """The channel modes this identity may hold on `channel`."""
        modes = 0
        for op, bits in _OP_MODES.items():
            if self.permits(channel, op):
                modes |= bits
        return modes

    def acts_as(self, client_id: str | None) -> str | None:
        """The clientId a message or presence action is stamped with; raises 40012 on a forged one."""
        if client_id is None or client_id == self.client_id:
            return None if self.client_id == WILDCARD_CLIENT else self.client_id
        if self.client_id == WILDCARD_CLIENT:
            return client_id
        raise AblyError(40012, 400, f"Mismatched clientId {client_id!r} for a connection of {self.client_id!r}")

    @property
    def concrete_client_id(self) -> str | None:
        return None if self.client_id in (None, WILDCARD_CLIENT) else self.client_id


class Authenticator:
    """Checks credentials against the configured keys and issues tokens."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._nonces: dict[str, int] = {}

    def from_key(self, key_text: str, client_id: str | None) -> Identity:
        name, _, secret = key_text.partition(":")
        key = self._config.key_named(name)
        if key is None or not hmac.compare_digest(key.secret, secret):
            raise invalid_credentials("Invalid key in request")
        if client_id == WILDCARD_CLIENT:
            raise AblyError(40012, 400, "A client cannot identify as the wildcard clientId '*'")
        return Identity(name, (Capability(key.capability),), client_id or WILDCARD_CLIENT)

    def from_token(self, token: str, client_id: str | None, now_ms: int | None = None) -> Identity:
        identity = self.verify_token(token, now_ms)
        return _with_requested_client(identity, client_id)

    def verify_token(self, token: str, now_ms: int | None = None) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AblyError(40144, 401, "Unable to decode the token as a JWT") from None
        key = self._config.key_named(str(header.get("kid", "")))
        if key is None:
            raise invalid_credentials("Token signed by an unknown key (the JWT 'kid' names no key)")
        try:
            claims = jwt.decode(
                token, key.secret, algorithms=["HS256"], options={"require": ["iat", "exp"], "verify_exp": False}
            )
        except jwt.InvalidSignatureError:
            raise invalid_credentials("Token signature does not match its key") from None
        except jwt.PyJWTError as exc:
            raise AblyError(40144, 401, f"Invalid JWT: {exc}") from None
        expires_ms = int(claims["exp"]) * 1000
        if expires_ms <= (now_ms if now_ms is not None else _now_ms()):
            raise AblyError(40142, 401, "Key/token expired")
        capabilities = [Capability(key.capability)]
        if "x-ably-capability" in claims:
            capabilities.append(Capability.parse(claims["x-ably-capability"]))
        client_id = claims.get("x-ably-clientId")
        return Identity(key.name, tuple(capabilities), client_id, expires_ms, token)

    def issue_token(self, request: dict[str, Any]) -> dict[str, Any]:
        """Verify a signed TokenRequest and return TokenDetails whose token is a JWT."""
        key = self._config.key_named(str(request.get("keyName", "")))
        if key is None:
            raise invalid_credentials("Token request names an unknown key")
        if not hmac.compare_digest(str(request.get("mac", "")), token_request_mac(request, key.secret)):
            raise invalid_credentials("Token request signature (mac) is invalid")
        now = _now_ms()
        timestamp = _int_field(request, "timestamp", now)
        if abs(now - timestamp) > TOKEN_REQUEST_SKEW_MS:
            raise AblyError(40104, 401, "Token request timestamp is not current")
        self._use_nonce(f"{key.name}:{request.get('nonce')}", now)
        ttl = _int_field(request, "ttl", DEFAULT_TOKEN_TTL_MS)
        if not 0 < ttl <= MAX_TOKEN_TTL_MS:
            raise AblyError(40003, 400, f"Token ttl must be between 1 ms and 24 h, not {ttl}")
        capability = request.get("capability") or json.dumps(key.capability)
        Capability.parse(capability)
        client_id = request.get("clientId") or None
        token = mint_jwt(key, ttl_ms=ttl, capability=capability, client_id=client_id, now_ms=now)
        details = {
            "token": token, "keyName": key.name, "issued": now, "expires": now + ttl, "capability": capability,
        }
        if client_id:
            details["clientId"] = client_id
        return details

    def _use_nonce(self, nonce: str, now: int) -> None:
        self._nonces = {n: t for n, t in self._nonces.items() if now - t < 2 * TOKEN_REQUEST_SKEW_MS}
        if nonce in self._nonces:
            raise AblyError(40105, 401, "Token request nonce has been used before")
        self._nonces[nonce] = now


def _with_requested_client(identity: Identity, requested: str | None) -> Identity:
    """Apply Ably's clientId rules for a token plus an optional `clientId` connection parameter."""
    if requested is None or requested == identity.client_id:
        return identity
    if identity.client_id == WILDCARD_CLIENT:
        return Identity(identity.key_name, identity.capabilities, requested, identity.expires_ms, identity.token)
    raise AblyError(
        40102, 401, f"Incompatible clientId: the token is for {identity.client_id!r}, the client asked {requested!r}"
    )


def _int_field(request: dict[str, Any], name: str, default: int) -> int:
    value = request.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AblyError(40003, 400, f"Token request {name} must be an integer") from None


def token_request_mac(request: dict[str, Any], secret: str) -> str:
    fields = ("keyName", "ttl", "capability", "clientId", "timestamp", "nonce")
    text = "".join(f"{'' if request.get(f) is None else request.get(f)}\n" for f in fields)
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def mint_jwt(
    key: ApiKey,
    *,
    ttl_ms: int = DEFAULT_TOKEN_TTL_MS,
    capability: str | dict[str, list[str]] | None = None,
    client_id: str | None = None,
    now_ms: int | None = None,
) -> str:
    """An Ably-style JWT for `key`: what an app server mints for its browser clients."""
    now_s = (now_ms if now_ms is not None else _now_ms()) // 1000
    claims: dict[str, Any] = {"iat": now_s, "exp": now_s + max(1, ttl_ms // 1000)}
    if capability is not None:
        claims["x-ably-capability"] = capability if isinstance(capability, str) else json.dumps(capability)
    if client_id is not None:
        claims["x-ably-clientId"] = client_id
    return jwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": key.name, "typ": "JWT"})


def parse_authorization(header: str) -> tuple[str, str]:
    """Split an HTTP Authorization header into ("basic", "name:secret") or ("bearer", token)."""
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme not in ("basic", "bearer") or not value:
        raise invalid_credentials("Authorization must be Basic <base64 key> or Bearer <token>")
    if scheme == "basic":
        try:
            return scheme, base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:
            raise invalid_credentials("Basic credentials are not valid base64") from None
    return scheme, _unwrap_bearer(value)


def _unwrap_bearer(value: str) -> str:
    """SDKs send `Bearer base64(token)`; accept the raw token too."""
    if value.count(".") == 2:
        return value
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except ValueError:
        return value
    return decoded if decoded.count(".") == 2 else value


def _now_ms() -> int:
    return int(time.time() * 1000)
