"""Is the agent serving a run still there? Presence answers it, at no cost per run, so a crashed agent's run does
not stream forever.

Each agent client enters presence once, on one channel of the app (`LIVENESS_CHANNEL`), as an *instance* with an id of
its own (`AgentInstance`), before it publishes its first run start; every `ai-run-start` it publishes names that
instance (`lcat-liveness: <instance id>`). A `ConnectionPool`'s connections are one instance, present on the pool's
first connection (`pool_home`), which is open as long as the process serves: its crash takes all of them. It never
updates or leaves the member while it lives: a run costs no presence message. Ably removes the member of a connection
that dropped for good (15 s after an abrupt disconnect), so `RunLiveness` calls a run *lost* when it is active and its
instance, once seen present (live, or at the snapshot taken when a session opened), is no longer. A run that names no
instance (a JS agent's, or an agent refused presence) is never called lost: being wrong that way leaves a run open; the
other way would end a healthy one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from ably.types.presence import PresenceAction
from ably.util.exceptions import AblyException

from ..ledger import MessageKind, Publication
from ..pool import pool_home
from ..sdk.pacer import pacer_for
from ..sdk.per_client import PerClient
from ..wire import names
from ..wire.envelope import WireMessage
from .tree import ConversationTree

log = logging.getLogger(__name__)

AGENT_TAG = "langchain-ably-transport"
ANONYMOUS_AGENT_MEMBER = "langchain-ably-transport-agent"
LIVENESS_CHANNEL = "langchain-ably-transport:agents"
"""Where agent instances are present: agents need `presence` and `subscribe` on it, clients `subscribe`."""


class AgentInstance:
    """One agent client's presence member on `LIVENESS_CHANNEL`, entered once, before the first run it announces."""

    def __init__(self, client: Any) -> None:
        self.id = uuid.uuid4().hex
        self._client = client
        self._member = client.auth.client_id if client.auth.client_id not in (None, "*") else ANONYMOUS_AGENT_MEMBER
        self._entered: asyncio.Future[bool] | None = None

    async def enter(self) -> str | None:
        """The instance id, present on the channel; None when presence is refused (no capability, no clientId):
        the runs go untracked. A refusal is tried again on the next run, the connection may have been down."""
        if self._entered is None or (self._entered.done() and not self._entered.result()):
            self._entered = asyncio.ensure_future(self._enter())
        return self.id if await asyncio.shield(self._entered) else None

    async def _enter(self) -> bool:
        channel = self._client.channels.get(LIVENESS_CHANNEL)
        publication = Publication(MessageKind.PRESENCE, LIVENESS_CHANNEL)
        data = {"agent": AGENT_TAG, "instance": self.id}
        try:
            await pacer_for(self._client).start(lambda: channel.presence.update_client(self._member, data),
                                                publication=publication)
            return True
        except AblyException as error:
            _refused(error, f"presence on {LIVENESS_CHANNEL} refused ({error}): runs are not tracked for liveness "
                            "(give the agent a clientId, and presence and subscribe on that channel)")
            return False


_instances = PerClient(AgentInstance)


def agent_instance(client: Any) -> AgentInstance:
    """The instance every agent session of `client` announces its runs under (one member per connection, or pool)."""
    return _instances.of(pool_home(client))


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
    instance: str = ""


class RunLiveness:
    """Folds presence events and run lifecycle messages into the set of lost runs. Pure, no I/O."""

    def __init__(self, trusted_agents: frozenset[str | None] | None = None) -> None:
        self._trusted = trusted_agents
        self._present: dict[tuple[str, str], str] = {}
        self._expected: set[str] = set()
        self.tracked: dict[str, TrackedRun] = {}

    def on_lifecycle(self, wire: WireMessage) -> None:
        transport = wire.transport
        run_id = transport.get(names.HEADER_RUN_ID)
        if not run_id or wire.name not in (names.RUN_START, names.RUN_RESUME):
            return
        instance = transport.get(names.HEADER_LIVENESS) or ""
        if not _is_instance(instance):
            self.tracked.pop(run_id, None)
            return
        self.tracked[run_id] = TrackedRun(
            run_id, transport.get(names.HEADER_RUN_CLIENT_ID, ""), transport.get(names.HEADER_INVOCATION_ID, ""),
            transport.get(names.HEADER_INPUT_CLIENT_ID),
            transport.get(names.HEADER_INPUT_CODEC_MESSAGE_ID), instance)

    def on_presence(self, member: Any) -> None:
        """One presence event or member of `LIVENESS_CHANNEL`, as an ably-python `PresenceMessage`."""
        key = (member.connection_id or "", member.client_id or "")
        trusted = self._trusted is None or member.client_id in self._trusted
        instance = _instance_of(member.data) if trusted else None
        if member.action in (PresenceAction.LEAVE, PresenceAction.ABSENT) or instance is None:
            self._present.pop(key, None)
            return
        self._present[key] = instance
        self._expected.add(instance)

    def forget_presence(self) -> None:
        """What was known of presence is replaced by a snapshot, next (the events since the watch began are in it)."""
        self._present.clear()

    def snapshot_taken(self, tree: ConversationTree) -> None:
        """Presence as of the session's opening is known: the instances of runs folded so far (history) must be
        present from now on."""
        self._expected |= {run.instance for run_id, run in self.tracked.items() if _active(tree, run_id)}

    def lost(self, tree: ConversationTree) -> list[TrackedRun]:
        present = set(self._present.values())
        return [run for run_id, run in self.tracked.items()
                if run.instance in self._expected and run.instance not in present and _active(tree, run_id)]

    def is_present(self, run_id: str) -> bool:
        """Whether the instance serving `run_id` is present now."""
        run = self.tracked.get(run_id)
        return run is not None and run.instance in self._present.values()


def _instance_of(data: Any) -> str | None:
    """The instance an agent member stands for; anything else on the channel's presence stands for none."""
    if not isinstance(data, dict) or data.get("agent") != AGENT_TAG:
        return None
    instance = data.get("instance")
    return instance if isinstance(instance, str) and _is_instance(instance) else None


def _is_instance(value: str) -> bool:
    """An instance id: 32 hexadecimal digits (anything else, like an older agent's "presence", names none)."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _active(tree: ConversationTree, run_id: str) -> bool:
    node = tree.run(run_id)
    return node is not None and node.status == names.RunStatus.ACTIVE
