"""An Ably channel as the durable session of a LangChain/LangGraph agent.

Everything here is imported when first used (PEP 562), except the error tree and the ledger: so
`import langchain_ably_transport`, and the dev server, which lives inside the package, load neither LangChain nor
LangGraph until asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    AblyTransportError,
    CheckpointRetentionError,
    CheckpointStorageError,
    CodecError,
    ConfigurationError,
    ConnectionFailedError,
    EncoderClosedError,
    EncoderRecoveryFailedError,
    ErrorCode,
    InvalidArgumentError,
    InvalidInvocationError,
    MessageMappingError,
    MissingSerialError,
    OversizeMessageError,
    RunCancelledError,
    RunError,
    StreamNotOpenError,
    UnsupportedChunkError,
    UnsupportedSdkError,
    WireError,
    WrongLoopError,
)

# Eager and light (the standard library only); and `ledger` must be bound here, after its module: importing the
# submodule `langchain_ably_transport.ledger` sets the package's `ledger` to the module, which this rebinds.
from .lazy import lazy_names
from .ledger import MessageCounts, MessageKind, MessageLedger, attributed_to, ledger

if TYPE_CHECKING:
    from .callbacks import AblyCallbackHandler
    from .capabilities import agent_capability, browser_capability
    from .checkpoint import AblySaver
    from .connection import client_options, connect
    from .pool import ConnectionPool
    from .session import AgentSession, ClientSession, Run
    from .session.liveness import LIVENESS_CHANNEL
    from .tokens import issue_token
    from .wire.invocation import Invocation

# Where each public name lives, imported on first use.
_LAZY = {
    "AblyCallbackHandler": ".callbacks",
    "agent_capability": ".capabilities",
    "browser_capability": ".capabilities",
    "AblySaver": ".checkpoint",
    "client_options": ".connection",
    "connect": ".connection",
    "ConnectionPool": ".pool",
    "AgentSession": ".session",
    "ClientSession": ".session",
    "Run": ".session",
    "LIVENESS_CHANNEL": ".session.liveness",
    "issue_token": ".tokens",
    "Invocation": ".wire.invocation",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())

__all__ = [
    "LIVENESS_CHANNEL",
    "AblyCallbackHandler",
    "AblySaver",
    "AblyTransportError",
    "AgentSession",
    "CheckpointRetentionError",
    "CheckpointStorageError",
    "ClientSession",
    "CodecError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ConnectionPool",
    "EncoderClosedError",
    "EncoderRecoveryFailedError",
    "ErrorCode",
    "InvalidArgumentError",
    "InvalidInvocationError",
    "Invocation",
    "MessageCounts",
    "MessageKind",
    "MessageLedger",
    "MessageMappingError",
    "MissingSerialError",
    "OversizeMessageError",
    "Run",
    "RunCancelledError",
    "RunError",
    "StreamNotOpenError",
    "UnsupportedChunkError",
    "UnsupportedSdkError",
    "WireError",
    "WrongLoopError",
    "agent_capability",
    "attributed_to",
    "browser_capability",
    "client_options",
    "connect",
    "issue_token",
    "ledger",
]
