"""A small agent web app: a LangGraph graph answers a browser chat over an Ably session.

    python examples/web/app.py --port 8000        # prints: open http://127.0.0.1:8000/

The server is `create_app` (the library's ASGI replica: invocations, tokens, health, metrics, graceful shutdown)
run by uvicorn, with three routes of the page's own:
- `GET /` and `GET /bundle.js`: the page (`page/index.html`) and its script, `page/main.js` and the JS SDKs
  (`ably`, `@ably/ai-transport` with its Vercel codec) bundled by esbuild, no CDN. The bundle is built here
  (`npm ci` + `npm run build` in examples/web) when it is missing or older than `main.js`;
- `GET /api/config`: where the page's ably-js connects (the dev server's host and port, or Ably's defaults).
The app's own routes do the rest: `GET /api/token?clientId=...&session=...` (a JWT for one conversation; this demo
takes the clientId the page asks for, where a real app reads its login) and `POST /api/chat` (the invocation,
answered 202 and served in the background; the graph's state is in `AblySaver`, so any replica serves the next).

Runs against Ably when ABLY_API_KEY (and optionally ABLY_ENDPOINT) is set; otherwise on the embedded default
(`endpoint="local"`), so it works offline. The model is scripted (streamed word by word, slowly enough to press
Cancel) unless OPENAI_API_KEY is set and `langchain-openai` is installed. Needs the `server` extra (Starlette,
uvicorn; `pip install -e '.[dev]'`) and Node.js with npm for the bundle.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from langgraph.graph import StateGraph
from starlette.applications import Starlette
from starlette.requests import Request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/, for the shared scripted models
from _fake_models import chat_builder
from _page import main as run_example
from _page import page_routes

from langchain_ably_transport import client_options
from langchain_ably_transport.server import create_app

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page"

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


def builder() -> StateGraph:
    """START -> chat -> END: one model pass over the whole thread, streamed 0.08 s a word when scripted."""
    return chat_builder(SYSTEM, *REPLIES, delay=0.08)


def identify(request: Request, session: str) -> str | None:
    """Demo only: the clientId the page asks for. A real app decides it from its own login, and checks that the
    conversation is the user's (docs/security.md, docs/deploy.md)."""
    client_id = request.query_params.get("clientId", "")
    return client_id if CLIENT_ID.fullmatch(client_id) else None


def make_app(key: str | None, endpoint: str) -> Starlette:
    options = client_options(key, endpoint)  # resolves `local`, and fails here on a key or endpoint out of shape
    return create_app(builder(), key=options["key"], endpoint=endpoint, identify=identify,
                      routes=page_routes(HERE, options))


def main() -> None:
    run_example(__doc__.splitlines()[0], make_app, HERE, [PAGE / "main.js"], "langchain_ably_transport.server")


if __name__ == "__main__":
    main()
