"""`RouterStats` counts real money: reported usage, estimates apart, cache hits apart."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.routing.router import ModelRouter, Tier
from langchain_tokenopt.routing.scorers import ComplexityScorer

USAGE: Any = {"input_tokens": 1_000, "output_tokens": 40, "total_tokens": 1_040}


class Always(ComplexityScorer):
    def __init__(self, difficulty: float) -> None:
        self.difficulty = difficulty

    def score(self, messages: Sequence[BaseMessage], *, tools: Sequence[Any] = ()) -> float:
        return self.difficulty


def router_answering(*answers: AIMessage, difficulty: float = 0.0) -> ModelRouter:
    mini = GenericFakeChatModel(messages=itertools.cycle(answers))
    big = GenericFakeChatModel(messages=itertools.cycle(answers))
    return ModelRouter(
        tiers=[
            Tier(mini, quality=0.5, model_name="gpt-4o-mini", name="mini"),
            Tier(big, quality=1.0, model_name="gpt-4o", name="big"),
        ],
        scorer=Always(difficulty),
    )


def test_reported_usage_is_what_a_call_costs_and_always_strongest_prices_the_same_tokens() -> None:
    router = router_answering(AIMessage("ok", usage_metadata=USAGE))
    router.invoke("What is the capital of France?")
    router.invoke("Say hello in Spanish")
    stats = router.stats()
    tokens = {"input_tokens": 1_000, "output_tokens": 40}
    assert stats.reported_calls == 2 and stats.estimated_calls == 0 and stats.cache_hits == 0
    assert stats.reported_cost_usd == 2 * price("gpt-4o-mini", tokens)
    assert stats.strongest_cost_usd == 2 * price("gpt-4o", tokens)
    assert stats.estimated_cost_usd == 0 and stats.cost_usd == stats.reported_cost_usd


def test_token_usage_in_response_metadata_counts_as_reported() -> None:
    raw = {"token_usage": {"prompt_tokens": 500, "completion_tokens": 20, "total_tokens": 520}}
    router = router_answering(AIMessage("ok", response_metadata=raw))
    router.invoke("hi")
    stats = router.stats()
    assert stats.reported_calls == 1
    assert stats.reported_cost_usd == price(
        "gpt-4o-mini", {"input_tokens": 500, "output_tokens": 20}
    )


def test_an_answer_without_usage_is_estimated_and_counted_apart() -> None:
    router = router_answering(AIMessage("ok"))
    decision = router.route("hi")
    router.invoke("hi")
    stats = router.stats()
    assert stats.estimated_calls == 1 and stats.reported_calls == 0
    assert stats.estimated_cost_usd == decision.estimated_cost_usd["mini"]
    assert stats.strongest_cost_usd == decision.estimated_cost_usd["big"]


def test_a_cache_hit_is_counted_apart_and_never_as_routed_spend() -> None:
    cached = AIMessage("ok", usage_metadata=USAGE, response_metadata={CACHE_HIT_KEY: True})
    router = router_answering(cached)
    router.invoke("hi")
    stats = router.stats()
    assert stats.cache_hits == 1 and stats.calls == {"mini": 1}
    assert stats.cost_usd == 0 and stats.strongest_cost_usd == 0
    assert stats.reported_calls == stats.estimated_calls == 0 and stats.cost_share is None


class UsageAtTheEnd(GenericFakeChatModel):
    """Streams its words, then a last chunk with the usage (as OpenAI's stream does)."""

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield from super()._stream(*args, **kwargs)
        usage: Any = {"input_tokens": 1_000, "output_tokens": 40, "total_tokens": 1_040}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))


def test_a_streamed_answer_is_priced_from_the_usage_of_its_chunks() -> None:
    mini = UsageAtTheEnd(messages=itertools.cycle([AIMessage("two words")]))
    big = UsageAtTheEnd(messages=itertools.cycle([AIMessage("two words")]))
    router = ModelRouter(
        tiers=[
            Tier(mini, quality=0.5, model_name="gpt-4o-mini", name="mini"),
            Tier(big, quality=1.0, model_name="gpt-4o", name="big"),
        ],
        scorer=Always(0.0),
    )
    chunks = list(router.stream("hi"))
    assert len(chunks) > 1
    stats = router.stats()
    assert stats.reported_calls == 1 and stats.requests == 1
    assert stats.reported_cost_usd == price(
        "gpt-4o-mini", {"input_tokens": 1_000, "output_tokens": 40}
    )


async def test_async_calls_count_reported_usage_too() -> None:
    router = router_answering(AIMessage("ok", usage_metadata=USAGE), difficulty=0.9)
    await router.ainvoke("Prove it")
    stats = router.stats()
    assert stats.calls == {"big": 1} and stats.reported_calls == 1
    assert stats.reported_cost_usd == stats.strongest_cost_usd > Decimal(0)
