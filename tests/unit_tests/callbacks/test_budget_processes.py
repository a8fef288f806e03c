"""Four processes hammering one SQLite-backed budget spend exactly what fits, never more."""

from __future__ import annotations

import itertools
import multiprocessing
from pathlib import Path
from typing import Any

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.errors import BudgetExceededError
from langchain_tokenopt.stores import SQLiteStore, Store

QUESTION = [HumanMessage("How many tokens may I spend today?")]
MAX_OUTPUT_TOKENS = 20
PROCESSES = 4
CALLS_PER_PROCESS = 120


class FakeChat(GenericFakeChatModel):
    model: str = "gpt-4o"
    max_tokens: int | None = MAX_OUTPUT_TOKENS


def per_call_tokens() -> int:
    return int(TokenCounter("gpt-4o").count_messages(QUESTION)) + MAX_OUTPUT_TOKENS


def hammer(
    make_store: Any, store_arg: str, limit: int, start: Any, results: Any
) -> None:  # runs in a child process
    input_tokens = per_call_tokens() - MAX_OUTPUT_TOKENS
    # Each call uses exactly its reservation, so every call costs per_call_tokens().
    reply = AIMessage(
        "ok",
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": MAX_OUTPUT_TOKENS,
            "total_tokens": input_tokens + MAX_OUTPUT_TOKENS,
        },
    )
    budget = TokenBudget(max_tokens=limit, window=None, store=make_store(store_arg), name="shared")
    model = FakeChat(messages=itertools.repeat(reply))
    succeeded = refused = 0
    start.wait()
    for _ in range(CALLS_PER_PROCESS):
        try:
            model.invoke(QUESTION, config={"callbacks": [budget]})
            succeeded += 1
        except BudgetExceededError:
            refused += 1
    results.put((succeeded, refused))


def run_processes(make_store: Any, store_arg: str, limit: int) -> list[tuple[int, int]]:
    # fork starts in milliseconds where it exists; each child opens its own store.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context: Any = multiprocessing.get_context(method)
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(target=hammer, args=(make_store, store_arg, limit, start, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return outcomes


def spent(store: Store) -> int:
    return int(store.get("tokenopt:budget:{shared}:all:tokens:all") or 0)


def test_four_processes_sharing_an_sqlite_budget_spend_exactly_what_fits(
    tmp_path: Path,
) -> None:
    per_call = per_call_tokens()
    fits = 300  # of 480 attempted calls
    limit = per_call * fits + per_call - 1  # one token short of one more call
    path = str(tmp_path / "budget.db")
    outcomes = run_processes(SQLiteStore, path, limit)
    assert sum(ok for ok, _ in outcomes) == fits
    assert sum(ok + refused for ok, refused in outcomes) == PROCESSES * CALLS_PER_PROCESS
    assert spent(SQLiteStore(path)) == per_call * fits <= limit
