"""The conversation tree: session messages folded into input nodes and run nodes. Pure, no I/O.

It follows the JS SDK's `tree.ts` (§2.4 and §3.1 of the protocol reference): a user input is a node keyed by
its codec-message-id; a run is a node keyed by its run id that owns every codec-message-id it publishes.
`parent` headers name codec-message-ids and resolve to the node that owns them. Siblings (an edit's fork, a
regenerated reply) share a parent; the newest sibling is shown unless another is selected. Both the agent
(to build a model's context) and the client (to render) read the same tree.

Any client may publish on a session, so the tree is stricter than JS about inputs: a replay or a forgery of an
input already on the channel is refused (`_admit`), an input into a run counts only from the run's owner, a user
message whose id is out of shape (`wire.ids`) is no node, and a run that only inputs name (no agent published for
it) is not shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..codec.decoder import DecodedEvent
from ..wire import names
from ..wire.envelope import WireMessage
from ..wire.headers import RunEndError, parse_run_lifecycle
from ..wire.ids import is_valid_id, read_ids

NodeKind = Literal["input", "run"]


@dataclass
class Node:
    """An input or a run, with the decoded events that belong to it in serial order."""

    key: str
    kind: NodeKind
    serial: str
    parent: str | None = None
    fork_of: str | None = None
    regenerates: str | None = None
    events: list[tuple[str, Any]] = field(default_factory=list)
    codec_message_ids: list[str] = field(default_factory=list)
    status: names.RunStatus = names.RunStatus.ACTIVE
    error: RunEndError | None = None
    end_reason: str | None = None
    input_codec_message_id: str | None = None
    client_id: str | None = None  # an input's publisher; a run's owner, as its start names it
    last_resume_invocation: str | None = None
    from_agent: bool = False  # an agent message (an output or a run lifecycle event) names this run

    def owns(self, codec_message_id: str) -> None:
        if codec_message_id and codec_message_id not in self.codec_message_ids:
            self.codec_message_ids.append(codec_message_id)

    def add(self, events: list[tuple[str, Any]]) -> None:
        """Keep `events`; a text or reasoning delta right after one of the same part joins it, so a node holds an
        event per stretch of a stream rather than per append (what its messages accumulate to is the same)."""
        for event in events:
            joined = _joined_delta(self.events[-1], event) if self.events else None
            if joined is None:
                self.events.append(event)
            else:
                self.events[-1] = joined


class ConversationTree:
    """Inputs and runs of one session, linked by `parent`, with the selected branch of each fork."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._owner: dict[str, str] = {}
        self.selected: dict[str | None, str] = {}
        self.inputs_by_event: dict[str, list[WireMessage]] = {}
        self._open_send: tuple[str | None, str, str | None] | None = None

    # --- folding ---

    def apply(self, wire: WireMessage, events: Iterable[tuple[str, Any]]) -> None:
        """Fold one message and what the decoder made of it (`("input"|"output", event)` pairs)."""
        events = list(events)
        serial = wire.serial or ""
        transport = wire.transport
        # An append may come without its stream's name (§0 of the 0.8.0 fact sheet); only `ai-output` streams
        # decode to events.
        name = wire.name if wire.name is not None or not events else names.AI_OUTPUT
        if name == names.AI_INPUT:
            self._apply_input(wire, events, serial)
            return
        self._open_send = None
        if name == names.AI_OUTPUT:
            run_id = transport.get(names.HEADER_RUN_ID)
            if run_id:
                run = self._run(run_id, serial, transport.get(names.HEADER_PARENT), from_agent=True)
                self._attach(run, transport.get(names.HEADER_CODEC_MESSAGE_ID), events)
        elif name in names.RUN_LIFECYCLE_NAMES:
            self._apply_lifecycle(wire, serial)

    def _apply_input(self, wire: WireMessage, events: list[tuple[str, Any]], serial: str) -> None:
        transport = wire.transport
        codec_message_id = transport.get(names.HEADER_CODEC_MESSAGE_ID, "")
        if not self._admit(wire, events, codec_message_id):
            return
        event_id = transport.get(names.HEADER_EVENT_ID)
        if event_id:
            self.inputs_by_event.setdefault(event_id, []).append(wire)
        run_id = transport.get(names.HEADER_RUN_ID)
        if run_id:
            # A continuation or a steer: folded into the run it names, when its owner sent it. Anyone else's would
            # show in every view as part of that run (a denial flipping the owner's tool call, a fork seed adding
            # messages); the agent still finds it by event id, and its policy decides what it does with it.
            if wire.client_id == self.run_owner(run_id):
                self._attach(self._run(run_id, serial, None, from_agent=False), codec_message_id, events)
            return
        if not _is_user_message(events) or not is_valid_id(codec_message_id):
            return  # an id out of shape is no node: a later message would name it as its parent (the agent ends
            # the run of such an input `error` from `inputs_by_event`)
        node = self.nodes.get(codec_message_id)
        if node is None:
            anchors, _ = read_ids(transport, (names.HEADER_PARENT, names.HEADER_FORK_OF))
            node = self.nodes[codec_message_id] = Node(
                key=codec_message_id, kind="input", serial=serial, parent=anchors[names.HEADER_PARENT],
                fork_of=anchors[names.HEADER_FORK_OF], client_id=wire.client_id,
            )
        self._attach(node, codec_message_id, events)

    def _admit(self, wire: WireMessage, events: list[tuple[str, Any]], codec_message_id: str) -> bool:
        """Whether an `ai-input` is new conversation rather than a replay or a forgery of what is already here.

        One send is one atomic publish: its messages arrive one after the other from one connection (an id Ably
        sets, which no publisher can forge) and share an event id, and the parts of a user message share a
        codec-message-id too. Any other input reusing an event id is a replay; any other user message reusing a
        codec-message-id (an input's or an assistant message's) would merge its parts into that message; a user
        message with no codec-message-id, or any of whose parts is not from a user (a `system` role would reach
        the model as a system prompt), has no place, and neither has an input claiming to stream. All are refused
        (JS clients fold them).
        """
        transport = wire.transport
        if transport.get(names.HEADER_STREAM) == names.TRUE:
            return False  # an input never streams; one that says so decodes to nothing here and to a message later
        from_user = not _is_user_message(events) or transport.get(names.HEADER_ROLE) == names.ROLE_USER
        event_id = transport.get(names.HEADER_EVENT_ID)
        send = (event_id, codec_message_id, wire.connection_id)
        if send == self._open_send:
            return from_user
        admitted = from_user and not (event_id and event_id in self.inputs_by_event) and (
            not _is_user_message(events) or (bool(codec_message_id) and codec_message_id not in self._owner))
        self._open_send = send if admitted else None
        return admitted

    def _apply_lifecycle(self, wire: WireMessage, serial: str) -> None:
        event = parse_run_lifecycle(wire.name, wire.transport, serial=serial)
        if event is None:
            return
        run = self._run(event.run_id, serial, event.parent if event.type == "start" else None, from_agent=True)
        if event.type == "start":
            run.client_id = run.client_id or wire.transport.get(names.HEADER_INPUT_CLIENT_ID) or None
            run.parent = event.parent or run.parent
            run.fork_of = event.fork_of or run.fork_of
            run.regenerates = event.regenerates or run.regenerates
            run.input_codec_message_id = event.input_codec_message_id or run.input_codec_message_id
            run.serial = min(run.serial, serial) if run.serial else serial
            if run.status == names.RunStatus.SUSPENDED:
                run.status = names.RunStatus.ACTIVE
        elif event.type == "resume" and run.status == names.RunStatus.SUSPENDED:
            run.status = names.RunStatus.ACTIVE
            run.last_resume_invocation = event.invocation_id
        elif event.type == "suspend" and run.status == names.RunStatus.ACTIVE:
            if run.last_resume_invocation in (None, event.invocation_id):
                run.status = names.RunStatus.SUSPENDED
        elif event.type == "end" and run.status not in _TERMINAL:
            run.status = names.RunStatus(event.reason) if event.reason in _REASONS else names.RunStatus.COMPLETE
            run.end_reason = event.reason
            run.error = event.error

    def _run(self, run_id: str, serial: str, parent: str | None, *, from_agent: bool) -> Node:
        run = self.nodes.get(run_id)
        if run is None:
            run = self.nodes[run_id] = Node(key=run_id, kind="run", serial=serial, parent=parent)
        elif run.parent is None and parent:
            run.parent = parent
        run.from_agent = run.from_agent or from_agent
        return run

    def _attach(self, node: Node, codec_message_id: str | None, events: list[tuple[str, Any]]) -> None:
        # A codec-message-id belongs to the first node that carried it: a later message naming it under another
        # run (a forgery, a mistake) does not make it that run's too.
        if codec_message_id and self._owner.setdefault(codec_message_id, node.key) == node.key:
            node.owns(codec_message_id)
        node.add(events)

    # --- reading ---

    def owner(self, codec_message_id: str | None) -> Node | None:
        key = self._owner.get(codec_message_id or "")
        return self.nodes.get(key) if key else None

    def run(self, run_id: str) -> Node | None:
        node = self.nodes.get(run_id)
        return node if node is not None and node.kind == "run" else None

    def run_owner(self, run_id: str) -> str | None:
        """The Ably clientId of the input that started a run: its input node's, else the `input-client-id` its
        agent stamped on the run's start (the input may be older than the history folded)."""
        node = self.run(run_id)
        if node is None:
            return None
        first = self.nodes.get(node.input_codec_message_id or "")
        return first.client_id if first is not None else node.client_id

    def _parent_key(self, node: Node) -> str | None:
        owner = self.owner(node.parent)
        return owner.key if owner is not None and owner is not node else None

    def siblings(self, key: str) -> list[Node]:
        """The node and its alternatives (edits of one prompt, regenerations of one reply), oldest first."""
        node = self.nodes[key]
        parent = self._parent_key(node)
        return sorted((n for n in self.nodes.values() if n.kind == node.kind and self._parent_key(n) == parent
                       and self._reachable(n)), key=lambda n: n.serial)

    def select(self, key: str) -> None:
        """Show `key` instead of its siblings (branch navigation)."""
        self.selected[self._parent_key(self.nodes[key])] = key

    def visible(self) -> list[Node]:
        """The selected branch from the root down, following the selected (else newest) child each time."""
        chain: list[Node] = []
        parent: str | None = None
        while True:
            children = [n for n in self.nodes.values() if self._parent_key(n) == parent and self._reachable(n)]
            if not children:
                return chain
            chosen = self.nodes.get(self.selected.get(parent, "")) if parent in self.selected else None
            if chosen is None or chosen not in children:
                chosen = max(children, key=lambda n: n.serial)
            chain.append(chosen)
            parent = chosen.key

    def branch_to(self, key: str) -> list[Node]:
        """The chain from the root to `key` (the agent's context for a trigger), whatever is selected."""
        chain: list[Node] = []
        node = self.nodes.get(key)
        while node is not None and node not in chain:
            chain.append(node)
            parent = self._parent_key(node)
            node = self.nodes.get(parent) if parent else None
        return list(reversed(chain))

    def _reachable(self, node: Node) -> bool:
        """Inputs are always shown; runs once an agent has published for them and they have a parent or content
        (inputs alone do not show a run: anyone may name a run id in a steer)."""
        return node.kind == "input" or (node.from_agent and (bool(node.events) or node.parent is not None))


def _is_user_message(events: list[tuple[str, Any]]) -> bool:
    return any(direction == "input" and event.get("kind") == "user-message" for direction, event, *_ in events)


_TERMINAL = {names.RunStatus.COMPLETE, names.RunStatus.CANCELLED, names.RunStatus.ERROR}
_REASONS = {reason.value for reason in names.RunEndReason}


_JOINED_DELTAS = ("text-delta", "reasoning-delta")


def _joined_delta(last: tuple[str, Any], event: tuple[str, Any]) -> DecodedEvent | None:
    """`last` and `event` as one event, when both are output deltas of one part of one message; else None."""
    if not isinstance(last, DecodedEvent) or not isinstance(event, DecodedEvent) or last.direction != "output" \
            or event.direction != "output" or last[2:4] != event[2:4]:
        return None
    before, after = last.event, event.event
    if after.get("type") not in _JOINED_DELTAS or set(after) != set(before) \
            or any(after[key] != before[key] for key in after if key != "delta") \
            or not isinstance(before.get("delta"), str) or not isinstance(after.get("delta"), str):
        return None
    return event._replace(event={**after, "delta": before["delta"] + after["delta"]})
