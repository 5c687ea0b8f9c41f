"""Header field encodings and the transport tier's builders and parsers, each builder next to its parser.

Field encodings follow `core/codec/fields.ts`: a field binds one header key to one value type and reads and
writes it symmetrically, so the encode and decode sides cannot drift. The transport builders and parsers
follow `core/transport/headers.ts` and `cancel-envelope.ts`, including their quirks (which values are
written when empty, what a missing value reads as), because JS clients fold what these produce.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ErrorCode, InvalidArgumentError
from .envelope import Headers, WireMessage
from .ids import bounded_text
from .names import (
    CANCEL,
    FALSE,
    HEADER_CODEC_MESSAGE_ID,
    HEADER_ERROR_CODE,
    HEADER_ERROR_MESSAGE,
    HEADER_EVENT_ID,
    HEADER_FORK_OF,
    HEADER_INPUT_CLIENT_ID,
    HEADER_INPUT_CODEC_MESSAGE_ID,
    HEADER_INVOCATION_ID,
    HEADER_MSG_REGENERATE,
    HEADER_PARENT,
    HEADER_ROLE,
    HEADER_RUN_CLIENT_ID,
    HEADER_RUN_ID,
    HEADER_RUN_REASON,
    HEADER_STEER_CODEC_MESSAGE_IDS,
    HEADER_STEP_CLIENT_ID,
    HEADER_STEP_ID,
    HEADER_STEP_REASON,
    HEADER_STEP_START_SERIAL,
    HEADER_SUPERSEDES,
    RUN_END,
    RUN_RESUME,
    RUN_START,
    RUN_SUSPEND,
    STEP_END,
    STEP_START,
    TRUE,
    RunEndReason,
    StepEndReason,
)

# --- Value encodings (§0, `core/codec/fields.ts`) -----------------------------------------------------------


def to_header_json(value: Any) -> str:
    """`JSON.stringify` as JS writes it: compact and not ASCII-escaped. NaN has no JSON form, so it is refused."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"header value is not JSON-serialisable: {error}") from error


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_header_json(text: str | None) -> Any:
    """`JSON.parse`, or None when absent or malformed (JS reads malformed JSON as undefined)."""
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None


def parse_bool(text: str | None) -> bool | None:
    """`"true"` is true, any other present value false, absent None (`utils.ts` `parseBool`)."""
    return None if text is None else text == TRUE


@dataclass(frozen=True)
class StrField:
    """A string header; with a default the field is total (absent reads as the default)."""

    key: str
    default: str | None = None

    def read(self, headers: Mapping[str, str]) -> str | None:
        value = headers.get(self.key)
        return self.default if value is None else value

    def write(self, headers: Headers, value: Any) -> None:
        if isinstance(value, str):
            headers[self.key] = value


@dataclass(frozen=True)
class BoolField:
    """A `"true"`/`"false"` header; with a default the field is total."""

    key: str
    default: bool | None = None

    def read(self, headers: Mapping[str, str]) -> bool | None:
        value = parse_bool(headers.get(self.key))
        return self.default if value is None else value

    def write(self, headers: Headers, value: Any) -> None:
        if isinstance(value, bool):
            headers[self.key] = TRUE if value else FALSE


@dataclass(frozen=True)
class JsonField:
    """A JSON-stringified header. None is never written; malformed JSON reads as None."""

    key: str

    def read(self, headers: Mapping[str, str]) -> Any:
        return parse_header_json(headers.get(self.key))

    def write(self, headers: Headers, value: Any) -> None:
        if value is not None:
            headers[self.key] = to_header_json(value)


@dataclass(frozen=True)
class EnumField:
    """A string header checked against an allow-list; absent or unknown values read as the fallback."""

    key: str
    allowed: tuple[str, ...]
    fallback: str

    def read(self, headers: Mapping[str, str]) -> str:
        value = headers.get(self.key)
        return value if value in self.allowed else self.fallback

    def write(self, headers: Headers, value: Any) -> None:
        if isinstance(value, str):
            headers[self.key] = value


HeaderField = StrField | BoolField | JsonField | EnumField


def write_fields(fields: Sequence[HeaderField], source: Mapping[str, Any], headers: Headers | None = None) -> Headers:
    """Write each field from the same-named key of `source` (a chunk or payload) into `headers`."""
    out: Headers = {} if headers is None else headers
    for f in fields:
        f.write(out, source.get(f.key))
    return out


