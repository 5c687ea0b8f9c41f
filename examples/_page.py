"""What the two web examples share: their page's bundle, built by esbuild when stale, the routes that serve it, and
their command line.

Each example keeps its page in `page/` (`index.html`, a script bundled to `bundle.js`) and its JS dependencies in
its own `package.json`, whose `build` script runs esbuild.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from langchain_ably_transport import ConfigurationError


def build_bundle(folder: Path, sources: Sequence[Path]) -> None:
    """`folder/page/bundle.js`, built when it is missing or older than one of `sources` (`npm ci` first if need be)."""
    bundle = folder / "page" / "bundle.js"
    if bundle.exists() and bundle.stat().st_mtime >= max(source.stat().st_mtime for source in sources):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("building page/bundle.js needs Node.js and npm (https://nodejs.org)")
    if not (folder / "node_modules" / "esbuild").is_dir():
        print("installing the page's JS dependencies (npm ci)…", flush=True)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=folder, check=True)
    print(f"bundling {sources[0].relative_to(folder)} with esbuild…", flush=True)
    subprocess.run([npm, "run", "--silent", "build"], cwd=folder, check=True)


def page_routes(folder: Path, options: dict[str, Any], **config: Any) -> list[Route]:
    """The page, its script, and `/api/config`: where ably-js connects (`devServer`: `{host, port, tls}` for the dev
    server, `null` for Ably's defaults), with `config` beside it."""
    page = folder / "page"
    dev_server = ({"host": options["endpoint"], "port": options.get("tls_port") or options["port"],
                   "tls": options["tls"]} if "tls" in options else None)

    async def index(request: Request) -> Response:
        return FileResponse(page / "index.html", headers={"Cache-Control": "no-cache"})

    async def bundle(request: Request) -> Response:
        return FileResponse(page / "bundle.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    async def settings(request: Request) -> Response:
        return JSONResponse({"devServer": dev_server, **config})

    return [Route("/", index), Route("/bundle.js", bundle), Route("/api/config", settings),
            Route("/favicon.ico", lambda request: Response(status_code=204))]


def main(description: str, make_app: Callable[[str | None, str], Starlette], folder: Path, sources: Sequence[Path],
         logger: str) -> None:
    """An example's command line: `--host`/`--port`; the SDKs' warnings and `logger`'s INFO lines (ably-python's INFO
    lines carry tokens); the bundle built; Ably when ABLY_API_KEY or ABLY_ENDPOINT is set, else the embedded dev
    server; served until interrupted."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger(logger).setLevel(logging.INFO)
    build_bundle(folder, sources)
    key, endpoint = os.environ.get("ABLY_API_KEY"), os.environ.get("ABLY_ENDPOINT")
    if not key and not endpoint:
        print("no ABLY_API_KEY: using the embedded dev server (endpoint='local')", flush=True)
        endpoint = "local"
    try:
        app = make_app(key, endpoint or "")
    except ConfigurationError as error:  # a key or endpoint out of shape: say what is expected, no traceback
        raise SystemExit(str(error)) from None
    # uvicorn raises the SIGINT it handled again once it has shut down: no traceback for it.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(app, args.host, args.port))


async def serve(app: Starlette, host: str, port: int) -> None:
    """Serve `app` until SIGINT or SIGTERM (uvicorn then shuts it down: its lifespan ends, its runs drain), saying
    where once it listens."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    if server.started:
        print(f"open http://{host}:{port}/", flush=True)
    await serving
