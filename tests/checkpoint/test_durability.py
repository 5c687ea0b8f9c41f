"""AblySaver across processes, at scale, under Ably's limits, with concurrent writers and lost history."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from ably.types.message import Message
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint

from langchain_ably_transport import AblySaver, CheckpointRetentionError, connect
from langchain_ably_transport.devserver import spawn

CHILD = Path(__file__).with_name("approval_process.py")


def _config(thread_id: str, checkpoint_id: str | None = None) -> dict:
    configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def _run_child(mode: str, server, thread_id: str) -> dict:
    result = subprocess.run([sys.executable, str(CHILD), mode, server.url, server.key, thread_id],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_interrupt_in_one_process_is_resumed_by_another_from_the_channel_alone(server):
    thread_id = f"approval-{uuid.uuid4().hex[:8]}"
    first = _run_child("start", server, thread_id)
    assert first["log"] == ["planned"] and first["next"] == ["approve"]
    assert [i["value"]["question"] for i in first["interrupts"]] == ["deploy?"]
    second = _run_child("resume", server, thread_id)
    assert second == {"log": ["planned", "approved:yes", "deployed"], "next": [], "interrupts": []}


def _checkpoint(values: dict, versions: dict):
    return generate_checkpoint(channel_values=values, channel_versions=versions)


async def test_a_5_mb_state_round_trips_through_chunks(clients):
    saver = AblySaver(await clients())
    thread_id = uuid.uuid4().hex
    big = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    text = "".join(f"line {i}: {uuid.uuid4().hex}\n" for i in range(20000))
    config = await saver.aput(_config(thread_id), _checkpoint({"blob": big, "text": text}, {"blob": 1, "text": 1}),
                              {"source": "loop", "step": 1}, {"blob": 1, "text": 1})
    await saver.aput_writes(config, [("big_write", big[: 300_000])], task_id="t1")
    await saver.aflush()
    cold = AblySaver(await clients())
    loaded = await cold.aget_tuple(_config(thread_id))
    assert loaded.checkpoint["channel_values"]["blob"] == big
    assert loaded.checkpoint["channel_values"]["text"] == text
    assert loaded.pending_writes == [("t1", "big_write", big[:300_000])]


async def test_a_tasks_writes_travel_in_the_next_checkpoints_message(clients):
    from langchain_ably_transport import MessageKind, ledger

    saver = AblySaver(await clients(), writes_wait_s=30)
    thread_id = uuid.uuid4().hex
    first = await saver.aput(_config(thread_id), _checkpoint({"x": 1}, {"x": 1}), {"source": "loop", "step": 0},
                             {"x": 1})
    before = ledger.process()[MessageKind.CHECKPOINT_RECORD]
    await saver.aput_writes(first, [("x", 2)], task_id="t1")
    await saver.aput_writes(first, [("y", 3)], task_id="t2")
    assert ledger.process()[MessageKind.CHECKPOINT_RECORD] == before, "writes wait for the next checkpoint"
    second = await saver.aput(first, _checkpoint({"x": 2}, {"x": 2}), {"source": "loop", "step": 1}, {"x": 2})
    assert ledger.process()[MessageKind.CHECKPOINT_RECORD] == before + 1, "one message for the whole super-step"
    cold = AblySaver(await clients())
    assert (await cold.aget_tuple(second)).checkpoint["channel_values"] == {"x": 2}
    assert sorted((await cold.aget_tuple(first)).pending_writes) == [("t1", "x", 2), ("t2", "y", 3)]


async def test_a_special_write_is_published_before_put_writes_returns_with_everything_waiting(clients):
    saver = AblySaver(await clients(), writes_wait_s=30)
    thread_id = uuid.uuid4().hex
    config = await saver.aput(_config(thread_id), _checkpoint({"x": 1}, {"x": 1}), {"source": "loop", "step": 0},
                              {"x": 1})
    await saver.aput_writes(config, [("x", 2)], task_id="done-sibling")
    await saver.aput_writes(config, [("__interrupt__", ["ask the user"])], task_id="interrupted")
    cold = AblySaver(await clients())
    assert sorted((await cold.aget_tuple(config)).pending_writes) == [
        ("done-sibling", "x", 2), ("interrupted", "__interrupt__", ["ask the user"])]


async def test_writes_no_checkpoint_takes_reach_other_processes_within_writes_wait_s(clients):
    saver, early, late = AblySaver(await clients(), writes_wait_s=1.0), await clients(), await clients()
    thread_id = uuid.uuid4().hex
    config = await saver.aput(_config(thread_id), _checkpoint({"x": 1}, {"x": 1}), {"source": "loop", "step": 0},
                              {"x": 1})
    await saver.aput_writes(config, [("x", 2)], task_id="t1")
    assert (await AblySaver(early).aget_tuple(config)).pending_writes == [], "still waiting for a checkpoint"
    await asyncio.sleep(1.5)
    assert (await AblySaver(late).aget_tuple(config)).pending_writes == [("t1", "x", 2)]
    assert (await saver.aget_tuple(config)).pending_writes == [("t1", "x", 2)], "and the writer reads its own"


async def test_a_thousand_checkpoints_and_the_latest_from_a_cold_saver(clients):
    saver = AblySaver(await clients())
    thread_id = uuid.uuid4().hex
    config = _config(thread_id)
    messages: list[str] = []
    version = None
    for step in range(1000):
        messages.append(f"message {step}")
        version = saver.get_next_version(version, None)
        checkpoint = _checkpoint({"messages": list(messages), "step": step}, {"messages": version, "step": version})
        config = await saver.aput(config, checkpoint, {"source": "loop", "step": step},
                                  {"messages": version, "step": version})
    cold = AblySaver(await clients())
    latest = await cold.aget_tuple(_config(thread_id))
    assert latest.checkpoint["channel_values"]["messages"] == messages
    assert latest.metadata["step"] == 999
    history = [t async for t in cold.alist(_config(thread_id), limit=5)]
    assert [t.metadata["step"] for t in history] == [999, 998, 997, 996, 995]
    assert len([t async for t in cold.alist(_config(thread_id))]) == 1000


async def test_foreign_messages_on_a_shared_channel_are_ignored(clients):
    from langchain_ably_transport.checkpoint import same_channel

    client = await clients()
    thread_id = f"conversations:{uuid.uuid4().hex[:8]}"
    saver = AblySaver(client, channel_for=same_channel)
    channel = client.channels.get(thread_id)
    await channel.publish("ai-output", "hello from the session")
    await channel.publish(Message(name="lg.checkpoint", data=b"not a record"))
    stored = await saver.aput(_config(thread_id), _checkpoint({"x": 1}, {"x": 1}), {"source": "loop", "step": 0},
                              {"x": 1})
    await channel.publish("ai-output", "more session traffic")
    latest = await AblySaver(await clients(), channel_for=same_channel).aget_tuple(_config(thread_id))
    assert latest.config == stored and latest.checkpoint["channel_values"] == {"x": 1}


async def test_two_processes_writing_one_thread_both_land_and_agree_on_the_latest(clients):
    thread_id = uuid.uuid4().hex
    first, second = AblySaver(await clients()), AblySaver(await clients())
    root = await first.aput(_config(thread_id), _checkpoint({"who": "root"}, {"who": 1}),
                            {"source": "input", "step": -1}, {"who": 1})
    a, b = await asyncio.gather(
        first.aput(root, _checkpoint({"who": "first"}, {"who": 2}), {"source": "loop", "step": 0}, {"who": 2}),
        second.aput(root, _checkpoint({"who": "second"}, {"who": 2}), {"source": "loop", "step": 0}, {"who": 2}),
    )
    newest = max(a, b, key=lambda c: c["configurable"]["checkpoint_id"])
    for saver in (first, second, AblySaver(await clients())):
        latest = await saver.aget_tuple(_config(thread_id))
        assert latest.config == newest, "every reader sees the same latest: the greatest checkpoint id"
        ids = {t.config["configurable"]["checkpoint_id"] async for t in saver.alist(_config(thread_id))}
        assert ids == {root["configurable"]["checkpoint_id"], a["configurable"]["checkpoint_id"],
                       b["configurable"]["checkpoint_id"]}, "neither write is lost"


async def test_expired_history_raises_a_retention_error_naming_the_fix():
    with spawn(args=["--retention", "1", "--inbound-rate", "0"]) as server:
        async with connect(server.key, server.url) as client:
            saver = AblySaver(client)
            thread_id = uuid.uuid4().hex
            config = await saver.aput(_config(thread_id), _checkpoint({"kept": "x" * 2000}, {"kept": 1}),
                                      {"source": "loop", "step": 0}, {"kept": 1})
            for step in range(1, 3):
                await asyncio.sleep(0.8)
                config = await saver.aput(config, _checkpoint({}, {"kept": 1}), {"source": "loop", "step": step}, {})
            async with connect(server.key, server.url) as fresh:
                with pytest.raises(CheckpointRetentionError, match="persistence rule"):
                    await AblySaver(fresh).aget_tuple(_config(thread_id))


async def test_default_publish_rate_limit_is_waited_out_not_lost():
    with spawn(args=["--inbound-rate", "20"]) as server:
        async with connect(server.key, server.url) as client:
            saver = AblySaver(client)
            thread_id = uuid.uuid4().hex
            config = _config(thread_id)
            puts = []
            for step in range(40):
                checkpoint = _checkpoint({"step": step}, {"step": step + 1})
                puts.append(saver.aput(config, checkpoint, {"source": "loop", "step": step}, {"step": step + 1}))
            await asyncio.gather(*puts)
            steps = sorted(t.metadata["step"] for t in [t async for t in saver.alist(_config(thread_id))])
            assert steps == list(range(40))


async def test_empty_thread_and_unknown_checkpoint_are_none(clients):
    saver = AblySaver(await clients())
    assert await saver.aget_tuple(_config(uuid.uuid4().hex)) is None
    thread_id = uuid.uuid4().hex
    await saver.aput(_config(thread_id), empty_checkpoint(), {"source": "input", "step": -1}, {})
    assert await saver.aget_tuple(_config(thread_id, "1ef00000-0000-6000-8000-000000000000")) is None


async def test_documented_capabilities_suffice_for_the_saver_and_keep_browsers_out(server, clients):
    from ably.util.exceptions import AblyException

    from langchain_ably_transport.devserver.auth import mint_jwt
    from langchain_ably_transport.devserver.config import ApiKey

    key = ApiKey.parse(server.key)
    worker = await clients(key=None, token=mint_jwt(key, capability={"langgraph-state:*": ["publish", "history"]}))
    saver = AblySaver(worker)
    thread_id = uuid.uuid4().hex
    stored = await saver.aput(_config(thread_id), _checkpoint({"secret": "plan"}, {"secret": 1}),
                              {"source": "loop", "step": 0}, {"secret": 1})
    assert (await AblySaver(worker).aget_tuple(_config(thread_id))).config == stored
    browser = await clients(key=None, token=mint_jwt(key, capability={"conversations:*": ["subscribe", "publish",
                                                                                       "history"]}))
    with pytest.raises(AblyException) as denied:
        await browser.channels.get(f"langgraph-state:{thread_id}").history()
    assert denied.value.code == 40160
