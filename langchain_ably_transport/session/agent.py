"""The agent side of a session: runs that start (or resume), stream outputs, and end, suspend or get cancelled.

`AgentSession` opens the session channel; `create_run(invocation)` locates the trigger input the client
published (live or in history) and returns a `Run`. A `Run` publishes `ai-run-start` (`ai-run-resume` for a
continuation), pipes chunk streams through the codec as steps, and ends. Cancels from any client fire
`run.cancelled`, an `asyncio.Event` the caller can await or pass down; steers are surfaced on the run and
acknowledged on the next pass's outputs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ably import AblyRealtime
from ably.types.connectionstate import ConnectionState
from ably.util.exceptions import AblyException
from langchain_core.messages import BaseMessage

from ..codec import DecodedEvent, MessageEncoder, decode_input
from ..codec.chunks import CodecMessage, Input
from ..codec.langchain import ui_messages_to_langchain
from ..codec.step_markers import RunPhases
from ..errors import ErrorCode, RunError
from ..sdk import adopt
from ..sdk.states import has_ended
from ..wire import names
from ..wire.envelope import WireMessage
from ..wire.headers import (
    build_transport_headers,
    cancel_message,
    read_cancel_target,
    run_end_message,
    run_resume_message,
    run_start_message,
    run_suspend_message,
    step_end_message,
    step_start_message,
)
from ..wire.ids import MAX_ID_LENGTH, is_valid_id, read_ids
from ..wire.invocation import Invocation
from .adoption import AdoptionClaims
from .channel import ChannelWriter, recent_history
from .control import Authorize, ControlAction, ControlRequest, awaited, log_refusal, run_owner_only, settle, verdict
from .core import Listener, SessionCore, chain_messages
from .fence import FencedWriter, continuity_of
from .liveness import TrackedRun, agent_instance
from .repair import LeftOpen
from .tree import Node
from .trust import agent_trust

log = logging.getLogger(__name__)

MAX_BUFFERED_CANCELS = 200
MAX_BUFFERED_CANCELS_PER_CLIENT = 20
MAX_STEERS_PER_PASS = 32
TRIGGER_IDS = (names.HEADER_CODEC_MESSAGE_ID, names.HEADER_RUN_ID, names.HEADER_PARENT, names.HEADER_FORK_OF,
               names.HEADER_MSG_REGENERATE)
DEFAULT_TRIGGER_TIMEOUT_S = 10.0
CLAIM_WAIT_S = 10.0  # how long an adopter waits to see the channel order the claims
RECONNECT_WAIT_S = 120.0  # how long a run cut off by a break waits for its connection (Ably's resume window)
HOLD_HISTORY_PAGES = 5  # pages of newest history a run cut off by a break reads for another process's hold
AGENT_LOST_MESSAGE = ("agent lost: the process serving this run stopped (its presence left the session); "
                      "the conversation can go on")
CUT_OFF_MESSAGE = "agent cut off: Ably ended the connection this run streamed on; the conversation can go on"


@dataclass(frozen=True)
class Trigger:
    """The input that started this invocation, read from its transport headers.

    Every id the agent echoes is checked here, where it enters (`wire.ids`): one out of shape reads as absent and
    `refusal` says why, so that the run it starts ends `error` instead of carrying 60 KiB into every message.
    The owner the agent stamps (`run-client-id`) is the input's verified Ably clientId, not the header's claim.
    """

    wire: WireMessage
    codec_message_id: str
    run_id: str | None
    run_client_id: str
    parent: str | None
    fork_of: str | None
    regenerates: str | None
    refusal: str | None = None

    @classmethod
    def of(cls, wire: WireMessage) -> Trigger:
        ids, problems = read_ids(wire.transport, TRIGGER_IDS)
        run_id = None if problems else ids[names.HEADER_RUN_ID]  # refused: a fresh run, never the one it names
        return cls(wire, ids[names.HEADER_CODEC_MESSAGE_ID] or "", run_id, wire.client_id or "",
                   ids[names.HEADER_PARENT], ids[names.HEADER_FORK_OF], ids[names.HEADER_MSG_REGENERATE],
                   "; ".join(problems) or None)


@dataclass
class PipeResult:
    """How a pass ended: `complete`, `cancelled` or `error` (with the exception)."""

    reason: str
    error: BaseException | None = None
    codec_message_id: str | None = None


class AgentSession:
    """`async with AgentSession(client, invocation.session_name) as session:` the agent's side of a session."""

    def __init__(self, client: AblyRealtime, session_name: str, *, authorize: Authorize = run_owner_only,
                 coalesce_window: float | None = None, history_pages: int | None = None,
                 trusted_agents: Iterable[str] | None = None, end_lost_runs: bool = True,
                 linger_s: float = 0.0) -> None:
        """`history_pages`: pages of history to fold at open (None: all). An agent whose context lives
        elsewhere (a graph's checkpointer) needs only the newest; `create_run` pages back to its trigger.
        `linger_s`: how long the session's channel stays attached and folded after it closes, so that the next
        session of the same name on this client opens at once, without reading history (see `core`).

        `authorize` decides cancels and steers (default: the run's owner only). `trusted_agents`: Ably
        clientIds whose agent messages (lifecycle, outputs, presence) are believed besides this client's own
        (None: `$ABLY_TRUSTED_AGENTS`, else none; see `trust`).
        `end_lost_runs`: end, as `error`, runs whose agent is gone (see `liveness`) when found.
        """
        self._client = adopt(client)
        self._name = session_name
        self._history_pages = history_pages
        self._trusted = trusted_agents
        self._linger_s = linger_s
        self.core: SessionCore
        self._authorize = authorize
        self._coalesce_window = coalesce_window
        self._end_lost_runs = end_lost_runs
        self._claims = AdoptionClaims()
        self._left_open = LeftOpen()
        self._runs: dict[str, Run] = {}
        self._runs_by_input: dict[str, Run] = {}
        self._early_cancels: OrderedDict[tuple[str | None, str], WireMessage] = OrderedDict()
        self._tasks: set[asyncio.Future[None]] = set()

    async def __aenter__(self) -> AgentSession:
        trusted = agent_trust(self._client, self._trusted)
        self.core = await SessionCore.acquire(self._client, self._name, self._history_pages, trusted,
                                              linger_s=self._linger_s)
        self.core.listen(self._on_folded, replay=True)
        self._client.connection.on(self._on_connection_state)
        if self._end_lost_runs:
            self.core.on_lost(self._on_lost)
            try:
                await self.end_lost_runs()
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            for run in list(self._runs.values()):
                if run.started and not run.ended:
                    await run.end("cancelled")
        finally:
            self._client.connection.off(self._on_connection_state)
            self.core.unlisten(self._on_folded)
            if self._end_lost_runs:
                self.core.off_lost(self._on_lost)
            self._runs.clear()  # each run refers back to its session: without this, a cycle the collector must find
            self._runs_by_input.clear()
            await self.core.release()

    async def create_run(self, invocation: Invocation, *, run_id: str | None = None,
                         timeout: float = DEFAULT_TRIGGER_TIMEOUT_S) -> Run:
        """A run for `invocation`, once its trigger input is found (104010 if it never shows up)."""
        event_id = invocation.input_event_id
        await self.core.load_older_until(lambda: event_id in self.core.tree.inputs_by_event)
        found = await self.core.wait_for(lambda: event_id in self.core.tree.inputs_by_event, timeout)
        if not found:
            raise RunError(f"input event {event_id!r} not found on {self.core.name!r}",
                           code=ErrorCode.INPUT_EVENT_NOT_FOUND)
        trigger = Trigger.of(self.core.tree.inputs_by_event[event_id][-1])
        if trigger.refusal:
            log.warning("input %s on %s refused: %s", event_id, self._name, trigger.refusal)
        run = Run(self, trigger, run_id=trigger.run_id or run_id or str(uuid.uuid4()))
        self._runs[run.run_id] = run
        if trigger.codec_message_id:
            self._runs_by_input[trigger.codec_message_id] = run
        return run

    def run_for_command(self, wire: WireMessage, *, resumes: str | None = None) -> Run:
        """A run triggered by a codec's command rather than a UIMessage input: a fresh one, or a continuation of the
        suspended run `resumes`. Its owner is the command's verified clientId, as an input's would be."""
        trigger = Trigger(wire, "", resumes, wire.client_id or "", None, None, None)
        run = Run(self, trigger, run_id=resumes or str(uuid.uuid4()))
        self._runs[run.run_id] = run
        return run

    def owner_of(self, run_id: str) -> str | None:
        """The Ably clientId of the client whose input started `run_id` (None: anonymous, or not known here)."""
        run = self._runs.get(run_id)
        return run.owner_client_id if run is not None else self.core.tree.run_owner(run_id)

    async def allows(self, action: ControlAction, run_id: str, wire: WireMessage) -> bool:
        """Whether `authorize` lets the publisher of `wire` `action` the run `run_id` (a refusal is logged)."""
        request = self._request(action, run_id, wire)
        answer = verdict(self._authorize, request)
        allowed = await awaited(answer, request) if inspect.isawaitable(answer) else answer
        if not allowed:
            log_refusal(request)
        return allowed

    # --- the session's runs, for what serves a graph on it ---

    async def agent_run(self, run_id: str) -> Node | None:
        """The run `run_id` if an agent of this session started it (anyone may name a run id in an input), looked
        for further back in the session's history if need be; None if no agent did."""
        await self.core.load_older_until(lambda: _from_agent(self.core.tree.run(run_id)))
        node = self.core.tree.run(run_id)
        return node if _from_agent(node) else None

    def active_runs(self, *, besides: str | None = None) -> list[str]:
        """The runs an agent started that are active now, other than `besides`."""
        return [node.key for node in self.core.tree.nodes.values()
                if _from_agent(node) and node.key != besides and node.status == names.RunStatus.ACTIVE]

    # --- what a codec's own layer reads of the session ---

    @property
    def name(self) -> str:
        return self._name

    def listen(self, listener: Listener, *, replay: bool = False) -> None:
        """`listener(wire, events, live)` for every message folded on the session: a codec's own among them."""
        self.core.listen(listener, replay=replay)

    def unlisten(self, listener: Listener) -> None:
        self.core.unlisten(listener)

    async def load_older_until(self, found: Callable[[], bool]) -> bool:
        """Fold older history until `found()` holds or none is left; whether it holds."""
        return await self.core.load_older_until(found)

    def carries(self, wanted: frozenset[str]) -> list[str]:
        """Which of the message names `wanted` the session has carried, of what it has folded."""
        return sorted(self.core.names_seen & wanted)

    def stopping(self, run_id: str) -> bool:
        """Whether `run_id` runs here and has been cancelled, but has not ended yet."""
        run = self._runs.get(run_id)
        return run is not None and run.cancelled.is_set() and not run.ended

    def suspended_runs(self) -> list[str]:
        """The runs an agent started that wait on the client (an `interrupt()`), oldest first."""
        return [node.key for node in self.core.tree.nodes.values()
                if _from_agent(node) and node.status == names.RunStatus.SUSPENDED]

    async def publish(self, message: WireMessage) -> str | None:
        """Publish a codec's message that belongs to no run (the answer to a client's command)."""
        return await self.core.writer.publish(message)

    def answered(self, codec_message_id: str, *, besides: str) -> bool:
        """Whether an agent's run other than `besides` already answers the user message `codec_message_id` (a
        replayed invocation asks again)."""
        tree = self.core.tree
        asked = tree.nodes.get(codec_message_id)
        return asked is not None and asked.kind == "input" and any(
            _from_agent(node) and node.input_codec_message_id == codec_message_id and node.key != besides
            for node in tree.nodes.values())

    async def cancel_run(self, run_id: str) -> None:
        """Cancel `run_id` wherever it runs, as a client would: an `ai-cancel` on the session, which the agent
        serving it (this process or another) obeys."""
        await self.core.writer.publish(cancel_message(run_id=run_id))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait, up to `timeout` seconds, until `predicate()` holds after a message folds; whether it did."""
        return await self.core.wait_for(predicate, timeout)

    # --- what arrives on the channel ---

    def _on_folded(self, wire: WireMessage, events: list[DecodedEvent], live: bool) -> None:
        self._claims.fold(wire)  # the core passes on agent messages from trusted agents only: a user cannot claim
        self._left_open.fold(wire)  # nor make an adopter close a stream
        if wire.name == names.CANCEL:
            self._on_cancel(wire) if live else self._buffer_cancel(wire)
        elif live and wire.name == names.AI_INPUT:
            run = self._runs.get(wire.transport.get(names.HEADER_RUN_ID, ""))
            if run is not None and events:
                self._control(run, "steer", wire, run._on_steer)
        elif live and wire.name in (names.RUN_END, names.RUN_RESUME):
            run = self._runs.get(wire.transport.get(names.HEADER_RUN_ID, ""))
            if run is not None and self._superseded(run, wire):
                run._on_superseded()

    def _on_cancel(self, wire: WireMessage) -> None:
        target = read_cancel_target(wire.transport)
        run = self._runs.get(target.run_id or "") or self._runs_by_input.get(target.input_codec_message_id or "")
        if run is not None:
            self._control(run, "cancel", wire, lambda _: run.cancelled.set())
        else:
            self._buffer_cancel(wire)

    def _control(self, run: Run, action: ControlAction, wire: WireMessage,
                 apply: Callable[[WireMessage], None]) -> None:
        """Apply a cancel or steer once `authorize` allows it (at once when it answers synchronously); a policy
        that raises refuses."""
        request = self._request(action, run.run_id, wire)
        answer = verdict(self._authorize, request)
        if not inspect.isawaitable(answer):
            settle(request, apply, answer)
            return

        async def settle_later(pending: Awaitable[bool]) -> None:
            settle(request, apply, await awaited(pending, request))

        self._spawn(settle_later(answer))

    def _request(self, action: ControlAction, run_id: str, wire: WireMessage) -> ControlRequest:
        agent = self._client.auth.client_id
        return ControlRequest(action, run_id, wire.client_id, self.owner_of(run_id),
                              agent if agent != "*" else None, wire)


    def _superseded(self, run: Run, wire: WireMessage) -> bool:
        """Another process of this agent ended or adopted the run (it found it lost): this invocation must stop."""
        other_invocation = wire.transport.get(names.HEADER_INVOCATION_ID) != run.invocation_id
        client_id = self._client.auth.client_id  # an anonymous agent cannot tell its processes from other clients
        return run.started and not run.ended and other_invocation and client_id not in (None, "*") \
            and wire.client_id == client_id and not self._claims.lost(wire)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- runs whose agent is gone ---

    def _on_connection_state(self, change: Any) -> None:
        """Ably ended the connection for good: the runs streaming on it are cut off now, and their producers stop.
        Their next publish would find it, but it may be far off: a pass whose append failed sends no other until
        its stream ends, and its model streams on meanwhile."""
        if not has_ended(self._client):
            return
        reason = self._client.connection.error_reason
        for run in list(self._runs.values()):
            if run.started and not run.ended:
                run._on_cut_off(f"Ably ended its connection ({reason})")

    def _on_lost(self, runs: list[TrackedRun]) -> None:
        self._spawn(self.end_lost_runs())

    async def end_lost_runs(self) -> list[str]:
        """End, as `error`, every run presence shows lost (its agent crashed); the ids of those ended.

        Several processes may find the same lost run; each checks the tree again just before publishing,
        and a second end of a run changes nothing for any client.
        """
        ended = []
        for lost in self.core.lost_runs():
            if lost.run_id in self._runs or lost.run_id not in {r.run_id for r in self.core.lost_runs()}:
                continue
            await self._end_lost(lost, AGENT_LOST_MESSAGE)
            ended.append(lost.run_id)
        return ended

    def lost_runs(self) -> list[TrackedRun]:
        """Runs still active whose agent instance has left the liveness channel: crashed, or cut off for good."""
        return [lost for lost in self.core.lost_runs() if lost.run_id not in self._runs]

    async def adopt_run(self, lost: TrackedRun, *, max_attempts: int = 3) -> Run | None:
        """Take over a lost run, under its own id: a `Run` that has published its claim (`ai-run-resume` with
        `lcat-adoption`, naming this process's instance) and won it, for the caller to pipe into and end.

        None when another process's claim came first (this one then publishes nothing more), or when the run has
        been adopted `max_attempts` times already, or its input is gone from the session: it is then ended
        `error` instead, as a lost run is without adoption.
        """
        attempt = self._claims.attempts(lost.run_id) + 1
        if attempt > max_attempts:
            await self._end_lost(lost, f"agent lost {attempt} times: the run crashed every agent that served it")
            return None
        trigger = self._input_of(lost.input_codec_message_id)
        if trigger is None:
            await self._end_lost(lost, AGENT_LOST_MESSAGE)
            return None
        run = Run(self, Trigger.of(trigger), lost.run_id, adoption=attempt)
        self._runs[run.run_id] = run
        await run.start()
        await self.core.wait_for(lambda: self._claims.first(run.run_id, attempt) is not None, CLAIM_WAIT_S)
        if self._claims.first(run.run_id, attempt) != run.invocation_id:
            log.info("run %s on %s: another process adopted it first", run.run_id, self._name)
            run._finished()
            self._runs.pop(run.run_id, None)
            return None
        log.warning("run %s on %s lost its agent; adopted (attempt %d)", run.run_id, self._name, attempt)
        await self._close_left_open(lost)
        return run

    async def _close_left_open(self, lost: TrackedRun) -> None:
        """End what the lost agent left open in its run (`repair`): its streams and steps, `cancelled`."""
        await self.core.load_older_until(lambda: self._left_open.saw_invocation(lost.invocation_id))
        closing = [self.core.writer.append(stream.serial, stream.closing())
                   for stream in self._left_open.streams(lost.run_id)]
        for failed in [r for r in await asyncio.gather(*closing, return_exceptions=True) if isinstance(r, Exception)]:
            log.warning("run %s on %s: a stream its lost agent left open was not closed: %s", lost.run_id,
                        self._name, failed)  # it stays `streaming`; the run goes on regardless
        for step in self._left_open.steps(lost.run_id):
            await self.core.writer.publish(step.closing())

    async def _verify_hold(self, run: Run) -> bool:
        """After a break (`fence`): whether `run` is still this invocation's to publish. Not if another process of
        this agent has published for it since this one last did (it adopted the run while this one was cut off);
        else this invocation claims it again, and holds it if its claim comes first. A run found lost stops."""
        log.warning("run %s on %s: this process was cut off (a stall or a dropped connection); checking that the "
                    "run is still its own before publishing again", run.run_id, self._name)
        if not await self._connected():
            run._on_cut_off(f"its connection did not come back ({self._client.connection.state}: "
                            f"{self._client.connection.error_reason})")
            return False
        held = not await self._held_elsewhere(run) and await self._claim_again(run)
        if not held:
            log.warning("run %s on %s: another process holds it now; this invocation stops and publishes nothing "
                        "more", run.run_id, self._name)
            run._on_superseded()
        return held

    async def _connected(self) -> bool:
        connection = self._client.connection
        if connection.state == ConnectionState.CONNECTED:
            return True
        if has_ended(self._client):  # nothing to wait for
            return False
        try:
            await asyncio.wait_for(connection.once_async(ConnectionState.CONNECTED), RECONNECT_WAIT_S)
        except TimeoutError:
            return False
        return True

    async def _held_elsewhere(self, run: Run) -> bool:
        """Whether the session's newest history shows this agent publishing for `run` under another invocation
        after this invocation's newest message."""
        client_id = self._client.auth.client_id
        pages = recent_history(self._client, self.core.channel)
        for _ in range(HOLD_HISTORY_PAGES):
            page = await anext(pages, None)
            for wire in (WireMessage.from_ably(message) for message in page or []):
                if wire is None or wire.client_id != client_id or wire.transport.get(names.HEADER_RUN_ID) != run.run_id:
                    continue
                return wire.transport.get(names.HEADER_INVOCATION_ID) != run.invocation_id
            if page is None:
                break
        return False

    async def _claim_again(self, run: Run) -> bool:
        attempt = self._claims.attempts(run.run_id) + 1
        await self.core.writer.publish(await run._claim(attempt))
        await self.core.wait_for(lambda: self._claims.first(run.run_id, attempt) is not None, CLAIM_WAIT_S)
        return self._claims.first(run.run_id, attempt) == run.invocation_id

    def _input_of(self, codec_message_id: str | None) -> WireMessage | None:
        """The newest input wire of the user message `codec_message_id` on this session."""
        if not codec_message_id:
            return None
        wires = [wire for wires in self.core.tree.inputs_by_event.values() for wire in wires
                 if wire.transport.get(names.HEADER_CODEC_MESSAGE_ID) == codec_message_id]
        return wires[-1] if wires else None

    async def end_cut_off(self, run: Run) -> bool:
        """End `run`, which another session of this agent served on a connection that ended for good (`cut_off`),
        as `error`, closing the streams and steps it left open, as a lost run is ended: from this session, on
        another connection. False when the run is not active any more (another process ended or adopted it)."""
        await self.core.load_older_until(lambda: self._left_open.saw_invocation(run.invocation_id))
        if run.run_id not in self.active_runs():
            return False
        cut_off = TrackedRun(**run._lifecycle())
        await self._close_left_open(cut_off)
        await self._end_lost(cut_off, CUT_OFF_MESSAGE)
        return True

    async def _end_lost(self, lost: TrackedRun, message: str) -> None:
        await self.core.writer.publish(run_end_message(
            run_id=lost.run_id, reason=names.RunEndReason.ERROR, run_client_id=lost.run_client_id,
            invocation_id=lost.invocation_id, input_client_id=lost.input_client_id,
            input_codec_message_id=lost.input_codec_message_id, error_code=ErrorCode.STREAM_ERROR,
            error_message=message))
        log.warning("run %s on %s ended as error: %s", lost.run_id, self._name, message)

    def _buffer_cancel(self, wire: WireMessage) -> None:
        """Keep a cancel of an input whose run is not known yet: the newest per input and sender, at most 20 per
        sender and 200 in all, so that one client's cancels cannot push out another's.

        Cancels found in history count too (unlike JS agents, which only route live ones): a user who pressed
        stop before a fresh process picked the input up meant it. `Run.start` honours one newer than its trigger
        that the policy allows, as it would have allowed it live.
        """
        target = read_cancel_target(wire.transport)
        if not is_valid_id(target.input_codec_message_id) or target.run_id:
            return
        key = (wire.client_id, target.input_codec_message_id or "")
        self._early_cancels.pop(key, None)
        self._early_cancels[key] = wire
        senders = [k for k in self._early_cancels if k[0] == wire.client_id]
        for stale in senders[:-MAX_BUFFERED_CANCELS_PER_CLIENT]:
            del self._early_cancels[stale]
        while len(self._early_cancels) > MAX_BUFFERED_CANCELS:
            self._early_cancels.popitem(last=False)

    def _take_early_cancels(self, run: Run) -> list[WireMessage]:
        """The buffered cancels of `run`'s trigger input, oldest first, taken out of the buffer."""
        keys = [k for k in self._early_cancels if k[1] == run.trigger.codec_message_id]
        return [self._early_cancels.pop(k) for k in keys]


@dataclass
class _Steers:
    pending: list[str] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)


