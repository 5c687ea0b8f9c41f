"""The pacer: staying within a connection's publish rate (Ably's 50 msg/s by default) instead of being refused.

Two layers. `PublishPacer` keeps one connection's publishes under the rate its server announced (the
`maxInboundRate` of CONNECTED, which only `fixes` keeps), starting them in call order: a refused append cannot be
retried without reordering the stream, and a live reader that missed it keeps the gap (a repairing update comes after
the stream's end, which readers have already applied), so the only safe append is one the server will accept.
`retry_rate_limited` waits out a refusal for rate (42911 for the connection, 42910 for the account) for whatever is
refused anyway (other traffic on the connection, or the account's other connections): the message was refused, not
lost, and publishing it again once the rate allows keeps everything. `PublishPacer.start_retried` does the same for a
create no one awaits at once, in its place in the pacer's queue. Each refusal is counted in the ledger.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from ably.util.exceptions import AblyException

from ..errors import RATE_REFUSALS
from ..ledger import Publication, current_run, ledger
from .fixes import adopt
from .per_client import PerClient

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_INBOUND_RATE = 50.0  # Ably's limit on every plan, assumed when the server does not announce one
# The pacer stays below the server's token bucket (one second's worth, refilled at the rate): 90% of the rate,
# bursts of half a second, so network jitter bunching a paced burst cannot empty the server's bucket.
RATE_SHARE = 0.9
BURST_S = 0.5
MIN_BACKOFF_S, MAX_BACKOFF_S = 0.05, 1.0
RETRY_FOR_S = 60.0  # how long a publish refused for rate is tried again


async def retry_rate_limited(operation: Callable[[], Awaitable[T]], *, retry_for_s: float = RETRY_FOR_S) -> T:
    """`await operation()`, again with back-off (50 ms doubling to 1 s) while Ably refuses it for rate (42910,
    42911), for up to `retry_for_s`; any other error, or the limit outlasting that, is raised."""
    delay = 0.05
    deadline = asyncio.get_running_loop().time() + retry_for_s
    while True:
        try:
            return await operation()
        except AblyException as error:
            if error.code not in RATE_REFUSALS or asyncio.get_running_loop().time() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


class TokenBucket:
    """`rate()` messages a second (90% of it, in bursts of half a second's worth); a rate of 0 means no limit."""

    def __init__(self, rate: Callable[[], float]) -> None:
        self._rate = rate
        self._tokens: float | None = None
        self._refilled_at = 0.0

    def wait(self, count: int, now: float) -> float:
        """How long until `count` tokens are there (0: now), refilling first."""
        rate = self._rate() * RATE_SHARE
        if rate <= 0:
            return 0.0
        capacity = max(rate * BURST_S, count)
        elapsed = now - self._refilled_at
        self._tokens = capacity if self._tokens is None else min(capacity, self._tokens + elapsed * rate)
        self._refilled_at = now
        return 0.0 if self._tokens >= count else (count - self._tokens) / rate

    def spend(self, count: int) -> None:
        if self._tokens is not None:
            self._tokens -= count


class PublishPacer:
    """One connection's publishes, started in call order and no faster than `rate()` messages a second.

    `start(operation, count, publication)` calls `operation()` (which sends `count` messages) when the rate allows
    and everything started before it has started. An operation that returns a future (the package's own:
    `outbox.publish_now` and `outbox.append_now`) has written its message by then, so the wire order is the call
    order; a coroutine (ably-python's own `update_message`, which the encoder sends a message only once it sends
    it nothing more) runs as a task, which numbers its message (`msgSerial`) in its first step, so a message written
    at once may overtake it. A rate of 0 means no limit. A pacer may also share a budget with others (`share`):
    the rate an account allows all of a process's connections together. `paced` counts the operations that had to
    wait. Once the server has accepted them, the messages are recorded in the `ledger` as `publication` says. A
    refusal for rate (the account's other connections can cause one) is counted in the ledger and pauses the pacer,
    50 ms doubling to 1 s while refusals go on: appends waiting meanwhile go out merged, so a limited account gets
    fewer, larger messages.
    """

    def __init__(self, rate: Callable[[], float]) -> None:
        self._bucket = TokenBucket(rate)
        self._shared: TokenBucket | None = None
        self._queue: deque[_Queued] = deque()
        self._wake: asyncio.TimerHandle | None = None
        self._paused_until = 0.0
        self._backoff = MIN_BACKOFF_S
        self.paced = 0
        self._started = 0  # operations ever started: each one's place in the call order

    def share(self, budget: TokenBucket | None) -> None:
        """Spend from `budget` too, with the other pacers that share it (None: this connection's rate alone)."""
        self._shared = budget

    def start(self, operation: Callable[[], Awaitable[T]], count: int = 1, publication: Publication | None = None,
              *, result: Callable[[T], Any] | None = None, retry_until: float | None = None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        run_id = None if publication is None else publication.run_id or current_run()
        self._started += 1
        self._queue.append(_Queued(count, operation, future, publication, run_id, self._started, result, retry_until))
        if self._wake is None:
            self._drain()
        if self._queue:  # this one is last in the queue, so still in it
            self.paced += 1
        return future

    def start_retried(self, operation: Callable[[], Awaitable[T]], result: Callable[[T], R],
                      publication: Publication | None = None, retry_for_s: float = RETRY_FOR_S) -> asyncio.Future[R]:
        """`result` of what `operation()` settles with, started as `start` starts it, and started again once the
        back-off allows, before what was started after it, while Ably refuses it for rate (for up to `retry_for_s`).
        The pacer settles the caller's future itself: a create's ACK reaches its caller a turn of the event loop after
        the SDK's, not a turn per layer."""
        deadline = asyncio.get_running_loop().time() + retry_for_s
        return self.start(operation, publication=publication, result=result, retry_until=deadline)

    def _drain(self) -> None:
        self._wake = None
        while self._queue:
            queued = self._queue[0]
            delay = 0.0 if queued.future.cancelled() else self._take(queued.count)
            if delay > 0:
                self._wake = asyncio.get_running_loop().call_later(delay, self._drain)
                return
            self._queue.popleft()
            if not queued.future.cancelled():
                _started(queued.operation).add_done_callback(partial(self._settle, queued))

    def _settle(self, queued: _Queued, done: asyncio.Future[Any]) -> None:
        """Settle the caller's future as the operation settled, count what the server accepted, and back off after
        a refusal for rate (a publish accepted ends the back-off). The operation's error is taken even when no one
        waits any more."""
        error = None if done.cancelled() else done.exception()
        if isinstance(error, AblyException) and error.code in RATE_REFUSALS:
            ledger.refused(error.code)
            now = asyncio.get_running_loop().time()
            self._paused_until = now + self._backoff
            self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
            if self._requeued(queued, now):
                return
        elif error is None and not done.cancelled():
            self._backoff = MIN_BACKOFF_S
            if queued.publication is not None:
                ledger.record(queued.publication.kind, queued.count, channel=queued.publication.channel,
                              run_id=queued.run_id)
        future = queued.future
        if future.done():
            return
        if done.cancelled():
            future.cancel()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(done.result() if queued.result is None else queued.result(done.result()))

    def _requeued(self, queued: _Queued, now: float) -> bool:
        """Put a refused operation that is to be retried back in the queue, before everything started after it, to
        start once the back-off ends."""
        if queued.retry_until is None or queued.future.done() or self._paused_until > queued.retry_until:
            return False
        place = next((i for i, other in enumerate(self._queue) if other.order > queued.order), len(self._queue))
        self._queue.insert(place, queued)
        if self._wake is None:
            self._wake = asyncio.get_running_loop().call_later(self._paused_until - now, self._drain)
        return True

    def _take(self, count: int) -> float:
        """Spend `count` tokens (of the connection, and of the shared budget) and return 0, or return how long until
        there are enough."""
        now = asyncio.get_running_loop().time()
        if now < self._paused_until:
            return self._paused_until - now
        shared = self._shared
        delay = self._bucket.wait(count, now)
        if shared is not None:
            delay = max(delay, shared.wait(count, now))
        if delay > 0:
            return delay
        self._bucket.spend(count)
        if shared is not None:
            shared.spend(count)
        return 0.0


@dataclass(slots=True)
class _Queued:
    """An operation waiting its turn: what it sends, the caller's future, and what the ledger counts it as."""

    count: int
    operation: Callable[[], Awaitable[Any]]
    future: asyncio.Future[Any]
    publication: Publication | None
    run_id: str | None
    order: int  # its place in the order operations were started in
    result: Callable[[Any], Any] | None = None  # what the caller's future settles with, from the operation's outcome
    retry_until: float | None = None  # started again after a refusal for rate, until then (None: never)


def _started(operation: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
    """`operation()` under way: a coroutine as a task, a future as it is; what it raises at once, as its outcome."""
    try:
        return asyncio.ensure_future(operation())
    except Exception as error:
        failed: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        failed.set_exception(error)
        return failed


def _new_pacer(client: Any) -> PublishPacer:
    adopt(client)
    return PublishPacer(lambda: inbound_rate(client))


_pacers = PerClient(_new_pacer)


def pacer_for(client: Any) -> PublishPacer:
    """The pacer every publisher of this package shares on `client`'s connection (the rate is per connection).

    The first time it sees a client, it `adopt`s it: the SDK fixes reach every client the package is handed.
    """
    return _pacers.of(client)


def inbound_rate(client: Any) -> float:
    """The publish rate `client`'s server announced on connecting (0: none), else Ably's 50 msg/s."""
    details = getattr(client.connection, "connection_details", None)
    announced = getattr(details, "max_inbound_rate", None)
    return DEFAULT_INBOUND_RATE if announced is None else float(announced)
