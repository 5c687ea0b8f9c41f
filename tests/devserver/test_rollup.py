"""AppendRollup on its own: which appends are held, how they merge, and that ACKs keep msgSerial order."""

from __future__ import annotations

import asyncio

from langchain_ably_transport.devserver.protocol import AblyError
from langchain_ably_transport.devserver.rollup import AppendRollup


def _append(serial: str, data, **extra) -> dict:
    return {"action": 15, "channel": "c", "messages": [{"action": 5, "serial": serial, "data": data, **extra}]}


class Recorder:
    def __init__(self, refuse_merged: bool = False) -> None:
        self.published: list[dict] = []
        self.acks: list[tuple[int, object]] = []
        self.refuse_merged = refuse_merged

    def publish(self, frame: dict, msg_serial: int):
        message = frame["messages"][0]
        if self.refuse_merged and len(message["data"]) > 1:
            return AblyError(40009, 400, "too big")
        self.published.append(message)
        return [f"v{len(self.published)}"]

    def ack(self, msg_serial: int, result) -> None:
        self.acks.append((msg_serial, result))


async def test_first_append_goes_out_and_the_rest_of_the_window_is_merged_per_stream():
    recorder = Recorder()
    rollup = AppendRollup(0.05, recorder.publish, recorder.ack)
    assert not rollup.hold(0, _append("a", "x"))
    assert rollup.hold(1, _append("a", "y", name="n"))
    assert rollup.hold(2, _append("b", "1"))
    assert rollup.hold(3, _append("a", "z"))
    assert not rollup.hold(4, {"action": 15, "channel": "c", "messages": [{"data": "create"}]})
    await asyncio.sleep(0.1)
    assert [(m["serial"], m["data"], m.get("name")) for m in recorder.published] == [("a", "yz", "n"), ("b", "1", None)]
    assert recorder.acks == [(1, ["v1"]), (2, ["v2"]), (3, ["v1"])]


async def test_refused_merge_falls_back_to_each_append_alone():
    recorder = Recorder(refuse_merged=True)
    rollup = AppendRollup(10.0, recorder.publish, recorder.ack)
    rollup.hold(0, _append("a", "x"))
    rollup.hold(1, _append("a", "y"))
    rollup.hold(2, _append("a", "z"))
    rollup.flush()
    assert [m["data"] for m in recorder.published] == ["y", "z"]
    assert [serial for serial, _ in recorder.acks] == [1, 2]


async def test_binary_and_text_or_encoded_appends_are_not_merged():
    recorder = Recorder()
    rollup = AppendRollup(10.0, recorder.publish, recorder.ack)
    rollup.hold(0, _append("a", "x"))
    rollup.hold(1, _append("a", "y"))
    rollup.hold(2, _append("a", b"z"))
    rollup.flush()
    assert [m["data"] for m in recorder.published] == ["y", b"z"]


async def test_zero_window_holds_nothing():
    recorder = Recorder()
    rollup = AppendRollup(0.0, recorder.publish, recorder.ack)
    assert not rollup.hold(0, _append("a", "x")) and not rollup.hold(1, _append("a", "y"))
