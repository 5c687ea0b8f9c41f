"""Idempotency keys for the side effects of a graph's steps, which an adopted run may run twice.

A run adopted after its agent died resumes from its last checkpoint: the steps that had started but not
checkpointed run again (at-least-once). A tool that charges a card or sends an email should pass a key that is
the same both times to the service it calls. LangGraph's task id is that stable part: it is derived from the
checkpoint the step started from, so a step run again from the same checkpoint has the same id. The run id, which
an adopter keeps, tells one run's step from the same step of the thread's other runs.
"""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config

from ..errors import ConfigurationError

RUN_ID_KEY = "lcat_run_id"  # in `configurable`: the session run the graph is serving (`serve_graph` sets it)


def idempotency_key(config: RunnableConfig | None = None) -> str:
    """`<run id>:<task path>` for the step running now (or the one `config` belongs to): the same each time the
    step runs again for the same run, different for every other step and run."""
    config = get_config() if config is None else config
    configurable = config.get("configurable") or {}
    task = configurable.get("checkpoint_ns")
    if not task:
        raise ConfigurationError("idempotency_key() is for a graph's nodes and tools, while the graph runs")
    return f"{configurable.get(RUN_ID_KEY) or configurable.get('thread_id', '')}:{task}"
