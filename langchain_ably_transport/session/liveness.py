"""Is the agent serving a run still there? Presence answers it, so a crashed agent's run does not stream forever.

An agent announces the runs it serves in its presence data on the session channel (`AgentPresence`), before
it publishes their `ai-run-start` (stamped `lcat-liveness: presence`), and withdraws them when they end or
suspend. Ably removes the member of a connection that dropped for good (15 s after an abrupt disconnect), so
`RunLiveness` can call a run *lost* when it is marked, still active, and listed by no present member, provided
it was listed once (live) or predates the presence snapshot taken at attach (history). A run that never
announced itself (a JS agent's) is never called lost: being wrong that way leaves a run open; the other way
would end a healthy one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from ably.types.presence import PresenceAction
from ably.util.exceptions import AblyException

from ..ledger import MessageKind, Publication
from ..ratelimit import pacer_for
from ..wire import names
from ..wire.envelope import WireMessage
from .tree import ConversationTree

log = logging.getLogger(__name__)

AGENT_TAG = "langchain-ably-transport"
ANONYMOUS_AGENT_MEMBER = "langchain-ably-transport-agent"


class AgentPresence:
    """The runs one client serves on one channel, kept in its presence data (one member per client)."""

    def __init__(self, channel: Any, client_id: str | None) -> None:
        self._channel = channel
        self._pacer = pacer_for(channel.ably)
        self._member = client_id if client_id and client_id != "*" else ANONYMOUS_AGENT_MEMBER
        self._runs: set[str] = set()
        self._lock = asyncio.Lock()
        self._entered = False

    async def announce(self, run_id: str) -> bool:
        """List `run_id`; False when presence is refused (no capability, no clientId): the run goes untracked."""
        self._runs.add(run_id)
        return await self._publish(run_id)

    async def withdraw(self, run_id: str) -> None:
        if run_id in self._runs:
            self._runs.discard(run_id)
            await self._publish(run_id)

    async def _publish(self, run_id: str) -> bool:
        publication = Publication(MessageKind.PRESENCE, self._channel.name, run_id)
        async with self._lock:
            presence = self._channel.presence
            try:
                if self._runs:
                    data = {"agent": AGENT_TAG, "runs": sorted(self._runs)}
                    await self._pacer.start(lambda: presence.update_client(self._member, data),
                                            publication=publication)
                    self._entered = True
                elif self._entered:
                    await self._pacer.start(lambda: presence.leave_client(self._member), publication=publication)
                    self._entered = False
                return True
            except AblyException as error:
                _refused(error, f"presence on {self._channel.name} refused ({error}): runs there are not "
                                "tracked for liveness (give the agent a clientId and the presence capability)")
                return False


_warned: set[int] = set()


def _refused(error: AblyException, why: str) -> None:
    """Warn once per process and error code (an agent without presence rights would warn on every run)."""
    if error.code in _warned:
        log.debug(why)
        return
    _warned.add(error.code)
    log.warning(why)


@dataclass
class TrackedRun:
    """What the reaper of a lost run needs to end it as the run's own agent would have."""

    run_id: str
    run_client_id: str
    invocation_id: str
    input_client_id: str | None
    input_codec_message_id: str | None


class RunLiveness:
    """Folds presence events and run lifecycle messages into the set of lost runs. Pure, no I/O."""

    def __init__(self, trusted_agents: frozenset[str | None] | None = None) -> None:
        self._trusted = trusted_agents
        self._listed: dict[tuple[str, str], frozenset[str]] = {}
        self._expected: set[str] = set()
        self.tracked: dict[str, TrackedRun] = {}

    def on_lifecycle(self, wire: WireMessage) -> None:
        transport = wire.transport
        run_id = transport.get(names.HEADER_RUN_ID)
        if not run_id or wire.name not in (names.RUN_START, names.RUN_RESUME):
            return
        if transport.get(names.HEADER_LIVENESS) != names.LIVENESS_PRESENCE:
            self.tracked.pop(run_id, None)
            return
        self.tracked[run_id] = TrackedRun(
            run_id, transport.get(names.HEADER_RUN_CLIENT_ID, ""), transport.get(names.HEADER_INVOCATION_ID, ""),
            transport.get(names.HEADER_INPUT_CLIENT_ID),
            transport.get(names.HEADER_INPUT_CODEC_MESSAGE_ID))

    def on_presence(self, member: Any) -> None:
        """One presence event or member, as an ably-python `PresenceMessage`."""
        key = (member.connection_id or "", member.client_id or "")
        runs = _runs_of(member.data) if self._trusted is None or member.client_id in self._trusted else frozenset()
        if member.action in (PresenceAction.LEAVE, PresenceAction.ABSENT) or not runs:
            self._listed.pop(key, None)
            return
        self._listed[key] = runs
        self._expected |= runs

    def snapshot_taken(self, tree: ConversationTree) -> None:
        """Presence as of the attach point is known: runs folded so far (history) must be listed from now on."""
        self._expected |= {run_id for run_id in self.tracked if _active(tree, run_id)}

    def lost(self, tree: ConversationTree) -> list[TrackedRun]:
        listed = frozenset().union(*self._listed.values())
        return [run for run_id, run in self.tracked.items()
                if run_id in self._expected and run_id not in listed and _active(tree, run_id)]

    def is_listed(self, run_id: str) -> bool:
        return any(run_id in runs for runs in self._listed.values())


def _runs_of(data: Any) -> frozenset[str]:
    """The run ids in an agent member's data; anything else on the channel's presence lists none."""
    if not isinstance(data, dict) or data.get("agent") != AGENT_TAG or not isinstance(data.get("runs"), list):
        return frozenset()
    return frozenset(run for run in data["runs"] if isinstance(run, str))


def _active(tree: ConversationTree, run_id: str) -> bool:
    node = tree.run(run_id)
    return node is not None and node.status == names.RunStatus.ACTIVE
