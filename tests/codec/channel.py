"""An in-memory channel for the codec's pure tests: a `ChannelWriter` that records what it is asked to write.

It is not a mock of Ably: the codec's contract is the `ChannelWriter` protocol. To let the decoder read
back what the encoder wrote, it keeps Ably's bookkeeping for mutable messages: serials and version serials
from one ascending counter, the aggregate of an appended message (data concatenated, extras replaced), the
deliveries a live subscriber gets (append deltas with no name) and what history returns (the latest
version of each message, an appended one as a `message.update` with the whole data).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_ably_transport.wire import WireMessage

CREATE, UPDATE, APPEND = 0, 1, 5


class AppendRejected(Exception):
    """What the channel raises for an append it was told to fail."""


@dataclass
class Stored:
    serial: str
    name: str | None
    data: Any
    extras: dict[str, Any]
    version: str
    mutated: bool = False


@dataclass
class FakeChannel:
    """Records publishes/appends/updates in call order; `fail_appends` are append call indexes to reject."""

    fail_appends: set[int] = field(default_factory=set)
    fail_updates: bool = False
    lazy_appends: bool = False
    ops: list[tuple[str, str | None, WireMessage]] = field(default_factory=list)
    live: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[str, Stored] = field(default_factory=dict)
    wire_order: list[str] = field(default_factory=list)
    on_publish: Callable[[WireMessage], None] | None = None
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    _appends: int = 0

    def _next(self) -> str:
        return f"{next(self._counter):012d}@fake"

    async def publish(self, message: WireMessage) -> str:
        serial = self._next()
        self.ops.append(("publish", serial, message))
        self.wire_order.append(f"publish:{serial}")
        if self.on_publish:
            self.on_publish(message)
        self.stored[serial] = Stored(serial, message.name, message.data, message.extras, serial)
        self.live.append(self._as_received(self.stored[serial], CREATE, message.data, name=message.name))
        return serial

    def append(self, serial: str, message: WireMessage) -> Awaitable[Any]:
        index = self._appends
        self._appends += 1
        if self.lazy_appends:
            return self._lazy_append(index, serial, message)
        return self._append_now(index, serial, message)

    async def _lazy_append(self, index: int, serial: str, message: WireMessage) -> Any:
        # Like ably-python's append_message: the wire order is taken in the coroutine's first step.
        return await self._append_now(index, serial, message)

    def _append_now(self, index: int, serial: str, message: WireMessage) -> asyncio.Future[Any]:
        self.ops.append(("append", serial, message))
        self.wire_order.append(f"append:{serial}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if index in self.fail_appends:
            future.set_exception(AppendRejected(f"append #{index} rejected"))
            return future
        stored = self.stored[serial]
        stored.data = (stored.data or "") + (message.data or "")
        stored.extras = message.extras
        stored.version = self._next()
        stored.mutated = True
        self.live.append(self._as_received(stored, APPEND, message.data, extras=message.extras))
        future.set_result(stored.version)
        return future

    async def update(self, serial: str, message: WireMessage) -> Any:
        self.ops.append(("update", serial, message))
        self.wire_order.append(f"update:{serial}")
        if self.fail_updates:
            raise AppendRejected("update rejected")
        stored = self.stored[serial]
        stored.data = message.data
        stored.extras = message.extras
        stored.version = self._next()
        stored.mutated = True
        self.live.append(self._as_received(stored, UPDATE, message.data, name=stored.name))
        return stored.version

    def history(self) -> list[dict[str, Any]]:
        """What `history()` returns, oldest first: each message at its latest version."""
        return [
            self._as_received(s, UPDATE if s.mutated else CREATE, s.data, name=s.name) for s in self.stored.values()
        ]

    def _as_received(
        self, stored: Stored, action: int, data: Any, *, name: str | None = None, extras: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        received = {"action": action, "serial": stored.serial, "version": {"serial": stored.version},
                    "extras": extras if extras is not None else stored.extras}
        if name is not None:
            received["name"] = name
        if data is not None:
            received["data"] = data
        return received

    def of(self, op: str) -> list[WireMessage]:
        return [message for kind, _, message in self.ops if kind == op]