def read_fields(fields: Sequence[HeaderField], headers: Mapping[str, str]) -> dict[str, Any]:
    """Read each field into a dict keyed by field key; a field reading None contributes no key."""
    values: dict[str, Any] = {}
    for f in fields:
        value = f.read(headers)
        if value is not None:
            values[f.key] = value
    return values


# --- Transport headers of inputs and outputs (`buildTransportHeaders`) --------------------------------------


def build_transport_headers(
    *,
    role: str,
    codec_message_id: str,
    run_id: str | None = None,
    run_client_id: str | None = None,
    parent: str | None = None,
    fork_of: str | None = None,
    regenerates: str | None = None,
    supersedes: str | None = None,
    invocation_id: str | None = None,
    input_client_id: str | None = None,
    input_codec_message_id: str | None = None,
    input_event_id: str | None = None,
    step_id: str | None = None,
    step_start_serial: str | None = None,
    step_client_id: str | None = None,
    steer_codec_message_ids: Sequence[str] = (),
) -> Headers:
    """The transport tier of an `ai-input`/`ai-output`, as `buildTransportHeaders` writes it.

    `parent`, `fork-of`, `msg-regenerate`, `supersedes`, `invocation-id` and `event-id` are skipped when
    empty; the others are written whenever given, even as `""` (JS agents write `run-client-id: ""`).
    `steer-codec-message-ids` (stamped by the JS agent's per-message hook) is a JSON array, omitted when empty.
    The encoder adds `stream`, `status` and `stream-id` itself.
    """
    h: Headers = {HEADER_ROLE: role, HEADER_CODEC_MESSAGE_ID: codec_message_id}
    _put(h, HEADER_RUN_ID, run_id)
    _put(h, HEADER_RUN_CLIENT_ID, run_client_id)
    _put_nonempty(h, HEADER_PARENT, parent)
    _put_nonempty(h, HEADER_FORK_OF, fork_of)
    _put_nonempty(h, HEADER_MSG_REGENERATE, regenerates)
    _put_nonempty(h, HEADER_SUPERSEDES, supersedes)
    _put_nonempty(h, HEADER_INVOCATION_ID, invocation_id)
    _put(h, HEADER_INPUT_CLIENT_ID, input_client_id)
    _put(h, HEADER_INPUT_CODEC_MESSAGE_ID, input_codec_message_id)
    _put_nonempty(h, HEADER_EVENT_ID, input_event_id)
    _put(h, HEADER_STEP_ID, step_id)
    _put(h, HEADER_STEP_START_SERIAL, step_start_serial)
    _put(h, HEADER_STEP_CLIENT_ID, step_client_id)
    if steer_codec_message_ids:
        h[HEADER_STEER_CODEC_MESSAGE_IDS] = to_header_json(list(steer_codec_message_ids))
    return h


def parse_steer_codec_message_ids(headers: Mapping[str, str]) -> list[str]:
    """The steers a pass answered: the JSON array under `steer-codec-message-ids`, [] when absent or malformed."""
    value = parse_header_json(headers.get(HEADER_STEER_CODEC_MESSAGE_IDS))
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


# --- Run lifecycle (`buildLifecycleHeaders`, `parseRunLifecycle`, `buildRunEndError`) -----------------------


def build_lifecycle_headers(
    *,
    run_id: str,
    run_client_id: str = "",
    parent: str | None = None,
    fork_of: str | None = None,
    regenerates: str | None = None,
    invocation_id: str | None = None,
    input_client_id: str | None = None,
    input_codec_message_id: str | None = None,
    reason: RunEndReason | str | None = None,
    error_code: int | None = None,
    error_message: str | None = None,
) -> Headers:
    """The transport tier of a run lifecycle message; every optional key is written when given.

    An error message is cut to `MAX_ECHOED_TEXT_LENGTH` characters: it may quote a client's input (an exception's
    text), and the end of a run must always fit in a message.
    """
    h: Headers = {HEADER_RUN_ID: run_id, HEADER_RUN_CLIENT_ID: run_client_id}
    _put(h, HEADER_RUN_REASON, None if reason is None else str(reason))
    _put(h, HEADER_PARENT, parent)
    _put(h, HEADER_FORK_OF, fork_of)
    _put(h, HEADER_MSG_REGENERATE, regenerates)
    _put(h, HEADER_INVOCATION_ID, invocation_id)
    _put(h, HEADER_INPUT_CLIENT_ID, input_client_id)
    _put(h, HEADER_INPUT_CODEC_MESSAGE_ID, input_codec_message_id)
    _put(h, HEADER_ERROR_CODE, None if error_code is None else str(error_code))
    _put(h, HEADER_ERROR_MESSAGE, None if error_message is None else bounded_text(error_message))
    return h


