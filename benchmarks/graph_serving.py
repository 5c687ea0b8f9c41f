"""Serving graphs on a session: cancel latency, and how fast a fresh process resumes a suspended run.

1. Cancel latency: a graph streams a long reply (a token every 2 ms); a client publishes `ai-cancel`; measured
   from the client's `cancel()` call to the graph's model task receiving its `CancelledError` (same process,
   one clock). Median and p99 over 200 cancels (40 with `--quick`), so that the p99 is not just the slowest one.
   Target: < 100 ms, and every cancel ends its run as cancelled, with its model stopped by the time `serve_graph`
   returns (one that does not is reported with what its run ended as instead, and fails the target).
2. Fresh-process resume: a run is suspended on `interrupt()` on threads of ~10 and ~100 checkpoints; the
   client answers; a NEW Python process serves the continuation. Measured from the child's `main()` (after its
   imports, i.e. beyond interpreter start-up) to the client seeing the first token of the resumed reply.
   Target: < 300 ms. The named baseline is the same resume served in this (warm) process.
3. Import cost: in fresh interpreters, the time to import langchain-core, langgraph and ably (the baseline),
   then what importing this package adds on top of them: `AblySaver` and one way to serve a graph, `serve_graph`
   (the Vercel codec) or `serve_thread` (LangChain's agent protocol); each loads only what it needs. Target:
   <= 150 ms added, for the package as installed: with its bytecode cached, as pip compiles it at install (and
   the Makefile compiles the editable install). Shown beside it, not judged: compiled from source each time, as
   under PYTHONDONTWRITEBYTECODE=1 (which some machines set, this one among them) with an editable install whose
   bytecode was never compiled, with the time compiling those modules takes alone; the dependencies' bytecode is
   cached in both. Beside each, the collector's pauses within the package's import: the baseline leaves its heap
   (about 100,000 objects) a few thousand allocations short of a full collection, so whatever is imported next
   pays for it.

Reproduce (about 2.5 minutes; `--quick` fewer repeats):

    .venv/bin/python benchmarks/graph_serving.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from common import load_average, load_line, percentile
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt

from langchain_ably_transport import AblySaver, ClientSession, connect
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire.invocation import Invocation

CANCEL_TARGET_MS = 100.0
RESUME_TARGET_MS = 300.0
IMPORT_TARGET_MS = 150.0
PACKAGE = Path(__file__).resolve().parent.parent / "langchain_ably_transport"
# What a user imports to serve a graph, on each codec: `{names}` is filled from `SERVING_IMPORTS`.
IMPORT_PROBE = """
import gc, time
started = time.perf_counter()
import ably, langchain_core.messages, langgraph.graph, langgraph.types
baseline = time.perf_counter()
collecting = [0.0, 0.0]
def timed(phase, info):
    now = time.perf_counter()
    if phase == "start":
        collecting[1] = now
    else:
        collecting[0] += now - collecting[1]
gc.callbacks.append(timed)
from langchain_ably_transport import AblySaver
from langchain_ably_transport.graph import {names}
imported = time.perf_counter()
import sys
sources = [open(module.__file__).read() for name, module in list(sys.modules.items())
           if name.startswith("langchain_ably_transport") and getattr(module, "__file__", None)]
gc.disable()
compiling = time.perf_counter()
for source in sources:
    compile(source, "<module>", "exec")
compiled = time.perf_counter()
print((baseline - started) * 1000, (imported - baseline) * 1000, collecting[0] * 1000, (compiled - compiling) * 1000,
      len(sources), sum(map(len, sources)))
"""
SERVING_IMPORTS = {"serve_graph (Vercel codec)": "serve_graph", "serve_thread (agent protocol)": "serve_thread"}


def import_costs(names: str, repeats: int, *, cached: bool) -> tuple[list[float], ...]:
    """Per fresh interpreter: the baseline's import time, the package's (`names` from its `graph`) on top of it, and
    the collector's pauses within the package's, in ms; with the package's bytecode `cached` (written by a first,
    unmeasured run) or compiled from source each time. The baseline leaves about 100,000 objects for the collector,
    and a full collection of them comes due after a few thousand more: any import after it pays for that one.
    Then, after the import, compiling the sources of the package's modules it loaded, timed alone (ms), with their
    number and size (characters)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    if not cached:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for folder in PACKAGE.rglob("__pycache__"):  # what a cached run wrote, which would be read
            shutil.rmtree(folder)
    baseline, package, collector, compiling, modules, size = [], [], [], [], [], []
    for run in range(repeats + cached):
        out = subprocess.run([sys.executable, "-c", IMPORT_PROBE.format(names=names)], capture_output=True,
                             text=True, timeout=60, check=True, env=env).stdout.split()
        if cached and run == 0:
            continue  # it wrote the bytecode
        for figures, value in zip((baseline, package, collector, compiling, modules, size), out, strict=True):
            figures.append(float(value))
    return baseline, package, collector, compiling, modules, size


