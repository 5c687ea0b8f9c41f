"""Errors of the wire layer: arguments a wire builder or parser cannot accept."""

from __future__ import annotations

from ..errors import AblyTransportError
from .names import ErrorCode


class WireError(AblyTransportError):
    """Base of the errors raised while building or parsing AI Transport wire messages."""


class InvalidArgumentError(WireError, ValueError):
    """A value the protocol cannot carry (the SDK's `InvalidArgument`, 40003); the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=ErrorCode.INVALID_ARGUMENT, status_code=400)


class InvalidInvocationError(InvalidArgumentError):
    """An HTTP wake-up body that is not `{"inputEventId": str, "sessionName": str}`."""
