"""What agent and client sessions share: one channel folded, in serial order, into a conversation tree.

Opening subscribes first (live messages are held), then reads the history before the attach point
(pages newest first, folded oldest first), then releases the held live messages: no gap and no duplicate,
because history ends exactly where live delivery begins. Sessions of one client on one channel share a
core (`acquire`/`release`): a channel attaches once per client, so a second session could not get an attach
point of its own, and everything the first one folded is what the second needs anyway.

A core may *linger* after its last session closes (`linger_s`, which `serve_graph` sets): it stays attached and
folding, and the next session of the same name on the same client takes it up without attaching, following
presence or reading history again (a conversation's next turn usually comes within seconds). It is closed when the
time is up, when the client's connection broke meanwhile (it may have missed messages), when it has folded more
than `LINGER_LOG_LIMIT` messages, when more than `LINGERING_KEPT` cores of the client linger, or when the session
opens on another client (a pool places a session anew when its connection is full): the lingering core would fold,
and Ably deliver, every message of the turn a second time.

A core that closes goes *dormant*: its messages stay in this process as a history read would return them, packed
(`_Dormant`; the newest sessions', up to `DORMANT_BYTES_KEPT` in all), and the session's next core in this loop, on
any client of the same connection pool (the same app), folds them and reads only the history since (Ably bills every
message a history request returns: opening a long conversation afresh reads a whole page, up to 100 messages, every
turn). Only a core with no stream still open goes dormant: a stream's later appends would change a message it holds,
and a read of what came since would not return them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ably import AblyRealtime
from ably.types.channelstate import ChannelState
from ably.types.connectionstate import ConnectionState
from ably.util.exceptions import AblyException

from ..codec import DecodedEvent, Decoder, UIMessageAccumulator
from ..codec.chunks import CodecMessage
from ..errors import ConfigurationError
from ..pool import off_rehomed, on_rehomed, pool_home
from ..sdk.channels import present_members, release_channel
from ..sdk.per_client import PerClient
from ..sdk.states import connection_id, echoes_own_messages, has_ended
from ..wire import names
from ..wire.aggregate import as_history
from ..wire.envelope import WireMessage, packed, unpacked
from .channel import ChannelWriter, history_before, history_before_attach, history_since
from .fence import Mark, continuity_of
from .liveness import LIVENESS_CHANNEL, RunLiveness, TrackedRun
from .tree import ConversationTree, Node
from .trust import Trusted

log = logging.getLogger(__name__)

Listener = Callable[[WireMessage, list[DecodedEvent], bool], None]
LostListener = Callable[[list[TrackedRun]], None]
PRESENCE_SYNC_TIMEOUT_S = 10.0
PRESENCE_RETRY_S = 5.0  # a watch of presence that failed for want of a connection is tried again after this long
REJECTED_KEPT = 100
LINGER_LOG_LIMIT = 2000
LINGERING_KEPT = 64  # per client: Ably allows 200 channels per connection, and a saver's threads need theirs
DORMANT_BYTES_KEPT = 16 * 1024 * 1024  # the packed messages of the dormant cores of a process, together


@dataclass(eq=False)
class _Dormant:
    """What a closed core folded, for the session's next core (see the module's docstring): its messages as a history
    read would return them, which the next core folds again."""

    home: AblyRealtime  # the pool's (`pool_home`): its connections reach the same app
    loop: asyncio.AbstractEventLoop
    history_pages: int | None
    trusted_agents: frozenset[str | None] | None
    log: bytes  # `packed`: in serial order, every message with a serial and a timestamp
    selected: dict[str | None, str]
    rejected: deque[WireMessage]
    has_older: bool  # history older than `log` that the core did not read
    newest_serial: str  # the largest serial folded: the next core folds the messages after it
    latest_timestamp: int  # the latest timestamp folded: no message after it is older

    def fits(self, home: AblyRealtime, history_pages: int | None,
             trusted_agents: frozenset[str | None] | None) -> bool:
        """Whether a core opened with these settings can start from it (a core folds what those settings let in)."""
        return (self.home is home and self.loop is asyncio.get_running_loop() and self.history_pages == history_pages
                and self.trusted_agents == trusted_agents and not has_ended(home))


class _DormantCores:
    """The dormant cores of a process by pool and session name, the oldest dropped first beyond a budget of
    bytes (`DORMANT_BYTES_KEPT`, read at each put, so that it can be changed at run time)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[int, str], _Dormant] = OrderedDict()
        self._bytes = 0

    def put(self, name: str, dormant: _Dormant) -> None:
        self.take(dormant.home, name)
        self._entries[(id(dormant.home), name)] = dormant
        self._bytes += len(dormant.log)
        # Beyond the budget, and those of a pool that ended (an entry keeps its whole object graph), oldest first.
        while self._entries and (self._bytes > DORMANT_BYTES_KEPT
                                 or has_ended(next(iter(self._entries.values())).home)):
            self._bytes -= len(self._entries.popitem(last=False)[1].log)

    def take(self, home: AblyRealtime, name: str) -> _Dormant | None:
        dormant = self._entries.pop((id(home), name), None)
        if dormant is not None:
            self._bytes -= len(dormant.log)
        return dormant


