"""`ConnectionPool`: an agent process's realtime connections, as many as its published load needs.

Ably accepts 50 messages a second on a connection, and a streaming reply takes 25 (one append per 40 ms rollup
window). The pacer keeps to 90% of the rate (45), so one stream at full speed fits beside its lifecycle and
checkpoints, and a second would make both wait, more with every token (measured: token p50 191 ms against 37 ms,
`benchmarks/replicas.py`). A process serving hundreds of sessions on one connection makes every reply wait its
turn. The pool places each session on a connection for the session's life (its lease), on the least busy one, and
opens another when every connection holds as many sessions as fit (`streams_per_connection`, from the server's
announced `maxInboundRate`, the pacer's share and the rollup window), up to `max_connections`. A burst of sessions
opens the connections it needs `openings_at_once` at a time: one by default, which spreads the burst's session
openings over the time the connections take and keeps the tail of the replies already streaming; more brings the
burst's first tokens sooner (docs/deploy.md gives both, measured). A session back for
another turn goes to the connection it had while that has room (its lingering session and its thread's records are
there), else it is placed anew: two streams on one connection would both be paced, each token later than the last.
A connection that has held no session for `idle_close_s` is closed, down to one. Every publish on a connection is
still paced to its rate, and, given the account's rate (`account_rate`), to what all the pool's connections may
publish together; a refusal (42910, 42911) is waited out and counted in the ledger (`ledger.refusals()`). A
connection that Ably ended
(FAILED: a fatal error such as 42924, a connection over its protocol rate; or CLOSED under the pool) is retired when
the next session is placed: nothing more is placed on it, and its sessions are placed anew on their next lease.

The pool's connections ask Ably not to echo their own messages (`echo=false`): the sessions on them fold what they
publish at its ACK (`session.channel.ChannelWriter.on_sent`). An agent's own appends are most of what its sessions'
channels carry, and each echo was one more message for Ably to send and for the agent to read, decode and fold.
They also ask Ably not to roll their appends up (`appendRollupWindow=0`): the encoder already sends a stream at most
once per 40 ms window, so Ably's window only held back an append that reached it a little early, for the rest of
its window (23% of the appends at 200 sessions in `benchmarks/load.py`, whose agent's loop runs a few ms late now and
then; a tenth of those waited 15 ms or more), and it merged almost none. What Ably delivers and bills is what the
encoder sends. A caller's own `transport_params["appendRollupWindow"]` is kept: pass 40 for sessions that stream
with `coalesce_window=0`.

The pool's first connection (its `home`) stands for the whole pool wherever one client per process is enough
(`pool_home`): the agent's one presence member, and its one watch of the agents' presence. A member and a watch per
connection would cost each connection the presence of all the others: quadratic in the connections, in memory and in
presence messages delivered. When Ably ends the home, another connection takes its place at once (one is opened if
none is left): the runs announced from then on name a member present on it, and the sessions watching presence
watch it there (`on_rehomed`). The runs under way when it ended lost their member with it, as in a crash, and
observers may end them.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from ably import AblyRealtime

from .connection import connect
from .errors import ConfigurationError
from .sdk.pacer import RATE_SHARE, TokenBucket, inbound_rate, pacer_for
from .sdk.states import has_ended

log = logging.getLogger(__name__)

ROLLUP_WINDOW_S = 0.040  # the encoder's window (Ably's default rollup): a stream publishes at most once per window
HOMES_KEPT = 4096  # sessions whose connection is remembered after their lease ends (their thread stays there)

_pool_homes: weakref.WeakKeyDictionary[AblyRealtime, AblyRealtime] = weakref.WeakKeyDictionary()
Rehomed = Callable[[AblyRealtime], None]
_rehomed: weakref.WeakKeyDictionary[AblyRealtime, set[Rehomed]] = weakref.WeakKeyDictionary()


def pool_home(client: AblyRealtime) -> AblyRealtime:
    """The connection that stands for `client`'s pool (the pool's first), or `client` itself outside a pool."""
    return _pool_homes.get(client, client)


def on_rehomed(home: AblyRealtime, listener: Rehomed) -> None:
    """Call `listener(new_home)` if a pool puts another connection in the place of `home` (Ably ended it): what
    follows a pool's home (a watch of the agents' presence) moves there."""
    _rehomed.setdefault(home, set()).add(listener)


def off_rehomed(home: AblyRealtime, listener: Rehomed) -> None:
    _rehomed.get(home, set()).discard(listener)


@asynccontextmanager
async def leased(client: AblyRealtime | ConnectionPool, session_name: str, *,
                 streaming: bool = True) -> AsyncIterator[AblyRealtime]:
    """The connection to serve `session_name` on: a pool's lease for it, or the one client given."""
    if isinstance(client, ConnectionPool):
        async with client.lease(session_name, streaming=streaming) as connection:
            yield connection
    else:
        yield client


