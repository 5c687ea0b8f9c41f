"""What `AblyCallbackHandler` costs a chain: per-token time on the model's thread, and whole-chain wall time.

1. Per-token cost: `on_llm_new_token` called directly from a plain thread (no event loop there; the handler's
   client lives on a loop thread), timed call by call; the median is the cost the model's token loop pays.
   The named baseline is a no-op handler's `on_llm_new_token`, timed the same way.
2. Wall time of `prompt | GenericFakeChatModel | StrOutputParser` streaming a 2,000-token reply, sync `invoke`,
   with no callbacks (BASELINE), with a no-op streaming handler (tokens forced on, nothing published) and with
   `AblyCallbackHandler` (everything published to the dev server); ratios to the baseline.

Reproduce (about 30 s; `--quick` about 10 s):

    .venv/bin/python benchmarks/callback_handler.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tracers._streaming import _StreamingCallbackHandler

from langchain_ably_transport import AblyCallbackHandler
from langchain_ably_transport.devserver import spawn

TOKENS = 2000
TARGET_US = 10.0


class NoopStreamingHandler(BaseCallbackHandler, _StreamingCallbackHandler):
    """Forces token streaming like the Ably handler does, and does nothing with the tokens."""

    run_inline = True

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        return None

    def tap_output_iter(self, run_id: Any, output: Iterator[Any]) -> Iterator[Any]:
        return output

    def tap_output_aiter(self, run_id: Any, output: Any) -> Any:
        return output


def per_token_us(handler: BaseCallbackHandler, calls: int) -> list[float]:
    root, model_run = uuid.uuid4(), uuid.uuid4()
    handler.on_chain_start({}, {"question": "bench"}, run_id=root, parent_run_id=None)
    handler.on_chat_model_start({}, [[]], run_id=model_run, parent_run_id=root)
    chunks = [ChatGenerationChunk(message=AIMessageChunk(content=f"t{i} ")) for i in range(calls)]
    costs = []
    for chunk in chunks:
        started = time.perf_counter_ns()
        handler.on_llm_new_token(chunk.message.content, chunk=chunk, run_id=model_run, parent_run_id=root)
        costs.append((time.perf_counter_ns() - started) / 1000)
    handler.on_llm_end(_result(), run_id=model_run, parent_run_id=root)
    handler.on_chain_end({}, run_id=root, parent_run_id=None)
    return costs


def _result() -> Any:
    from langchain_core.outputs import ChatGeneration, LLMResult

    return LLMResult(generations=[[ChatGeneration(message=AIMessage(content="done"))]])


def chain_seconds(callbacks: list[Any]) -> float:
    reply = " ".join(f"w{i}" for i in range(TOKENS))
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | GenericFakeChatModel(
        messages=iter([AIMessage(content=reply)])) | StrOutputParser()
    started = time.perf_counter()
    output = chain.invoke({"q": "go"}, {"callbacks": callbacks})
    elapsed = time.perf_counter() - started
    assert output == reply
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    with spawn(args=["--inbound-rate", "0", "--protocol-rate", "0"]) as server, \
            AblyCallbackHandler.connect("bench:callbacks", server.key, server.url) as handler:
        ably_costs = [statistics.median(per_token_us(handler, TOKENS)) for _ in range(repeats)]
        handler.flush()
        noop_costs = [statistics.median(per_token_us(NoopStreamingHandler(), TOKENS)) for _ in range(repeats)]
        timings = {
            "BASELINE no callbacks": [chain_seconds([]) for _ in range(repeats)],
            "no-op streaming handler": [chain_seconds([NoopStreamingHandler()]) for _ in range(repeats)],
            "AblyCallbackHandler": [],
        }
        for _ in range(repeats):
            timings["AblyCallbackHandler"].append(chain_seconds([handler]))
            handler.flush()
        errors = list(handler.errors)
    print(f"AblyCallbackHandler cost; median of {repeats} repeat(s); {TOKENS:,} tokens; dev server on loopback\n")
    print(f"{'on_llm_new_token on the model thread':<44}{'median us':>10}")
    print(f"{'BASELINE no-op streaming handler':<44}{statistics.median(noop_costs):>10.2f}")
    ably = statistics.median(ably_costs)
    print(f"{'AblyCallbackHandler':<44}{ably:>10.2f}   target <= {TARGET_US:g} us: "
          f"{'PASS' if ably <= TARGET_US else 'FAIL'}\n")
    base = statistics.median(timings["BASELINE no callbacks"])
    streaming = statistics.median(timings["no-op streaming handler"])
    print(f"{'chain.invoke, 2,000-token fake stream':<44}{'median ms':>10}{'/ base':>9}{'/ streaming':>13}")
    for label, values in timings.items():
        median = statistics.median(values)
        print(f"{label:<44}{median * 1000:>10.1f}{median / base:>8.1f}x{median / streaming:>12.2f}x")
    print("(without a streaming handler the fake model returns its reply whole: no per-token callbacks at all)")
    print(f"\npublishing errors: {len(errors)}")


if __name__ == "__main__":
    main()