def _hold_verifier(session: AgentSession, run: weakref.ref[Run]) -> Callable[[], Awaitable[bool]]:
    """The fence's check for `run`, holding it weakly: the fence is the run's own, and a cycle through it would
    leave every finished run, and the session's whole fold with it, to the collector instead of to its refcount."""
    async def verify() -> bool:
        held = run()
        return held is not None and await session._verify_hold(held)
    return verify


class Run:
    """One invocation of a run. `start()`, then `pipe()` passes, then `end()` or `suspend()`."""

    def __init__(self, session: AgentSession, trigger: Trigger, run_id: str, *, adoption: int | None = None) -> None:
        self._session = session
        self.trigger = trigger
        self.run_id = run_id
        self.adoption = adoption  # the attempt, when this process took the run over from a lost agent
        self.invocation_id = str(uuid.uuid4())
        self.cancelled = asyncio.Event()
        self.started = False
        self.ended = False
        self.cut_off = False  # its connection ended for good, its end unpublished: `AgentSession.end_cut_off`
        self._steps = 0
        self._writer: FencedWriter | None = None
        self._waiting_pass: MessageEncoder | None = None  # the pass being piped, while it waits on its source
        self._steers = _Steers()
        self.steered = asyncio.Event()
        # Anchors as JS agents compute them (§2.4): outputs hang under the trigger when it is a node of the
        # tree (a regenerate carrier is not, so its parent stands in); a run-less input that belongs to a run
        # (a client tool-result fork) puts the new run beside that run, under the input's own parent.
        owner = session.core.tree.owner(trigger.codec_message_id)
        self._output_parent = trigger.codec_message_id if owner is not None else trigger.parent
        forks_a_run = owner is not None and owner.kind == "run" and not trigger.run_id
        self._run_parent = trigger.parent if forks_a_run else self._output_parent
        # Readers' step phases, known only for a run no one has written before (see codec/step_markers.py).
        fresh = trigger.run_id is None and adoption is None and session.core.tree.run(run_id) is None
        self._phases = RunPhases(run_id) if fresh else None

    @property
    def is_continuation(self) -> bool:
        return self.trigger.run_id is not None

    @property
    def client(self) -> AblyRealtime:
        """The Ably client the run's session is on."""
        return self._core.client

    @property
    def _core(self) -> SessionCore:
        return self._session.core

    @property
    def owner_client_id(self) -> str | None:
        """The Ably clientId of the input that started the run (a continuation keeps its run's owner)."""
        if self._core.tree.run(self.run_id) is None:
            return self.trigger.wire.client_id
        return self._core.tree.run_owner(self.run_id)

    def _lifecycle(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "run_client_id": self.trigger.run_client_id,
                "invocation_id": self.invocation_id, "input_client_id": self.trigger.wire.client_id,
                "input_codec_message_id": self.trigger.codec_message_id or None}

    async def start(self) -> None:
        """Publish `ai-run-start` (or `ai-run-resume`); a cancel that arrived first, and that `authorize` allows,
        cancels at once. A trigger with an id out of shape (`trigger.refusal`) ends the run `error` (40003) at
        once: check `ended` before piping."""
        if self.started:
            raise RunError(f"run {self.run_id} already started")
        if await self._early_cancel_allowed():
            self.cancelled.set()
        if self.adoption:
            message = await self._claim(self.adoption)
        elif self.is_continuation:
            message = await self._announced(run_resume_message(**self._lifecycle()))
        else:
            message = await self._announced(run_start_message(
                **self._lifecycle(), parent=self._run_parent, fork_of=self.trigger.fork_of,
                regenerates=self.trigger.regenerates))
        continuity = continuity_of(self._core.client)
        self._writer = FencedWriter(self._core.writer, continuity, _hold_verifier(self._session, weakref.ref(self)))
        await self._core.writer.publish(message)
        continuity.hold()
        self.started = True
        if self.trigger.refusal:
            await self.end("error", error_code=ErrorCode.INVALID_ARGUMENT,
                           error_message=f"input refused: {self.trigger.refusal}")

    async def _claim(self, attempt: int) -> WireMessage:
        """An `ai-run-resume` that claims the run for this invocation, as attempt `attempt` (`adoption`)."""
        message = await self._announced(run_resume_message(**self._lifecycle()))
        message.transport[names.HEADER_ADOPTION] = str(attempt)
        return message

    async def _announced(self, message: WireMessage) -> WireMessage:
        """`message` naming this process's agent instance, for liveness."""
        if instance := await agent_instance(self._core.client).enter():
            message.transport[names.HEADER_LIVENESS] = instance
        return message

    async def publish(self, message: WireMessage) -> str | None:
        """Publish a codec's own message for this run, behind its fence (None once another process holds it)."""
        self._require_open()
        if self._phases is not None:  # what readers hold of the run's steps includes this message
            self._phases.sent(message)
        return await self._out.publish(message)

    @property
    def _out(self) -> FencedWriter | ChannelWriter:
        """Where the run publishes: behind its fence once it has started."""
        return self._writer or self._core.writer

    def _finished(self) -> None:
        if not self.ended and self.started:
            continuity_of(self._core.client).release()
        self.ended = True

    async def _early_cancel_allowed(self) -> bool:
        trigger_serial = self.trigger.wire.serial or ""
        for cancel in self._session._take_early_cancels(self):
            if (cancel.serial or "") > trigger_serial and await self._session.allows("cancel", self.run_id, cancel):
                return True
        return False

    async def pipe(self, chunks: AsyncIterable[dict[str, Any]]) -> PipeResult:
        """Publish one assistant message's chunks as a step; stops early (streams closed `cancelled`) on cancel.

        On a cancel or a failed publish, a producer that is an async generator is closed (`aclose`) before the
        pass's streams are: its model (or graph) stops at once, not when the generator is collected.

        A producer that raises ends the pass `error` (open streams closed, the exception on the result); it
        never raises into the caller's loop, and a pass that produced nothing publishes nothing.
        """
        self._require_open()
        source = _Source(chunks, self.cancelled)
        try:
            try:
                first = await source.next()
            except Exception as error:
                return PipeResult("error", error)
            if first is _CANCELLED or first is _END:
                await source.stop_producer()
                return PipeResult("cancelled" if first is _CANCELLED else "complete")
            step = await self._open_step()
            encoder = self._encoder(step)
            result = await self._stream(encoder, first, source)
        finally:
            source.close()
        await self._out.publish(step_end_message(
            run_id=self.run_id, step_id=step[0], step_start_serial=step[1], invocation_id=self.invocation_id,
            run_client_id=self.trigger.run_client_id, input_client_id=self.trigger.wire.client_id,
            step_client_id=self.trigger.wire.client_id or "", reason=_STEP_REASONS[result.reason]))
        result.codec_message_id = encoder.codec_message_id
        return result

    async def _stream(self, encoder: MessageEncoder, first: Any, source: _Source) -> PipeResult:
        chunk = first
        try:
            while chunk is not _END and chunk is not _CANCELLED:
                await encoder.write(chunk)
                chunk = await self._next_chunk(encoder, source)
            await source.stop_producer()  # a cancel that came while the pass published: the model stops now
            await encoder.close()  # closes what is still open `cancelled`, then awaits every publish
        except Exception as error:  # the model, a chunk or a publish failed: close what is open, report, never hang
            log.warning("run %s: pass failed: %s", self.run_id, error)
            await source.stop_producer()
            try:
                await encoder.close()
            except Exception as also:
                log.warning("run %s: closing the failed pass failed too: %s", self.run_id, also)
            return PipeResult("error", error)
        return PipeResult("complete" if chunk is _END else "cancelled")

    async def _next_chunk(self, encoder: MessageEncoder, source: _Source) -> Any:
        """The source's next chunk; meanwhile `write_now` writes into `encoder`, which no `write` is using."""
        self._waiting_pass = encoder
        try:
            return await source.next()
        finally:
            self._waiting_pass = None

    def write_now(self, chunk: dict[str, Any]) -> bool:
        """Write `chunk` into the pass being piped, at once, from the producer's own task: a delta of an open
        stream while the pass waits for its next chunk. It spares each token a turn of the event loop (the
        piping task's wake-up), which a loaded loop runs late. False when the chunk cannot go now (no pass
        waits, the run is cancelled, or the chunk needs an awaited write): the producer then yields it. A producer
        calls it only while it holds no chunk it has not yielded, so that chunks keep their order."""
        encoder = self._waiting_pass
        return encoder is not None and not self.cancelled.is_set() and encoder.write_now(chunk)

    async def _open_step(self) -> tuple[str, str]:
        step_id = f"{self.invocation_id}-step-{self._steps}"
        self._steps += 1
        serial = await self._out.publish(step_start_message(
            run_id=self.run_id, step_id=step_id, invocation_id=self.invocation_id,
            run_client_id=self.trigger.run_client_id, input_client_id=self.trigger.wire.client_id,
            step_client_id=self.trigger.wire.client_id or ""))
        return step_id, serial or ""

    def _encoder(self, step: tuple[str, str]) -> MessageEncoder:
        steers = self._steers.pending[:MAX_STEERS_PER_PASS]
        self._steers.pending = self._steers.pending[MAX_STEERS_PER_PASS:]
        self._steers.answered.update(steers)
        transport = build_transport_headers(
            role=names.ROLE_ASSISTANT, codec_message_id=str(uuid.uuid4()), run_id=self.run_id,
            run_client_id=self.trigger.run_client_id, parent=self._output_parent, fork_of=self.trigger.fork_of,
            regenerates=self.trigger.regenerates, invocation_id=self.invocation_id,
            input_client_id=self.trigger.wire.client_id, input_codec_message_id=self.trigger.codec_message_id or None,
            step_id=step[0], step_start_serial=step[1], step_client_id=self.trigger.wire.client_id or "",
            steer_codec_message_ids=steers,
        )
        options = {} if self._session._coalesce_window is None else {"coalesce_window": self._session._coalesce_window}
        return MessageEncoder(self._out, transport, phases=self._phases, **options)

    async def suspend(self) -> None:
        """Publish `ai-run-suspend`: this invocation ends waiting for the client; the run goes on later."""
        self._require_open()
        await self._publish_last(run_suspend_message(**self._lifecycle()))

    async def end(self, reason: str = "complete", *, error_code: int | None = None,
                  error_message: str | None = None) -> None:
        """Publish `ai-run-end` with `complete`, `cancelled` or `error` (plus an Ably-style code and message)."""
        if self.ended:
            return
        if reason == names.RunEndReason.ERROR and error_code is None:
            error_code = ErrorCode.STREAM_ERROR
        await self._publish_last(run_end_message(**self._lifecycle(), reason=reason, error_code=error_code,
                                                 error_message=error_message))

    async def _publish_last(self, message: WireMessage) -> None:
        """Publish the invocation's last lifecycle message. On a connection that ended for good, the run is cut off
        instead (`AgentSession.end_cut_off` ends it from another), rather than failing whoever ends it."""
        try:
            await self._out.publish(message)
        except AblyException as error:
            if not has_ended(self.client):
                raise
            self._on_cut_off(f"its {message.name} was not published ({error})")
            return
        self._finished()

    def _on_superseded(self) -> None:
        log.warning("run %s was ended by another process of this agent; this invocation stops", self.run_id)
        self._finished()
        self.cancelled.set()

    def _on_cut_off(self, why: str) -> None:
        log.warning("run %s: %s; this invocation stops, and publishes nothing more there", self.run_id, why)
        self.cut_off = self.cut_off or not self.ended
        self._finished()
        self.cancelled.set()

    def _require_open(self) -> None:
        if not self.started:
            raise RunError(f"run {self.run_id} has not started")
        if self.ended:
            raise RunError(f"run {self.run_id} has ended")

    # --- steering ---

    def _on_steer(self, wire: WireMessage) -> None:
        """A user message sent into the run: its codec-message-id is echoed on the next pass's outputs, so it must
        be an id (`wire.ids`) and a pass answers at most `MAX_STEERS_PER_PASS` (the rest wait for the next)."""
        codec_message_id = wire.transport.get(names.HEADER_CODEC_MESSAGE_ID, "")
        is_user = wire.transport.get(names.HEADER_ROLE) == names.ROLE_USER
        if not is_user or codec_message_id == self.trigger.codec_message_id:
            return
        if not is_valid_id(codec_message_id):
            log.warning("steer into run %s refused: its codec-message-id is not an id (%d characters, at most %d)",
                        self.run_id, len(codec_message_id), MAX_ID_LENGTH)
            return
        if codec_message_id not in self._steers.pending and codec_message_id not in self._steers.answered:
            self._steers.pending.append(codec_message_id)
            self.steered.set()

    @property
    def pending_steers(self) -> list[str]:
        """Codec-message-ids of user messages sent into this run and not yet answered by a pass."""
        return list(self._steers.pending)

    # --- the conversation, as the model sees it ---

    def trigger_inputs(self) -> list[Input]:
        """The decoded inputs of the trigger: every `ai-input` that shares its event id, in serial order (one
        `send` of several tool-approval responses, or of a multi-part user message, is one event)."""
        event_id = self.trigger.wire.transport.get(names.HEADER_EVENT_ID, "")
        wires = self._core.tree.inputs_by_event.get(event_id) or [self.trigger.wire]
        return [event for wire in wires for event in decode_input(wire.codec, wire.transport, wire.data)]

    def inputs(self) -> list[Input]:
        """The decoded inputs its owner sent into this run (continuations and steers), in serial order."""
        node = self._core.tree.run(self.run_id)
        return [event for direction, event, *_ in (node.events if node else []) if direction == "input"]

    def ui_messages(self) -> list[CodecMessage]:
        """The branch that leads to the trigger (runs that did not complete are left out, as JS agents do)."""
        tree = self._core.tree
        anchor = tree.owner(self.trigger.codec_message_id) or tree.owner(self.trigger.parent)
        chain = tree.branch_to(anchor.key) if anchor is not None else []
        return chain_messages([node for node in chain if _in_context(node, anchor)])

    def messages(self) -> list[BaseMessage]:
        """`ui_messages()` as LangChain messages, ready for a model."""
        return ui_messages_to_langchain([entry["message"] for entry in self.ui_messages()])