@dataclass(eq=False)
class _Connection:
    client: AblyRealtime
    stack: AsyncExitStack
    leases: int = 0
    watches: int = 0  # leases that keep the connection open but publish next to nothing (`lease(streaming=False)`)
    closing: asyncio.TimerHandle | None = None
    held: Counter[str] = field(default_factory=Counter)  # the sessions leased here now, and how many times


@dataclass(frozen=True)
class PoolStats:
    """What the pool holds and has done: for logs, metrics and the load benchmark."""

    connections: int
    leases: int
    opened: int
    closed: int
    per_connection: list[int] = field(default_factory=list)


class ConnectionPool:
    """`async with ConnectionPool(key, endpoint, client_id="agent") as pool:` then `serve_graph(..., client=pool)`
    and `AblySaver(pool)`; or `async with pool.lease(session_name) as client:` for anything that takes a client.

    Args:
        key, endpoint, **options: as `connect()` takes them, for every connection.
        max_connections: the ceiling (each connection is one of the account's concurrent connections).
        streams_per_connection: sessions a connection holds before another opens; None: the server's
            `maxInboundRate`, times the pacer's share (90%), times the rollup window (1 on Ably: 50 msg/s, 40 ms).
        idle_close_s: how long a connection without sessions stays open (the first one always does).
        account_rate: messages a second all the pool's connections may publish together (your Ably account's
            rate, or this process's share of it); None: no such limit is kept to, and the account's refusals
            are waited out as they come.
        openings_at_once: connections a burst of sessions that finds every connection full opens at the same time.
    """

    def __init__(self, key: str | None = None, endpoint: str | None = None, *, max_connections: int = 16,
                 streams_per_connection: int | None = None, idle_close_s: float = 60.0,
                 account_rate: float | None = None, openings_at_once: int = 1, **options: Any) -> None:
        if max_connections < 1 or openings_at_once < 1:
            raise ConfigurationError("max_connections and openings_at_once must be at least 1")
        self._connect_args = (key, endpoint, options)
        self._max = max_connections
        self._streams = streams_per_connection
        self._idle_close_s = idle_close_s
        self._budget = None if account_rate is None else TokenBucket(lambda: account_rate)
        self._connections: list[_Connection] = []
        self._homes: OrderedDict[str, _Connection] = OrderedDict()
        self._openings: set[asyncio.Future[_Connection]] = set()
        self._openings_at_once = openings_at_once
        self._placing = 0  # sessions in `_place`, waiting for a connection with room
        self._opened = self._closed = 0
        self._rehoming: asyncio.Future[None] | None = None
        self._ending = False

    async def __aenter__(self) -> ConnectionPool:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._ending = True
        if waiting := [opening for opening in (self._rehoming, *self._openings) if opening is not None]:
            await asyncio.wait(waiting)  # a connection they open is closed with the others
        for connection in list(self._connections):
            await self._close(connection)

    @property
    def home(self) -> AblyRealtime:
        """The first connection, open as long as the pool is: for what belongs to no session."""
        return self._connections[0].client

    @property
    def clients(self) -> list[AblyRealtime]:
        return [connection.client for connection in self._connections]

    @asynccontextmanager
    async def lease(self, session_name: str, *, streaming: bool = True) -> AsyncIterator[AblyRealtime]:
        """The connection `session_name` is on, held for it until the block ends: the one it had (while it is open
        and, for a streaming session, has room or is serving this session already: a session's leases at one time
        share its connection), else the least busy one, opened first if every connection is full and the ceiling
        allows.

        `streaming=False`: a session that is only watched (it publishes nothing unless something goes wrong) keeps
        its connection open without taking a stream's place on it."""
        await self._retire_ended()
        connection = self._homes.get(session_name)
        if connection is None or connection not in self._connections or (
                streaming and self._full(connection) and not connection.held[session_name]):
            connection = await self._place() if streaming else self._least_busy()
        self._remember(session_name, connection)
        connection.held[session_name] += 1
        if streaming:
            connection.leases += 1
        else:
            connection.watches += 1
        if connection.closing is not None:
            connection.closing.cancel()
            connection.closing = None
        try:
            yield connection.client
        finally:
            connection.held -= Counter((session_name,))
            if streaming:
                connection.leases -= 1
            else:
                connection.watches -= 1
            if connection.leases == connection.watches == 0:
                self._close_when_idle(connection)

    def client_for(self, session_name: str) -> AblyRealtime:
        """The connection `session_name` is on (its lease's, or the last it had), else the least busy one: where a
        saver publishes a thread's records, beside its session."""
        connection = self._homes.get(session_name)
        if connection is None or connection not in self._connections or has_ended(connection.client):
            connection = self._least_busy()
            self._remember(session_name, connection)
        return connection.client

    def stats(self) -> PoolStats:
        return PoolStats(len(self._connections), sum(c.leases for c in self._connections), self._opened,
                         self._closed, [c.leases for c in self._connections])

    def _remember(self, session_name: str, connection: _Connection) -> None:
        self._homes[session_name] = connection
        self._homes.move_to_end(session_name)
        while len(self._homes) > HOMES_KEPT:
            self._homes.popitem(last=False)

    async def _place(self) -> _Connection:
        """The least busy connection with room. Sessions that find none wait for connections opened for them (as
        many at once as they fill, up to `openings_at_once` and the ceiling) and are placed again as each opens: a
        burst fills the new connections rather than piling onto one for life."""
        self._placing += 1
        try:
            while True:
                least = self._least_busy()
                if not self._full(least):
                    return least
                self._open_for_waiting(self._capacity(least))
                if not self._openings:  # at the ceiling: the least busy takes one more
                    return least
                opened, _ = await asyncio.wait(set(self._openings), return_when=asyncio.FIRST_COMPLETED)
                if failures := [o.exception() for o in opened if not o.cancelled() and o.exception() is not None]:
                    # the account's connection limit, or a network fault: serve on the open
                    log.warning("could not open another connection (%s): serving on the %d open", failures[0],
                                len(self._connections))
                    return self._least_busy()
        finally:
            self._placing -= 1

    def _open_for_waiting(self, capacity: int) -> None:
        """Start openings until those under way hold every session waiting, within the limits."""
        while len(self._openings) * capacity < self._placing and len(self._openings) < self._openings_at_once \
                and len(self._connections) + len(self._openings) < self._max:
            opening = asyncio.ensure_future(self._open())
            self._openings.add(opening)
            opening.add_done_callback(self._opening_done)

    def _opening_done(self, opening: asyncio.Future[_Connection]) -> None:
        self._openings.discard(opening)
        if not opening.cancelled():
            opening.exception()  # retrieved: the sessions that waited for it say it failed

    def _least_busy(self) -> _Connection:
        """The open connection holding the fewest sessions; the home if Ably ended every other."""
        serving = [connection for connection in self._connections if not has_ended(connection.client)]
        return min(serving, key=lambda c: c.leases) if serving else self._connections[0]

    async def _retire_ended(self) -> None:
        """Close the connections Ably ended, the home once another has taken its place."""
        if has_ended(self.home):
            await asyncio.shield(self._rehome())
        for connection in [c for c in self._connections[1:] if has_ended(c.client)]:
            if connection in self._connections:  # another lease may be retiring it already
                reason = connection.client.connection.error_reason
                log.warning("a connection of the pool ended (%s): it is closed, and its %d sessions are placed anew "
                            "on their next lease", reason, connection.leases + connection.watches)
                await self._close(connection)

    def _rehome(self) -> asyncio.Future[None]:
        """Put an open connection (the least busy, or a new one) in the place of the home Ably ended, and close
        that one."""
        if self._rehoming is None or self._rehoming.done():
            self._rehoming = asyncio.ensure_future(self._take_home_place())
        return self._rehoming

    async def _take_home_place(self) -> None:
        ended = self._connections[0]
        if self._ending or not has_ended(ended.client):
            return
        serving = [connection for connection in self._connections[1:] if not has_ended(connection.client)]
        try:
            home = min(serving, key=lambda c: c.leases) if serving else await self._open()
        except Exception as error:  # the account's connection limit, or a network fault: tried again next lease
            log.warning("the pool's first connection ended (%s) and no other could take its place: %s",
                        ended.client.connection.error_reason, error)
            return
        self._connections.remove(home)
        self._connections.insert(0, home)
        _pool_homes.pop(home.client, None)
        for connection in self._connections[1:]:
            _pool_homes[connection.client] = home.client
        for listener in _rehomed.pop(ended.client, set()):
            listener(home.client)
        home.client.connection.on(self._on_home_state)
        log.warning("the pool's first connection ended (%s): another takes its place, with the agent's presence; "
                    "its %d sessions are placed anew on their next lease", ended.client.connection.error_reason,
                    ended.leases + ended.watches)
        await self._close(ended)

    def _on_home_state(self, change: Any) -> None:
        """Rehome as soon as Ably ends the home, not at the next lease: runs announced meanwhile would name a
        member that is gone."""
        if not self._ending and self._connections and has_ended(self.home):
            self._rehome()

    def _full(self, connection: _Connection) -> bool:
        return connection.leases >= self._capacity(connection)

    def _capacity(self, connection: _Connection) -> int:
        if self._streams is not None:
            return self._streams
        return max(1, int(inbound_rate(connection.client) * RATE_SHARE * ROLLUP_WINDOW_S))

    async def _open(self) -> _Connection:
        key, endpoint, options = self._connect_args
        stack = AsyncExitStack()
        client = await stack.enter_async_context(connect(key, endpoint, **_agent_options(options)))
        pacer_for(client).share(self._budget)
        if self._connections:
            _pool_homes[client] = self.home
        connection = _Connection(client, stack)
        self._connections.append(connection)
        if len(self._connections) == 1:
            client.connection.on(self._on_home_state)
        self._opened += 1
        return connection

    def _close_when_idle(self, connection: _Connection) -> None:
        if connection not in self._connections[1:] or connection.closing is not None:
            return
        connection.closing = asyncio.get_running_loop().call_later(
            self._idle_close_s, lambda: asyncio.ensure_future(self._close_if_idle(connection)))

    async def _close_if_idle(self, connection: _Connection) -> None:
        connection.closing = None
        if connection.leases == connection.watches == 0 and connection in self._connections:
            await self._close(connection)

    async def _close(self, connection: _Connection) -> None:
        self._connections.remove(connection)
        for name in [name for name, home in self._homes.items() if home is connection]:
            del self._homes[name]  # a closed client's whole object graph, kept for sessions that must move anyway
        if connection.closing is not None:
            connection.closing.cancel()
        self._closed += 1
        await connection.stack.aclose()


def _agent_options(options: dict[str, Any]) -> dict[str, Any]:
    """`options` for an agent's connection: no echo of its own messages (a session folds them at their ACK) and,
    unless the caller chose a window, no rollup of its appends by Ably (the encoder's window is the rollup)."""
    params = dict(options.get("transport_params") or {})
    params["echo"] = "false"
    params.setdefault("appendRollupWindow", "0")
    return {**options, "transport_params": params}
