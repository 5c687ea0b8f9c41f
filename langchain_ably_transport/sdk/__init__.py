"""What this package adds to ably-python: the connection pool (the SDK's fixes and the pacer are to follow here)."""

from .pool import ConnectionPool, PoolStats, leased

__all__ = ["ConnectionPool", "PoolStats", "leased"]