def run_start_message(
    *,
    run_id: str,
    run_client_id: str = "",
    invocation_id: str | None = None,
    input_client_id: str | None = None,
    input_codec_message_id: str | None = None,
    parent: str | None = None,
    fork_of: str | None = None,
    regenerates: str | None = None,
) -> WireMessage:
    """`ai-run-start`: the only lifecycle message carrying the run's structural anchors (parent, fork, regen)."""
    return WireMessage(name=RUN_START, transport=build_lifecycle_headers(
        run_id=run_id, run_client_id=run_client_id, parent=parent, fork_of=fork_of, regenerates=regenerates,
        invocation_id=invocation_id, input_client_id=input_client_id, input_codec_message_id=input_codec_message_id,
    ))


def run_resume_message(
    *,
    run_id: str,
    run_client_id: str = "",
    invocation_id: str | None = None,
    input_client_id: str | None = None,
    input_codec_message_id: str | None = None,
) -> WireMessage:
    """`ai-run-resume`, published instead of a start when the trigger carried a `run-id` (a continuation)."""
    return WireMessage(name=RUN_RESUME, transport=build_lifecycle_headers(
        run_id=run_id, run_client_id=run_client_id, invocation_id=invocation_id,
        input_client_id=input_client_id, input_codec_message_id=input_codec_message_id,
    ))


def run_suspend_message(
    *,
    run_id: str,
    run_client_id: str = "",
    invocation_id: str | None = None,
    input_client_id: str | None = None,
    input_codec_message_id: str | None = None,
) -> WireMessage:
    """`ai-run-suspend`: the invocation ends waiting for client tools or approvals; the run does not."""
    return WireMessage(name=RUN_SUSPEND, transport=build_lifecycle_headers(
        run_id=run_id, run_client_id=run_client_id, invocation_id=invocation_id,
        input_client_id=input_client_id, input_codec_message_id=input_codec_message_id,
    ))


def run_end_message(
    *,
    run_id: str,
    reason: RunEndReason | str = RunEndReason.COMPLETE,
    run_client_id: str = "",
    invocation_id: str | None = None,
    input_client_id: str | None = None,
    input_codec_message_id: str | None = None,
    error_code: int | None = None,
    error_message: str | None = None,
) -> WireMessage:
    """`ai-run-end`. An error code and message are only carried with reason `error`, as the JS agent does."""
    if str(reason) != RunEndReason.ERROR and (error_code is not None or error_message is not None):
        raise InvalidArgumentError(f"an error code or message needs run-reason 'error', not {str(reason)!r}")
    return WireMessage(name=RUN_END, transport=build_lifecycle_headers(
        run_id=run_id, run_client_id=run_client_id, invocation_id=invocation_id,
        input_client_id=input_client_id, input_codec_message_id=input_codec_message_id,
        reason=reason, error_code=error_code, error_message=error_message,
    ))


@dataclass(frozen=True)
class RunEndError:
    """The `ErrorInfo` a JS client rebuilds from an error run-end."""

    message: str
    code: int | float
    status_code: int


@dataclass(frozen=True)
class RunLifecycleEvent:
    """A parsed run lifecycle message. Anchors are only read from a start, the reason only from an end."""

    type: Literal["start", "resume", "suspend", "end"]
    run_id: str
    client_id: str
    invocation_id: str
    serial: str | None = None
    timestamp: int | None = None
    parent: str | None = None
    fork_of: str | None = None
    regenerates: str | None = None
    input_codec_message_id: str | None = None
    reason: str | None = None
    error: RunEndError | None = None


def build_run_end_error(headers: Mapping[str, str]) -> RunEndError:
    """`buildRunEndError`: code from `error-code` (JS `Number()`), else 104008; HTTP status from the code."""
    raw = headers.get(HEADER_ERROR_CODE)
    parsed = math.nan if raw is None else js_number(raw)
    code: int | float = ErrorCode.STREAM_ERROR.value if not math.isfinite(parsed) else _integral(parsed)
    message = headers.get(HEADER_ERROR_MESSAGE)
    status = math.floor(code / 100) if 10000 <= code < 60000 else 500
    return RunEndError(message="agent reported an error" if message is None else message, code=code,
                       status_code=status)


