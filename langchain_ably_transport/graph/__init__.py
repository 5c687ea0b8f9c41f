"""Serving LangGraph graphs on a session: runs that stream, suspend on `interrupt()` and resume anywhere.

Each public name is imported when first used (PEP 562): `serve_graph` (the Vercel UIMessage codec) and
`serve_thread` (LangChain's agent protocol) each load only their own codec.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .idempotency import idempotency_key
    from .protocol import serve_thread
    from .serve import GraphRunResult, messages_input, serve_graph, watch_session

__all__ = ["GraphRunResult", "idempotency_key", "messages_input", "serve_graph", "serve_thread", "watch_session"]

# Where each public name lives, imported on first use.
_LAZY = {
    "GraphRunResult": ".serve",
    "idempotency_key": ".idempotency",
    "messages_input": ".serve",
    "serve_graph": ".serve",
    "serve_thread": ".protocol",
    "watch_session": ".serve",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
