"""Sessions: the agent's runs and the client's view of one Ably channel, wire-compatible with @ably/ai-transport."""

from .agent import AgentSession, ControlRequest, PipeResult, Run, RunError, anyone, owner_or, run_owner_only
from .client import ClientSession, SentInput
from .tree import ConversationTree, Node

__all__ = [
    "AgentSession",
    "ClientSession",
    "ControlRequest",
    "ConversationTree",
    "Node",
    "PipeResult",
    "Run",
    "RunError",
    "SentInput",
    "anyone",
    "owner_or",
    "run_owner_only",
]
