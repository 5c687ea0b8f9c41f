"""A tool approval that outlives the process: one process suspends the run, another resumes it from the channel.

An agent (`create_agent` with LangChain's `HumanInTheLoopMiddleware` gating its `deploy` tool) is served with
`serve_graph`, once per invocation, as an HTTP endpoint or a serverless function would be:

1. The user's client sends a message. A first worker PROCESS, given only the invocation JSON, runs the agent
   until the tool call needs approval: the run is suspended on the channel and the process exits.
2. The client sees the tool call waiting for approval (a `tool-approval-request`, what `useChat` renders as
   its native approval) and approves it with `ClientSession.approve(...)`.
3. A second worker PROCESS, again given only the new invocation JSON, finds the graph's state in the channel
   (`AblySaver`), resumes the same run, runs the tool and completes.

`python examples/hitl_two_processes.py` is the parent: it plays the client and spawns both workers as
`python examples/hitl_two_processes.py --serve '<invocation json>'`. Needs `langchain` (`pip install langchain`;
`pip install -e '.[dev]'` has it).

Runs against Ably when ABLY_API_KEY (and optionally ABLY_ENDPOINT) is set; otherwise it runs on the embedded default
(`endpoint="local"`: this user's local dev server, started once and reused), so it works offline. The model is
scripted unless OPENAI_API_KEY is set and `langchain-openai` is installed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

from _ably import ably_or_local
from _fake_models import tool_calling_model
from langchain_core.tools import tool

from langchain_ably_transport import AblySaver, ClientSession, Invocation, connect
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire.names import RunStatus


@tool
def deploy(env: str) -> str:
    """Deploy the service to an environment ("staging" or "prod")."""
    return f"deployed to {env}"


def agent(saver: AblySaver) -> Any:
    from langchain.agents import create_agent
    from langchain.agents.middleware import HumanInTheLoopMiddleware

    approval = HumanInTheLoopMiddleware(interrupt_on={"deploy": True})  # every `deploy` call waits for a human
    return create_agent(tool_calling_model("deploy", {"env": "prod"}), tools=[deploy], middleware=[approval],
                        checkpointer=saver)


# --- the worker: one invocation, then exit ---

async def serve(invocation_json: str) -> None:
    """What an agent endpoint does: nothing but the invocation and the channel (credentials from the env)."""
    async with connect(client_id="agent") as client:
        result = await serve_graph(agent(AblySaver(client)), Invocation.from_json(invocation_json), client=client)
    print(f"  [worker pid {os.getpid()}] run {result.run_id[:8]}… {result.outcome}", flush=True)


# --- the parent: the user's client, spawning a worker per invocation ---

async def spawn_worker(invocation: Invocation, env: dict[str, str]) -> None:
    payload = json.dumps(invocation.to_json())
    print(f"  spawning a worker process with {payload}", flush=True)
    worker = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", payload, env=env)
    if await worker.wait() != 0:
        raise SystemExit(f"the worker failed (exit status {worker.returncode})")


async def until(session: ClientSession, status: RunStatus) -> None:
    """Wait until the client has seen the run reach `status` (the worker may exit before it is delivered)."""
    if not await session.wait_for(lambda: bool(session.runs()) and session.runs()[0].status == status, timeout=15):
        raise SystemExit(f"the run did not become {status}: {[run.status for run in session.runs()]}")


def tool_parts(session: ClientSession) -> list[tuple[str, dict[str, Any]]]:
    """(assistant message id, part) for every tool call in the view."""
    return [(entry["codecMessageId"], part) for entry in session.view() for part in entry["message"]["parts"]
            if part["type"].startswith("tool-")]


async def client(key: str | None, endpoint: str | None) -> None:
    env = {**os.environ, "ABLY_API_KEY": key or ""}
    if endpoint:
        env["ABLY_ENDPOINT"] = endpoint
    session = f"conversations:hitl-{uuid.uuid4().hex[:6]}"
    async with connect(key, endpoint, client_id="user") as ably, ClientSession(ably, session) as user:
        print(f"session {session!r}\nuser: Please deploy the service to production.", flush=True)
        sent = await user.send("Please deploy the service to production.")
        await spawn_worker(sent.invocation, env)

        await until(user, RunStatus.SUSPENDED)
        print(f"client: the run is {user.runs()[0].status}, the worker has exited", flush=True)
        message_id, call = next((m, p) for m, p in tool_parts(user) if p["state"] == "approval-requested")
        print(f"client: approval requested for {call['type'].removeprefix('tool-')}({call['input']}); approving",
              flush=True)
        answer = await user.approve(message_id, call["toolCallId"], approved=True)
        await spawn_worker(answer.invocation, env)

        await until(user, RunStatus.COMPLETE)
        done = next(p for _, p in tool_parts(user) if p["toolCallId"] == call["toolCallId"])
        print(f"client: the same run completed; tool output: {done['output']!r}")
        print(f"client: agent's last words: {user.messages()[-1].text}")


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        asyncio.run(serve(sys.argv[2]))
        return
    key, endpoint = ably_or_local()
    asyncio.run(client(key, endpoint))


if __name__ == "__main__":
    main()
