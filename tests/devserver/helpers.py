"""Small waiting and collecting helpers for tests that watch a channel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, message: str = "") -> None:
    """Wait until `predicate()` holds; fail with `message` after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


class Collector:
    """Keeps every message its `add` listener receives, in order.

    ably-python accepts only functions and methods as listeners, not callable objects.
    """

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def add(self, message: Any) -> None:
        self.messages.append(message)

    @property
    def data(self) -> list[Any]:
        return [m.data for m in self.messages]
