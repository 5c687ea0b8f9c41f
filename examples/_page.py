"""What the two web examples share: their page's bundle, built by esbuild when stale, and the routes that serve it.

Each example keeps its page in `page/` (`index.html`, a script bundled to `bundle.js`) and its JS dependencies in
its own `package.json`, whose `build` script runs esbuild.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route


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
