"""Adoption claims: which process took over a lost run, decided by the channel's order. Pure, no I/O.

An agent that adopts a run whose agent died publishes an `ai-run-resume` for it carrying `lcat-adoption: <attempt>`
(`wire.names.HEADER_ADOPTION`). Every process folds the session's messages in the same order, so every process
agrees on the first claim of each attempt: that process serves the run; any other claimant stops before it
publishes anything else. The attempt number counts the claims the run has had, which bounds how often a run may
crash its agents.
"""

from __future__ import annotations

from ..wire import names
from ..wire.envelope import WireMessage


class AdoptionClaims:
    """The first claimant of each (run, attempt), and the highest attempt each run has seen."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, int], str] = {}
        self._attempts: dict[str, int] = {}

    def fold(self, wire: WireMessage) -> None:
        transport = wire.transport
        attempt, run_id = _attempt(transport.get(names.HEADER_ADOPTION)), transport.get(names.HEADER_RUN_ID)
        if wire.name != names.RUN_RESUME or attempt is None or not run_id:
            return
        self._first.setdefault((run_id, attempt), transport.get(names.HEADER_INVOCATION_ID, ""))
        self._attempts[run_id] = max(attempt, self._attempts.get(run_id, 0))

    def lost(self, wire: WireMessage) -> bool:
        """Whether `wire` is a claim that another claim of the same attempt came before: it takes nothing."""
        attempt, run_id = _attempt(wire.transport.get(names.HEADER_ADOPTION)), wire.transport.get(names.HEADER_RUN_ID)
        if wire.name != names.RUN_RESUME or attempt is None or not run_id:
            return False
        return self._first.get((run_id, attempt)) != wire.transport.get(names.HEADER_INVOCATION_ID, "")

    def attempts(self, run_id: str) -> int:
        """How many times the run has been adopted so far."""
        return self._attempts.get(run_id, 0)

    def first(self, run_id: str, attempt: int) -> str | None:
        """The invocation id of the first claim of `attempt` on `run_id`, once it has folded."""
        return self._first.get((run_id, attempt))


def _attempt(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and 0 < len(value) < 4 else None
