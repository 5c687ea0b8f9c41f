"""Where the examples find Ably: your app (ABLY_API_KEY, optionally ABLY_ENDPOINT), else the embedded dev server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def ably_or_dev_server() -> Iterator[tuple[str | None, str | None]]:
    """`(key, endpoint)` from the environment, or of a dev server started for the example (stopped after)."""
    key, endpoint = os.environ.get("ABLY_API_KEY"), os.environ.get("ABLY_ENDPOINT")
    if key or endpoint:
        yield key, endpoint
        return
    from langchain_ably_transport.devserver import spawn

    with spawn() as server:
        print(f"no ABLY_API_KEY: using the embedded dev server at {server.url}")
        yield server.key, server.url