class SessionCore:
    _shared: ClassVar[dict[tuple[int, str], SessionCore]] = {}
    # Channels being detached by a core's last release: a new core of the same channel waits for the detach, or
    # its attach would be undone by it (ably-python fails the detach "superseded" and the new core hears nothing).
    _detaching: ClassVar[dict[tuple[int, str], asyncio.Future[None]]] = {}
    _lingering_by_name: ClassVar[dict[str, set[SessionCore]]] = {}  # on every client
    _dormant: ClassVar[_DormantCores] = _DormantCores()

    @classmethod
    async def acquire(cls, client: AblyRealtime, session_name: str, history_pages: int | None = None,
                      trusted_agents: Trusted | None = None, *, linger_s: float = 0.0) -> SessionCore:
        """The client's core for `session_name`, opened on first use with `history_pages` pages of history
        (None: all of it; the first session to open the channel decides) and `trusted_agents` (None: any
        publisher's agent messages are folded; sessions sharing the core must agree). `linger_s`: how long the
        core stays open after its last session closes, for the next one to take up (the longest asked wins)."""
        key = (id(client), session_name)
        while (detaching := cls._detaching.get(key)) is not None:
            await detaching
        core = cls._shared.get(key)
        if core is not None and core._linger_mark is not None and not core._fits(history_pages, trusted_agents):
            await core._close()
            core = None
        if core is None:
            cls._end_lingering_elsewhere(session_name)
            core = cls._shared[key] = cls(client, session_name, history_pages, trusted_agents)
            dormant = cls._dormant.take(home := pool_home(client), session_name)
            if dormant is not None and not dormant.fits(home, history_pages, core.trusted_agents):
                dormant = None
            core._opening = asyncio.ensure_future(core._open(dormant))
        elif core.trusted_agents != (None if trusted_agents is None else frozenset(trusted_agents)):
            raise ConfigurationError(f"sessions of one client on {session_name!r} share what they fold, so they must "
                             f"trust the same agents ({core.trusted_agents} vs {trusted_agents})")
        core._wake()
        core._linger_s = max(core._linger_s, linger_s)
        core._users += 1
        try:
            await asyncio.shield(core._opening)
        except BaseException:
            await core.release()
            raise
        return core

    async def release(self) -> None:
        self._users -= 1
        if self._users > 0:
            return
        if self._linger_s > 0 and self._opening is not None and self._opening.done() \
                and not self._opening.cancelled() and self._opening.exception() is None:
            self._linger()
            return
        await self._close()

    @classmethod
    def _end_lingering_elsewhere(cls, session_name: str) -> None:
        """Close the cores of `session_name` lingering on other clients (in this loop): the session opens anew."""
        loop = asyncio.get_running_loop()
        for core in list(cls._lingering_by_name.get(session_name, ())):
            if core._loop is loop:
                core.close_soon()

    def _linger(self) -> None:
        self._linger_mark = continuity_of(self.client).mark()
        self._lingering = asyncio.get_running_loop().call_later(self._linger_s, self._expire)
        _lingering.of(self.client).add(self)
        self._lingering_by_name.setdefault(self.name, set()).add(self)

    def _wake(self) -> None:
        """Taken up again, or closing: no longer lingering."""
        if self._linger_mark is None:
            return
        if self._lingering is not None:
            self._lingering.cancel()
        self._lingering = self._linger_mark = None
        _lingering.of(self.client).discard(self)
        named = self._lingering_by_name.get(self.name, set())
        named.discard(self)
        if not named:
            self._lingering_by_name.pop(self.name, None)

    def _fits(self, history_pages: int | None, trusted_agents: Trusted | None) -> bool:
        """Whether a lingering core can serve a session opened with these settings, and has missed nothing."""
        return (self._loop is asyncio.get_running_loop() and history_pages == self._initial_pages
                and self.trusted_agents == (None if trusted_agents is None else frozenset(trusted_agents))
                and len(self._log) <= LINGER_LOG_LIMIT and self.channel.state == ChannelState.ATTACHED
                and self._linger_mark is not None and not continuity_of(self.client).broken_since(self._linger_mark))

    def _expire(self) -> None:
        self._lingering = None
        self.close_soon()

    def close_soon(self) -> None:
        """Close now, without waiting for the detach (a lingering core whose time is up)."""
        if (detached := self._retire()) is not None:
            _lingering.of(self.client).keep(asyncio.ensure_future(self._detach(detached)))

    async def _close(self) -> None:
        if (detached := self._retire()) is not None:
            await self._detach(detached)

    def _retire(self, detach: bool = True) -> asyncio.Future[None] | None:
        """Out of `_shared` at once, so no session takes the core up while it detaches; the detach's future, which
        a new core of the channel waits for (None: a core already retired, nothing to detach, or a loop gone)."""
        self.writer.on_sent = None  # a reference back to this core: a cycle, which only the collector would free
        self._wake()
        off_rehomed(self._home, self._on_rehomed)
        if self._rewatching is not None:
            self._rewatching.cancel()
        if self._watch_retry is not None:
            self._watch_retry.cancel()
        key = (id(self.client), self.name)
        if self._shared.get(key) is not self:
            return None
        del self._shared[key]
        if not detach or self._loop is not asyncio.get_running_loop():
            return None
        detached = self._detaching[key] = self._loop.create_future()
        return detached

    def _go_dormant(self) -> None:
        """Keep what this core folded for the session's next core, unless it may change or is not whole."""
        opened = self._opening is not None and self._opening.done() and not self._opening.cancelled() \
            and self._opening.exception() is None
        if not opened or len(self._log) > LINGER_LOG_LIMIT or self._decoder.has_open_streams():
            return
        log = as_history(self._log)  # a message per stream, not per append: what the next core would read afresh
        if not log or any(wire.serial is None or wire.timestamp is None for wire in log):
            return
        # An append carries its stream's serial, so the newest message is the largest serial, not the last folded.
        # What this core did not fold came after all it folded, Ably's timestamps included.
        newest = max(wire.serial for wire in log if wire.serial is not None)
        latest = max(wire.timestamp for wire in self._log if wire.timestamp is not None)
        self._dormant.put(self.name, _Dormant(
            pool_home(self.client), self._loop, self._initial_pages, self.trusted_agents, packed(log),
            dict(self.tree.selected), self.rejected, self._history is not None, newest, latest))

    async def _detach(self, detached: asyncio.Future[None]) -> None:
        key = (id(self.client), self.name)
        try:
            self.channel.unsubscribe(self._on_message)
            self._go_dormant()
            self._presence.unsubscribe(self._on_presence)
            await self.channel.detach()
            release_channel(self.client, self.channel)
        except AblyException as error:  # the sessions are done with the channel; its state is no one's concern
            log.info("could not detach %s: %s", self.name, error)
        finally:
            del self._detaching[key]
            detached.set_result(None)

    def __init__(self, client: AblyRealtime, session_name: str, history_pages: int | None = None,
                 trusted_agents: Trusted | None = None) -> None:
        self.client = client
        self.trusted_agents = None if trusted_agents is None else frozenset(trusted_agents)
        self.rejected: deque[WireMessage] = deque(maxlen=REJECTED_KEPT)
        self.name = session_name
        self.channel = client.channels.get(session_name)
        self.writer = ChannelWriter(self.channel)
        # Without Ably's echo, what this client publishes is folded at its ACK. One of its messages may arrive all the
        # same (an attach resumed from an older channelSerial replays what came since), before or after its ACK: the
        # connections this client published from, whose messages are never folded as they arrive.
        self._own_connections: set[str] | None = None if echoes_own_messages(client) else set()
        if self._own_connections is not None:
            self.writer.on_sent = self._on_sent
        self._newest_timestamp: int | None = None  # Ably's clock, as the messages folded have read it
        self._clock_offset_ms: float | None = None  # at least Ably's clock less `time.monotonic()`, in ms
        self.tree = ConversationTree()
        self._decoder = Decoder()
        self._held: list[WireMessage] | None = []
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        self._users = 0
        self._opening: asyncio.Future[None] | None = None
        self._initial_pages = history_pages
        self._history: AsyncIterator[list[Any]] | None = None
        self._log: list[WireMessage] = []
        self.names_seen: set[str] = set()  # what the session carries (a codec's layer refuses the other codec's)
        self.liveness = RunLiveness(self.trusted_agents)
        self._lost_listeners: list[LostListener] = []
        self._home = pool_home(client)
        self._presence = self._home.channels.get(LIVENESS_CHANNEL).presence  # one watch per pool
        self._rewatching: asyncio.Future[None] | None = None
        self._watch_retry: asyncio.TimerHandle | None = None
        self._presence_known = False  # a watch of presence has succeeded
        self._snapshot_due = True  # the first presence read has yet to vouch for the runs folded before it
        self._loop = asyncio.get_running_loop()
        self._linger_s = 0.0
        self._lingering: asyncio.TimerHandle | None = None
        self._linger_mark: Mark | None = None

    def listen(self, listener: Listener, *, replay: bool = False) -> None:
        """`listener(wire, events, live)` for every message folded from now on; with `replay`, first for every
        message already folded (as `live=False`, without its events)."""
        if replay:
            for wire in list(self._log):
                listener(wire, [], False)
        self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def on_lost(self, listener: LostListener) -> None:
        """`listener(runs)` whenever presence shows runs whose agent is gone (see `liveness`)."""
        self._lost_listeners.append(listener)

    def off_lost(self, listener: LostListener) -> None:
        self._lost_listeners.remove(listener)

    def lost_runs(self) -> list[TrackedRun]:
        return self.liveness.lost(self.tree)

    async def _open(self, dormant: _Dormant | None = None) -> None:
        # The agents' presence is on a channel of its own: watching it does not wait for this one's attach.
        watching_presence = asyncio.ensure_future(self._watch_presence())
        try:
            await self.channel.subscribe(self._on_message)
        except BaseException:
            watching_presence.cancel()
            raise
        await watching_presence
        if dormant is None:
            self._history = history_before_attach(self.client, self.channel)
            await self.load_older(self._initial_pages)
        else:
            await self._start_from(dormant)
        if self._presence_known:
            self._take_snapshot()
        held, self._held = self._held or [], None
        for wire in held:
            self._fold(wire, live=True)

    async def _start_from(self, dormant: _Dormant) -> None:
        """Fold what a dormant core held, then the history that came after its newest message."""
        self.rejected, log = dormant.rejected, unpacked(dormant.log)
        oldest = log[0].timestamp
        if dormant.has_older and oldest is not None:
            self._history = history_before(self.client, self.channel, oldest)
        self.tree.selected.update(dormant.selected)
        self._refold(log)
        newer: list[WireMessage] = []
        async for page in history_since(self.client, self.channel, dormant.latest_timestamp):
            fresh = [m for m in reversed(page) if m.serial and m.serial > dormant.newest_serial]
            newer = [w for w in map(WireMessage.from_ably, fresh) if w is not None and self._believed(w)] + newer
            if len(fresh) < len(page):
                break
        for wire in newer:
            self._fold(wire, live=False)

    @property
    def has_older(self) -> bool:
        return self._history is not None

    async def load_older(self, pages: int | None = 1) -> int:
        """Fold up to `pages` more pages of history (None: all of it) beneath what is held; returns messages added.

        Older messages change what newer ones decode to (a stream's create comes before its appends), so the
        tree and the decoder are rebuilt from the whole log, in serial order. Listeners are told of the older
        messages (as not live, without their events), not again of the rest: an agent paging back to its trigger
        must still see the cancels sent after it.
        """
        older: list[WireMessage] = []
        while self._history is not None and (pages is None or pages > 0):
            try:
                page = await anext(self._history)
            except StopAsyncIteration:
                self._history = None
                break
            if self._log and (held := self._log[0].serial) is not None:  # a page may reach into what is held
                page = [m for m in page if m.serial and m.serial < held]
            older = [w for w in (WireMessage.from_ably(m) for m in reversed(page)) if self._believed(w)] + older
            pages = None if pages is None else pages - 1
        if older and self._log:
            self._refold(older + self._log)
            for wire in older:
                self._tell(wire, [], live=False)
        else:
            for wire in older:
                self._fold(wire, live=False)
        return len(older)

    async def load_older_until(self, found: Callable[[], bool]) -> bool:
        """Fold older history until `found()` holds or none is left; whether it holds. Pages come 1, 2, 4, ... at a
        time, so a search through a long session (for an id that may be nowhere: anyone can ask for one) refolds
        it a logarithmic number of times, not once per page."""
        pages = 1
        while not found() and self.has_older:
            await self.load_older(pages)
            pages *= 2
        return found()

    def _refold(self, log: list[WireMessage]) -> None:
        selected = self.tree.selected
        self.tree, self._decoder, self._log = ConversationTree(), Decoder(), []
        self.tree.selected.update(selected)
        for wire in log:
            self._log.append(wire)
            self._apply(wire, self._decode(wire))
        self._changed.set()

    async def _watch_presence(self) -> bool:
        """Follow the agents' presence (see `liveness`) from now on; False (liveness unknown) where it is refused, or
        cannot be read now (then tried again in `PRESENCE_RETRY_S`)."""
        current = self._shared.get((id(self.client), self.name)) is self  # not retired meanwhile (`_retire` lets go)
        if current:
            on_rehomed(self._home, self._on_rehomed)
        try:
            await self._presence.subscribe(self._on_presence)
            await asyncio.wait_for(self._presence.get(), PRESENCE_SYNC_TIMEOUT_S)  # attached, and synced
        except (AblyException, TimeoutError) as error:
            retrying = current and not _refused(error)
            (log.debug if self._watch_retry is not None else log.info)(
                "no presence on %s (%s): lost runs are not detected on %s%s", LIVENESS_CHANNEL, error, self.name,
                f" until it can be read (tried again every {PRESENCE_RETRY_S:g} s)" if retrying else "")
            if retrying:
                self._watch_retry = self._loop.call_later(PRESENCE_RETRY_S, self._watch_again)
            return False
        self._presence_known, self._watch_retry = True, None
        # The members as they are now, with every event since the subscribe in them, and not as `get()` listed them
        # when the sync ended: a LEAVE handled meanwhile would be undone, and its runs never called lost.
        self.liveness.forget_presence()
        for member in present_members(self._presence):
            self.liveness.on_presence(member)
        return True

    def _on_rehomed(self, home: AblyRealtime) -> None:
        if self._watch_retry is not None:
            self._watch_retry.cancel()  # the watch on the new home stands in for it
        self._rewatching = asyncio.ensure_future(self._rewatch(home))

    def _watch_again(self) -> None:
        self._rewatching = asyncio.ensure_future(self._rewatch(self._home))

    async def _rewatch(self, home: AblyRealtime) -> None:
        """Watch presence on `home`, from a snapshot: the connection a pool put in the place of the one watched here
        (Ably ended it), where no event said who left meanwhile, or the same one after a watch that failed. Until the
        snapshot is in, the members known stay known: forgotten at once, every other replica would read as gone, and
        its runs as lost, at the first event."""
        self._presence.unsubscribe(self._on_presence)
        self._home = home
        self._presence = home.channels.get(LIVENESS_CHANNEL).presence
        if await self._watch_presence():
            if self._held is None:  # open: the runs it folded before any presence was read are vouched for now
                self._take_snapshot()
            self._presence_changed()

    def _take_snapshot(self) -> None:
        if self._snapshot_due:
            self._snapshot_due = False
            self.liveness.snapshot_taken(self.tree)

    def _on_presence(self, member: Any) -> None:
        self.liveness.on_presence(member)
        self._presence_changed()

    def _presence_changed(self) -> None:
        self._changed.set()
        if self._held is None and self._lost_listeners and (lost := self.lost_runs()):
            for listener in list(self._lost_listeners):
                listener(lost)

    def _on_message(self, message: Any) -> None:
        wire = WireMessage.from_ably(message)
        if wire is not None and self._published_here(wire):
            return  # folded at its ACK
        self._take(wire)

    def _read_clock(self, wire: WireMessage) -> None:
        """Ably stamped a message it sent (live or in history) before this client folds it: its timestamp less the
        time now is no more than Ably's clock is ahead of this one."""
        if wire.timestamp is not None and not self._published_here(wire):
            offset = wire.timestamp - time.monotonic() * 1000
            if self._clock_offset_ms is None or offset > self._clock_offset_ms:
                self._clock_offset_ms = offset

    def _on_sent(self, wire: WireMessage, sent_at: float) -> None:
        """A message this client published, as Ably would have echoed it, with a timestamp no later than the one Ably
        gave it (Ably stamps a message when it arrives, after `sent_at`): a dormant core reads the history since the
        latest timestamp it holds, and one ahead of Ably's would skip what came meanwhile. The newest timestamp
        folded bounds it too, where no clock was read yet."""
        if self._own_connections is not None and wire.connection_id is not None:
            self._own_connections.add(wire.connection_id)
        sent = None if self._clock_offset_ms is None else int(sent_at * 1000 + self._clock_offset_ms)
        newest = self._newest_timestamp
        wire.timestamp = newest if sent is None else sent if newest is None else max(sent, newest)
        self._take(wire)

    def _published_here(self, wire: WireMessage) -> bool:
        """Whether `wire` came from this client, on a connection that Ably does not echo (else nothing did)."""
        own = self._own_connections
        return own is not None and wire.connection_id is not None and (
            wire.connection_id in own or wire.connection_id == connection_id(self.client))

    def _take(self, wire: WireMessage | None) -> None:
        if wire is None or not self._believed(wire):
            return
        if self._held is not None:
            self._held.append(wire)
        else:
            self._fold(wire, live=True)

    def _believed(self, wire: WireMessage | None) -> bool:
        """Protocol messages, less agent messages from publishers outside `trusted_agents` (kept in `rejected`).

        Capabilities cannot stop a client that may publish on the channel from publishing `ai-run-end` or
        `ai-output` under a real run id; only inputs and cancels are the clients' to send.
        """
        if wire is None:
            return False
        if self.trusted_agents is None or wire.name in names.CLIENT_NAMES or wire.client_id in self.trusted_agents:
            return True
        log.warning("ignored %s from %r on %s: not a trusted agent", wire.name, wire.client_id, self.name)
        self.rejected.append(wire)
        return False

    def _decode(self, wire: WireMessage) -> list[DecodedEvent]:
        try:
            return self._decoder.decode(wire)
        except Exception:  # a hostile or broken message must not stop the session
            log.warning("could not decode %s %s; skipped", wire.name, wire.serial, exc_info=True)
            return []

    def _fold(self, wire: WireMessage, live: bool) -> None:
        if self._own_connections is not None:
            self._read_clock(wire)
        events = self._decode(wire)
        self._log.append(wire)
        self._apply(wire, events)
        self._tell(wire, events, live)
        self._changed.set()

    def _tell(self, wire: WireMessage, events: list[DecodedEvent], live: bool) -> None:
        for listener in list(self._listeners):
            try:
                listener(wire, events, live)
            except Exception:  # one session's failure must not starve the others sharing the channel
                log.exception("a listener of %s failed on %s %s", self.name, wire.name, wire.serial)

    def _apply(self, wire: WireMessage, events: list[DecodedEvent]) -> None:
        if wire.name is not None:
            self.names_seen.add(wire.name)
        if wire.timestamp is not None and (self._newest_timestamp is None or wire.timestamp > self._newest_timestamp):
            self._newest_timestamp = wire.timestamp
        try:
            self.tree.apply(wire, events)
        except Exception:  # as in `_decode`: a hostile message is skipped, never fatal
            log.warning("could not fold %s %s; skipped", wire.name, wire.serial, exc_info=True)
        if wire.name in names.RUN_LIFECYCLE_NAMES:
            self.liveness.on_lifecycle(wire)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` holds after some fold, up to `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return predicate()
        return True


