"""What a client's connection is (its id, whether Ably echoes it), and what its state means for what it can still do."""

from __future__ import annotations

from typing import Any

from ably.types.connectionstate import ConnectionState

ENDED_STATES = frozenset({ConnectionState.FAILED, ConnectionState.CLOSING, ConnectionState.CLOSED})


def has_ended(client: Any) -> bool:
    """Whether `client`'s connection ended for good: ably-python never leaves FAILED (a fatal error, such as Ably's
    42924 for a protocol flood) or CLOSED on its own, so the client will publish nothing again."""
    return client.connection.state in ENDED_STATES


def connection_id(client: Any) -> str | None:
    """The id Ably gave `client`'s connection (what a message it published carries as `connectionId`); ably-python
    keeps it on its connection manager only."""
    return client.connection.connection_manager.connection_id


def echoes_own_messages(client: Any) -> bool:
    """Whether Ably sends `client`'s connection its own messages back (the `echo` transport parameter, on by
    default; ably-python has no `echoMessages` option, so `transport_params={"echo": "false"}` turns it off)."""
    return str(client.options.transport_params.get("echo", "true")).lower() != "false"
