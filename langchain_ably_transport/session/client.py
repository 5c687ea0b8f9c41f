"""The client side of a session: hydrate, follow live, render the selected branch, send, edit, cancel.

`ClientSession` folds the channel into the same conversation tree the agent reads. `send()` publishes an
`ai-input` and returns a `SentInput` whose `invocation` is what the agent's HTTP endpoint needs and whose
`run_id()` resolves when the agent's run for it starts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from ably import AblyRealtime
from langchain_core.messages import BaseMessage, HumanMessage

from ..codec import DecodedEvent, encode_input
from ..codec.chunks import CodecMessage, regenerate, tool_approval_response, user_message
from ..codec.langchain import langchain_to_ui_message, ui_messages_to_langchain
from ..errors import RunError
from ..sdk import adopt
from ..wire import names
from ..wire.envelope import WireMessage
from ..wire.headers import build_transport_headers, cancel_message, parse_run_lifecycle
from ..wire.invocation import Invocation
from .core import SessionCore, chain_messages
from .tree import Node
from .trust import client_trust


@dataclass
class SentInput:
    """An input on the channel: the invocation for the agent, and the run that answers it once it starts."""

    invocation: Invocation
    codec_message_id: str
    _started: asyncio.Future[str]

    async def run_id(self, timeout: float = 30.0) -> str:
        return await asyncio.wait_for(asyncio.shield(self._started), timeout)


class ClientSession:
    """`async with ClientSession(client, "conversations:42") as session:` a user's view of a session."""

    def __init__(self, client: AblyRealtime, session_name: str, *, history_pages: int | None = None,
                 trusted_agents: Iterable[str] | None = None) -> None:
        """`history_pages`: pages of 100 messages to hydrate from before following live (None: all).
        `trusted_agents`: Ably clientIds whose agent messages (run lifecycle, outputs) are rendered; others'
        are ignored, so a client that may publish on the channel cannot forge the agent's replies. None:
        `$ABLY_TRUSTED_AGENTS`, and where that is unset every publisher's (see `trust`)."""
        self._client = adopt(client)
        self._name = session_name
        self._history_pages = history_pages
        self._trusted = trusted_agents
        self.core: SessionCore
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._events: asyncio.Queue[tuple[WireMessage, list[DecodedEvent]]] = asyncio.Queue()

    async def __aenter__(self) -> ClientSession:
        trusted = client_trust(self._client, self._trusted)
        self.core = await SessionCore.acquire(self._client, self._name, self._history_pages, trusted)
        self.core.listen(self._on_folded)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.core.unlisten(self._on_folded)
        await self.core.release()

    # --- reading ---

    def branch(self) -> list[Node]:
        """The selected branch of the conversation tree, oldest first: inputs, and runs with their messages."""
        return self.core.tree.visible()

    def view(self) -> list[CodecMessage]:
        """The selected branch as `{codecMessageId, message}` UIMessages, oldest first."""
        return chain_messages(self.branch())

    def messages(self) -> list[BaseMessage]:
        """The selected branch as LangChain messages."""
        return ui_messages_to_langchain([entry["message"] for entry in self.view()])

    def runs(self) -> list[Node]:
        return [node for node in self.core.tree.nodes.values() if node.kind == "run"]

    def lost_runs(self) -> list[str]:
        """Runs still active whose agent has gone from the session's presence (crashed, or cut off for good).

        Known within Ably's presence leave delay (15 s) of the crash; the next agent process for the session
        ends them as `error`. Runs of agents that do not announce themselves (JS agents) are never listed.
        """
        return [run.run_id for run in self.core.lost_runs()]

    def siblings(self, key: str) -> list[Node]:
        return self.core.tree.siblings(key)

    def select(self, key: str) -> None:
        self.core.tree.select(key)

    @property
    def has_older(self) -> bool:
        return self.core.has_older

    async def load_older(self, pages: int = 1) -> int:
        """Fold older history into the view; returns how many messages it added (0: nothing older)."""
        return await self.core.load_older(pages)

    async def events(self) -> AsyncIterator[tuple[WireMessage, list[DecodedEvent]]]:
        """Every message folded from now on, with its decoded events, for rendering as it happens."""
        while True:
            yield await self._events.get()

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> bool:
        return await self.core.wait_for(predicate, timeout)

    # --- writing ---

    async def send(self, message: str | HumanMessage, *, run_id: str | None = None) -> SentInput:
        """Send a user message after the last visible message (with `run_id`: a steer into that run)."""
        parent = None if run_id else self._last_visible()
        return await self._publish(self._user_input(message), parent=parent, run_id=run_id)

    async def answer(self, run_id: str, answers: dict[str, Any]) -> SentInput:
        """Answer a suspended run's interrupts by id (`{interrupt_id: value}`), all at once or some of them."""
        message = user_message({"id": str(uuid.uuid4()), "role": "user",
                                "parts": [{"type": "data-resume", "data": answers}]})
        return await self._publish(message, run_id=run_id)

    async def edit(self, codec_message_id: str, message: str | HumanMessage) -> SentInput:
        """Fork a user message: a sibling with new content, answered by a new run."""
        edited = self.core.tree.nodes[codec_message_id]
        return await self._publish(self._user_input(message), parent=edited.parent, fork_of=codec_message_id)

    async def regenerate(self, assistant_codec_message_id: str) -> SentInput:
        """Ask for a new reply in place of an assistant message (a sibling run of the same prompt)."""
        run = self.core.tree.owner(assistant_codec_message_id)
        parent = run.parent if run is not None else None
        return await self._publish(regenerate(assistant_codec_message_id, parent), parent=parent,
                                   regenerates=assistant_codec_message_id)

    async def approve(self, codec_message_id: str, tool_call_id: str, approved: bool = True,
                      reason: str | None = None) -> SentInput:
        """Answer a `tool-approval-request` on the tool call `tool_call_id` of assistant message `codec_message_id`:
        a `tool-approval-response` sent into that message's (suspended) run, whose agent resumes it."""
        run = self.core.tree.owner(codec_message_id)
        if run is None or run.kind != "run":
            raise RunError(f"{codec_message_id!r} is not an assistant message of a run in this session")
        event = tool_approval_response(codec_message_id, tool_call_id, approved, reason)
        return await self._publish(event, run_id=run.key)

    async def cancel(self, run_id: str | None = None, *, sent: SentInput | None = None) -> None:
        """Cancel a run, by id or by the input that started it (before its run id is known)."""
        await self.core.writer.publish(cancel_message(
            run_id=run_id, input_codec_message_id=sent.codec_message_id if sent else None))

    def _user_input(self, message: str | HumanMessage) -> dict[str, Any]:
        human = HumanMessage(content=message) if isinstance(message, str) else message
        return user_message(langchain_to_ui_message(human, message_id=str(uuid.uuid4())))

    def _last_visible(self) -> str | None:
        """The newest message on the selected branch (a run that has published nothing yet holds none)."""
        owning = [node for node in self.core.tree.visible() if node.codec_message_ids]
        return owning[-1].codec_message_ids[-1] if owning else None

    async def _publish(self, event: dict[str, Any], *, parent: str | None = None, fork_of: str | None = None,
                       regenerates: str | None = None, run_id: str | None = None) -> SentInput:
        # A tool input addresses its assistant message: the agent's run echoes that id as its trigger's.
        codec_message_id, event_id = event.get("codecMessageId") or str(uuid.uuid4()), str(uuid.uuid4())
        client_id = self.core.client.auth.client_id
        transport = build_transport_headers(
            role=names.ROLE_USER, codec_message_id=codec_message_id, run_id=run_id,
            run_client_id=client_id if client_id not in (None, "*") else None, parent=parent, fork_of=fork_of,
            regenerates=regenerates, input_event_id=event_id,
        )
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[codec_message_id] = started
        await self.core.writer.publish_all(encode_input(event, transport))
        return SentInput(Invocation(event_id, self.core.name), codec_message_id, started)

    def _on_folded(self, wire: WireMessage, events: list[DecodedEvent], live: bool) -> None:
        if wire.name in (names.RUN_START, names.RUN_RESUME):
            lifecycle = parse_run_lifecycle(wire.name, wire.transport)
            waiting = self._waiting.pop(wire.transport.get(names.HEADER_INPUT_CODEC_MESSAGE_ID, ""), None)
            if lifecycle is not None and waiting is not None and not waiting.done():
                waiting.set_result(lifecycle.run_id)
        if live:
            self._events.put_nowait((wire, events))
