"""The REST endpoints the SDKs call: time, token requests, history, publish, mutations, presence, status."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, unquote_plus, urlencode

import msgpack
from aiohttp import web

from .auth import Authenticator, Identity, parse_authorization
from .channel import Channel, ChannelRegistry, Publisher
from .config import ServerConfig
from .protocol import AblyError, bad_request, base64_data, not_found, not_permitted
from .store import Page, Query, Store

MSGPACK = "application/x-msgpack"
MAX_LIMIT = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RestApi:
    """Request handlers; every response is in the format the client accepts, errors included."""

    def __init__(self, config: ServerConfig, channels: ChannelRegistry, store: Store, auth: Authenticator):
        self._config = config
        self._channels = channels
        self._store = store
        self._auth = auth

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/time", self.time),
            web.post("/keys/{key_name}/requestToken", self.request_token),
            web.route("*", "/channels/{tail:.+}", self.channel_resource),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """CORS for browsers, and Ably-style error bodies and headers for every failure."""
        if request.method == "OPTIONS":
            return _cors(request, web.Response(status=204))
        try:
            response = await handler(request)
        except AblyError as error:
            response = _error_response(request, error)
        return _cors(request, response)

    async def time(self, request: web.Request) -> web.StreamResponse:
        return respond(request, [int(time.time() * 1000)])

    async def request_token(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        if not isinstance(body, dict):
            raise bad_request("A token request is an object")
        if body.get("keyName") != request.match_info["key_name"]:
            raise AblyError(40101, 401, "The token request's keyName does not match the URL")
        return respond(request, self._auth.issue_token(body))

    async def channel_resource(self, request: web.Request) -> web.StreamResponse:
        """Route /channels/{name}[/...] on the raw path: names and serials may contain encoded '/'."""
        segments = request.rel_url.raw_path.split("/")[2:]
        decode = unquote_plus if request.headers.get("Ably-Agent", "").startswith("ably-python") else unquote
        name, *rest = [decode(segment) for segment in segments]
        identity = self._identify(request)
        channel = self._channels.get(name)
        serial = rest[1] if len(rest) > 1 and rest[0] == "messages" else None
        route = (request.method, "messages", "<serial>", *rest[2:]) if serial else (request.method, *rest)
        handlers: dict[tuple[str, ...], Callable[..., Awaitable[web.StreamResponse]]] = {
            ("GET",): self._status,
            ("GET", "messages"): self._history,
            ("GET", "history"): self._history,
            ("POST", "messages"): self._publish,
            ("GET", "messages", "<serial>"): self._get_message,
            ("PATCH", "messages", "<serial>"): self._mutate,
            ("GET", "messages", "<serial>", "versions"): self._versions,
            ("GET", "presence"): self._presence,
            ("GET", "presence", "history"): self._presence_history,
        }
        handler = handlers.get(route)
        if handler is None:
            raise not_found(f"{request.method} {request.rel_url.path}")
        return await handler(request, channel, identity, serial)

    # --- channel resources ---

    async def _status(self, request: web.Request, channel: Channel, identity: Identity, _: Any) -> web.StreamResponse:
        _require(identity, channel, "channel-metadata", "subscribe")
        return respond(request, channel.status())

    async def _history(self, request: web.Request, channel: Channel, identity: Identity, _: Any):
        _require(identity, channel, "history")
        query = self._query(request, serial_bound=True)
        return _paged(request, self._store.history(channel.name, query))

    async def _publish(self, request: web.Request, channel: Channel, identity: Identity, _: Any):
        body = await _body(request)
        messages = body if isinstance(body, list) else [body]
        serials = channel.publish(messages, Publisher(identity))
        return respond(request, {"channel": channel.name, "messageId": serials[0] if serials else None,
                                 "serials": serials}, status=201)

    async def _get_message(self, request: web.Request, channel: Channel, identity: Identity, serial: str):
        _require(identity, channel, "history", "subscribe")
        message = self._store.message(channel.name, serial)
        if message is None:
            raise not_found(f"message {serial!r} on channel {channel.name!r}")
        return respond(request, message)

    async def _mutate(self, request: web.Request, channel: Channel, identity: Identity, serial: str):
        body = await _body(request)
        if not isinstance(body, dict):
            raise bad_request("An update, delete or append body is a message object")
        version_serial = channel.mutate({**body, "serial": serial}, Publisher(identity))
        return respond(request, {"versionSerial": version_serial})

    async def _versions(self, request: web.Request, channel: Channel, identity: Identity, serial: str):
        _require(identity, channel, "history", "subscribe")
        return _paged(request, self._store.versions(channel.name, serial, self._query(request, default_forwards=True)))

    async def _presence(self, request: web.Request, channel: Channel, identity: Identity, _: Any):
        _require(identity, channel, "subscribe", "presence")
        members = channel.presence.members(request.query.get("clientId"), request.query.get("connectionId"))
        limit = _int_param(request, "limit", 100, 1, MAX_LIMIT)
        return respond(request, members[:limit])

    async def _presence_history(self, request: web.Request, channel: Channel, identity: Identity, _: Any):
        _require(identity, channel, "history")
        return _paged(request, self._store.presence_history(channel.name, self._query(request)))

    # --- helpers ---

    def _identify(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization")
        client_id = _header_client_id(request)
        if header:
            scheme, credential = parse_authorization(header)
            if scheme == "basic":
                return self._auth.from_key(credential, client_id)
            return self._auth.from_token(credential, None)
        if "key" in request.query:
            return self._auth.from_key(request.query["key"], client_id)
        token = request.query.get("access_token") or request.query.get("accessToken")
        if token:
            return self._auth.from_token(token, None)
        raise AblyError(40101, 401, "No credentials: send an Authorization header (Basic key or Bearer token)")

    def _query(self, request: web.Request, serial_bound: bool = False, default_forwards: bool = False) -> Query:
        direction = request.query.get("direction", "forwards" if default_forwards else "backwards")
        if direction not in ("forwards", "backwards"):
            raise AblyError(40003, 400, f"direction must be forwards or backwards, not {direction!r}")
        retention = self._config.limits.retention_s
        until = request.query.get("from_serial") or request.query.get("fromSerial") if serial_bound else None
        return Query(
            forwards=direction == "forwards",
            limit=_int_param(request, "limit", 100, 1, MAX_LIMIT),
            start=_optional_int(request, "start"),
            end=_optional_int(request, "end"),
            until_serial=until,
            cursor=_optional_int(request, "cursor"),
            not_before=int((time.time() - retention) * 1000) if retention is not None else None,
        )


def _require(identity: Identity, channel: Channel, *ops: str) -> None:
    if not any(identity.permits(channel.name, op) for op in ops):
        raise not_permitted(f"{' or '.join(ops)} on channel {channel.name!r}")


def _header_client_id(request: web.Request) -> str | None:
    encoded = request.headers.get("X-Ably-ClientId")
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except ValueError:
        raise bad_request("X-Ably-ClientId must be base64") from None


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = _optional_int(request, name)
    if value is None:
        return default
    if not low <= value <= high:
        raise AblyError(40003, 400, f"{name} must be between {low} and {high}, not {value}")
    return value


def _optional_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise AblyError(40003, 400, f"{name} must be an integer, not {raw!r}") from None


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        if request.content_type == MSGPACK:
            return msgpack.unpackb(raw, raw=False, strict_map_key=False)
        return json.loads(raw)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise bad_request(f"Malformed {request.content_type or 'JSON'} request body") from None


def _paged(request: web.Request, page: Page) -> web.StreamResponse:
    """A page of items with a `Link` header both SDKs parse (`<./resource?query>; rel="..."`)."""
    resource = request.rel_url.path.rstrip("/").rsplit("/", 1)[-1]
    params = {k: v for k, v in request.query.items() if k not in ("cursor", "envelope")}
    links = [f'<./{resource}?{urlencode(params)}>; rel="first"']
    if page.next_cursor is not None:
        links.append(f'<./{resource}?{urlencode({**params, "cursor": page.next_cursor})}>; rel="next"')
    return respond(request, page.items, headers={"Link": ", ".join(links)})


def respond(request: web.Request, body: Any, status: int = 200, headers: dict[str, str] | None = None):
    """Encode as the client accepts (msgpack or JSON), wrapped in an envelope when a browser asks for one."""
    headers = dict(headers or {})
    envelope = request.query.get("envelope")
    if envelope:
        body = {"statusCode": status, "response": body, "headers": {k.lower(): v for k, v in headers.items()}}
        status = 200
    use_msgpack = envelope == "msgpack" or (not envelope and MSGPACK in request.headers.get("Accept", ""))
    if use_msgpack:
        return web.Response(body=msgpack.packb(body, use_bin_type=True), status=status,
                            content_type=MSGPACK, headers=headers)
    return web.Response(text=json.dumps(_json_safe(body), separators=(",", ":")), status=status,
                        content_type="application/json", headers=headers)


def _json_safe(value: Any) -> Any:
    """Binary message data as base64, with the step recorded in `encoding`, for JSON clients."""
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        if isinstance(value.get("data"), bytes):
            return base64_data(value)
        return {key: _json_safe(item) for key, item in value.items()}
    return value


def _error_response(request: web.Request, error: AblyError) -> web.StreamResponse:
    headers = {"X-Ably-Errorcode": str(error.code), "X-Ably-Errormessage": error.message}
    return respond(request, {"error": error.to_wire()}, status=error.status, headers=headers)


def _cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """CORS as Ably answers it: the caller's origin echoed, with credentials allowed, because ably-js in a
    browser sends its REST requests credentialed and browsers refuse those a wildcard origin."""
    origin = request.headers.get("Origin")
    response.headers["Access-Control-Allow-Origin"] = origin or "*"
    if origin:
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, PUT, DELETE, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = (
        "Authorization, Content-Type, Accept, X-Ably-Version, Ably-Agent, X-Ably-ClientId"
    )
    response.headers["Access-Control-Expose-Headers"] = "Link, X-Ably-Errorcode, X-Ably-Errormessage"
    return response