class _Lingering:
    """One client's lingering cores, oldest first: at most `LINGERING_KEPT`, all retired when the client closes."""

    def __init__(self, client: Any) -> None:
        self._cores: dict[SessionCore, None] = {}
        self._detaching: set[asyncio.Future[None]] = set()
        client.connection.on(self._on_state)

    def add(self, core: SessionCore) -> None:
        self._cores[core] = None
        while len(self._cores) > LINGERING_KEPT:
            next(iter(self._cores)).close_soon()

    def discard(self, core: SessionCore) -> None:
        self._cores.pop(core, None)

    def keep(self, detaching: asyncio.Future[None]) -> None:
        self._detaching.add(detaching)
        detaching.add_done_callback(self._detaching.discard)

    def _on_state(self, change: Any) -> None:
        if change.current in (ConnectionState.CLOSED, ConnectionState.FAILED):
            for core in list(self._cores):
                core._retire(detach=False)  # a closed client has nothing to detach


_lingering = PerClient(_Lingering)


def _refused(error: BaseException) -> bool:
    """Presence is refused (no capability, no clientId), not out of reach for now: reading it again would not help."""
    return isinstance(error, AblyException) and error.status_code in (401, 403)


def node_messages(node: Node) -> list[CodecMessage]:
    """The UIMessages a node holds: the user's message, or everything a run published (steers included)."""
    accumulator = UIMessageAccumulator()
    accumulator.apply_all(node.events)
    return accumulator.entries


def chain_messages(chain: list[Node]) -> list[CodecMessage]:
    return [entry for node in chain for entry in node_messages(node)]
