"""Client-side cost of `BatchAPIRunnable`: 10,000 small requests through the Batch API.

The loopback OpenAI-compatible server (langchain_tokenopt.testing) runs in a child
process, so `time.process_time()` here counts only the client side: building the
request lines from ChatOpenAI's own payloads, uploading the JSONL, creating and polling
the batches, downloading the output and mapping each answer back (with a
`UsageTracker` in the callbacks, as a user would run it). Goals: under 2 s of CPU for
10,000 requests; transient memory (tracemalloc peak minus what the returned answers
hold) proportional to one chunk (`max_requests_per_batch`), not to the input: the
memory runs take half and all of the requests at the first chunk size, and all of
them at the second; and a tracked cost of exactly 50% of the same requests' standard
price.

Run: python benchmarks/bench_batch.py [--requests 10000] [--chunks 1000,5000]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import time
import tracemalloc
from decimal import Decimal
from typing import Any

from langchain_openai import ChatOpenAI

from langchain_tokenopt.batch import BatchAPIRunnable
from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.core.pricing import price


def _serve(ready: Any, stop: Any) -> None:
    from langchain_tokenopt.testing import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        ready.put(server.base_url)
        stop.wait()


def _run(
    base_url: str, requests: int, chunk: int, key: str, *, trace: bool, track: bool = True
) -> dict[str, Any]:
    llm = ChatOpenAI(model="gpt-4o-mini", base_url=base_url, api_key="test", max_tokens=64)
    batched = BatchAPIRunnable(
        llm,
        poll_interval_seconds=0.01,
        max_poll_interval_seconds=0.05,
        max_requests_per_batch=chunk,
    )
    inputs: list[Any] = [
        f"Label ticket {i}: the printer on floor {i % 9} is jammed." for i in range(requests)
    ]
    tracker = UsageTracker()
    config: Any = {"callbacks": [tracker] if track else [], "configurable": {"batch_key": key}}
    gc.collect()
    if trace:
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
    cpu, wall = time.process_time(), time.perf_counter()
    answers = batched.batch(inputs, config)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    result: dict[str, Any] = {"cpu_seconds": cpu, "wall_seconds": wall}
    if trace:
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result.update(peak_mb=(peak - baseline) / 2**20, held_mb=(held - baseline) / 2**20)
        result["transient_mb"] = result["peak_mb"] - result["held_mb"]
    standard = sum((price("gpt-4o-mini", dict(a.usage_metadata)) for a in answers), Decimal(0))
    tracked = tracker.report().totals.cost_usd if track else Decimal(0)
    result.update(answers=len(answers), standard_usd=standard, tracked_usd=tracked)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--chunks", default="1000,5000", help="chunk sizes for the memory runs")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(ready, stop), daemon=True)
    server.start()
    base_url = ready.get(timeout=30)
    try:
        _run(base_url, 200, 100, "warm-up", trace=False)  # imports, SDK clients, encodings
        bare = _run(base_url, args.requests, 50_000, "bare", trace=False, track=False)
        print(
            f"{args.requests:,} requests, one batch, no callbacks: client CPU "
            f"{bare['cpu_seconds']:.2f} s (wall {bare['wall_seconds']:.2f} s)"
        )
        timed = _run(base_url, args.requests, 50_000, "cpu", trace=False)
        print(
            f"{args.requests:,} requests, one batch, with a UsageTracker: client CPU "
            f"{timed['cpu_seconds']:.2f} s "
            f"(wall {timed['wall_seconds']:.2f} s, server in another process)"
        )
        ratio = timed["tracked_usd"] / timed["standard_usd"]
        print(
            f"tracked cost ${timed['tracked_usd']:.6f} vs standard ${timed['standard_usd']:.6f}: "
            f"ratio {ratio} ({'exactly 50%' if ratio == Decimal('0.5') else 'NOT 50%'})"
        )
        small, large = (int(c) for c in args.chunks.split(","))
        for requests, chunk in (
            (args.requests // 2, small),
            (args.requests, small),
            (args.requests, large),
        ):
            memory = _run(
                base_url, requests, chunk, f"mem-{requests}-{chunk}", trace=True, track=False
            )
            print(
                f"{requests:>6,} requests, chunk {chunk:>6,}: peak {memory['peak_mb']:6.1f} MB, "
                f"answers held {memory['held_mb']:6.1f} MB, "
                f"transient {memory['transient_mb']:6.1f} MB"
            )
    finally:
        stop.set()
        server.join(timeout=10)


if __name__ == "__main__":
    main()
