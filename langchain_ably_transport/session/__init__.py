"""Sessions: the agent's runs and the client's view of one Ably channel, wire-compatible with @ably/ai-transport."""

from .agent import AgentSession, CancelRequest, PipeResult, Run, RunError
from .client import ClientSession, SentInput
from .tree import ConversationTree, Node

__all__ = [
    "AgentSession",
    "CancelRequest",
    "ClientSession",
    "ConversationTree",
    "Node",
    "PipeResult",
    "Run",
    "RunError",
    "SentInput",
]
