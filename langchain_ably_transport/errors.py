"""The package's exception hierarchy; errors from Ably carry its error code and HTTP status."""

from __future__ import annotations


class AblyTransportError(Exception):
    """Base of every error this package raises."""

    def __init__(self, message: str, *, code: int | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = status_code

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (Ably error {self.code})" if self.code else text


class ConfigurationError(AblyTransportError):
    """Options that cannot work together, or credentials that are missing."""


class ConnectionFailedError(AblyTransportError):
    """The realtime connection did not reach CONNECTED: bad credentials, unreachable endpoint, time-out."""
