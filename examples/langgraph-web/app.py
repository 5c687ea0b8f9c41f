"""LangGraph's own front end on an Ably session: React `useStream` in the browser, `serve_thread` in this process.

    python examples/langgraph-web/app.py --port 8000        # prints: open http://127.0.0.1:8000/

The page (`page/main.jsx`) runs `useStream` of `@langchain/react` on `js/langgraph-transport`: its transport is an
`AblyAgentServerAdapter`, so the thread is an Ably channel (`threads:<id>`) carrying LangChain's agent streaming
protocol, and this process answers it with `serve_thread`. Nothing else carries the conversation: a reload, or a
second tab on the same `?thread=`, hydrates it from the channel's history. Routes:
- `GET /` and `GET /bundle.js`: the page (`page/index.html`) and its script, `page/main.jsx` with React, the
  LangGraph SDK, ably-js and the transport bundled by esbuild, no CDN. The bundle is built here (`npm ci` +
  `npm run build` in examples/langgraph-web) when it is missing or older than one of its sources;
- `GET /api/config`: where the page's ably-js connects (the dev server's host and port, or Ably's defaults) and the
  agent's clientId, the only publisher whose events and answers the page believes;
- `GET /api/token?clientId=...&thread=...`: a JWT for that one thread's channel (`browser_capability`); this demo
  takes the clientId the page asks for, where a real app reads its login;
- `POST /api/threads/{id}/serve`: an agent for the thread. The page calls it on load; a `serve_thread` task
  starts unless one already serves the thread, the answer (200) comes once it hears commands, and it serves the
  thread until the app stops. The graph's state is in `AblySaver`, so a restarted app carries on the thread.

Runs against Ably when ABLY_API_KEY (and optionally ABLY_ENDPOINT) is set; otherwise on the embedded default
(`endpoint="local"`), so it works offline. The model is scripted (streamed word by word, slowly enough to press
Stop) unless OPENAI_API_KEY is set and `langchain-openai` is installed. Needs the `server` extra (Starlette,
uvicorn; `pip install -e '.[dev]'`) and Node.js with npm for the bundle.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/, for the shared scripted models
from _fake_models import chat_builder
from _page import main as run_example
from _page import page_routes

from langchain_ably_transport import (
    AblySaver,
    ConnectionPool,
    browser_capability,
    client_options,
    issue_token,
)
from langchain_ably_transport.graph import serve_thread

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page"
# What the bundle is built from: the page's script and the transport it imports from the repository.
SOURCES = (PAGE / "main.jsx", HERE.parents[1] / "js" / "langgraph-transport" / "index.js")

log = logging.getLogger("examples.langgraph_web")

AGENT_CLIENT_ID = "agent"
READY_TIMEOUT_S = 15.0  # as long as the transport waits for the answer to a command (commandTimeoutMs)
THREAD_ID = re.compile(r"[A-Za-z0-9-]{1,64}")  # the page makes a uuid
CLIENT_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
SYSTEM = ("system", "You are a concise assistant that explains durable agent sessions.")
REPLIES = [
    "This thread is an Ably channel. The page runs LangGraph's own useStream hook, and its transport publishes "
    "each command on the channel instead of calling a LangGraph server. The agent in app.py hears the run.start, "
    "runs the graph, and publishes the protocol's events back in batches, so every token you see arrived over "
    "Ably. Reload the page: the conversation comes back from the channel's history.",
    "Press Stop while I stream: useStream cancels the run, and the transport publishes that cancel on the "
    "channel, where the agent hears it and cancels the graph's task. The thread keeps your question, and the "
    "conversation carries on from there, in this tab or in any other one that opens the same thread; "
    "nothing of the cancelled answer is kept.",
    "Open this page's URL in a second tab: both follow the same thread, live and from history, and either can "
    "stop my runs.",
]


def builder() -> StateGraph:
    """START -> chat -> END: one model pass over the whole thread, streamed 0.04 s a word when scripted."""
    return chat_builder(SYSTEM, *REPLIES, delay=0.04)


def channel_of(thread_id: str) -> str:
    """The thread's Ably channel; the page maps it the same way (`channelName` of the adapter)."""
    return f"threads:{thread_id}"


# --- the agents: one serve_thread task per thread the pages opened ---

class AgentUnavailable(Exception):
    """A thread's `serve_thread` ended, or did not listen within `READY_TIMEOUT_S`."""


@dataclass
class ServedThread:
    """A thread's `serve_thread` task, the event that stops it, and the one it sets once it hears commands."""

    task: asyncio.Task[None]
    stop: asyncio.Event
    ready: asyncio.Event


