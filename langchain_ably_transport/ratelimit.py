"""Waiting out Ably's per-connection publish rate (42911) instead of failing: the message was refused, not
lost, and publishing it again once the rate allows keeps everything the caller accepted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ably.util.exceptions import AblyException

T = TypeVar("T")
RATE_LIMITED = 42911


async def retry_rate_limited(operation: Callable[[], Awaitable[T]], *, retry_for_s: float = 60.0) -> T:
    """`await operation()`, again with back-off (50 ms doubling to 1 s) while Ably answers 42911, for up to
    `retry_for_s`; any other error, or the limit outlasting that, is raised."""
    delay = 0.05
    deadline = asyncio.get_running_loop().time() + retry_for_s
    while True:
        try:
            return await operation()
        except AblyException as error:
            if error.code != RATE_LIMITED or asyncio.get_running_loop().time() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
