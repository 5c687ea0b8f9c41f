"""An Ably channel as the durable session of a LangChain/LangGraph agent."""

from .callbacks import AblyCallbackHandler
from .capabilities import agent_capability, browser_capability
from .checkpoint import AblySaver
from .connection import client_options, connect
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
from .ledger import MessageCounts, MessageKind, MessageLedger, attributed_to, ledger
from .pool import ConnectionPool
from .session import AgentSession, ClientSession, Run
from .session.liveness import LIVENESS_CHANNEL
from .tokens import issue_token
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
