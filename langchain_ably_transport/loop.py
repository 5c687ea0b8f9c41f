"""An event loop on a thread of its own, for objects that own an Ably client but serve sync callers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .errors import AblyTransportError

T = TypeVar("T")


class LoopThread:
    """A daemon thread running an event loop; `run()` executes a coroutine there and waits for its result."""

    def __init__(self, name: str = "ably-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """The coroutine's result; the package's own errors are raised as the sync caller's, without the loop
        thread's frames (their messages say what to do; those frames say nothing to the caller)."""
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except AblyTransportError as error:
            raise error.with_traceback(None) from error.__cause__

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
