"""Every wire constant of `@ably/ai-transport` 0.8.0: message names, header keys, enumerations, error codes.

One module so that a key cannot drift between the code that writes it and the code that reads it (the JS SDK
keeps the same discipline in `constants.ts`). The transport tier is `message.extras.ai.transport`, the codec
tier `message.extras.ai.codec`; every header value on either tier is a string.
"""

from __future__ import annotations

from enum import StrEnum

# --- Message names (§1.1; nothing else with an `ai-` prefix exists in 0.8.0) --------------------------------

AI_INPUT = "ai-input"
AI_OUTPUT = "ai-output"
RUN_START = "ai-run-start"
RUN_RESUME = "ai-run-resume"
RUN_SUSPEND = "ai-run-suspend"
RUN_END = "ai-run-end"
STEP_START = "ai-step-start"
STEP_END = "ai-step-end"
CANCEL = "ai-cancel"

# This library's extension: the agent-protocol codec (`codec/agent_protocol`), LangChain's agent streaming protocol
# on the same session. A client publishes commands, the agent answers each and publishes batches of events; the
# run lifecycle and cancels above stay as they are.
PROTOCOL_COMMAND = "lg-command"
PROTOCOL_RESPONSE = "lg-response"
PROTOCOL_EVENTS = "lg-events"
PROTOCOL_NAMES = frozenset({PROTOCOL_COMMAND, PROTOCOL_RESPONSE, PROTOCOL_EVENTS})

RUN_LIFECYCLE_NAMES = frozenset({RUN_START, RUN_RESUME, RUN_SUSPEND, RUN_END})
STEP_LIFECYCLE_NAMES = frozenset({STEP_START, STEP_END})
CODEC_NAMES = frozenset({AI_INPUT, AI_OUTPUT})
ALL_NAMES = RUN_LIFECYCLE_NAMES | STEP_LIFECYCLE_NAMES | CODEC_NAMES | {CANCEL}
# What a client may publish on a session; everything else is an agent's, believed from trusted agents only.
CLIENT_NAMES = frozenset({AI_INPUT, CANCEL, PROTOCOL_COMMAND})

# --- Transport-tier header keys (§1.2) ---------------------------------------------------------------------

HEADER_STREAM = "stream"
HEADER_STATUS = "status"
HEADER_STREAM_ID = "stream-id"
HEADER_DISCRETE = "discrete"
HEADER_RUN_ID = "run-id"
HEADER_INVOCATION_ID = "invocation-id"
HEADER_EVENT_ID = "event-id"
HEADER_CODEC_MESSAGE_ID = "codec-message-id"
HEADER_RUN_CLIENT_ID = "run-client-id"
HEADER_INPUT_CLIENT_ID = "input-client-id"
HEADER_ROLE = "role"
HEADER_PARENT = "parent"
HEADER_FORK_OF = "fork-of"
HEADER_MSG_REGENERATE = "msg-regenerate"
HEADER_SUPERSEDES = "supersedes"
HEADER_RUN_REASON = "run-reason"
HEADER_ERROR_CODE = "error-code"
HEADER_ERROR_MESSAGE = "error-message"
HEADER_STEP_ID = "step-id"
HEADER_STEP_START_SERIAL = "step-start-serial"
HEADER_STEP_REASON = "step-reason"
HEADER_STEP_CLIENT_ID = "step-client-id"
HEADER_INPUT_CODEC_MESSAGE_ID = "input-codec-message-id"
HEADER_STEER_CODEC_MESSAGE_IDS = "steer-codec-message-ids"
# This library's extension, on the agent-protocol codec's messages: the command a response answers (the client's
# nonce and its command id), and the seq range of an event batch, or the part of an event split over messages.
HEADER_COMMAND_KEY = "command-key"
HEADER_FIRST_SEQ = "first-seq"
HEADER_LAST_SEQ = "last-seq"
HEADER_PART = "part"
HEADER_PARTS = "parts"

TRANSPORT_HEADERS = frozenset({
    HEADER_STREAM, HEADER_STATUS, HEADER_STREAM_ID, HEADER_DISCRETE, HEADER_RUN_ID, HEADER_INVOCATION_ID,
    HEADER_EVENT_ID, HEADER_CODEC_MESSAGE_ID, HEADER_RUN_CLIENT_ID, HEADER_INPUT_CLIENT_ID, HEADER_ROLE,
    HEADER_PARENT, HEADER_FORK_OF, HEADER_MSG_REGENERATE, HEADER_SUPERSEDES, HEADER_RUN_REASON, HEADER_ERROR_CODE,
    HEADER_ERROR_MESSAGE, HEADER_STEP_ID, HEADER_STEP_START_SERIAL, HEADER_STEP_REASON, HEADER_STEP_CLIENT_ID,
    HEADER_INPUT_CODEC_MESSAGE_ID, HEADER_STEER_CODEC_MESSAGE_IDS,
})

# This library's extension: on `ai-run-start`/`ai-run-resume`, the agent instance serving the run, present on the
# liveness channel while it lives (`session/liveness.py`), so a run still active once its instance left is lost. JS
# SDKs do not read the key (nothing in 0.8.0 reads a transport key it does not know).
HEADER_LIVENESS = "lcat-liveness"
# This library's extension: on an `ai-run-resume`, that it claims a lost run for the n-th time (`session/adoption.py`).
HEADER_ADOPTION = "lcat-adoption"

# --- Codec-tier reserved keys (§1.3): a codec may not bind these as fields ---------------------------------

KIND = "kind"
PART_TYPE = "partType"

# --- Values --------------------------------------------------------------------------------------------------

TRUE = "true"
FALSE = "false"
ROLE_USER = "user"
ROLE_ASSISTANT = "assistant"


class StreamStatus(StrEnum):
    """The `status` header of a streamed message: `streaming` on the create and deltas, then one terminal."""

    STREAMING = "streaming"
    COMPLETE = "complete"
    CANCELLED = "cancelled"


class RunEndReason(StrEnum):
    """`run-reason` on `ai-run-end`; a missing value reads as `complete`."""

    COMPLETE = "complete"
    CANCELLED = "cancelled"
    ERROR = "error"


class StepEndReason(StrEnum):
    """`step-reason` on `ai-step-end`; a missing value reads as `complete`."""

    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    """A run's state as the JS Tree folds it from lifecycle events (§3.1)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    ERROR = "error"


class Action(StrEnum):
    """The Ably action of a received message, named as ably-js names them."""

    CREATE = "message.create"
    UPDATE = "message.update"
    DELETE = "message.delete"
    META = "message.meta"
    SUMMARY = "message.summary"
    APPEND = "message.append"


# ably-python's `MessageAction` is an IntEnum in protocol order (TM5).
ACTION_BY_NUMBER = {
    0: Action.CREATE, 1: Action.UPDATE, 2: Action.DELETE, 3: Action.META, 4: Action.SUMMARY, 5: Action.APPEND,
}
