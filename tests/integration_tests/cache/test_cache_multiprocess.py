"""Four processes share one `TokenOptCache` on SQLite or Redis.

Each process (multiprocessing, spawn) writes its own entries and, at the same time as
the others, the same shared entries; after a barrier every process reads everything.
No entry may be missing or unreadable, and the shared hit counters add up exactly.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_tokenopt.cache.llm_cache import TokenOptCache

WORKERS = 4
ENTRIES_PER_WORKER = 25
INPUT_TOKENS = 100
LLM = "[('_type', 'fake'), ('model', 'gpt-4o'), ('stop', None)]"
JOIN_TIMEOUT_SECONDS = 300.0


def _open(backend: str, target: str) -> TokenOptCache:
    if backend == "sqlite":
        return TokenOptCache.sqlite(target, ttl_seconds=3600, max_entries=10_000)
    return TokenOptCache.redis(target, ttl_seconds=3600, max_entries=10_000)


def _own_answer(worker: int, i: int) -> ChatGeneration:
    return ChatGeneration(
        message=AIMessage(
            f"answer {worker}/{i}",
            usage_metadata={
                "input_tokens": INPUT_TOKENS,
                "output_tokens": 1,
                "total_tokens": INPUT_TOKENS + 1,
            },
            response_metadata={"model_name": "gpt-4o"},
        )
    )


def _worker(backend: str, target: str, worker: int, barrier: Any, results: Any) -> None:
    cache = _open(backend, target)
    for i in range(ENTRIES_PER_WORKER):
        cache.update(f"prompt {worker}/{i}", LLM, [_own_answer(worker, i)])
        cache.update(f"shared prompt {i}", LLM, [Generation(text=f"shared answer {i}")])
    barrier.wait(timeout=JOIN_TIMEOUT_SECONDS)
    problems: list[tuple[Any, ...]] = []
    for other in range(WORKERS):
        for i in range(ENTRIES_PER_WORKER):
            found = cache.lookup(f"prompt {other}/{i}", LLM)
            if found is None or found[0].text != f"answer {other}/{i}":
                problems.append((other, i, found))
    for i in range(ENTRIES_PER_WORKER):
        if cache.lookup(f"shared prompt {i}", LLM) != [Generation(text=f"shared answer {i}")]:
            problems.append(("shared", i, None))
    cache.flush()  # a spawned child ends with os._exit: no atexit flush
    results.put((worker, repr(problems)))


def run_workers(backend: str, target: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(backend, target, worker, barrier, results))
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=JOIN_TIMEOUT_SECONDS) for _ in processes]
    for process in processes:
        process.join(JOIN_TIMEOUT_SECONDS)
        assert process.exitcode == 0
    assert sorted(reports) == [(worker, "[]") for worker in range(WORKERS)]


def check_shared_totals(cache: TokenOptCache) -> None:
    stats = cache.stats()
    own_entries = WORKERS * ENTRIES_PER_WORKER
    assert stats.entries == own_entries + ENTRIES_PER_WORKER
    assert stats.misses == 0
    assert stats.hits == WORKERS * (own_entries + ENTRIES_PER_WORKER)
    assert stats.saved_input_tokens == WORKERS * own_entries * INPUT_TOKENS
    # The shared answers carry no usage: counted as hits of the llm_string's model.
    assert stats.by_model["gpt-4o"].hits == stats.hits
    assert stats.by_model["gpt-4o"].unpriced_hits == WORKERS * ENTRIES_PER_WORKER


def test_four_processes_share_a_sqlite_cache(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    run_workers("sqlite", path)
    check_shared_totals(_open("sqlite", path))


@pytest.mark.redis
def test_four_processes_share_a_redis_cache(redis_client: Any, redis_url: str) -> None:
    run_workers("redis", redis_url)
    check_shared_totals(_open("redis", redis_url))
