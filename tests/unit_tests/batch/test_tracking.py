"""Tracker and budget price a call carrying the batch marker at the batch rate."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.core.markers import BATCH_KEY
from langchain_tokenopt.core.pricing import price

USAGE = {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}


def _result(batch: bool) -> LLMResult:
    metadata = {BATCH_KEY: {"provider": "openai", "batch_id": "b", "custom_id": "item-0"}}
    message = AIMessage("ok", usage_metadata=USAGE, response_metadata=metadata if batch else {})
    return LLMResult(generations=[[ChatGeneration(message=message)]])


def _call(handler: UsageTracker | TokenBudget, *, batch: bool) -> None:
    run_id = uuid4()
    metadata = {"ls_model_name": "gpt-4o-mini", **({BATCH_KEY: True} if batch else {})}
    handler.on_chat_model_start({}, [[HumanMessage("hi")]], run_id=run_id, metadata=metadata)
    handler.on_llm_end(_result(batch), run_id=run_id)


def test_the_tracker_prices_a_marked_result_at_the_batch_rate() -> None:
    tracker = UsageTracker()
    _call(tracker, batch=False)
    _call(tracker, batch=True)
    standard, batch = (e.cost_usd for e in tracker.events)
    assert standard == price("gpt-4o-mini", USAGE)
    assert batch == standard / 2


def test_the_budget_reserves_and_settles_a_marked_call_at_the_batch_rate() -> None:
    standard_budget, batch_budget = TokenBudget(max_cost_usd=1), TokenBudget(max_cost_usd=1)
    _call(standard_budget, batch=False)
    _call(batch_budget, batch=True)
    spent = batch_budget.remaining().used_cost_usd
    assert spent == standard_budget.remaining().used_cost_usd / 2
    assert spent == price("gpt-4o-mini", USAGE, processing="batch").quantize(Decimal("1e-9"))