def parse_run_lifecycle(
    name: str | None, headers: Mapping[str, str], serial: str | None = None, timestamp: int | None = None
) -> RunLifecycleEvent | None:
    """`parseRunLifecycle`: None for a non-lifecycle name or an empty/missing `run-id`.

    A missing `invocation-id` reads as `""` and a missing `run-reason` as `complete`; the reason is not
    otherwise validated (JS passes an unknown value through).
    """
    run_id = headers.get(HEADER_RUN_ID)
    if not run_id:
        return None
    common: dict[str, Any] = {
        "run_id": run_id, "client_id": headers.get(HEADER_RUN_CLIENT_ID, ""),
        "invocation_id": headers.get(HEADER_INVOCATION_ID, ""), "serial": serial, "timestamp": timestamp,
    }
    if name == RUN_START:
        return RunLifecycleEvent(
            type="start", **common, parent=headers.get(HEADER_PARENT), fork_of=headers.get(HEADER_FORK_OF),
            regenerates=headers.get(HEADER_MSG_REGENERATE),
            input_codec_message_id=headers.get(HEADER_INPUT_CODEC_MESSAGE_ID),
        )
    if name == RUN_SUSPEND:
        return RunLifecycleEvent(type="suspend", **common)
    if name == RUN_RESUME:
        return RunLifecycleEvent(type="resume", **common)
    if name == RUN_END:
        reason = headers.get(HEADER_RUN_REASON, RunEndReason.COMPLETE.value)
        error = build_run_end_error(headers) if reason == RunEndReason.ERROR else None
        return RunLifecycleEvent(type="end", **common, reason=reason, error=error)
    return None


# --- Step lifecycle (`buildStepHeaders`, `parseStepLifecycle`) ----------------------------------------------


def build_step_headers(
    *,
    run_id: str,
    step_id: str,
    step_start_serial: str | None = None,
    invocation_id: str | None = None,
    run_client_id: str | None = None,
    input_client_id: str | None = None,
    step_client_id: str | None = None,
    reason: StepEndReason | str | None = None,
) -> Headers:
    """The transport tier of `ai-step-start`/`ai-step-end`; no `input-codec-message-id`, unlike run lifecycle."""
    h: Headers = {HEADER_RUN_ID: run_id, HEADER_STEP_ID: step_id}
    _put(h, HEADER_STEP_START_SERIAL, step_start_serial)
    _put(h, HEADER_INVOCATION_ID, invocation_id)
    _put(h, HEADER_RUN_CLIENT_ID, run_client_id)
    _put(h, HEADER_INPUT_CLIENT_ID, input_client_id)
    _put(h, HEADER_STEP_CLIENT_ID, step_client_id)
    _put(h, HEADER_STEP_REASON, None if reason is None else str(reason))
    return h


def step_start_message(
    *,
    run_id: str,
    step_id: str,
    invocation_id: str | None = None,
    run_client_id: str | None = None,
    input_client_id: str | None = None,
    step_client_id: str | None = None,
) -> WireMessage:
    """`ai-step-start`; its own ACK serial becomes the `step-start-serial` of the step's outputs and end."""
    return WireMessage(name=STEP_START, transport=build_step_headers(
        run_id=run_id, step_id=step_id, invocation_id=invocation_id, run_client_id=run_client_id,
        input_client_id=input_client_id, step_client_id=step_client_id,
    ))


def step_end_message(
    *,
    run_id: str,
    step_id: str,
    step_start_serial: str,
    reason: StepEndReason | str = StepEndReason.COMPLETE,
    invocation_id: str | None = None,
    run_client_id: str | None = None,
    input_client_id: str | None = None,
    step_client_id: str | None = None,
) -> WireMessage:
    """`ai-step-end`. `step_start_serial` is required: a JS client drops a step end without it."""
    if not step_start_serial:
        raise InvalidArgumentError("ai-step-end needs the serial of its ai-step-start")
    return WireMessage(name=STEP_END, transport=build_step_headers(
        run_id=run_id, step_id=step_id, step_start_serial=step_start_serial, invocation_id=invocation_id,
        run_client_id=run_client_id, input_client_id=input_client_id, step_client_id=step_client_id, reason=reason,
    ))


