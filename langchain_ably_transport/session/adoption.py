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
        self._first: dict[tuple[str, int], tuple[str, str]] = {}  # (serial, invocation id) of the earliest claim
        self._attempts: dict[str, int] = {}

    def fold(self, wire: WireMessage) -> None:
        """Take in a claim. The earliest in the channel's order (the smallest serial) is first, whichever folds first:
        a process folds its own claim at its ACK where Ably does not echo it, maybe before an earlier one arrives."""
        transport = wire.transport
        attempt, run_id = _attempt(transport.get(names.HEADER_ADOPTION)), transport.get(names.HEADER_RUN_ID)
        if wire.name != names.RUN_RESUME or attempt is None or not run_id:
            return
        claim = (wire.serial or _UNORDERED, transport.get(names.HEADER_INVOCATION_ID, ""))
        first = self._first.get((run_id, attempt))
        if first is None or claim[0] < first[0]:
            self._first[(run_id, attempt)] = claim
        self._attempts[run_id] = max(attempt, self._attempts.get(run_id, 0))

    def lost(self, wire: WireMessage) -> bool:
        """Whether `wire` is a claim that another claim of the same attempt came before: it takes nothing."""
        attempt, run_id = _attempt(wire.transport.get(names.HEADER_ADOPTION)), wire.transport.get(names.HEADER_RUN_ID)
        if wire.name != names.RUN_RESUME or attempt is None or not run_id:
            return False
        return self.first(run_id, attempt) != wire.transport.get(names.HEADER_INVOCATION_ID, "")

    def attempts(self, run_id: str) -> int:
        """How many times the run has been adopted so far."""
        return self._attempts.get(run_id, 0)

    def first(self, run_id: str, attempt: int) -> str | None:
        """The invocation id of the first claim of `attempt` on `run_id`, once it has folded."""
        first = self._first.get((run_id, attempt))
        return None if first is None else first[1]


_UNORDERED = "\uffff"  # a claim without a serial (none comes from Ably) sorts after every claim that has one


def _attempt(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and 0 < len(value) < 4 else None
