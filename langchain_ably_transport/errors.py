"""Every exception this package raises, and the error codes they carry (one enum, Ably's numbering).

```
AblyTransportError                      base; `.code` (an ErrorCode where Ably or the AI Transport SDK has one)
├── ConfigurationError                  options, credentials or an endpoint that cannot work; raised before connecting
│   └── UnsupportedSdkError             an ably-python version whose defects this package has not been checked against
├── WrongLoopError                      a sync method called on its client's event loop (it would deadlock)
├── ConnectionFailedError               the connection did not reach CONNECTED (refused, unreachable, timed out)
├── WireError                           building or parsing AI Transport wire messages
│   └── InvalidArgumentError            a value the protocol cannot carry (40003)
│       └── InvalidInvocationError      an HTTP wake-up body out of shape
├── CodecError                          translating between chunks/messages and channel messages
│   ├── UnsupportedChunkError           a chunk type outside the codec's tables (40003)
│   ├── StreamNotOpenError              a delta or end without its start (40003)
│   ├── OversizeMessageError            a payload over the message size limit (40009)
│   ├── EncoderClosedError              a write after close (104004)
│   ├── MissingSerialError              no serial returned for a stream's create (50000)
│   ├── EncoderRecoveryFailedError      an append and its repairing update both failed (104000)
│   └── MessageMappingError             a payload that maps to no LangChain or Vercel shape
├── RunError                            a run that cannot be created or used as asked
├── RunCancelledError                   raised into a chain after a client cancelled its run (40033)
└── CheckpointStorageError              a checkpoint record could not be stored or read
    └── CheckpointRetentionError        the channel's history no longer holds a record a checkpoint needs
```

The value errors (`ConfigurationError`, `InvalidArgumentError`, the codec's input errors) are also `ValueError`s,
and `WrongLoopError` and the codec's state errors `RuntimeError`s, so code that catches the built-in kinds keeps
working.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Error codes: Ably's own (4xxxx, 5xxxx, 8xxxx, 9xxxx) and the AI Transport SDK's (`errors.ts`, 104xxx).

    On the AI Transport wire only `ai-run-end` carries a code (§8); the others are what Ably or ably-python
    answer, named here so that no raw number stands in the code.
    """

    BAD_REQUEST = 40000
    INVALID_ARGUMENT = 40003
    MAX_MESSAGE_SIZE_EXCEEDED = 40009  # Ably's own code for a message over the account's size limit
    OPERATION_CANCELLED = 40033
    INVALID_CREDENTIALS = 40101
    TOKEN_EXPIRED = 40142
    INSUFFICIENT_CAPABILITY = 40160
    NOT_FOUND = 40400
    CONFLICT = 40900  # a run refused because another is active on the session (double-texting `reject`)
    ACCOUNT_RATE_LIMITED = 42910  # over the account's message rate
    CONNECTION_RATE_LIMITED = 42911  # over a connection's publish rate (`maxInboundRate`)
    INTERNAL_ERROR = 50000
    CONNECTION_NOT_RECOVERED = 80008  # Ably's "unable to recover connection"; also a message in doubt after one
    CONNECTION_FAILED = 80000
    TOKEN_REQUEST_FAILED = 80019  # ably-python's wrapper for a refused token request (a wrong key, with a key)
    CONNECTION_NOT_READY = 90000
    ENCODER_RECOVERY_FAILED = 104000
    SESSION_SUBSCRIPTION_ERROR = 104001
    CANCEL_LISTENER_ERROR = 104002
    RUN_LIFECYCLE_ERROR = 104003
    SESSION_CLOSED = 104004
    SESSION_SEND_FAILED = 104005
    CHANNEL_CONTINUITY_LOST = 104006
    CHANNEL_NOT_READY = 104007
    STREAM_ERROR = 104008
    INPUT_EVENT_NOT_FOUND = 104010
    HISTORY_FETCH_FAILED = 104011


# Renewing a token cures these 401s (Ably's token errors 40140-40149); any other 401 will not cure itself.
RENEWABLE_TOKEN_ERRORS = range(40140, 40150)
RATE_REFUSALS = frozenset({ErrorCode.CONNECTION_RATE_LIMITED, ErrorCode.ACCOUNT_RATE_LIMITED})


