"""An Ably channel as the durable session of a LangChain/LangGraph agent."""

from .checkpoint import AblySaver, CheckpointRetentionError, CheckpointStorageError
from .connection import client_options, connect
from .session import AgentSession, ClientSession, Run
from .wire.invocation import Invocation
from .errors import AblyTransportError, ConfigurationError, ConnectionFailedError

__all__ = [
    "AblySaver",
    "AgentSession",
    "ClientSession",
    "Invocation",
    "Run",
    "AblyTransportError",
    "CheckpointRetentionError",
    "CheckpointStorageError",
    "ConfigurationError",
    "ConnectionFailedError",
    "client_options",
    "connect",
]
