"""The dev server behind the app's own origin: its REST API and realtime WebSocket, forwarded as they are.

Why: ably-js in a browser sends its REST requests (history, token requests) as credentialed XHRs
(`withCredentials` whenever there is an Authorization header), and browsers refuse those from another origin
when the answer is `Access-Control-Allow-Origin: *`, which is what the dev server sends. Served from the page's
own origin there is no CORS at all, and the page points ably-js at `window.location`. Against Ably this is not
used: the page talks to Ably directly, and Ably's CORS answers echo the origin.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

# Per-hop headers (RFC 9110 §7.6.1), and the ones aiohttp recomputes for a body it re-sends. The server side
# hands us request bodies decompressed; the client side (auto_decompress=False) hands responses back as sent.
_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                  "transfer-encoding", "upgrade", "host", "content-length"})
_REQUEST_DROP = _HOP | {"content-encoding"}


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


class DevServerProxy:
    """Forwards requests to the dev server at `upstream` (`http://127.0.0.1:PORT`)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            # No cookie jar and no automatic decompression: the bytes go back as they came.
            self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)
        return self._http

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if is_websocket(request):
            return await self.websocket(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _REQUEST_DROP}
        async with self.http.request(request.method, self.upstream + request.rel_url.path_qs, headers=headers,
                                     data=await request.read(), allow_redirects=False) as upstream:
            body = await upstream.read()
            response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            return web.Response(status=upstream.status, body=body, headers=response_headers)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One realtime connection: frames both ways, text (JSON protocol) and binary (msgpack) alike."""
        url = "ws" + self.upstream.removeprefix("http") + request.rel_url.path_qs
        browser = web.WebSocketResponse(autoping=True)
        await browser.prepare(request)
        try:
            upstream = await self.http.ws_connect(url, autoping=True)
        except aiohttp.ClientError:
            await browser.close(code=aiohttp.WSCloseCode.TRY_AGAIN_LATER, message=b"dev server unreachable")
            return browser
        async with upstream:
            pumps = [asyncio.create_task(_pump(browser, upstream)), asyncio.create_task(_pump(upstream, browser))]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
                await browser.close()
        return browser


async def _pump(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                target: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            await target.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await target.send_bytes(message.data)
        else:
            break
    if not target.closed:
        await target.close()
