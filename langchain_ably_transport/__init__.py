"""An Ably channel as the durable session of a LangChain/LangGraph agent."""

from .callbacks import AblyCallbackHandler, RunCancelledError
from .capabilities import agent_capability, browser_capability
from .checkpoint import AblySaver, CheckpointRetentionError, CheckpointStorageError
from .connection import client_options, connect
from .errors import AblyTransportError, ConfigurationError, ConnectionFailedError
from .ledger import MessageCounts, MessageKind, MessageLedger, attributed_to, ledger
from .sdk import ConnectionPool
from .session import AgentSession, ClientSession, Run
from .session.liveness import LIVENESS_CHANNEL
from .wire.invocation import Invocation

__all__ = [
    "LIVENESS_CHANNEL",
    "AblyCallbackHandler",
    "AblySaver",
    "AblyTransportError",
    "AgentSession",
    "CheckpointRetentionError",
    "CheckpointStorageError",
    "ClientSession",
    "ConfigurationError",
    "ConnectionFailedError",
    "ConnectionPool",
    "Invocation",
    "MessageCounts",
    "MessageKind",
    "MessageLedger",
    "Run",
    "RunCancelledError",
    "agent_capability",
    "attributed_to",
    "browser_capability",
    "client_options",
    "connect",
    "ledger",
]
