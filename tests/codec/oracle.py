"""The JS SDK's own Vercel codec as a test oracle: same chunks in, the same wire out; same wire in, same view out.

Runs `js_codec.mjs` with Node against `tests/js/node_modules` (where `@ably/ai-transport` 0.8.0 and `ai` are
installed); a test that needs it fails, with the install command, when Node or those packages are missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from langchain_ably_transport.wire import WireMessage
from langchain_ably_transport.wire.names import ACTION_BY_NUMBER

SCRIPT = Path(__file__).with_name("js_codec.mjs")
NODE_MODULES = Path(__file__).parents[1] / "js" / "node_modules"
ENTRY = NODE_MODULES / "@ably" / "ai-transport" / "dist" / "vercel" / "ably-ai-transport-vercel.js"


def available() -> bool:
    return shutil.which("node") is not None and ENTRY.exists() and (NODE_MODULES / "ai" / "package.json").exists()


def run(request: dict[str, Any]) -> dict[str, Any]:
    if not available():
        pytest.fail("the JS codec oracle needs node and `npm ci --prefix tests/js` (@ably/ai-transport 0.8.0, ai)")
    result = subprocess.run(
        ["node", str(SCRIPT), str(NODE_MODULES)], input=json.dumps(request), capture_output=True, text=True,
        check=False, timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"js_codec.mjs failed: {result.stderr}")
    return json.loads(result.stdout)


def inbound(received: dict[str, Any]) -> dict[str, Any]:
    """A fake channel delivery as ably-js hands it to the decoder (string actions, `version` always set)."""
    message = dict(received)
    message["action"] = ACTION_BY_NUMBER[received["action"]].value
    message.setdefault("version", {})
    return message


def js_encode(chunks: list[dict[str, Any]], headers: dict[str, str], message_id: str) -> dict[str, Any]:
    return run({"mode": "encode", "chunks": chunks, "headers": headers, "messageId": message_id})


def js_encode_inputs(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return run({"mode": "encode-input", "inputs": inputs})["ops"]


def js_decode(deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    return run({"mode": "decode", "messages": [inbound(d) for d in deliveries]})


def as_op(op: str, serial: str | None, message: WireMessage) -> dict[str, Any]:
    """A Python write in the oracle's shape, JSON round-tripped as the JS side is."""
    record: dict[str, Any] = {"op": op, "serial": serial, "extras": message.extras}
    if message.name is not None:
        record["name"] = message.name
    if message.data is not None:
        record["data"] = message.data
    return json.loads(json.dumps(record))
