"""A LangGraph checkpointer whose storage is Ably channels: no database needed."""

from .saver import STATE_NAMESPACE, AblySaver, same_channel, state_channel

__all__ = [
    "STATE_NAMESPACE",
    "AblySaver",
    "same_channel",
    "state_channel",
]
