"""Hostile messages for a session channel, from one generator the pure and the live fuzz tests share.

Every random decision goes through a `Chooser` made from a seed, so a failing example is reproduced from its seed
alone (the pure tests let hypothesis pick the seeds, the live test fixes them). A message is a dict as a client
publishes it (`name`, `data`, `encoding`, `extras`, `clientId`, `id`, any of them possibly absent or of the wrong
type); `received` stamps on it what the channel adds.

The attacker reads the channel, so it knows the ids of everything published so far (`Known`) and can replay it.
Kinds come in three families:

- `HARMLESS` ones must leave the view of a legitimate conversation exactly as it was: foreign traffic, unknown
  names, cancels naming no live run, inputs that do not decode or cannot be placed, inputs naming a run no agent
  started, inputs reusing the ids of messages already on the channel (replays among them), forged step
  lifecycle. Any of them may carry headers of the wrong type or size and data that is not what the kind needs.
- `IMPERSONATIONS` are agent messages (outputs, run lifecycle, replays of the agent's own messages): the protocol
  lets them change a view, and only trusting agents by client id keeps them out.
- `PERMITTED` ones are what the protocol lets any client do, with junk inside: a fresh user message (a new turn,
  an edit), a steer or a continuation into a known run (tool results, approvals, fork seeds), a cancel of any run.
  Authorising who may do them is a separate matter.

Of the last two families only the absence of crashes is required.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_ably_transport.wire import names

T = TypeVar("T")

# Characters that have broken parsers before: quotes and escapes, JSON structure, a NUL, a line separator JS
# treats as a newline, a character outside the BMP and a right-to-left override.
ALPHABET = "aZ09 -_:/\"'\\{}[],\x00\u2028\u00e9\U0001f4a5\u202e"
MAX_NESTING = 300
# Codec-tier fields of the Vercel codec, some JSON-valued, whose values the corruption replaces.
CODEC_FIELDS = ("messageMetadata", "providerMetadata", "toolCallId", "toolName", "dynamic", "title",
                "providerExecuted", "mediaType", "sourceId", "filename", "messageId", "finishReason", "approvalId",
                "approved", "reason", "preliminary", "transient", "id", "continued", "continues")
# JSON that has the shape a reader expects one level down and the wrong types below it.
MISSHAPEN = ({"usage": {"inputTokens": 1, "outputTokens": "x", "inputTokenDetails": [1], "outputTokenDetails": 5,
                        "raw": {"input_tokens": True}}, "model": ["m"], "finishReason": {}},
             {"openai": [1]}, {"usage": {"raw": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3,
                                                 "input_token_details": "x"}}})


class Chooser:
    """Every random decision the generator makes, from a seeded `random.Random`: the same seed, the same messages."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def choice(self, options: Sequence[T]) -> T:
        return options[self._rng.randrange(len(options))]

    def integer(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def text(self, max_size: int) -> str:
        return "".join(self._rng.choice(ALPHABET) for _ in range(self._rng.randint(0, max_size)))


@dataclass
class Known:
    """What an attacker reading the channel knows of the legitimate conversation so far.

    `live_runs` are runs that have not ended and `ended_inputs` the inputs whose run has: a harmless message names
    no live run nor an input that may still start one (cancelling or steering a live run is something the
    protocol lets any client do).
    """

    run_ids: list[str] = field(default_factory=list)
    live_runs: set[str] = field(default_factory=set)
    ended_inputs: list[str] = field(default_factory=list)
    tool_call_ids: list[str] = field(default_factory=list)
    codec_message_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def learn(self, message: Mapping[str, Any]) -> None:
        """Take note of one legitimate message as received (`extras.ai` tiers, name, serial)."""
        transport = message["extras"]["ai"]["transport"]
        name = message.get("name")
        run_id = transport.get(names.HEADER_RUN_ID)
        if run_id and run_id not in self.run_ids:
            self.run_ids.append(run_id)
        if name in (names.RUN_START, names.RUN_RESUME):
            self.live_runs.add(run_id)
        elif name == names.RUN_END:
            self.live_runs.discard(run_id)
            self.ended_inputs.append(transport.get(names.HEADER_INPUT_CODEC_MESSAGE_ID, ""))
        for key, seen in ((names.HEADER_CODEC_MESSAGE_ID, self.codec_message_ids),
                          (names.HEADER_EVENT_ID, self.event_ids)):
            value = transport.get(key)
            if value and value not in seen:
                seen.append(value)
        tool_call_id = message["extras"]["ai"].get("codec", {}).get("toolCallId")
        if tool_call_id and tool_call_id not in self.tool_call_ids:
            self.tool_call_ids.append(tool_call_id)
        if message.get("serial"):
            self.serials.append(message["serial"])
        if name == names.AI_INPUT:
            self.inputs.append(message)
        elif name is not None:
            self.outputs.append(message)

    def ended_run_ids(self) -> list[str]:
        return [run_id for run_id in self.run_ids if run_id not in self.live_runs]


@dataclass(frozen=True)
class Limits:
    """How long the biggest hostile strings are, in characters: about a million in pure tests; on a live channel
    about Ably's 64 KiB message limit, so that some are accepted and some refused."""

    huge: int = 1 << 20


Kinds = dict[str, Callable[[Chooser, Known, Limits], dict[str, Any]]]


@dataclass(frozen=True)
class Hostile:
    """One hostile message, the kind that made it, and whether an Ably SDK can publish it (else a raw frame)."""

    kind: str
    message: dict[str, Any]

    @property
    def sdk_publishable(self) -> bool:
        """ably-python publishes str/bytes/dict/list data with a string name and dict extras, and sets the encoding
        itself; anything else needs a raw protocol frame."""
        m = self.message
        return (isinstance(m.get("name"), str | None) and isinstance(m.get("extras"), dict | None)
                and (m.get("data") is None or isinstance(m.get("data"), str | bytes | dict | list))
                and "encoding" not in m and isinstance(m.get("id"), str | None)
                and isinstance(m.get("clientId"), str | None))


# --- Values ----------------------------------------------------------------------------------------------------


def fresh_id(ch: Chooser) -> str:
    """An id nobody minted, shaped like a uuid, drawn from `ch` so that an example replays exactly."""
    return str(uuid.UUID(int=ch.integer(0, 2**128 - 1), version=4))


def known_or_forged(ch: Chooser, known: Sequence[str]) -> str:
    """An id the attacker saw on the channel, or one nobody minted."""
    if known and ch.integer(0, 1):
        return ch.choice(list(known))
    forged = fresh_id(ch)
    return ch.choice((forged, "x", "run-" + forged))


def huge_text(ch: Chooser, limits: Limits) -> str:
    return ch.choice(("x", "\u00e9", "\U0001f4a5")) * ch.choice((1024, limits.huge // 8, limits.huge - 2048,
                                                                  limits.huge + 1))


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


def junk_value(ch: Chooser, limits: Limits) -> Any:
    """A JSON value of any type or size, or text that looks like JSON and is not."""
    return ch.choice((
        lambda: ch.text(12), lambda: "", lambda: huge_text(ch, limits), lambda: ch.integer(-(2**63), 2**63),
        lambda: 1.5e308, lambda: True, lambda: None, lambda: [], lambda: {}, lambda: {"a": [1, {"b": None}]},
        lambda: nested(ch.integer(1, MAX_NESTING)), lambda: ch.choice(('{"a":', "[1,", "{'a': 1}", "NaN", "\ud800")),
        lambda: "0x" + "f" * ch.integer(1, 400), lambda: "1e" + "9" * ch.integer(1, 5), lambda: ch.choice(MISSHAPEN),
    ))()


def header_value(ch: Chooser, known: Known, limits: Limits) -> Any:
    """A header value: mostly a string (any id, any size, any content), sometimes not a string at all."""
    return ch.choice((
        lambda: ch.text(20), lambda: "", lambda: known_or_forged(ch, known.codec_message_ids),
        lambda: known_or_forged(ch, known.run_ids), lambda: known_or_forged(ch, known.serials),
        lambda: huge_text(ch, limits), lambda: json.dumps(junk_value(ch, limits)), lambda: junk_value(ch, limits),
    ))()


def corrupt_tier(ch: Chooser, tier: dict[str, Any], known: Known, limits: Limits,
                 keep: frozenset[str] = frozenset()) -> Any:
    """A header tier with values of the wrong type or size and unknown keys added; `keep` keys are left alone,
    so the message stays what its kind says it is. Sometimes the tier is not an object at all."""
    if not keep and ch.integer(0, 7) == 0:
        return ch.choice(("transport", ["run-id"], 5, None, True))
    corrupted = dict(tier)
    for _ in range(ch.integer(0, 3)):
        key = ch.choice((*sorted(names.TRANSPORT_HEADERS), names.KIND, names.PART_TYPE, *CODEC_FIELDS,
                         "x-ably-turn-id", ch.text(8)))
        if key not in keep:
            corrupted[key] = header_value(ch, known, limits)
    return corrupted


def data_value(ch: Chooser, limits: Limits) -> tuple[Any, str | None]:
    """Data and the encoding it claims, which may be a lie (invalid JSON or base64, an unknown encoding)."""
    encoding = ch.choice((None, None, None, "json", "base64", "utf-8", "json/utf-8/base64", "cipher+aes-128-cbc",
                          "vcdiff", "bogus", ""))
    if encoding in ("json", "json/utf-8/base64", "base64"):
        return ch.choice(('{"a":', "not base64!", "e30=", "W10=", json.dumps({"ok": 1}))), encoding
    return junk_value(ch, limits), encoding


def envelope(name: Any, transport: Any, codec: Any = None) -> dict[str, Any]:
    ai: dict[str, Any] = {"transport": transport}
    if codec is not None:
        ai["codec"] = codec
    return {"name": name, "extras": {"ai": ai}}


def with_data(ch: Chooser, message: dict[str, Any], limits: Limits) -> dict[str, Any]:
    data, encoding = data_value(ch, limits)
    if data is not None:
        message["data"] = data
    if encoding is not None:
        message["encoding"] = encoding
    return message


def corrupted(ch: Chooser, message: dict[str, Any], known: Known, limits: Limits, keep: frozenset[str]) -> dict:
    """`message` with both tiers corrupted except the `keep` keys."""
    ai = message["extras"]["ai"]
    ai["transport"] = corrupt_tier(ch, ai["transport"], known, limits, keep)
    if "codec" in ai:
        ai["codec"] = corrupt_tier(ch, ai["codec"], known, limits, keep)
    return message


# --- Harmless kinds --------------------------------------------------------------------------------------------


def foreign(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """The application's own traffic (no `extras.ai`), or `extras.ai` that is not an object."""
    extras = ch.choice((
        lambda: None, lambda: {}, lambda: {"headers": {"run-id": known_or_forged(ch, known.run_ids), "x": 5}},
        lambda: {"headers": "not an object"}, lambda: {"ai": "transport"}, lambda: {"ai": None},
        lambda: {"ai": [1, 2]}, lambda: {"ai": huge_text(ch, limits)}, lambda: {"ephemeral": True},
        lambda: "extras", lambda: [1],
    ))()
    message: dict[str, Any] = {"name": ch.choice((*sorted(names.ALL_NAMES), "chat", None, ch.text(10)))}
    if extras is not None:
        message["extras"] = extras
    return with_data(ch, message, limits)


def unknown_name(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """An AI Transport envelope under a name the protocol does not have (or a name that is not a string)."""
    name = ch.choice(("ai-inputs", "AI-INPUT", "ai-", "", "ai-run-begin", "x" * 300, ch.text(12), 5, ["ai-input"]))
    transport = {names.HEADER_RUN_ID: known_or_forged(ch, known.run_ids), names.HEADER_ROLE: "user",
                 names.HEADER_CODEC_MESSAGE_ID: known_or_forged(ch, known.codec_message_ids)}
    message = envelope(name, transport, {names.KIND: ch.choice(("user-message", "text", "finish"))})
    return corrupted(ch, with_data(ch, message, limits), known, limits, frozenset())


def cancel(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """`ai-cancel` naming an ended run, a run nobody started, an old input, or nothing at all."""
    transport: dict[str, Any] = {}
    if ch.integer(0, 3):
        transport[names.HEADER_EVENT_ID] = ch.choice((fresh_id(ch), *known.event_ids[-1:]))
    if ch.integer(0, 2):
        transport[names.HEADER_RUN_ID] = known_or_forged(ch, known.ended_run_ids())
    if ch.integer(0, 2):
        transport[names.HEADER_INPUT_CODEC_MESSAGE_ID] = known_or_forged(ch, known.ended_inputs)
    keep = frozenset({names.HEADER_RUN_ID, names.HEADER_INPUT_CODEC_MESSAGE_ID})
    return corrupted(ch, with_data(ch, envelope(names.CANCEL, transport), limits), known, limits, keep)


def undecodable_input(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """An `ai-input` that decodes to no event: no kind, an unknown kind or part type, a bare regenerate."""
    codec = ch.choice(({}, {names.KIND: ch.text(10)}, {names.KIND: "user-message"},
                       {names.KIND: "user-message", names.PART_TYPE: ch.choice(("image", "tool-x", "", "TEXT"))},
                       {names.KIND: "regenerate"}, {names.KIND: "text"}))
    transport = _input_transport(ch, known, run_id=ch.choice((None, known_or_forged(ch, known.run_ids))))
    keep = frozenset({names.KIND, names.PART_TYPE})
    return corrupted(ch, with_data(ch, envelope(names.AI_INPUT, transport, codec), limits), known, limits, keep)


def unplaceable_input(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """A well-formed input with no run and nothing that makes it a turn: no codec-message-id, or not from a user."""
    transport = _input_transport(ch, known, run_id=None)
    if ch.integer(0, 1):
        del transport[names.HEADER_CODEC_MESSAGE_ID]
    else:
        transport[names.HEADER_ROLE] = ch.choice(("assistant", "system", "USER", ""))
    message = with_data(ch, envelope(names.AI_INPUT, transport, _decodable_codec(ch, known)), limits)
    keep = frozenset({names.HEADER_ROLE, names.HEADER_RUN_ID, names.HEADER_CODEC_MESSAGE_ID, names.KIND,
                      names.PART_TYPE})
    return corrupted(ch, message, known, limits, keep)


def forged_run_input(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """A well-formed steer or continuation naming a run no agent started."""
    transport = _input_transport(ch, known, run_id=ch.choice((fresh_id(ch), "run", ch.text(30) + "!")))
    message = with_data(ch, envelope(names.AI_INPUT, transport, _decodable_codec(ch, known)), limits)
    return corrupted(ch, message, known, limits, frozenset({names.HEADER_RUN_ID}))


def reused_ids_input(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """A user message reusing a codec-message-id already on the channel (an input's or an assistant message's),
    run-less or sent into an ended run; or any input reusing an event id already on the channel."""
    if not known.codec_message_ids:
        return undecodable_input(ch, known, limits)
    run_id = ch.choice((None, *known.ended_run_ids()[-2:]))
    transport = _input_transport(ch, known, run_id=run_id)
    transport[names.HEADER_CODEC_MESSAGE_ID] = ch.choice(known.codec_message_ids)
    codec = {names.KIND: "user-message", names.PART_TYPE: ch.choice(("text", "data-x", "file"))}
    if known.event_ids and ch.integer(0, 1):
        transport[names.HEADER_EVENT_ID] = ch.choice(known.event_ids)
        codec = _decodable_codec(ch, known)
    message = with_data(ch, envelope(names.AI_INPUT, transport, codec), limits)
    keep = frozenset({names.HEADER_RUN_ID, names.HEADER_CODEC_MESSAGE_ID, names.HEADER_EVENT_ID})
    return corrupted(ch, message, known, limits, keep)


def replayed_input(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """An input already on the channel, published again as it was (a new Ably message: new id, new serial)."""
    if not known.inputs:
        return cancel(ch, known, limits)
    original = ch.choice(known.inputs)
    if original["extras"]["ai"]["transport"].get(names.HEADER_RUN_ID) in known.live_runs:
        return cancel(ch, known, limits)
    return {key: original[key] for key in ("name", "data", "extras") if key in original}


def step_lifecycle(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """`ai-step-start`/`ai-step-end` with anything in them: no view is built from steps."""
    transport = {names.HEADER_RUN_ID: known_or_forged(ch, known.run_ids), names.HEADER_STEP_ID: ch.text(10),
                 names.HEADER_STEP_START_SERIAL: known_or_forged(ch, known.serials),
                 names.HEADER_STEP_REASON: ch.choice(("complete", "failed", "cancelled", "?"))}
    message = envelope(ch.choice((names.STEP_START, names.STEP_END)), transport)
    return corrupted(ch, with_data(ch, message, limits), known, limits, frozenset())


HARMLESS: Kinds = {
    "foreign": foreign, "unknown-name": unknown_name, "cancel": cancel, "undecodable-input": undecodable_input,
    "unplaceable-input": unplaceable_input, "forged-run-input": forged_run_input,
    "reused-ids-input": reused_ids_input, "replayed-input": replayed_input, "step-lifecycle": step_lifecycle,
}


# --- Impersonations --------------------------------------------------------------------------------------------


def forged_output(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """An `ai-output` for a known or a new run, a known or a new message, discrete or a stream create."""
    transport = {names.HEADER_ROLE: "assistant", names.HEADER_RUN_ID: known_or_forged(ch, known.run_ids),
                 names.HEADER_CODEC_MESSAGE_ID: known_or_forged(ch, known.codec_message_ids),
                 names.HEADER_STREAM: ch.choice(("true", "false")), names.HEADER_STATUS: "streaming",
                 names.HEADER_STREAM_ID: ch.text(5), names.HEADER_PARENT: known_or_forged(ch, known.codec_message_ids)}
    codec = {names.KIND: ch.choice(("text", "reasoning", "tool-input", "start", "finish", "start-step", "data-x",
                                    "tool-output-available", "tool-approval-request", "error", "file", "abort")),
             "toolCallId": ch.text(4), "toolName": ch.text(4), "id": ch.text(4)}
    message = with_data(ch, envelope(names.AI_OUTPUT, transport, codec), limits)
    return corrupted(ch, message, known, limits, frozenset({names.HEADER_RUN_ID, names.KIND}))


def forged_lifecycle(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """A run lifecycle message for a known run (ending it, suspending it) or a new one (a phantom run)."""
    transport = {names.HEADER_RUN_ID: known_or_forged(ch, known.run_ids),
                 names.HEADER_PARENT: known_or_forged(ch, known.codec_message_ids),
                 names.HEADER_RUN_REASON: ch.choice(("complete", "cancelled", "error", "bogus")),
                 names.HEADER_ERROR_CODE: ch.choice(("40000", "0x" + "f" * 300, "1e999", "-", ""))}
    message = envelope(ch.choice(sorted(names.RUN_LIFECYCLE_NAMES)), transport)
    return corrupted(ch, with_data(ch, message, limits), known, limits, frozenset({names.HEADER_RUN_ID}))


def replayed_output(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """An agent message already on the channel, published again."""
    if not known.outputs:
        return forged_output(ch, known, limits)
    original = ch.choice(known.outputs)
    return {key: original[key] for key in ("name", "data", "extras") if key in original}


IMPERSONATIONS: Kinds = {
    "forged-output": forged_output, "forged-lifecycle": forged_lifecycle, "replayed-output": replayed_output,
}


# --- What the protocol lets any client do, with junk inside -----------------------------------------------------


def junk_user_message(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """A fresh user message, a steer into any known run, or an edit, whose part carries junk."""
    transport = _input_transport(ch, known, run_id=ch.choice((None, known_or_forged(ch, known.run_ids))))
    if ch.integer(0, 1):
        transport[names.HEADER_FORK_OF] = known_or_forged(ch, known.codec_message_ids)
    codec = {names.KIND: "user-message", names.PART_TYPE: ch.choice(("text", "file", "data-x", "data-resume")),
             "messageId": header_value(ch, known, limits), "mediaType": header_value(ch, known, limits),
             "id": header_value(ch, known, limits)}
    message = with_data(ch, envelope(names.AI_INPUT, transport, codec), limits)
    return corrupted(ch, message, known, limits, frozenset({names.HEADER_ROLE, names.KIND, names.PART_TYPE}))


def junk_continuation(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """A tool result, error or approval sent into any known run for any known message, maybe with a fork seed
    of junk messages."""
    transport = _input_transport(ch, known, run_id=ch.choice((None, known_or_forged(ch, known.run_ids))))
    transport[names.HEADER_CODEC_MESSAGE_ID] = known_or_forged(ch, known.codec_message_ids)
    transport[names.HEADER_ROLE] = ch.choice(("user", "assistant"))
    kind = ch.choice(("tool-result", "tool-result-error", "tool-approval-response"))
    codec = {names.KIND: kind, "toolCallId": known_or_forged(ch, known.tool_call_ids),
             "approved": ch.choice(("true", "false", "yes")), "reason": header_value(ch, known, limits)}
    message = envelope(names.AI_INPUT, transport, codec)
    message["data"] = {"output": junk_value(ch, limits), "message": junk_value(ch, limits)}
    if ch.integer(0, 1):
        message["data"]["forkSeed"] = _junk_fork_seed(ch, known, limits)
    return message


def cancel_anything(ch: Chooser, known: Known, limits: Limits) -> dict[str, Any]:
    """`ai-cancel` of any known run or input, the live ones included."""
    transport = {names.HEADER_EVENT_ID: fresh_id(ch), names.HEADER_RUN_ID: known_or_forged(ch, known.run_ids),
                 names.HEADER_INPUT_CODEC_MESSAGE_ID: known_or_forged(ch, known.codec_message_ids)}
    return envelope(names.CANCEL, transport)


PERMITTED: Kinds = {
    "junk-user-message": junk_user_message, "junk-continuation": junk_continuation,
    "cancel-anything": cancel_anything,
}


EVERY_KIND: Kinds = {**HARMLESS, **IMPERSONATIONS, **PERMITTED}


def hostile(ch: Chooser, known: Known, limits: Limits = Limits(), kinds: Kinds = HARMLESS) -> Hostile:
    """One hostile message of one of `kinds`, chosen by `ch`."""
    kind = ch.choice(sorted(kinds))
    message = kinds[kind](ch, known, limits)
    if ch.integer(0, 4) == 0:
        message["clientId"] = ch.choice(("agent", "alice", "*", ch.text(8), 7))
    if ch.integer(0, 5) == 0:
        message["id"] = ch.choice((fresh_id(ch), fresh_id(ch) + ":0", "", 3))
    return Hostile(kind, message)


def received(message: Mapping[str, Any], serial: str, *, connection_id: str) -> dict[str, Any]:
    """`message` as a subscriber receives it: what the channel sets added (serial, version, action, timestamp, and
    the publisher's connection id, which no publisher can set)."""
    return {**message, "serial": serial, "version": {"serial": serial}, "action": 0, "timestamp": 1,
            "connectionId": connection_id}


# --- Helpers ---------------------------------------------------------------------------------------------------


def _input_transport(ch: Chooser, known: Known, run_id: str | None) -> dict[str, Any]:
    transport: dict[str, Any] = {names.HEADER_ROLE: "user", names.HEADER_CODEC_MESSAGE_ID: fresh_id(ch),
                                 names.HEADER_EVENT_ID: fresh_id(ch), names.HEADER_STREAM: "false"}
    if run_id is not None:
        transport[names.HEADER_RUN_ID] = run_id
    if ch.integer(0, 1):
        transport[names.HEADER_PARENT] = known_or_forged(ch, known.codec_message_ids)
    return transport


def _junk_fork_seed(ch: Chooser, known: Known, limits: Limits) -> Any:
    part = {"type": ch.choice(("tool-x", "dynamic-tool", "text", "file", "step-start", "data-x")),
            "toolCallId": ch.choice((ch.text(4), 7, None, ["unhashable"], {"a": 1})),
            "state": ch.choice(("input-available", "output-available", "output-error", "output-denied",
                                "approval-requested", "input-streaming")),
            "input": junk_value(ch, limits), "output": junk_value(ch, limits), "text": junk_value(ch, limits),
            "toolName": junk_value(ch, limits), "url": junk_value(ch, limits), "mediaType": junk_value(ch, limits)}
    message = {"role": ch.choice(("assistant", "user", "system", "tool", 5, None)), "parts": [part, part],
               "id": junk_value(ch, limits), "metadata": junk_value(ch, limits)}
    entry = {"codecMessageId": known_or_forged(ch, known.codec_message_ids), "message": message}
    return ch.choice(({"messages": [entry, entry]}, {"messages": junk_value(ch, limits)}, junk_value(ch, limits)))


def _decodable_codec(ch: Chooser, known: Known) -> dict[str, Any]:
    """The codec tier of an input that decodes to an event whatever its data."""
    kind = ch.choice(("user-message", "tool-result", "tool-result-error", "tool-approval-response"))
    if kind == "user-message":
        return {names.KIND: kind, names.PART_TYPE: ch.choice(("text", "file", "data-x")), "messageId": ch.text(8)}
    return {names.KIND: kind, "toolCallId": ch.text(8), "approved": ch.choice(("true", "false"))}
