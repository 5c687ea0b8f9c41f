"""An Ably channel as the durable session of a LangChain/LangGraph agent."""

from .connection import client_options, connect
from .errors import AblyTransportError, ConfigurationError, ConnectionFailedError

__all__ = ["AblyTransportError", "ConfigurationError", "ConnectionFailedError", "client_options", "connect"]
