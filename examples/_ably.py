"""Where the examples find Ably: your app (ABLY_API_KEY, optionally ABLY_ENDPOINT), else the embedded default."""

from __future__ import annotations

import os


def ably_or_local() -> tuple[str | None, str]:
    """`(key, endpoint)` from the environment, or the embedded default: `endpoint="local"`, this user's local dev
    server (started if it is not running; its history survives, in the user's cache folder)."""
    key, endpoint = os.environ.get("ABLY_API_KEY"), os.environ.get("ABLY_ENDPOINT")
    if key or endpoint:
        return key, endpoint or ""
    print("no ABLY_API_KEY: using the embedded dev server (endpoint='local')", flush=True)
    return None, "local"