class _Source:
    """A chunk iterator that the run's cancel interrupts: `next()` gives a chunk, `_END` or `_CANCELLED`.

    One watcher task per pass, not a task and an `asyncio.wait` per chunk (45 µs a chunk, more than half of the
    transport's cost per token): a cancel that comes while `next()` waits on the producer cancels that wait, so
    the producer (a model call, a graph) sees `CancelledError` at once; one that comes while the caller publishes
    makes the next `next()` answer `_CANCELLED`. Either way nothing the producer yielded is dropped.
    """

    def __init__(self, chunks: AsyncIterable[dict[str, Any]], cancelled: asyncio.Event) -> None:
        self._iterator = aiter(chunks)
        self._cancelled = cancelled
        self._waiting: asyncio.Task[Any] | None = None  # the task inside `next()`, while it waits on the producer
        self._interrupted = False
        self._watch = asyncio.ensure_future(cancelled.wait())
        self._watch.add_done_callback(self._interrupt)

    def _interrupt(self, watch: asyncio.Future[Any]) -> None:
        if not watch.cancelled() and self._waiting is not None:
            self._interrupted = True
            self._waiting.cancel()

    async def next(self) -> Any:
        if self._cancelled.is_set():
            return _CANCELLED
        task = self._waiting = asyncio.current_task()
        try:
            chunk = await anext(self._iterator, _END)
        except asyncio.CancelledError:
            if not self._took_interrupt(task):
                raise  # cancelled from outside the run (too)
            return _CANCELLED
        finally:
            self._waiting = None
        self._took_interrupt(task)  # a producer that swallowed the cancel and yielded: kept; the next call stops
        return chunk

    def _took_interrupt(self, task: asyncio.Task[Any] | None) -> bool:
        """Withdraw this source's cancel of `task`, if it made one; whether it was the only one."""
        if not self._interrupted or task is None:
            return False
        self._interrupted = False
        return task.uncancel() == 0

    async def stop_producer(self) -> None:
        """Close the producer if it is an async generator (`aclose`; a finished one is left as it is): a cancel
        that came while the caller published left it waiting at a `yield`. What its closing raises is logged."""
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is None:
            return
        try:
            await aclose()
        except Exception as error:
            log.warning("closing a pass's producer failed: %s", error)

    def close(self) -> None:
        self._watch.cancel()


def _in_context(node: Node, anchor: Node | None) -> bool:
    return node.kind == "input" or node is anchor or node.status == names.RunStatus.COMPLETE


_END = object()
_CANCELLED = object()
_STEP_REASONS = {"complete": names.StepEndReason.COMPLETE, "cancelled": names.StepEndReason.CANCELLED,
                 "error": names.StepEndReason.FAILED}


def _from_agent(node: Node | None) -> bool:
    return node is not None and node.kind == "run" and node.from_agent
