"""A small agent web app: a LangGraph graph answers a browser chat over an Ably session.

    python examples/web/app.py --port 8000        # prints: open http://127.0.0.1:8000/

What the server does:
- serves the page (`page/index.html`) and its script, `page/bundle.js`: `page/main.js` and the JS SDKs
  (`ably`, `@ably/ai-transport` with its Vercel codec) bundled by esbuild, no CDN. The bundle is built here
  (`npm ci` + `npm run build` in examples/web) when it is missing or older than `main.js`;
- `GET /api/token?clientId=...&session=...`: a short-lived JWT for one conversation (no API key in the page);
- `GET /api/config`: where the page's ably-js connects (the dev server's host and port, or Ably's defaults);
- `POST /api/chat`: the body the JS client's `run.toInvocation().toJSON()` gives (`{inputEventId,
  sessionName}`); the graph answers it on the session in a background task, and the request returns 202 at once.
  The graph's state lives in `AblySaver`, so any process could serve the next message.

Runs against Ably when ABLY_API_KEY (and optionally ABLY_ENDPOINT) is set; otherwise it starts the embedded dev
server, so it works offline. The model is scripted (streamed word by word, slowly enough to press Cancel) unless
OPENAI_API_KEY is set and `langchain-openai` is installed. Needs `aiohttp` (`pip install -e '.[dev]'`) and
Node.js with npm for the bundle.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph.graph import END, START, MessagesState, StateGraph

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/, for the shared scripted models
from _fake_models import ScriptedChatModel

from langchain_ably_transport import (
    AblySaver,
    ConfigurationError,
    Invocation,
    browser_capability,
    connect,
    issue_token,
)
from langchain_ably_transport.graph import serve_graph

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page"
BUNDLE = PAGE / "bundle.js"

log = logging.getLogger("examples.web")

SYSTEM = ("system", "You are a concise assistant that explains durable agent sessions.")
REPLIES = [
    "An Ably channel is the session of this agent. Every token I stream is appended to a message on the "
    "channel, so this page renders it live, and a reload rebuilds the whole conversation from the channel's "
    "history. The graph's state is in the channel too, through AblySaver, so any process can answer next.",
    "Press Cancel while I stream: the client publishes an ai-cancel on the channel, the server cancels the "
    "graph's task, and the run ends cancelled. The thread's checkpoint stays as it was, so we can carry on.",
    "Open this page's URL in a second tab: both follow the same session, and either can cancel my runs.",
]

CLIENT_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
AGENT_CLIENT_ID = "agent"  # trusted by the graph's sessions, so never a browser's
SESSION = re.compile(r"conversations:[A-Za-z0-9_.@-]{1,64}")


class PacedChatModel(ScriptedChatModel):
    """The scripted model, streamed at a reading pace (`delay` seconds a word) so Cancel has time to act."""

    delay: float = 0.08

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._turn(messages):
            await asyncio.sleep(self.delay)
            yield ChatGenerationChunk(message=chunk)


def chat_model() -> Any:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model="gpt-4o-mini")
        except ImportError:
            pass
    return PacedChatModel(replies=REPLIES)


def builder() -> StateGraph:
    """START -> chat -> END: one model pass over the whole thread."""
    model = chat_model()

    async def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke([SYSTEM, *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    return graph


def build_bundle() -> None:
    """`page/bundle.js`, built by esbuild when it is missing or older than `main.js` (`npm ci` first if needed)."""
    source = PAGE / "main.js"
    if BUNDLE.exists() and BUNDLE.stat().st_mtime >= source.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("building page/bundle.js needs Node.js and npm (https://nodejs.org)")
    if not (HERE / "node_modules" / "esbuild").is_dir():
        print("installing the page's JS dependencies (npm ci)…", flush=True)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    print("bundling page/main.js with esbuild…", flush=True)
    subprocess.run([npm, "run", "--silent", "build"], cwd=HERE, check=True)


# --- HTTP handlers ---

async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(PAGE / "index.html", headers={"Cache-Control": "no-cache"})


async def bundle(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(BUNDLE, headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"})


async def config(request: web.Request) -> web.Response:
    """Where the page's ably-js connects: the dev server (`{host, port, tls}`), or Ably's defaults (`null`)."""
    return web.json_response({"devServer": request.app["dev_server"]})


async def token(request: web.Request) -> web.Response:
    """A JWT for the browser's `authCallback` (`issue_token`): one hour, one conversation (nothing of the graph
    state), the asked-for clientId.

    It is Ably's own JWT format, signed with the API key (header `kid` = the key name), so this works against
    Ably as against the dev server; in a real app, decide the clientId from your own login instead of the query,
    and check that the conversation is the user's (see docs/security.md).
    """
    client_id, session = request.query.get("clientId", ""), request.query.get("session", "")
    if not CLIENT_ID.fullmatch(client_id) or client_id == AGENT_CLIENT_ID:
        raise web.HTTPBadRequest(text="clientId: 1-64 letters, digits or _.:@-, not the agent's")
    if not SESSION.fullmatch(session):
        raise web.HTTPBadRequest(text="session: conversations: and 1-64 letters, digits or _.@-")
    jwt = issue_token(request.app["api_key"], client_id=client_id, capability=browser_capability(session))
    return web.Response(text=jwt, content_type="application/jwt")


async def chat(request: web.Request) -> web.Response:
    """Answer an invocation in the background; the client follows the answer on the channel, not here."""
    try:
        invocation = Invocation.from_json(await request.json())
    except (ValueError, TypeError, KeyError) as error:
        raise web.HTTPBadRequest(text=f"expected {{inputEventId, sessionName}}: {error}") from None
    if not invocation.session_name.startswith("conversations:"):
        raise web.HTTPBadRequest(text="sessionName must be in the conversations: namespace")
    task = asyncio.create_task(answer(request.app, invocation))
    request.app["runs"].add(task)
    task.add_done_callback(request.app["runs"].discard)
    return web.json_response({"accepted": invocation.to_json()}, status=202)


async def answer(app: web.Application, invocation: Invocation) -> None:
    try:
        result = await serve_graph(app["graph"], invocation, client=app["agent_client"])
        log.info("run %s on %s: %s", result.run_id, invocation.session_name, result.outcome)
    except Exception:
        log.exception("serving %s failed", invocation.session_name)


def make_app(key: str, endpoint: str | None) -> web.Application:
    app = web.Application()
    issue_token(key)  # a key out of shape fails here, at start-up, not at the first browser's token request
    app["api_key"] = key
    # An http(s) endpoint is a dev server (Ably's endpoints are routing-policy names or hostnames).
    url = urlsplit(endpoint) if endpoint else None
    app["dev_server"] = ({"host": url.hostname, "port": url.port, "tls": url.scheme == "https"}
                         if url is not None and url.scheme in ("http", "https") else None)
    app["runs"] = set()

    async def agent(app: web.Application) -> AsyncIterator[None]:
        # One Ably connection for every run this process serves; the graph's checkpoints go through it too.
        async with connect(key, endpoint, client_id=AGENT_CLIENT_ID) as client:
            app["agent_client"] = client
            app["graph"] = builder().compile(checkpointer=AblySaver(client))
            yield
            for task in list(app["runs"]):
                task.cancel()
            await asyncio.gather(*app["runs"], return_exceptions=True)

    app.cleanup_ctx.append(agent)
    app.router.add_get("/", index)
    app.router.add_get("/bundle.js", bundle)
    app.router.add_get("/favicon.ico", lambda request: web.Response(status=204))
    app.router.add_get("/api/config", config)
    app.router.add_get("/api/token", token)
    app.router.add_post("/api/chat", chat)
    return app


async def serve(key: str, endpoint: str | None, host: str, port: int) -> None:
    runner = web.AppRunner(make_app(key, endpoint))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"open http://{host}:{bound}/", flush=True)
    # SIGTERM as well as Ctrl-C stops cleanly, so main() still stops the embedded dev server (its child).
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # Warnings from the SDKs; this app's own INFO lines (one per run). ably-python's INFO lines carry tokens.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    build_bundle()

    key, endpoint = os.environ.get("ABLY_API_KEY"), os.environ.get("ABLY_ENDPOINT")
    with ExitStack() as stack:
        if not key and not endpoint:
            from langchain_ably_transport.devserver import spawn

            server = stack.enter_context(spawn())
            key, endpoint = server.key, server.url
            print(f"no ABLY_API_KEY: using the embedded dev server at {endpoint}", flush=True)
        if not key:
            raise SystemExit("set ABLY_API_KEY (the token endpoint signs browser tokens with it)")
        try:
            asyncio.run(serve(key, endpoint, args.host, args.port))
        except ConfigurationError as error:  # a key or endpoint out of shape: say what is expected, no traceback
            raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main()