class Agents:
    """The threads this process serves, each by one `serve_thread` task on a shared `ConnectionPool`, from the
    first page that asks until the app stops. The graph is compiled once, on an `AblySaver` of that pool."""

    def __init__(self, graph: StateGraph, key: str | None, endpoint: str | None) -> None:
        self._builder = graph
        self._connect = (key, endpoint)
        self._served: dict[str, ServedThread] = {}
        self._pool: ConnectionPool | None = None
        self._graph: Any = None

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Open the pool for the app's life; on shutdown stop every thread (a run still streaming ends `error`)."""
        async with ConnectionPool(*self._connect, client_id=AGENT_CLIENT_ID) as pool:
            saver = AblySaver(pool)
            self._pool, self._graph = pool, self._builder.compile(checkpointer=saver)
            try:
                yield
            finally:
                await self._stop_all()
                await saver.aflush()

    async def serve(self, thread_id: str) -> None:
        """Return once `thread_id` is served: by the task already serving it, else by a new one."""
        served = self._served.get(thread_id)
        if served is None or served.task.done():
            served = self._served[thread_id] = self._start(thread_id)
        await _until_ready(thread_id, served)

    def _start(self, thread_id: str) -> ServedThread:
        log.info("serving thread %s", thread_id)
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve_thread(self._graph, channel_of(thread_id), client=self._pool, stop=stop,
                                                on_ready=ready.set))
        task.add_done_callback(lambda done: _report_end(thread_id, done))
        return ServedThread(task, stop, ready)

    async def _stop_all(self) -> None:
        for served in self._served.values():
            served.stop.set()
        await asyncio.gather(*(served.task for served in self._served.values()), return_exceptions=True)


async def _until_ready(thread_id: str, served: ServedThread) -> None:
    listening = asyncio.ensure_future(served.ready.wait())
    try:
        await asyncio.wait({listening, served.task}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        listening.cancel()
    if served.task.done():
        failure = None if served.task.cancelled() else served.task.exception()
        raise AgentUnavailable(f"the agent of thread {thread_id} stopped: {failure or 'cancelled'}")
    if not served.ready.is_set():
        raise AgentUnavailable(f"the agent of thread {thread_id} is not listening after {READY_TIMEOUT_S:g} s")


def _report_end(thread_id: str, task: asyncio.Task[None]) -> None:
    failure = None if task.cancelled() else task.exception()
    if failure is not None:
        log.error("the agent of thread %s failed", thread_id, exc_info=failure)


# --- routes ---

def token_route(key: str) -> Route:
    """`/api/token`: a JWT for one thread's channel. Demo only: the clientId is the page's choice, save the
    agent's, whose events every page trusts. A real app decides it from its login and checks the thread is the
    user's (docs/security.md)."""

    async def token(request: Request) -> Response:
        client_id = request.query_params.get("clientId", "")
        thread_id = request.query_params.get("thread", "")
        if not CLIENT_ID.fullmatch(client_id) or client_id == AGENT_CLIENT_ID:
            return PlainTextResponse("who are you? (a clientId of letters, digits and _.:@-)", status_code=401)
        if not THREAD_ID.fullmatch(thread_id):
            return PlainTextResponse(f"no thread {thread_id!r} here", status_code=404)
        capability = browser_capability(channel_of(thread_id))
        return PlainTextResponse(issue_token(key, client_id=client_id, capability=capability),
                                 media_type="application/jwt")

    return Route("/api/token", token)


def serve_route(agents: Agents) -> Route:
    """`POST /api/threads/{id}/serve`: 200 once an agent listens on the thread, 503 (with why) if none can."""

    async def serve(request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        if not THREAD_ID.fullmatch(thread_id):
            return PlainTextResponse(f"no thread {thread_id!r} here", status_code=404)
        try:
            await agents.serve(thread_id)
        except AgentUnavailable as error:
            return PlainTextResponse(str(error), status_code=503)
        return JSONResponse({"thread": thread_id, "channel": channel_of(thread_id)})

    return Route("/api/threads/{thread_id}/serve", serve, methods=["POST"])


def make_app(key: str | None, endpoint: str) -> Starlette:
    options = client_options(key, endpoint)  # resolves `local`, and fails here on a key or endpoint out of shape
    agents = Agents(builder(), key, endpoint)
    routes = [*page_routes(HERE, options, agentClientId=AGENT_CLIENT_ID), token_route(options["key"]),
              serve_route(agents)]
    return Starlette(routes=routes, lifespan=agents.lifespan)


def main() -> None:
    run_example(__doc__.splitlines()[0], make_app, HERE, SOURCES, log.name)


if __name__ == "__main__":
    main()