def streaming_graph(saver: AblySaver, cancelled_at: list[float]) -> Any:
    reply = " ".join(f"t{i}" for i in range(5000))
    model = GenericFakeChatModel(messages=iter([AIMessage(content=reply)]))

    async def talk(state: MessagesState) -> dict[str, Any]:
        last = None
        try:
            async for chunk in model.astream(state["messages"]):
                last = chunk if last is None else last + chunk
                await asyncio.sleep(0.002)
        except asyncio.CancelledError:
            cancelled_at.append(time.perf_counter())
            raise
        return {"messages": [last]}

    return _single_node(saver, talk)


def resumable_graph(saver: AblySaver) -> Any:
    """Chats for as many turns as it is given; a message saying 'approve' makes it ask first."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content=f"reply {i} done") for i in range(10_000)]))

    async def talk(state: MessagesState) -> dict[str, Any]:
        if "approve" in state["messages"][-1].text:
            interrupt("proceed?")
        last = None
        async for chunk in model.astream(state["messages"]):
            last = chunk if last is None else last + chunk
        return {"messages": [last]}

    return _single_node(saver, talk)


def _single_node(saver: AblySaver, node: Any) -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node("talk", node)
    graph.add_edge(START, "talk")
    graph.add_edge("talk", END)
    return graph.compile(checkpointer=saver)


async def cancel_latency(url: str, key: str, repeats: int) -> tuple[list[float], list[str]]:
    """Each cancel's latency in ms, and what each cancel that did not end its run as cancelled got instead."""
    latencies, missed = [], []
    async with connect(key, url, client_id="bench-agent") as agent, connect(key, url) as user_client:
        for _ in range(repeats):
            session = f"bench:cancel-{uuid.uuid4().hex[:8]}"
            cancelled_at: list[float] = []
            async with ClientSession(user_client, session) as user:
                sent = await user.send("go")
                serving = asyncio.ensure_future(serve_graph(streaming_graph(AblySaver(agent), cancelled_at),
                                                            sent.invocation, client=agent))
                run_id = await sent.run_id()
                await user.wait_for(lambda: "t30 " in str(user.view()), timeout=10)
                started = time.perf_counter()
                await user.cancel(run_id)
                result = await asyncio.wait_for(serving, 10)
                if result.outcome == "cancelled" and cancelled_at:  # the model stopped before serve_graph returned
                    latencies.append((cancelled_at[0] - started) * 1000)
                else:
                    missed.append(f"{result.outcome}, model task cancelled: {bool(cancelled_at)}")
    return latencies, missed


async def suspended_thread(url: str, key: str, turns: int) -> tuple[str, str]:
    """A session whose thread has `turns` turns and then a run suspended on an interrupt; returns it and the run."""
    session = f"bench:resume-{uuid.uuid4().hex[:8]}"
    async with connect(key, url, client_id="bench-agent") as agent, connect(key, url) as user_client, \
            ClientSession(user_client, session) as user:
        graph = resumable_graph(AblySaver(agent))
        for turn in range(turns):
            sent = await user.send(f"turn {turn}")
            await serve_graph(graph, sent.invocation, client=agent)
        sent = await user.send("please approve this")
        result = await serve_graph(graph, sent.invocation, client=agent)
        assert result.outcome == "suspended"
        return session, result.run_id


async def resume_latency(url: str, key: str, session: str, run_id: str, fresh_process: bool) -> float:
    async with connect(key, url) as user_client, ClientSession(user_client, session) as user:
        answer = await user.send("yes", run_id=run_id)
        seen_before = str(user.view()).count("text")
        if fresh_process:
            child = subprocess.Popen([sys.executable, __file__, "--serve", url, key,
                                      json.dumps(answer.invocation.to_json())], stdout=subprocess.PIPE, text=True)
            started_line = await asyncio.to_thread(child.stdout.readline)  # type: ignore[union-attr]
            started = float(json.loads(started_line)["main_at"])
        else:
            started = time.time()
            serving = asyncio.ensure_future(_serve(url, key, answer.invocation))
        await user.wait_for(lambda: str(user.view()).count("text") > seen_before, timeout=30)
        first_token = time.time()
        if fresh_process:
            await asyncio.to_thread(child.wait, 30)
        else:
            await serving
        return (first_token - started) * 1000


