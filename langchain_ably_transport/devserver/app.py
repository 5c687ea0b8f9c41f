"""The dev server process: one aiohttp application serving the realtime WebSocket and REST on one port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from .auth import Authenticator
from .channel import ChannelRegistry
from .config import ServerConfig
from .realtime import RealtimeServer
from .rest import RestApi
from .store import Store

log = logging.getLogger(__name__)


class DevServer:
    """A running (or ready to run) dev server; `start()` binds, `stop()` closes sockets and the store."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._store = Store(config.data_path, config.commit_interval_ms / 1000)
        channels = ChannelRegistry(self._store, config)
        auth = Authenticator(config)
        self._realtime = RealtimeServer(config, channels, auth, self._store.after_commit)
        rest = RestApi(config, channels, self._store, auth)
        self.app = web.Application(middlewares=[rest.middleware], client_max_size=config.limits.max_frame_size * 4)
        self.app.add_routes([web.get("/", self._root), *rest.routes()])
        self._runner: web.AppRunner | None = None
        self._retention: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 8080) -> str:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}"
        if self.config.limits.retention_s is not None:
            self._retention = asyncio.create_task(self._expire_forever(self.config.limits.retention_s))
        return self.url

    async def stop(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        if self._runner is not None:
            await self._runner.cleanup()
        self._store.close()

    @property
    def connections(self) -> int:
        """The connections the server holds: live, or dropped and still resumable."""
        return self._realtime.connections

    async def _root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._realtime.handle(request)
        return web.Response(text="langchain-ably-transport dev server: an Ably-compatible endpoint for development\n")

    async def _expire_forever(self, retention_s: float) -> None:
        """Drop history older than the retention period, as Ably does without a persistence rule."""
        while True:
            await asyncio.sleep(min(retention_s / 4, 5.0))
            dropped = self._store.expire(int((time.time() - retention_s) * 1000))
            if dropped:
                log.info("retention: dropped %d events older than %.0f s", dropped, retention_s)
