"""Step markers a reader does without: the `start-step` and `finish-step` an agent need not publish.

Each discrete chunk is a billed Ably message. Two of a usual pass's five are redundant on the wire:

* every reader's lifecycle repair (§5.6, `decode-lifecycle.ts`) synthesises a `start-step` before a stream
  start or a discrete `tool-input` when the run has no step open, so a `start-step` right before one of those
  is one it would make itself, in the same place;
* a `finish-step` only resets the reader's open text and reasoning parts and the run's step phase, and a
  `finish` clears both, so a `finish-step` followed by nothing but data parts and the `finish` changes no
  message (a `finish-step` adds no part).

`RunPhases` is the writer's copy of the readers' repair state for one run; the run's encoders share it and
report each output as they send it, so an encoder drops a `start-step` only when every reader will put one
back. It mirrors this agent's writes only: a run that another process wrote before (a resumed or adopted
run) has no copy, and then every marker goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from ..wire.envelope import WireMessage
from ..wire.names import AI_OUTPUT, HEADER_STREAM, KIND, TRUE
from .vercel import LifecycleTracker, is_data_type

START_STEP = "start-step"
FINISH_STEP = "finish-step"
STEP_MARKERS = frozenset({START_STEP, FINISH_STEP})


class MarkerFate(Enum):
    """What becomes of a held step marker when the next chunk is written."""

    SEND = "send"
    """Publish it first: a reader needs it."""
    DROP = "drop"
    """Every reader does without it, or makes it itself."""
    HOLD = "hold"
    """Not known yet: keep holding it (a data part goes out meanwhile)."""


class RunPhases:
    """The `start`/`start-step` phases every reader's lifecycle repair holds for one run, as its writers send."""

    def __init__(self, run_id: str) -> None:
        self._run_id = run_id
        self._tracker = LifecycleTracker()

    @property
    def step_open(self) -> bool:
        """A reader has seen a `start-step` of this run that no `finish-step` or `finish` has ended."""
        return self._tracker.has(self._run_id, START_STEP)

    def sent_discrete(self, kind: str, codec: Mapping[str, str]) -> None:
        self._tracker.on_discrete(self._run_id, kind, codec)

    def sent_stream_start(self, codec: Mapping[str, str]) -> None:
        self._tracker.on_stream_start(self._run_id, codec)

    def sent(self, message: WireMessage) -> None:
        """An `ai-output` create of the run written outside its encoders (a codec's own message)."""
        if message.name != AI_OUTPUT:
            return
        if message.transport.get(HEADER_STREAM) == TRUE:
            self.sent_stream_start(message.codec)
        else:
            self.sent_discrete(message.codec.get(KIND, ""), message.codec)


def held_marker_fate(held: str, next_type: str, *, starts_step: bool, step_open: bool) -> MarkerFate:
    """The fate of `held`, a step marker, when `next_type` is written next.

    `starts_step` says that `next_type` is written as a stream start or a discrete `tool-input` (a reader
    synthesises a missing `start-step` before those); `step_open`, that the run's readers hold a step open now.
    """
    if held == START_STEP:
        return MarkerFate.DROP if starts_step and not step_open else MarkerFate.SEND
    if next_type == "finish":
        return MarkerFate.DROP
    return MarkerFate.HOLD if is_data_type(next_type) else MarkerFate.SEND
