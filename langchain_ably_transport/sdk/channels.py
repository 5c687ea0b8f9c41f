"""What ably-python 3.1.4 keeps private about channels, or gets subtly wrong, reached for in this one place."""

from __future__ import annotations

from typing import Any

from ably import AblyRealtime
from ably.types.channelstate import ChannelState

_RELEASABLE = (ChannelState.INITIALIZED, ChannelState.DETACHED, ChannelState.FAILED)


def attach_serial(channel: Any) -> str | None:
    """The channelSerial of a channel's last attach: the point up to which history precedes live delivery.

    ably-python 3.1.4 keeps it private and has no `history(untilAttach=True)`; ably-js sends the same value
    as the `from_serial` history parameter.
    """
    return getattr(channel, "_RealtimeChannel__attach_serial", None)


def release_channel(client: AblyRealtime, channel: Any) -> None:
    """Forget a channel this package is done with: ably-python keeps every channel ever got (about 9 KB each),
    so a long-lived agent would grow with every conversation it served. Only an unattached channel that is
    still the client's own is released: the SDK finds an arriving message's channel by name, and fails on
    a missing one."""
    if channel.state in _RELEASABLE and client.channels._Channels__all.get(channel.name) is channel:
        client.channels.release(channel.name)


def present_members(presence: Any) -> list[Any]:
    """The members a channel's presence holds now, read without a wait. `presence.get()` returns the list it made
    when the sync ended; an event handled before its caller resumes (a LEAVE, handled in the socket's callback,
    `fixes` 15) is not in that list, and applying the list after the event would undo it."""
    return list(presence.members.list())
