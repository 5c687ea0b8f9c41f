"""What a client's connection state means for what it can still do."""

from __future__ import annotations

from typing import Any

from ably.types.connectionstate import ConnectionState

ENDED_STATES = frozenset({ConnectionState.FAILED, ConnectionState.CLOSING, ConnectionState.CLOSED})


def has_ended(client: Any) -> bool:
    """Whether `client`'s connection ended for good: ably-python never leaves FAILED (a fatal error, such as Ably's
    42924 for a protocol flood) or CLOSED on its own, so the client will publish nothing again."""
    return client.connection.state in ENDED_STATES
