"""A channel's presence set: who is present, keyed by (connectionId, clientId) as Ably does."""

from __future__ import annotations

import secrets
from typing import Any

from .protocol import AblyError, PresenceAction


class PresenceSet:
    """Members of one channel; pure bookkeeping, the channel stores and fans out what it returns."""

    def __init__(self, max_members: int) -> None:
        self._members: dict[tuple[str, str], dict[str, Any]] = {}
        self._max_members = max_members

    def __len__(self) -> int:
        return len(self._members)

    def apply(self, member: dict[str, Any]) -> dict[str, Any]:
        """Record an enter, update or leave stamped with its connectionId and clientId; return the event."""
        key = (member["connectionId"], member["clientId"])
        action = member["action"]
        if action == PresenceAction.LEAVE:
            previous = self._members.pop(key, None)
            if previous is not None and "data" not in member:
                member = {**member, **_payload_of(previous)}
            return member
        if key not in self._members and len(self._members) >= self._max_members:
            raise AblyError(91003, 400, f"Presence member limit ({self._max_members}) reached on this channel")
        if action == PresenceAction.ENTER and key in self._members:
            member = {**member, "action": int(PresenceAction.UPDATE)}
        self._members[key] = {**member, "action": int(PresenceAction.PRESENT)}
        return member

    def is_current(self, member: dict[str, Any], message_id: Any) -> bool:
        """Whether `message_id` is the id of the member's present state (Ably drops presence that is not newer)."""
        current = self._members.get((member["connectionId"], member["clientId"]))
        reentry = member["action"] == PresenceAction.ENTER and message_id is not None
        return reentry and current is not None and current["id"] == message_id

    def leaves_for(self, connection_id: str, timestamp: int) -> list[dict[str, Any]]:
        """Synthesised LEAVEs for a connection's members (ids carry no connectionId, as Ably's do)."""
        leaves = []
        for (conn, client_id), member in list(self._members.items()):
            if conn != connection_id:
                continue
            leave = {
                "id": f"{secrets.token_hex(5)}:0:0",
                "action": int(PresenceAction.LEAVE),
                "clientId": client_id,
                "connectionId": connection_id,
                "timestamp": timestamp,
            }
            leaves.append({**leave, **_payload_of(member)})
        return leaves

    def members(self, client_id: str | None = None, connection_id: str | None = None) -> list[dict[str, Any]]:
        return [
            member
            for (conn, client), member in self._members.items()
            if (client_id is None or client == client_id) and (connection_id is None or conn == connection_id)
        ]


def _payload_of(member: dict[str, Any]) -> dict[str, Any]:
    """A member's data (and its encoding), which a LEAVE without data of its own carries."""
    return {field: member[field] for field in ("data", "encoding") if field in member}
