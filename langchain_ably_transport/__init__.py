"""An Ably channel as the durable session of a LangChain/LangGraph agent."""

from .checkpoint import AblySaver, CheckpointRetentionError, CheckpointStorageError
from .connection import client_options, connect
from .errors import AblyTransportError, ConfigurationError, ConnectionFailedError
from .session import AgentSession, ClientSession, Run
from .wire.invocation import Invocation

__all__ = [
    "AblySaver",
    "AblyTransportError",
    "AgentSession",
    "CheckpointRetentionError",
    "CheckpointStorageError",
    "ClientSession",
    "ConfigurationError",
    "ConnectionFailedError",
    "Invocation",
    "Run",
    "client_options",
    "connect",
]
