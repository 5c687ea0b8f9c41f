"""Serving LangGraph graphs on a session: runs that stream, suspend on `interrupt()` and resume anywhere."""

from .idempotency import idempotency_key
from .protocol import serve_thread
from .serve import GraphRunResult, messages_input, serve_graph, watch_session

__all__ = ["GraphRunResult", "idempotency_key", "messages_input", "serve_graph", "serve_thread", "watch_session"]
