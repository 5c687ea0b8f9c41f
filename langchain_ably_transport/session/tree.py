"""The conversation tree: session messages folded into input nodes and run nodes. Pure, no I/O.

It follows the JS SDK's `tree.ts` (§2.4 and §3.1 of the protocol reference): a user input is a node keyed by
its codec-message-id; a run is a node keyed by its run id that owns every codec-message-id it publishes.
`parent` headers name codec-message-ids and resolve to the node that owns them. Siblings (an edit's fork, a
regenerated reply) share a parent; the newest sibling is shown unless another is selected. Both the agent
(to build a model's context) and the client (to render) read the same tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..wire import names
from ..wire.envelope import WireMessage
from ..wire.headers import RunEndError, parse_run_lifecycle

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
    client_id: str | None = None
    last_resume_invocation: str | None = None

    def owns(self, codec_message_id: str) -> None:
        if codec_message_id and codec_message_id not in self.codec_message_ids:
            self.codec_message_ids.append(codec_message_id)


class ConversationTree:
    """Inputs and runs of one session, linked by `parent`, with the selected branch of each fork."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._owner: dict[str, str] = {}
        self.selected: dict[str | None, str] = {}
        self.inputs_by_event: dict[str, list[WireMessage]] = {}

    # --- folding ---

    def apply(self, wire: WireMessage, events: Iterable[tuple[str, Any]]) -> None:
        """Fold one message and what the decoder made of it (`("input"|"output", event)` pairs)."""
        events = list(events)
        serial = wire.serial or ""
        transport = wire.transport
        if wire.name == names.AI_INPUT:
            self._index_input(wire)
            self._apply_input(wire, events, serial)
        elif wire.name == names.AI_OUTPUT:
            run_id = transport.get(names.HEADER_RUN_ID)
            if run_id:
                run = self._run(run_id, serial, transport.get(names.HEADER_PARENT))
                self._attach(run, transport.get(names.HEADER_CODEC_MESSAGE_ID), events)
        elif wire.name in names.RUN_LIFECYCLE_NAMES:
            self._apply_lifecycle(wire, serial)

    def _index_input(self, wire: WireMessage) -> None:
        event_id = wire.transport.get(names.HEADER_EVENT_ID)
        if event_id:
            self.inputs_by_event.setdefault(event_id, []).append(wire)

    def _apply_input(self, wire: WireMessage, events: list[tuple[str, Any]], serial: str) -> None:
        transport = wire.transport
        codec_message_id = transport.get(names.HEADER_CODEC_MESSAGE_ID, "")
        run_id = transport.get(names.HEADER_RUN_ID)
        if run_id:
            # A continuation or a steer: folded into the run it names.
            self._attach(self._run(run_id, serial, None), codec_message_id, events)
            return
        if not events or not codec_message_id or transport.get(names.HEADER_ROLE) != names.ROLE_USER:
            return
        node = self.nodes.get(codec_message_id)
        if node is None:
            node = self.nodes[codec_message_id] = Node(
                key=codec_message_id, kind="input", serial=serial, parent=transport.get(names.HEADER_PARENT),
                fork_of=transport.get(names.HEADER_FORK_OF), client_id=wire.client_id,
            )
        self._attach(node, codec_message_id, events)

    def _apply_lifecycle(self, wire: WireMessage, serial: str) -> None:
        event = parse_run_lifecycle(wire.name, wire.transport, serial=serial)
        if event is None:
            return
        run = self._run(event.run_id, serial, event.parent if event.type == "start" else None)
        if event.type == "start":
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

    def _run(self, run_id: str, serial: str, parent: str | None) -> Node:
        run = self.nodes.get(run_id)
        if run is None:
            run = self.nodes[run_id] = Node(key=run_id, kind="run", serial=serial, parent=parent)
        elif run.parent is None and parent:
            run.parent = parent
        return run

    def _attach(self, node: Node, codec_message_id: str | None, events: list[tuple[str, Any]]) -> None:
        if codec_message_id:
            node.owns(codec_message_id)
            self._owner.setdefault(codec_message_id, node.key)
        node.events.extend(events)

    # --- reading ---

    def owner(self, codec_message_id: str | None) -> Node | None:
        key = self._owner.get(codec_message_id or "")
        return self.nodes.get(key) if key else None

    def run(self, run_id: str) -> Node | None:
        node = self.nodes.get(run_id)
        return node if node is not None and node.kind == "run" else None

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
        """Runs are shown once they have a parent or content; inputs always."""
        return node.kind == "input" or bool(node.events) or node.parent is not None


_TERMINAL = {names.RunStatus.COMPLETE, names.RunStatus.CANCELLED, names.RunStatus.ERROR}
_REASONS = {reason.value for reason in names.RunEndReason}
