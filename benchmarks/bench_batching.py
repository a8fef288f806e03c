"""How many provider requests does CoalescingRunnable save on bursts of popular questions?

Two bursts of concurrent requests (the same popular questions asked by many users at
once, Zipf-like popularity) go to ChatOpenAI(temperature=0) served by the local
OpenAI-compatible test server (a fixed reply latency per request). Printed per setup:
HTTP requests sent, their ratio to plain ChatOpenAI, and wall time. LangChain's built-in
`InMemoryCache` only helps the second burst: during a burst every identical request
misses at the same time. Coalescing shares in-flight calls; it does not cache.

Run: python benchmarks/bench_batching.py [--requests 100] [--distinct 30] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from langchain_core.caches import InMemoryCache
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI

from langchain_tokenopt.coalescing import CoalescingRunnable
from langchain_tokenopt.testing import FakeOpenAIServer


def questions(total: int, distinct: int, seed: int = 7) -> list[str]:
    """`total` questions over `distinct` topics with Zipf-like popularity."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(distinct)]
    return [f"What is topic {rng.choices(range(distinct), weights)[0]}?" for _ in range(total)]


async def run_bursts(runnable: Runnable[Any, Any], asks: list[str], bursts: int) -> None:
    for _ in range(bursts):
        await asyncio.gather(*(runnable.ainvoke(q) for q in asks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="requests per burst")
    parser.add_argument("--distinct", type=int, default=30, help="distinct questions")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="server reply delay")
    parser.add_argument("--bursts", type=int, default=2)
    args = parser.parse_args()
    asks = questions(args.requests, args.distinct)
    print(
        f"{args.bursts} bursts x {args.requests} concurrent requests, "
        f"{len(set(asks))} distinct questions, {args.latency_ms:g} ms server latency\n"
    )

    with FakeOpenAIServer() as server:

        def model(**kwargs: Any) -> ChatOpenAI:
            return ChatOpenAI(
                base_url=server.base_url,
                api_key="test",
                model="gpt-4o-mini",
                temperature=0,
                max_retries=2,
                **kwargs,
            )

        setups: dict[str, Runnable[Any, Any]] = {
            "ChatOpenAI (plain)": model(),
            "ChatOpenAI + InMemoryCache": model(cache=InMemoryCache()),
            "CoalescingRunnable(ChatOpenAI)": CoalescingRunnable(model(), window_ms=5),
            "CoalescingRunnable + InMemoryCache": CoalescingRunnable(
                model(cache=InMemoryCache()), window_ms=5
            ),
        }
        header = f"{'setup':36} {'HTTP requests':>14} {'x plain':>8} {'seconds':>8}"
        print(header)
        print("-" * len(header))
        plain_requests = None
        for name, runnable in setups.items():
            server.reset()
            for _ in range(args.requests * args.bursts):
                server.enqueue("an answer", delay_seconds=args.latency_ms / 1000)
            started = time.perf_counter()
            asyncio.run(run_bursts(runnable, asks, args.bursts))
            elapsed_seconds = time.perf_counter() - started
            sent = server.request_count
            plain_requests = plain_requests or sent
            print(f"{name:36} {sent:14,} {sent / plain_requests:8.2f} {elapsed_seconds:8.2f}")


if __name__ == "__main__":
    main()
