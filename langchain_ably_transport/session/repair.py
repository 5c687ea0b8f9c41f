"""What a lost agent left open in its run, and the messages that close it. Pure, no I/O.

An agent killed mid-stream leaves its streams `streaming` and its step started, with no end: a client would render
a message that never finishes. The process that adopts the run closes them as the lost agent's own cancel would
have (§5.3 of the protocol reference): a closing append with no data and `status: cancelled` for each stream,
which a JS reader closes silently, keeping the text received so far, and an `ai-step-end` `cancelled` for each
step. The adopted run then goes on in a step of its own.

Messages may fold in any order (older history is told after newer messages), so a stream or step counts as open
only when its start has folded and no terminal message for it has.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire import names
from ..wire.envelope import WireMessage
from ..wire.headers import step_end_message

_TERMINAL = frozenset({"complete", "cancelled"})


@dataclass(frozen=True)
class OpenStream:
    """A stream still `streaming`: its serial and the headers its create carried, which a closing append repeats."""

    serial: str
    transport: dict[str, str]
    codec: dict[str, str]

    def closing(self) -> WireMessage:
        """The append that ends it `cancelled`, as an encoder's cancel does."""
        transport = {**self.transport, names.HEADER_STATUS: "cancelled"}
        return WireMessage(name=names.AI_OUTPUT, data="", transport=transport, codec=dict(self.codec))


@dataclass(frozen=True)
class OpenStep:
    """An `ai-step-start` with no `ai-step-end` yet."""

    serial: str
    transport: dict[str, str]

    def closing(self) -> WireMessage:
        header = self.transport.get
        return step_end_message(
            run_id=header(names.HEADER_RUN_ID, ""), step_id=header(names.HEADER_STEP_ID, ""),
            step_start_serial=self.serial, reason=names.StepEndReason.CANCELLED,
            invocation_id=header(names.HEADER_INVOCATION_ID), run_client_id=header(names.HEADER_RUN_CLIENT_ID),
            input_client_id=header(names.HEADER_INPUT_CLIENT_ID), step_client_id=header(names.HEADER_STEP_CLIENT_ID))


class LeftOpen:
    """The open streams and steps of each run, folded from agent messages (the session trusts their senders)."""

    def __init__(self) -> None:
        self._streams: dict[str, tuple[str, OpenStream]] = {}
        self._steps: dict[str, tuple[str, OpenStep]] = {}
        self._ended: set[str] = set()  # serials of closed streams, and ids of ended steps
        self._invocations: set[str] = set()

    def fold(self, wire: WireMessage) -> None:
        transport = wire.transport
        run_id = transport.get(names.HEADER_RUN_ID)
        if not run_id or not wire.serial:
            return
        if wire.name in (names.RUN_START, names.RUN_RESUME):
            self._invocations.add(transport.get(names.HEADER_INVOCATION_ID, ""))
        elif wire.name in (names.AI_OUTPUT, None) and transport.get(names.HEADER_STREAM) == names.TRUE:
            self._fold_stream(run_id, wire)
        elif wire.name in (names.STEP_START, names.STEP_END):
            self._fold_step(run_id, wire)

    def _fold_stream(self, run_id: str, wire: WireMessage) -> None:
        serial = wire.serial or ""
        if wire.transport.get(names.HEADER_STATUS) in _TERMINAL:
            self._ended.add(serial)
            self._streams.pop(serial, None)
        elif serial not in self._ended and serial not in self._streams:
            self._streams[serial] = (run_id, OpenStream(serial, dict(wire.transport), dict(wire.codec)))

    def _fold_step(self, run_id: str, wire: WireMessage) -> None:
        step_id = wire.transport.get(names.HEADER_STEP_ID)
        if not step_id:
            return
        if wire.name == names.STEP_END:
            self._ended.add(step_id)
            self._steps.pop(step_id, None)
        elif step_id not in self._ended:
            self._steps[step_id] = (run_id, OpenStep(wire.serial or "", dict(wire.transport)))

    def saw_invocation(self, invocation_id: str) -> bool:
        """Whether the run start or resume of `invocation_id` has folded (what it opened is then known)."""
        return invocation_id in self._invocations

    def streams(self, run_id: str) -> list[OpenStream]:
        return [stream for owner, stream in self._streams.values() if owner == run_id]

    def steps(self, run_id: str) -> list[OpenStep]:
        return [step for owner, step in self._steps.values() if owner == run_id]
