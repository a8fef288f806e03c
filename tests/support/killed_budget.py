"""A worker process that reserves budget for a model call and is killed inside it.

`kill_mid_call` starts the worker, waits until its call is in flight (the budget
reserved, the "provider" reached), SIGKILLs it, and returns. The survivor's checks
are the tests' own.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from typing import Any

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.core.tokens import TokenCounter

__all__ = ["BUDGET_NAME", "LEASE_SECONDS", "QUESTION", "RESERVED_TOKENS", "kill_mid_call"]

QUESTION = [HumanMessage("Summarize the quarterly report.")]
MAX_OUTPUT_TOKENS = 40
RESERVED_TOKENS = int(TokenCounter("gpt-4o").count_messages(QUESTION)) + MAX_OUTPUT_TOKENS
LEASE_SECONDS = 30.0
BUDGET_NAME = "killed"
_START_TIMEOUT_SECONDS = 60.0


class _HangingChat(GenericFakeChatModel):
    """A chat model that says it was reached, then never answers."""

    model: str = "gpt-4o"
    max_tokens: int | None = MAX_OUTPUT_TOKENS
    reached: Any = None

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        self.reached.set()
        threading.Event().wait()  # blocks until the process is killed
        raise AssertionError("unreachable")


def _reserve_and_hang(make_store: Any, store_arg: str, reached: Any) -> None:  # child
    budget = TokenBudget(
        max_tokens=10_000,
        window=None,
        store=make_store(store_arg),
        name=BUDGET_NAME,
        lease_seconds=LEASE_SECONDS,
    )
    model = _HangingChat(messages=iter([AIMessage("never")]), reached=reached)
    model.invoke(QUESTION, config={"callbacks": [budget]})


def kill_mid_call(make_store: Any, store_arg: str) -> None:
    """Run a worker that reserves and is SIGKILLed mid-call; return once it is dead."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context: Any = multiprocessing.get_context(method)
    reached = context.Event()
    worker = context.Process(target=_reserve_and_hang, args=(make_store, store_arg, reached))
    worker.start()
    try:
        assert reached.wait(_START_TIMEOUT_SECONDS), "the worker never reached its model call"
    finally:
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(_START_TIMEOUT_SECONDS)
    assert worker.exitcode == -signal.SIGKILL
