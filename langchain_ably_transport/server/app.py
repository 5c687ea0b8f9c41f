"""`create_app(graph)`: the ASGI application a deployment runs, one replica of as many as you like.

Any replica answers any invocation: the session is the channel and the graph's state is in `AblySaver`, so there
are no sticky sessions and no database. Routes (each path configurable through `paths`):

- `POST /api/chat`: the AI Transport client's invocation `{inputEventId, sessionName}`. 202 at once, served in
  the background. Refused with one line: 400 (malformed), 413 (over 4 KiB), 404 (a session outside `namespace`),
  403 (`authorize` said no), 429 with `Retry-After` (`max_runs` active), 503 with `Retry-After` (draining).
- `GET /api/token?session=...`: a JWT for the browser's `authUrl`, scoped to that one conversation
  (`browser_capability`), for the clientId that `identify` returns; 401 without one, 404 outside `namespace`.
- `GET /healthz`: 200 while the process runs. `GET /readyz`: 200 when connected and taking invocations, 503
  while draining or disconnected. `GET /metrics`: Prometheus text (`server.metrics`).

On shutdown (uvicorn's SIGTERM) the replica drains: see `RunSupervisor.drain`.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from ably.types.connectionstate import ConnectionState
from langgraph.graph import StateGraph
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ..capabilities import browser_capability
from ..checkpoint import AblySaver
from ..connection import client_options
from ..errors import ConfigurationError, InvalidInvocationError
from ..graph import GraphRunResult, serve_graph, watch_session
from ..ledger import ledger
from ..pool import ConnectionPool
from ..tokens import issue_token
from ..wire.invocation import Invocation
from . import metrics
from .runs import STOP_WAIT_S, Admission, RunSupervisor
from .watch import SessionWatch

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096  # an invocation is two ids
RETRY_AFTER_BUSY_S = 1
RETRY_AFTER_DRAINING_S = 5
MaybeAwaitable = Any  # a value, or an awaitable of it
Identify = Callable[[Request, str], MaybeAwaitable]  # (request, session) -> the user's clientId, or None
AuthorizeInvocation = Callable[[Request, Invocation], MaybeAwaitable]  # -> whether it may be served
GraphSource = Any  # a StateGraph (compiled here with the app's AblySaver), a callable(saver) -> graph, or a graph
_WATCH_OPTIONS = frozenset(inspect.signature(watch_session).parameters) - {"graph", "session_name", "client",
                                                                           "watch_s", "stop"}


@dataclass
class AppSettings:
    """What `create_app` was given; see its docstring."""

    graph: GraphSource
    key: str | None
    endpoint: str | None
    agent_client_id: str
    namespace: str
    identify: Identify | None
    authorize: AuthorizeInvocation | None
    max_runs: int
    grace_period_s: float
    token_ttl_s: float
    watch_s: float
    max_watched: int
    serve_options: Mapping[str, Any]
    pool_options: Mapping[str, Any]
    paths: Mapping[str, str]


DEFAULT_PATHS = {"invoke": "/api/chat", "token": "/api/token", "health": "/healthz", "ready": "/readyz",
                 "metrics": "/metrics"}


def create_app(
    graph: GraphSource,
    *,
    key: str | None = None,
    endpoint: str | None = None,
    agent_client_id: str = "agent",
    namespace: str = "conversations",
    identify: Identify | None = None,
    authorize: AuthorizeInvocation | None = None,
    max_runs: int = 64,
    grace_period_s: float = 25.0,
    token_ttl_s: float = 3600.0,
    watch_s: float = 600.0,
    max_watched: int = 256,
    serve_options: Mapping[str, Any] | None = None,
    pool_options: Mapping[str, Any] | None = None,
    paths: Mapping[str, str] | None = None,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """A Starlette app that serves `graph` on Ably sessions: `uvicorn module:app`, or mounted in FastAPI.

    `graph`: a `StateGraph` (compiled here, with an `AblySaver` on the app's connections), a function taking that
    saver and returning a compiled graph, or a compiled graph (whose checkpointer is then yours). `key`/`endpoint`:
    as `connect()` (default `$ABLY_API_KEY`/`$ABLY_ENDPOINT`; `endpoint="local"` for the local dev server).
    `namespace`: the sessions served are `<namespace>:<id>`. `identify(request, session)`: the clientId of the user
    asking for a token for `session`, or None to refuse (401); without it the token route refuses everyone.
    `authorize(request, invocation)`: whether to serve an invocation (default: all; who may cancel or resume a run
    is `serve_graph`'s `authorize`, in `serve_options`). `max_runs`: runs served at once by this replica (429
    beyond). `grace_period_s`: what a draining replica gives its active runs (keep it under your orchestrator's
    termination grace, uvicorn's `--timeout-graceful-shutdown` included). `serve_options`: `serve_graph`'s keyword
    arguments; a replica adopts the lost runs of a session it serves (`on_lost="adopt"`) unless they say
    otherwise, and then watches each session it served for `watch_s` seconds (at most `max_watched` of them), to
    adopt a run whose replica dies with no new message from the user (`server.watch`). `pool_options`:
    `ConnectionPool`'s. `routes`: Starlette routes of your own, served beside these (a page, its script).
    """
    if max_runs < 1:
        raise ConfigurationError("max_runs must be at least 1")
    settings = AppSettings(graph, key, endpoint, agent_client_id, namespace, identify, authorize, max_runs,
                           grace_period_s, token_ttl_s, watch_s, max_watched,
                           {"on_lost": "adopt", **(serve_options or {})},
                           dict(pool_options or {}),
                           {**DEFAULT_PATHS, **(paths or {})})
    replica = Replica(settings)
    served = [
        Route(settings.paths["invoke"], replica.invoke, methods=["POST"]),
        Route(settings.paths["token"], replica.token, methods=["GET"]),
        Route(settings.paths["health"], replica.health, methods=["GET"]),
        Route(settings.paths["ready"], replica.ready, methods=["GET"]),
        Route(settings.paths["metrics"], replica.metrics, methods=["GET"]),
        *routes,
    ]
    app = Starlette(routes=served, lifespan=replica.lifespan)
    app.state.replica = replica
    return app


@dataclass
class Replica:
    """One replica's state: its connections, graph and runs, and the handlers of its routes."""

    settings: AppSettings
    refused: Counter[str] = field(default_factory=Counter)
    pool: ConnectionPool | None = None
    runs: RunSupervisor | None = None
    watch: SessionWatch | None = None
    signing_key: str | None = None
    first_output: metrics.FirstOutputClock = field(default_factory=metrics.FirstOutputClock)
    _graph: Any = None

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        settings = self.settings
        self.signing_key = client_options(settings.key, settings.endpoint).get("key")
        async with ConnectionPool(settings.key, settings.endpoint, client_id=settings.agent_client_id,
                                  **settings.pool_options) as pool:
            saver = AblySaver(pool)
            self.pool, self._graph = pool, _compiled(settings.graph, saver)
            self.runs = RunSupervisor(self._serve, settings.max_runs)
            adopting = settings.serve_options["on_lost"] == "adopt"
            self.watch = SessionWatch(self._watch, settings.watch_s if adopting else 0.0, settings.max_watched)
            unwatch = ledger.watch(self.first_output)
            try:
                yield
            finally:
                await self.watch.close(STOP_WAIT_S)
                await self.runs.drain(settings.grace_period_s)
                await saver.aflush()
                unwatch()

    async def _serve(self, invocation: Invocation, stop: Any) -> GraphRunResult:
        assert self.pool is not None
        return await serve_graph(self._graph, invocation, client=self.pool, stop=stop, **self.settings.serve_options)

    async def _watch(self, session_name: str, seconds: float, stop: Any) -> list[GraphRunResult]:
        assert self.pool is not None
        options = {k: v for k, v in self.settings.serve_options.items() if k in _WATCH_OPTIONS}
        return await watch_session(self._graph, session_name, client=self.pool, watch_s=seconds, stop=stop,
                                   **options)

    # --- routes ---

    async def invoke(self, request: Request) -> Response:
        invocation_or_refusal = await self._invocation(request)
        if isinstance(invocation_or_refusal, Response):
            return invocation_or_refusal
        invocation = invocation_or_refusal
        assert self.runs is not None
        admission = self.runs.admit(invocation)
        if admission == Admission.BUSY:
            return self._refuse("busy", 429, f"this replica serves {self.settings.max_runs} runs; retry",
                                retry_after=RETRY_AFTER_BUSY_S)
        if admission == Admission.DRAINING:
            return self._refuse("draining", 503, "this replica is shutting down; retry on another",
                                retry_after=RETRY_AFTER_DRAINING_S)
        assert self.watch is not None
        self.watch.served(invocation.session_name)
        return JSONResponse({"accepted": invocation.to_json()}, status_code=202)

    async def _invocation(self, request: Request) -> Invocation | Response:
        """The invocation in the request, or the response that refuses it."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            return self._refuse("too_large", 413, f"an invocation body is at most {MAX_BODY_BYTES} bytes")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return self._refuse("too_large", 413, f"an invocation body is at most {MAX_BODY_BYTES} bytes")
        try:
            invocation = Invocation.from_json(body)
        except InvalidInvocationError as error:
            return self._refuse("malformed", 400, f"expected {{inputEventId, sessionName}}: {error}")
        if not self._serves(invocation.session_name):
            return self._refuse("unknown_session", 404, f"no session {invocation.session_name!r} here")
        if self.settings.authorize is not None and not await _resolved(self.settings.authorize(request, invocation)):
            return self._refuse("forbidden", 403, "not allowed to invoke this session")
        return invocation

    async def token(self, request: Request) -> Response:
        session = request.query_params.get("session", "")
        if not self._serves(session):
            return self._refuse("unknown_session", 404, f"no session {session!r} here")
        if self.signing_key is None:
            return self._refuse("no_key", 501, "this replica has no API key to sign tokens with")
        identify = self.settings.identify
        client_id = None if identify is None else await _resolved(identify(request, session))
        if not client_id or client_id == self.settings.agent_client_id:
            return self._refuse("unauthorized", 401, "who are you? (the app's identify hook refused)")
        token = issue_token(self.signing_key, client_id=client_id, capability=browser_capability(session),
                            ttl=self.settings.token_ttl_s)
        return PlainTextResponse(token, media_type="application/jwt")

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def ready(self, request: Request) -> Response:
        connected = self.pool is not None and self.pool.home.connection.state == ConnectionState.CONNECTED
        if self.runs is None or self.runs.draining or not connected:
            return PlainTextResponse("not ready", status_code=503)
        return PlainTextResponse("ready")

    async def metrics(self, request: Request) -> Response:
        runs = self.runs
        watch = self.watch
        text = metrics.render(outcomes=runs.outcomes if runs else {}, active=runs.active if runs else 0,
                              adopted=watch.adopted if watch else {}, watched=watch.sessions if watch else 0,
                              refused=self.refused, ledger=ledger, first_output=self.first_output.histogram)
        return Response(text, media_type=metrics.CONTENT_TYPE)

    # --- helpers ---

    def _serves(self, session: str) -> bool:
        prefix = f"{self.settings.namespace}:"
        return session.startswith(prefix) and bool(_SESSION_ID.fullmatch(session.removeprefix(prefix)))

    def _refuse(self, reason: str, status: int, text: str, *, retry_after: int | None = None) -> Response:
        self.refused[reason] += 1
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return PlainTextResponse(text, status_code=status, headers=headers)


_SESSION_ID = re.compile(r"[A-Za-z0-9_.@:-]{1,128}")


def _compiled(source: GraphSource, saver: AblySaver) -> Any:
    if isinstance(source, StateGraph):
        return source.compile(checkpointer=saver)
    if callable(source) and not hasattr(source, "ainvoke"):
        return source(saver)
    return source


async def _resolved(value: Awaitable[Any] | Any) -> Any:
    return await value if inspect.isawaitable(value) else value
