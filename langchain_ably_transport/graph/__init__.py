"""Serving LangGraph graphs on a session: runs that stream, suspend on `interrupt()` and resume anywhere.

Each public name is imported when first used (PEP 562): `serve_graph` does not load what only `serve_thread` needs
(LangChain's agent protocol, its codec and LangGraph's v3 stream transformers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

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

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
