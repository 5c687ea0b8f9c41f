"""A minimal agent-protocol client over genuine ably-python, for the serving tests: commands with unique keys,
their answers, and the events of the thread with parts joined (what the JS transport does, in a few lines)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from ably import AblyRealtime
from ably.types.message import Message

from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage


class ProtocolClient:
    def __init__(self, client: AblyRealtime, session_name: str) -> None:
        self.channel = client.channels.get(session_name)
        self.nonce = uuid.uuid4().hex[:8]
        self.ids = iter(range(1, 10**6))
        self.answers: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.parts: dict[str, list[str]] = {}
        self.changed = asyncio.Event()

    async def open(self) -> ProtocolClient:
        await self.channel.subscribe(self._on_message)
        return self

    def _on_message(self, message: Any) -> None:
        wire = WireMessage.from_ably(message)
        if wire is None:
            return
        if wire.name == names.PROTOCOL_RESPONSE:
            self.answers[wire.transport.get(names.HEADER_COMMAND_KEY, "")] = wire.data
        elif wire.name == names.PROTOCOL_EVENTS and names.HEADER_PART in wire.transport:
            pieces = self.parts.setdefault(wire.transport[names.HEADER_EVENT_ID], [])
            pieces.append(wire.data)
            if len(pieces) == int(wire.transport[names.HEADER_PARTS]):
                self.events.append(json.loads("".join(self.parts.pop(wire.transport[names.HEADER_EVENT_ID]))))
        elif wire.name == names.PROTOCOL_EVENTS:
            self.events += wire.data["events"]
        self.changed.set()

    async def send(self, method: str, params: dict[str, Any], *, data: Any = None,
                   key: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        command_id = next(self.ids)
        key = key or f"{self.nonce}-{command_id}"
        body = data if data is not None else {"id": command_id, "method": method, "params": params}
        await self.channel.publish(Message(name=names.PROTOCOL_COMMAND, data=body,
                                           extras={"ai": {"transport": {names.HEADER_COMMAND_KEY: key}}}))
        await self.until(lambda: key in self.answers, timeout)
        return self.answers[key]

    async def cancel(self, run_id: str) -> None:
        await self.channel.publish(Message(name=names.CANCEL, extras={"ai": {"transport": {
            names.HEADER_RUN_ID: run_id, names.HEADER_EVENT_ID: uuid.uuid4().hex}}}))

    async def until(self, predicate: Any, timeout: float = 10.0) -> None:
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), timeout)

    def root_lifecycle(self) -> list[str]:
        return [e["params"]["data"]["event"] for e in self.events
                if e["method"] == "lifecycle" and e["params"]["namespace"] == []]

    def text(self) -> str:
        return "".join(e["params"]["data"]["delta"].get("text", "") for e in self.events if e["method"] == "messages"
                       and e["params"]["data"]["event"] == "content-block-delta")
