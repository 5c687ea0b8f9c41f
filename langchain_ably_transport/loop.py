"""An event loop on a thread of its own, for objects that own an Ably client but serve sync callers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .errors import AblyTransportError

T = TypeVar("T")
WIND_DOWN_S = 5.0


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
        """Cancel what still runs on the loop, let it finish (`WIND_DOWN_S` at most), then stop and close the loop,
        as `asyncio.run` ends: a task left pending would be destroyed with the loop, and say so on stderr ("Task was
        destroyed but it is pending!"), as ably-python's handler of the frame that closed the connection did."""
        if self._thread.is_alive():
            with contextlib.suppress(concurrent.futures.TimeoutError):
                asyncio.run_coroutine_threadsafe(_wind_down(), self.loop).result(timeout=WIND_DOWN_S + 1)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        self.loop.close()


async def _wind_down() -> None:
    current = asyncio.current_task()
    running = [task for task in asyncio.all_tasks() if task is not current]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running, timeout=WIND_DOWN_S)
    await asyncio.get_running_loop().shutdown_asyncgens()
