"""Per-call overhead of `UsageTracker` against langchain-core's `UsageMetadataCallbackHandler`.

Both handlers watch the same fake chat model (no network), which returns a different
usage on every call so that price memoization cannot hide the cost of pricing. The
overhead of a handler is its time per call minus the time per call with no handler;
the goal is ours <= 1.5x core's (core only sums usage; we also attribute the call, hash
the prompt and record an event, and price it when the report is read).

Times are process CPU time (`time.process_time`, which also counts executor threads),
best of many short interleaved rounds, so that other work on a shared machine does not
decide the result.

Run: python benchmarks/bench_analytics.py [--calls 500] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Callable

from langchain_core.callbacks import BaseCallbackHandler, UsageMetadataCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.core.pricing import price


def _replies(count: int) -> list[AIMessage]:
    return [
        AIMessage(
            f"answer {i}",
            usage_metadata={
                "input_tokens": 1000 + i,
                "output_tokens": 20 + i % 50,
                "total_tokens": 1020 + i + i % 50,
                "input_token_details": {"cache_read": (i % 4) * 128},
            },
            response_metadata={"model_name": "gpt-4o-mini"},
        )
        for i in range(count)
    ]


def _per_call_seconds(
    model: GenericFakeChatModel, make: Callable[[], list[BaseCallbackHandler]], calls: int
) -> float:
    callbacks = make()
    config = {"callbacks": callbacks, "metadata": {"agent": "bench"}}
    start = time.process_time()
    for _ in range(calls):
        model.invoke("What is the capital of France?", config=config)  # type: ignore[arg-type]
    return (time.process_time() - start) / calls


async def _async_per_call_seconds(
    model: GenericFakeChatModel, make: Callable[[], list[BaseCallbackHandler]], calls: int
) -> float:
    callbacks = make()
    config = {"callbacks": callbacks, "metadata": {"agent": "bench"}}
    start = time.process_time()
    for _ in range(calls):
        await model.ainvoke("What is the capital of France?", config=config)  # type: ignore[arg-type]
    return (time.process_time() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    # More distinct usages than the price memo holds, so every call is priced.
    model = GenericFakeChatModel(messages=itertools.cycle(_replies(5000)))
    variants: dict[str, Callable[[], list[BaseCallbackHandler]]] = {
        "none": list,
        "core UsageMetadataCallbackHandler": lambda: [UsageMetadataCallbackHandler()],
        "tokenopt UsageTracker": lambda: [UsageTracker()],
    }
    for mode in ("sync", "async"):
        best = dict.fromkeys(variants, float("inf"))
        _per_call_seconds(model, variants["tokenopt UsageTracker"], 300)  # warm up
        for _ in range(args.rounds):
            for name, make in variants.items():  # interleaved: same machine state
                if mode == "sync":
                    seconds = _per_call_seconds(model, make, args.calls)
                else:
                    seconds = asyncio.run(_async_per_call_seconds(model, make, args.calls))
                best[name] = min(best[name], seconds)
        base = best["none"]
        core = best["core UsageMetadataCallbackHandler"] - base
        ours = best["tokenopt UsageTracker"] - base
        print(f"{mode}: {args.calls} calls x {args.rounds} rounds, best round per variant")
        print(f"  {'variant':<36} {'us/call':>9} {'overhead us':>12}")
        for name, seconds in best.items():
            print(f"  {name:<36} {seconds * 1e6:>9.1f} {(seconds - base) * 1e6:>12.1f}")
        print(f"  overhead ratio ours / core: {ours / core:.2f}x (goal <= 1.5x)\n")

    # Pricing is deferred to when events are read: show what that costs per event.
    # genai-prices loads its price data on first use (once per process, ~0.3 s): do
    # that before timing, so the figure is the steady per-event cost.
    price("gpt-4o-mini", {"input_tokens": 1, "output_tokens": 1})
    tracker = UsageTracker()
    _per_call_seconds(model, lambda: [tracker], args.calls)
    start = time.process_time()
    report = tracker.report()
    seconds = time.process_time() - start
    print(
        f"report(): {report.totals.calls} events built and priced in "
        f"{seconds * 1e6 / report.totals.calls:.1f} us/event (off the call path)"
    )


if __name__ == "__main__":
    main()
