"""Errors of the codec: chunks it cannot encode, streams used out of order, payloads Ably would refuse."""

from __future__ import annotations

from ..errors import AblyTransportError
from ..wire.names import ErrorCode


class CodecError(AblyTransportError):
    """Base of the errors raised by the codec's encoder and tables."""


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
