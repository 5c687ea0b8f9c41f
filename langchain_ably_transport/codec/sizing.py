"""Fitting Ably's message size: where a long text stream continues in a new message, and how a tool result
that cannot fit is cut.

Ably limits the whole aggregate of an appended message (name, all data, last extras) to the account's
message size, 64 KiB by default, so a long text or reasoning stream has to be carried by several messages.
A JS reader renders each message as its own text part (`fold-text.ts` pushes a part on every start), so
the split should fall where a new part does not show: at a paragraph break, outside a fenced code block.
Near the end of a message's budget (its last eighth) the encoder ends the message at the first such break;
if none comes before the budget runs out, it falls back to a line break, a space, or a hard cut.

A tool result has no such continuation (JS reads it from one message), so one over the limit is cut: the
client gets its head and a marker saying how large it was (`truncated_tool_output`).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FENCE = "```"
SOFT_FRACTION = 8  # the last 1/SOFT_FRACTION of a message's budget is where a clean break ends it early
_PARAGRAPH = re.compile(r"\n\n")
_LINE = re.compile(r"\n")
_SPACE = re.compile(r"\s")
# The chunk types carrying a tool's result, and the field that holds it.
TOOL_OUTPUT_TYPES = {"tool-output-available": "output", "tool-output-error": "errorText"}
TRUNCATION_MARKER = "\n\n[output truncated: {size} bytes in all, over the {limit}-byte Ably message limit]"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def prefix_within(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` whose UTF-8 form fits `max_bytes`, never cutting a character."""
    if max_bytes <= 0:
        return ""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


@dataclass
class TextTail:
    """What a stream remembers of its text so far: how many code fences it opened or closed, and its end."""

    fences: int = 0
    tail: str = ""

    def advance(self, text: str) -> None:
        self.fences += (self.tail + text).count(FENCE)
        self.tail = (self.tail + text)[-2:]

    def ends_with(self, suffix: str) -> bool:
        return self.tail.endswith(suffix) and self.fences % 2 == 0


@dataclass
class _Breaks:
    """Candidate break positions in a text, with the fence parity of the stream at each."""

    text: str
    start: TextTail
    fence_ends: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        joined = self.start.tail + self.text
        offset = len(self.start.tail)
        self.fence_ends = [m.end() - offset for m in re.finditer(re.escape(FENCE), joined) if m.end() > offset]

    def outside_fence(self, position: int) -> bool:
        return (self.start.fences + bisect.bisect_right(self.fence_ends, position)) % 2 == 0

    def last(self, pattern: re.Pattern[str], limit: int, *, fenced_ok: bool) -> int | None:
        for match in reversed(list(pattern.finditer(self.text, 0, limit))):
            position = match.end()
            if fenced_ok or self.outside_fence(position):
                return position
        return None


def split_point(text: str, *, room: int, soft_room: int, tail: TextTail, has_data: bool) -> int:
    """How much of `text` the current message takes: `len(text)` for all of it, less to continue after.

    `room` is the bytes the message can still carry, `soft_room` where its last eighth begins, `tail` the
    stream's text so far and `has_data` whether this message carries any yet (0 then means: end it now,
    nothing of `text` goes in; 0 with `has_data` False means not even one character fits).
    """
    size = utf8_len(text)
    if size <= soft_room:
        return len(text)
    fit = len(prefix_within(text, room))
    breaks = _Breaks(text, tail)
    clean = breaks.last(_PARAGRAPH, fit, fenced_ok=False) or breaks.last(_LINE, fit, fenced_ok=False)
    if clean is None and has_data and (tail.ends_with("\n\n") or tail.ends_with("\n")):
        clean = 0
    if clean is not None:
        return clean
    if size <= room:
        return len(text)
    rough = breaks.last(_LINE, fit, fenced_ok=True) or breaks.last(_SPACE, fit, fenced_ok=True)
    return rough if rough else fit


def tool_output_text(chunk: Mapping[str, Any]) -> str:
    """A tool result chunk's output (or error text) as text: itself if a string, else its JSON."""
    value = chunk.get(TOOL_OUTPUT_TYPES[str(chunk.get("type"))])
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def truncated_tool_output(chunk: Mapping[str, Any], max_bytes: int, limit: int) -> dict[str, Any]:
    """`chunk` with its result replaced by text of at most `max_bytes`: the head of `tool_output_text` and
    `TRUNCATION_MARKER` naming the whole size and the message `limit` (a structured output becomes text)."""
    text = tool_output_text(chunk)
    marker = TRUNCATION_MARKER.format(size=utf8_len(text), limit=limit)
    head = prefix_within(text, max_bytes - utf8_len(marker))
    return {**chunk, TOOL_OUTPUT_TYPES[str(chunk["type"])]: head + marker}