@dataclass(frozen=True)
class StepLifecycleEvent:
    """A parsed step lifecycle message; `invocation_client_id` is read from `input-client-id`."""

    type: Literal["step-start", "step-end"]
    run_id: str
    step_id: str
    invocation_id: str
    run_client_id: str
    invocation_client_id: str
    step_client_id: str
    serial: str | None = None
    timestamp: int | None = None
    step_start_serial: str | None = None
    reason: str | None = None


def parse_step_lifecycle(
    name: str | None, headers: Mapping[str, str], serial: str | None = None, timestamp: int | None = None
) -> StepLifecycleEvent | None:
    """`parseStepLifecycle`: None without `run-id`/`step-id`, or for a step end without `step-start-serial`."""
    run_id = headers.get(HEADER_RUN_ID)
    step_id = headers.get(HEADER_STEP_ID)
    if not run_id or not step_id:
        return None
    common: dict[str, Any] = {
        "run_id": run_id, "step_id": step_id, "serial": serial, "timestamp": timestamp,
        "invocation_id": headers.get(HEADER_INVOCATION_ID, ""),
        "run_client_id": headers.get(HEADER_RUN_CLIENT_ID, ""),
        "invocation_client_id": headers.get(HEADER_INPUT_CLIENT_ID, ""),
        "step_client_id": headers.get(HEADER_STEP_CLIENT_ID, ""),
    }
    if name == STEP_START:
        return StepLifecycleEvent(type="step-start", **common)
    if name == STEP_END:
        step_start_serial = headers.get(HEADER_STEP_START_SERIAL)
        if not step_start_serial:
            return None
        reason = headers.get(HEADER_STEP_REASON, StepEndReason.COMPLETE.value)
        return StepLifecycleEvent(type="step-end", **common, step_start_serial=step_start_serial, reason=reason)
    return None


# --- Cancel (`cancel-envelope.ts`) --------------------------------------------------------------------------


@dataclass(frozen=True)
class CancelTarget:
    """What an `ai-cancel` names: a run, the trigger input's codec-message-id, or both."""

    run_id: str | None = None
    input_codec_message_id: str | None = None


def cancel_message(
    *, run_id: str | None = None, input_codec_message_id: str | None = None, event_id: str | None = None
) -> WireMessage:
    """`ai-cancel` with a fresh `event-id`. A cancel naming neither target is refused (JS agents drop it)."""
    if run_id is None and input_codec_message_id is None:
        raise InvalidArgumentError("ai-cancel needs a run-id or an input-codec-message-id")
    h: Headers = {HEADER_EVENT_ID: event_id or str(uuid.uuid4())}
    _put(h, HEADER_RUN_ID, run_id)
    _put(h, HEADER_INPUT_CODEC_MESSAGE_ID, input_codec_message_id)
    return WireMessage(name=CANCEL, transport=h)


def read_cancel_target(headers: Mapping[str, str]) -> CancelTarget:
    """What an `ai-cancel`'s headers name: a run id, the input's codec-message-id, or both."""
    return CancelTarget(run_id=headers.get(HEADER_RUN_ID),
                        input_codec_message_id=headers.get(HEADER_INPUT_CODEC_MESSAGE_ID))


# --- Helpers -------------------------------------------------------------------------------------------------

_JS_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_JS_RADIX = re.compile(r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+")
# JS `String.prototype.trim` whitespace: the ASCII set, NBSP, BOM and the Unicode space separators.
_JS_SPACE = " \t\n\v\f\r\u00a0\ufeff\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"


def js_number(text: str) -> float:
    """JavaScript's `Number(text)`: trimmed, `""` is 0, hex/octal/binary literals allowed, otherwise NaN."""
    s = text.strip(_JS_SPACE)
    if s == "":
        return 0.0
    if s in ("Infinity", "+Infinity"):
        return math.inf
    if s == "-Infinity":
        return -math.inf
    if _JS_RADIX.fullmatch(s):
        try:
            return float(int(s, 0))
        except OverflowError:  # JS reads a literal beyond the largest double as Infinity
            return math.inf
    if _JS_DECIMAL.fullmatch(s):
        return float(s)
    return math.nan


def _integral(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def _put(headers: Headers, key: str, value: str | None) -> None:
    if value is not None:
        headers[key] = value


def _put_nonempty(headers: Headers, key: str, value: str | None) -> None:
    if value:
        headers[key] = value
