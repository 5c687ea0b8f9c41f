"""Sessions: the agent's runs and the client's view of one Ably channel, wire-compatible with @ably/ai-transport."""

from .agent import AgentSession, PipeResult, Run
from .client import ClientSession, SentInput
from .control import ControlRequest, anyone, owner_or, run_owner_only
from .tree import ConversationTree, Node
from .trust import agent_trust, client_trust

__all__ = [
    "AgentSession",
    "ClientSession",
    "ControlRequest",
    "ConversationTree",
    "Node",
    "PipeResult",
    "Run",
    "SentInput",
    "agent_trust",
    "anyone",
    "client_trust",
    "owner_or",
    "run_owner_only",
]
