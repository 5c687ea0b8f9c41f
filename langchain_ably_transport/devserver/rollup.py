"""Append rollup: appends to one message inside the publisher's `appendRollupWindow` become one append.

Ably does this so that a token stream counts (and is delivered) as at most one message per window. The
first append of a stream goes out at once; later ones inside the window are held and concatenated.
Held frames are ACKed in msgSerial order when they are published: both SDKs match ACKs by position.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .protocol import AblyError, Action, MessageAction

PublishResult = list[str | None] | AblyError
STREAM_CLOCKS_KEPT = 64  # streams' last-sent times a connection keeps before it forgets those out of their window
Publish = Callable[[dict[str, Any], int], PublishResult]
Acknowledge = Callable[[int, PublishResult], None]


@dataclass
class HeldAppend:
    msg_serial: int
    channel: str
    message: dict[str, Any]


class AppendRollup:
    """One connection's held appends; `publish(frame, msg_serial)` and `ack(msg_serial, result)` do the rest."""

    def __init__(self, window_s: float, publish: Publish, ack: Acknowledge) -> None:
        self._window = window_s
        self._publish = publish
        self._ack = ack
        self._held: list[HeldAppend] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self._last_sent: dict[tuple[str, str], float] = {}
        self._prune_above = STREAM_CLOCKS_KEPT

    def hold(self, msg_serial: int, frame: dict[str, Any]) -> bool:
        """Hold `frame` if it is an append inside its stream's window; False means publish it now."""
        message = _single_append(frame)
        if message is None or self._window <= 0:
            return False
        stream = (frame["channel"], message["serial"])
        now = time.monotonic()
        if len(self._last_sent) > self._prune_above:
            self._forget_quiet_streams(now)
        last = self._last_sent.get(stream)
        if not self._held and (last is None or now - last >= self._window):
            self._last_sent[stream] = now
            return False
        self._held.append(HeldAppend(msg_serial, frame["channel"], message))
        if self._flush_at is None:
            first = self._held[0]
            started = self._last_sent.get((first.channel, first.message["serial"]), now)
            loop = asyncio.get_running_loop()
            self._flush_at = loop.call_at(loop.time() + max(0.0, started + self._window - now), self.flush)
        return True

    def _forget_quiet_streams(self, now: float) -> None:
        """Drop the clocks of streams last sent a window ago or more, which `hold` treats as never sent: a
        connection that lives for hours would otherwise keep one for every stream it ever appended to."""
        self._last_sent = {stream: sent for stream, sent in self._last_sent.items() if now - sent < self._window}
        self._prune_above = max(STREAM_CLOCKS_KEPT, 2 * len(self._last_sent))

    def close(self) -> None:
        """Flush, then let go of the publisher's callbacks: they are its session's methods, and holding them past the
        session's end made every ended connection, with the ACKs it remembers, garbage that only the collector
        frees (about 3,000 objects for a busy one, and a pause of over a second for the hundreds a load test ends)."""
        self.flush()
        self._publish, self._ack = _refuse_publish, _ignore_ack

    def flush(self) -> None:
        """Publish what is held, one merged append per stream, and ACK the held frames in order."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        held, self._held = self._held, []
        if not held:
            return
        results: dict[int, PublishResult] = {}
        for stream, group in _by_stream(held).items():
            self._last_sent[stream] = time.monotonic()
            for append, result in zip(group, self._publish_group(group), strict=True):
                results[append.msg_serial] = result
        for append in held:
            self._ack(append.msg_serial, results[append.msg_serial])

    def _publish_group(self, group: list[HeldAppend]) -> list[PublishResult]:
        """One append for the group; if the merge is refused, each append on its own (none is lost)."""
        merged = _merge([append.message for append in group])
        if merged is not None:
            result = self._publish(_frame(group[0].channel, merged), group[0].msg_serial)
            if not isinstance(result, AblyError):
                return [result] * len(group)
        return [self._publish(_frame(a.channel, a.message), a.msg_serial) for a in group]


def _refuse_publish(frame: dict[str, Any], msg_serial: int) -> PublishResult:
    raise RuntimeError("append rollup used after its session closed")


def _ignore_ack(msg_serial: int, result: PublishResult) -> None:
    raise RuntimeError("append rollup used after its session closed")


def _frame(channel: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"action": int(Action.MESSAGE), "channel": channel, "messages": [message]}


def _single_append(frame: dict[str, Any]) -> dict[str, Any] | None:
    messages = frame.get("messages")
    if frame.get("action") != Action.MESSAGE or not isinstance(messages, list) or len(messages) != 1:
        return None
    message = messages[0]
    if not isinstance(message, dict) or message.get("action") != MessageAction.APPEND:
        return None
    if not isinstance(message.get("serial"), str) or not isinstance(frame.get("channel"), str):
        return None
    return message


def _by_stream(held: list[HeldAppend]) -> dict[tuple[str, str], list[HeldAppend]]:
    groups: dict[tuple[str, str], list[HeldAppend]] = {}
    for append in held:
        groups.setdefault((append.channel, append.message["serial"]), []).append(append)
    return groups


def _merge(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Concatenate appends to one stream; None when their data cannot be joined (mixed types, any encoding)."""
    datas = [m.get("data") for m in messages if m.get("data") is not None]
    if any(m.get("encoding") for m in messages) or len({type(d) for d in datas}) > 1:
        return None
    merged = dict(messages[-1])
    if datas:
        merged["data"] = datas[0][:0].join(datas)
    for key in ("name", "extras"):
        supplied = [m[key] for m in messages if m.get(key) is not None]
        if supplied:
            merged[key] = supplied[-1]
    return merged