async def _serve(url: str, key: str, invocation: Invocation) -> None:
    async with connect(key, url, client_id="bench-agent") as client:
        await serve_graph(resumable_graph(AblySaver(client)), invocation, client=client)


def child_serve(url: str, key: str, invocation: str) -> None:
    print(json.dumps({"main_at": time.time()}), flush=True)
    asyncio.run(_serve(url, key, Invocation.from_json(invocation)))


async def measure(url: str, key: str, repeats: int, cancels: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"cancel": await cancel_latency(url, key, cancels)}
    for turns in (3, 33):  # about 10 and 100 checkpoints (3 a turn, plus the suspended run's)
        fresh, warm = [], []
        for _ in range(max(3, repeats // 4)):
            session, run_id = await suspended_thread(url, key, turns)
            fresh.append(await resume_latency(url, key, session, run_id, fresh_process=True))
            session, run_id = await suspended_thread(url, key, turns)
            warm.append(await resume_latency(url, key, session, run_id, fresh_process=False))
        figures[turns] = (fresh, warm)
    figures["imports"] = {(label, cached): import_costs(names, max(5, repeats // 2), cached=cached)
                          for label, names in SERVING_IMPORTS.items() for cached in (False, True)}
    return figures


def report(figures: dict[str, Any], repeats: int, cancels: int, load_before: str) -> None:
    latencies, missed = figures["cancel"]
    cancel = sorted(latencies)
    print(f"Graph serving on the dev server; {cancels} cancels, and medians over {repeats} repeats otherwise")
    print(load_line(load_before) + "\n")
    p50, p99 = statistics.median(cancel), percentile(cancel, 99)
    passed = p99 < CANCEL_TARGET_MS and not missed
    print(f"cancel: client cancel() -> graph task cancelled   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
          f"target < {CANCEL_TARGET_MS:g} ms: {'PASS' if passed else 'FAIL'}")
    if missed:
        print(f"  {len(missed)} of {cancels} cancels did not end their run as cancelled: {'; '.join(missed)}")
    print("\nresume of a suspended run: process main() -> first resumed token seen by the client")
    print(f"{'thread':<28}{'fresh process':>15}{'BASELINE warm':>15}{'ratio':>8}")
    for turns, label in ((3, "~10 checkpoints"), (33, "~100 checkpoints")):
        fresh, warm = (statistics.median(values) for values in figures[turns])
        verdict = "PASS" if fresh < RESUME_TARGET_MS else "FAIL"
        print(f"{label:<28}{fresh:>12.1f} ms{warm:>12.1f} ms{fresh / warm:>7.2f}x   target < "
              f"{RESUME_TARGET_MS:g} ms: {verdict}")
    print(f"\nimports, fresh interpreters ({max(5, repeats // 2)} each): BASELINE langchain-core + langgraph + ably, "
          "then what the package adds (AblySaver and one serving function). The target is the installed package's:\n"
          "pip compiles a package's bytecode at install, and `make` the editable one's, so compiling from source "
          "is shown beside it, with what compiling the modules alone takes (timed apart, after the import)")
    for (serving, cached), (baselines, packages, collector, compiling, modules, size) in figures["imports"].items():
        baseline, package = statistics.median(baselines), statistics.median(packages)
        label = f"{serving}, {'bytecode cached (installed)' if cached else 'compiled from source'}"
        verdict = f"target <= {IMPORT_TARGET_MS:g} ms added: {'PASS' if package <= IMPORT_TARGET_MS else 'FAIL'}" \
            if cached else (f"not the target; compiling its {statistics.median(modules):.0f} modules "
                            f"({statistics.median(size) / 1000:.0f} KB) alone: {statistics.median(compiling):.0f} ms")
        print(f"  {label:<62} baseline {baseline:4.0f} ms; adds {package:4.0f} ms "
              f"({(baseline + package) / baseline:.2f}x in all; the collector {statistics.median(collector):3.0f} ms "
              f"of it)   {verdict}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        child_serve(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    repeats, cancels = (8, 40) if quick else (20, 200)
    before = load_average()
    with spawn(args=["--inbound-rate", "0", "--protocol-rate", "0"]) as server:
        figures = asyncio.run(measure(server.url, server.key, repeats, cancels))
    report(figures, repeats, cancels, before)


if __name__ == "__main__":
    main()