class AblyTransportError(Exception):
    """Base of every error this package raises; `code` and `status_code` are Ably's where it gave them."""

    def __init__(self, message: str, *, code: int | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = status_code

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (Ably error {int(self.code)})" if self.code else text


# --- configuration and connection ------------------------------------------------------------------------------


class ConfigurationError(AblyTransportError, ValueError):
    """Options or arguments that cannot work (together), credentials that are missing, an endpoint out of shape.

    Raised before anything connects; the message says what was expected.
    """


class UnsupportedSdkError(ConfigurationError):
    """The installed ably-python is a version whose defects `sdk.fixes` has not been checked against."""


class WrongLoopError(AblyTransportError, RuntimeError):
    """A sync method called on the event loop of the client it needs, which would deadlock: use the async one."""


class ConnectionFailedError(AblyTransportError):
    """The realtime connection did not reach CONNECTED, or Ably ended it for good while a run streamed on it:
    credentials refused, nothing listening, a time-out, or a fatal error (such as 42924, a protocol flood).

    The message names the endpoint; `code` is Ably's reason where it gave one.
    """


# --- wire -------------------------------------------------------------------------------------------------------


class WireError(AblyTransportError):
    """Base of the errors raised while building or parsing AI Transport wire messages."""


class InvalidArgumentError(WireError, ValueError):
    """A value the protocol cannot carry (the SDK's `InvalidArgument`, 40003); the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=ErrorCode.INVALID_ARGUMENT, status_code=400)


class InvalidInvocationError(InvalidArgumentError):
    """An HTTP wake-up body that is not `{"inputEventId": str, "sessionName": str}`."""


# --- codec ------------------------------------------------------------------------------------------------------


class CodecError(AblyTransportError):
    """Base of the errors raised by the codec's encoder, tables and message mapping."""


class UnsupportedChunkError(CodecError, ValueError):
    """A chunk type outside the Vercel codec's tables; JS throws `InvalidArgument` for it too."""

    def __init__(self, chunk_type: object) -> None:
        super().__init__(f"unable to publish; unsupported event type {chunk_type!r}",
                         code=ErrorCode.INVALID_ARGUMENT, status_code=400)
        self.chunk_type = chunk_type


class StreamNotOpenError(CodecError, ValueError):
    """A delta or end chunk for a stream that has no open message: send the `*-start` chunk first."""

    def __init__(self, chunk_type: str, stream_id: str) -> None:
        super().__init__(f"unable to write {chunk_type!r}; no open stream with id {stream_id!r}",
                         code=ErrorCode.INVALID_ARGUMENT, status_code=400)
        self.stream_id = stream_id


class OversizeMessageError(CodecError, ValueError):
    """A message that cannot fit Ably's size limit, raised before anything is sent.

    Text and reasoning streams never raise it (they continue in a new message); a discrete payload (a huge
    tool output, data part or fork seed), a tool-input stream (JS parses the input from one message), or
    headers alone larger than the limit do. Shrink the payload or raise `max_message_bytes` to the account's
    limit (64 KiB by default, 256 KiB on higher packages).
    """

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} needs {size} bytes, over the {limit}-byte message limit",
                         code=ErrorCode.MAX_MESSAGE_SIZE_EXCEEDED, status_code=413)
        self.what = what
        self.size = size
        self.limit = limit


class EncoderClosedError(CodecError, RuntimeError):
    """A write after `close()`; each assistant message gets a fresh encoder."""

    def __init__(self) -> None:
        super().__init__("unable to write to encoder; encoder has been closed", code=ErrorCode.SESSION_CLOSED,
                         status_code=400)


class MissingSerialError(CodecError, RuntimeError):
    """The channel returned no serial for a stream's create, so it cannot be appended to."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"unable to start stream; no serial returned (stream id {stream_id!r})",
                         code=ErrorCode.INTERNAL_ERROR, status_code=500)


class EncoderRecoveryFailedError(CodecError, RuntimeError):
    """An append failed and the full-text update that repairs it failed too; those streams are incomplete."""

    def __init__(self, stream_ids: list[str], cause: BaseException | None) -> None:
        super().__init__(f"unable to flush pending appends; recovery failed for stream(s): {', '.join(stream_ids)}",
                         code=ErrorCode.ENCODER_RECOVERY_FAILED, status_code=500)
        self.stream_ids = stream_ids
        self.__cause__ = cause


class MessageMappingError(CodecError, ValueError):
    """A payload that cannot be mapped between LangChain and Vercel shapes: an unknown role or input kind, or a
    missing required field. Usually a client on another codec or version; check the channel's adapter tag."""


# --- runs and checkpoints ---------------------------------------------------------------------------------------


class RunError(AblyTransportError):
    """A run could not be created or used as asked (unknown trigger, publishing after the end, ...)."""


class RunCancelledError(AblyTransportError):
    """Raised into a chain, at its next callback, after a client cancelled the run it streams into."""


class CheckpointStorageError(AblyTransportError):
    """A record could not be stored or read; nothing was silently lost."""


class CheckpointRetentionError(CheckpointStorageError):
    """The channel no longer holds a message a checkpoint needs: its history expired."""
