"""`ModelRouter`: which tier answers, why, at what estimated cost, and what happens on errors.

Tiers are langchain-core `GenericFakeChatModel`s with a model name (so the real
`TokenCounter` and `price()` estimate their costs), a real `bind_tools`, and a record of
the keyword arguments each call received.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx2
import openai
import pytest
from langchain_core.callbacks import (
    AsyncCallbackHandler,
    BaseCallbackHandler,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.core.markers import ROUTE_EVENT, ROUTE_KEY
from langchain_tokenopt.core.pricing import PriceTable, price
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.errors import InvalidArgumentError, UnknownModelError
from langchain_tokenopt.routing.pretrained import PretrainedScorer
from langchain_tokenopt.routing.router import (
    DEFAULT_EXPECTED_OUTPUT_TOKENS,
    ModelRouter,
    Tier,
)
from langchain_tokenopt.routing.scorers import ComplexityScorer, HeuristicScorer

# ------------------------------------------------------------------ fakes


class NamedFakeChatModel(GenericFakeChatModel):
    """A fake chat model with a model name, a real `bind_tools` and a call record."""

    model_name: str
    calls: list[dict[str, Any]] = Field(default_factory=list)
    fail_with: Exception | None = None
    fail_after_first_chunk: bool = False

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append({"messages": messages, "stop": stop, **kwargs})
        if self.fail_with is not None:
            raise self.fail_with
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for index, chunk in enumerate(super()._stream(messages, stop, run_manager, **kwargs)):
            if index == 1 and self.fail_after_first_chunk:
                raise RuntimeError("connection dropped mid-stream")
            yield chunk


def fake(model_name: str, reply: str | AIMessage | None = None) -> NamedFakeChatModel:
    answer = reply if reply is not None else f"answer from {model_name}"
    return NamedFakeChatModel(model_name=model_name, messages=itertools.cycle([answer]))


class FixedScorer(ComplexityScorer):
    """Scores every request the same (so a test controls the difficulty exactly)."""

    def __init__(self, difficulty: float) -> None:
        self.difficulty = difficulty

    def score(self, messages: Sequence[BaseMessage], *, tools: Sequence[Any] = ()) -> float:
        return self.difficulty


def rate_limit_error() -> openai.RateLimitError:
    request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx2.Response(429, request=request)
    return openai.RateLimitError("Rate limit reached", response=response, body=None)


def two_tiers(**kwargs: Any) -> tuple[ModelRouter, NamedFakeChatModel, NamedFakeChatModel]:
    mini, big = fake("gpt-4o-mini"), fake("gpt-4o")
    router = ModelRouter(
        tiers=[Tier(big, quality=1.0, name="big"), Tier(mini, quality=0.3, name="mini")],
        **kwargs,
    )
    return router, mini, big


EASY = "What is the capital of France?"
HARD = (
    "Prove that the sum of the first n odd numbers is n^2. Explain why each step holds, "
    "then compare an induction proof with a geometric one step by step and write a Python "
    "function that checks it."
)


class EventRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data))


class AsyncEventRecorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data))


# ------------------------------------------------------------------ deciding


def test_easy_request_goes_to_the_cheap_tier_and_hard_one_to_the_strong_tier() -> None:
    router, mini, big = two_tiers()
    easy = router.invoke(EASY)
    hard = router.invoke(HARD)
    assert easy.content == "answer from gpt-4o-mini"
    assert hard.content == "answer from gpt-4o"
    assert len(mini.calls) == 1 and len(big.calls) == 1
    assert easy.response_metadata[ROUTE_KEY]["tier"] == "mini"
    assert hard.response_metadata[ROUTE_KEY]["tier"] == "big"


def test_cheapest_acceptable_tier_wins_whatever_the_listing_order() -> None:
    nano, mini, big = fake("gpt-4.1-nano"), fake("gpt-4o-mini"), fake("gpt-4o")
    router = ModelRouter(
        tiers=[
            Tier(big, quality=1.0),
            Tier(mini, quality=0.5),
            Tier(nano, quality=0.5),
        ],
        scorer=FixedScorer(0.4),
    )
    decision = router.route(EASY)
    costs = decision.estimated_cost_usd
    assert costs["gpt-4.1-nano"] < costs["gpt-4o-mini"] < costs["gpt-4o"]
    assert decision.tier == "gpt-4.1-nano"
    assert decision.order == ("gpt-4.1-nano", "gpt-4o-mini", "gpt-4o")
    assert router.invoke(EASY).content == "answer from gpt-4.1-nano"


def test_estimated_cost_is_the_exact_input_count_plus_expected_output_priced() -> None:
    router, _, _ = two_tiers()
    messages = [HumanMessage("Summarize the plot of Hamlet in two sentences.")]
    decision = router.route(messages)
    for tier, model in (("mini", "gpt-4o-mini"), ("big", "gpt-4o")):
        input_tokens = TokenCounter(model).count_messages(messages)
        expected = price(
            model,
            {"input_tokens": int(input_tokens), "output_tokens": DEFAULT_EXPECTED_OUTPUT_TOKENS},
        )
        assert decision.estimated_cost_usd[tier] == expected


def test_tier_expected_output_tokens_override_changes_the_estimate() -> None:
    mini = fake("gpt-4o-mini")
    router = ModelRouter(tiers=[Tier(mini, quality=1.0, expected_output_tokens=1000)])
    decision = router.route("hello")
    input_tokens = TokenCounter("gpt-4o-mini").count_messages([HumanMessage("hello")])
    assert decision.estimated_cost_usd["gpt-4o-mini"] == price(
        "gpt-4o-mini", {"input_tokens": int(input_tokens), "output_tokens": 1000}
    )


def test_min_quality_is_a_floor_even_for_easy_requests() -> None:
    router, mini, _ = two_tiers(min_quality=0.6)
    reply = router.invoke("hi")
    assert reply.response_metadata[ROUTE_KEY]["tier"] == "big"
    assert reply.response_metadata[ROUTE_KEY]["need"] == pytest.approx(0.6)
    assert not mini.calls


def test_no_tier_meeting_the_need_sends_the_request_to_the_strongest_tier() -> None:
    mini, big = fake("gpt-4o-mini"), fake("gpt-4o")
    router = ModelRouter(
        tiers=[Tier(mini, quality=0.2), Tier(big, quality=0.8)], scorer=FixedScorer(0.95)
    )
    decision = router.route(EASY)
    assert decision.order == ("gpt-4o", "gpt-4o-mini")
    assert "no tier has quality >= need 0.95" in decision.reason
    assert router.invoke(EASY).content == "answer from gpt-4o"


def test_route_is_a_dry_run_that_calls_no_model_and_counts_nothing() -> None:
    router, mini, big = two_tiers()
    decision = router.route(HARD)
    assert decision.tier == "big" and decision.model == "gpt-4o"
    assert not mini.calls and not big.calls
    assert router.stats().requests == 0


@pytest.mark.parametrize(
    "make_input",
    [
        lambda text: text,
        lambda text: [("system", "Be brief."), ("user", text)],
        lambda text: ChatPromptTemplate.from_messages([("user", "{q}")]).invoke({"q": text}),
    ],
    ids=["str", "messages", "prompt_value"],
)
def test_router_takes_what_a_chat_model_takes(make_input: Any) -> None:
    router, mini, _ = two_tiers()
    reply = router.invoke(make_input(EASY))
    assert reply.content == "answer from gpt-4o-mini"
    assert mini.calls[0]["messages"][-1].content == EASY


def test_router_composes_in_a_chain() -> None:
    router, _, _ = two_tiers()
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | router | StrOutputParser()
    assert chain.invoke({"q": EASY}) == "answer from gpt-4o-mini"


def test_call_kwargs_reach_the_chosen_model() -> None:
    router, mini, _ = two_tiers()
    router.bind(stop=["\n"]).invoke(EASY)
    assert mini.calls[0]["stop"] == ["\n"]


# ------------------------------------------------------------------ budget relaxation


@pytest.mark.parametrize(
    ("share", "relaxed_by", "tier"),
    [
        (1.0, 0.0, "big"),
        (0.6, 0.0, "big"),
        (0.5, 0.10, "big"),
        (0.25, 0.25, "medium"),
        (0.10, 0.50, "mini"),
        (0.0, 1.0, "mini"),
    ],
)
def test_need_relaxes_step_by_step_as_the_budget_runs_out(
    share: float, relaxed_by: float, tier: str
) -> None:
    router = ModelRouter(
        tiers=[
            Tier(fake("gpt-4o-mini"), quality=0.3, name="mini"),
            Tier(fake("gpt-4.1-mini"), quality=0.6, name="medium"),
            Tier(fake("gpt-4o"), quality=1.0, name="big"),
        ],
        scorer=FixedScorer(0.8),
        budget=lambda: share,
    )
    decision = router.route(EASY)
    assert decision.budget_share == share
    assert decision.relaxed_by == relaxed_by
    assert decision.need == pytest.approx(max(0.8 - relaxed_by, 0.0))
    assert decision.tier == tier


def test_budget_relaxation_never_goes_below_min_quality() -> None:
    router, _, _ = two_tiers(scorer=FixedScorer(0.9), min_quality=0.5, budget=lambda: 0.0)
    decision = router.route(EASY)
    assert decision.need == 0.5
    assert decision.tier == "big"


def test_token_budget_spending_relaxes_the_routing() -> None:
    budget = TokenBudget(max_tokens=1_000, window="day")
    spender = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(
                    "x",
                    usage_metadata={"input_tokens": 900, "output_tokens": 20, "total_tokens": 920},
                )
            ]
        )
    )
    router, _, _ = two_tiers(scorer=FixedScorer(0.5), budget=budget)
    assert router.route(EASY).tier == "big"
    spender.invoke("spend", config={"callbacks": [budget]})
    decision = router.route(EASY)
    assert decision.budget_share == pytest.approx(0.08)
    assert decision.relaxed_by == 0.5
    assert decision.tier == "mini"
    assert "budget 8% left" in decision.reason


def test_per_agent_budget_is_read_for_the_agent_named_in_the_config() -> None:
    budget = TokenBudget(max_tokens=1_000, window="day", per_agent=True)
    spender = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(
                    "x",
                    usage_metadata={"input_tokens": 950, "output_tokens": 0, "total_tokens": 950},
                )
            ]
        )
    )
    spender.invoke("spend", config={"callbacks": [budget], "metadata": {"agent": "writer"}})
    router, _, _ = two_tiers(scorer=FixedScorer(0.5), budget=budget)
    assert router.route(EASY, {"metadata": {"agent": "writer"}}).tier == "mini"
    assert router.route(EASY, {"metadata": {"agent": "researcher"}}).tier == "big"


def test_unreadable_budget_routes_without_relaxation() -> None:
    class BrokenBudget:
        def remaining(self) -> Any:
            raise ConnectionError("redis is down")

    router, _, _ = two_tiers(scorer=FixedScorer(0.5), budget=BrokenBudget())
    decision = router.route(EASY)
    assert decision.budget_share is None and decision.relaxed_by == 0.0
    assert decision.tier == "big"


def test_custom_relaxation_curve_is_used() -> None:
    router, _, _ = two_tiers(scorer=FixedScorer(0.5), budget=lambda: 0.9, relaxation=((0.95, 0.3),))
    assert router.route(EASY).relaxed_by == 0.3
    assert router.route(EASY).tier == "mini"


# ------------------------------------------------------------------ fall-through


def test_rate_limited_tier_falls_through_to_the_next_one() -> None:
    router, mini, _ = two_tiers()
    mini.fail_with = rate_limit_error()
    reply = router.invoke(EASY)
    assert reply.content == "answer from gpt-4o"
    route = reply.response_metadata[ROUTE_KEY]
    assert route["tier"] == "big" and route["fallbacks"] == ["mini"]
    stats = router.stats()
    assert stats.fallbacks == 1 and stats.failures == {"mini": 1} and stats.calls == {"big": 1}


def test_fall_through_goes_to_the_next_cheapest_acceptable_tier() -> None:
    nano, mini, big = fake("gpt-4.1-nano"), fake("gpt-4o-mini"), fake("gpt-4o")
    nano.fail_with = RuntimeError("server error")
    router = ModelRouter(
        tiers=[Tier(big, quality=1.0), Tier(mini, quality=0.5), Tier(nano, quality=0.5)],
        scorer=FixedScorer(0.4),
    )
    assert router.invoke(EASY).content == "answer from gpt-4o-mini"
    assert not big.calls


def test_weaker_tiers_are_tried_only_when_allowed() -> None:
    router, mini, big = two_tiers(scorer=FixedScorer(0.9))
    big.fail_with = RuntimeError("overloaded")
    with pytest.raises(RuntimeError, match="overloaded"):
        router.invoke(HARD)
    assert not mini.calls

    lenient, mini, big = two_tiers(scorer=FixedScorer(0.9), fallback_to_weaker=True)
    big.fail_with = RuntimeError("overloaded")
    assert lenient.invoke(HARD).content == "answer from gpt-4o-mini"


def test_when_every_tier_fails_the_last_error_is_raised_and_counted() -> None:
    router, mini, big = two_tiers()
    mini.fail_with = rate_limit_error()
    big.fail_with = RuntimeError("big is down")
    recorder = EventRecorder()
    with pytest.raises(RuntimeError, match="big is down"):
        router.invoke(EASY, config={"callbacks": [recorder]})
    assert recorder.events[0][1]["tier"] is None
    assert recorder.events[0][1]["fallbacks"] == ["mini", "big"]
    stats = router.stats()
    assert stats.unanswered == 1 and stats.failures == {"mini": 1, "big": 1}
    assert stats.calls == {} and stats.estimated_cost_usd == 0


def test_errors_outside_fallback_on_are_raised_at_once() -> None:
    router, mini, big = two_tiers(fallback_on=(openai.RateLimitError,))
    mini.fail_with = ValueError("bad request")
    with pytest.raises(ValueError, match="bad request"):
        router.invoke(EASY)
    assert not big.calls


# ------------------------------------------------------------------ visibility


def test_decision_is_in_response_metadata() -> None:
    router, _, _ = two_tiers()
    route = router.invoke(EASY).response_metadata[ROUTE_KEY]
    assert route["tier"] == "mini" and route["model"] == "gpt-4o-mini"
    assert 0.0 <= route["score"] < 0.3
    assert route["reason"].startswith("cheapest tier with quality >= need")
    assert route["strongest_tier"] == "big"
    assert Decimal(route["estimated_cost_usd"]) < Decimal(route["strongest_cost_usd"])


def test_decision_is_dispatched_as_a_custom_callback_event() -> None:
    router, _, _ = two_tiers()
    recorder = EventRecorder()
    router.invoke(HARD, config={"callbacks": [recorder]})
    assert [name for name, _ in recorder.events] == [ROUTE_EVENT]
    data = recorder.events[0][1]
    assert data["tier"] == "big" and data["model"] == "gpt-4o" and data["fallbacks"] == []


async def test_async_decision_is_dispatched_to_an_async_handler() -> None:
    router, _, _ = two_tiers()
    recorder = AsyncEventRecorder()
    reply = await router.ainvoke(EASY, config={"callbacks": [recorder]})
    assert reply.response_metadata[ROUTE_KEY]["tier"] == "mini"
    assert recorder.events == [(ROUTE_EVENT, reply.response_metadata[ROUTE_KEY])]


async def test_decision_shows_in_astream_events() -> None:
    router, _, _ = two_tiers()
    events = [e async for e in router.astream_events(EASY, version="v2")]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert [e["name"] for e in custom] == [ROUTE_EVENT]
    assert custom[0]["data"]["tier"] == "mini"  # type: ignore[typeddict-item]


def test_stats_add_up_calls_and_estimated_cost_against_always_strongest() -> None:
    router, _, _ = two_tiers()
    prompts = [EASY, "hello there", HARD]
    decisions = [router.route(p) for p in prompts]
    for p in prompts:
        router.invoke(p)
    stats = router.stats()
    assert stats.requests == 3 and stats.calls == {"mini": 2, "big": 1}
    assert stats.estimated_cost_usd == sum(
        (d.estimated_cost_usd[d.tier] for d in decisions), Decimal(0)
    )
    assert stats.strongest_cost_usd == sum(
        (d.estimated_cost_usd["big"] for d in decisions), Decimal(0)
    )
    assert stats.cost_share is not None and stats.cost_share < 0.5
    assert stats.savings_usd > 0
    router.reset_stats()
    assert router.stats().requests == 0


def test_batch_routes_each_input() -> None:
    router, _, _ = two_tiers()
    replies = router.batch([EASY, HARD, EASY])
    assert [r.response_metadata[ROUTE_KEY]["tier"] for r in replies] == ["mini", "big", "mini"]
    assert router.stats().calls == {"mini": 2, "big": 1}


def test_fake_model_message_is_not_mutated_by_stamping() -> None:
    shared = AIMessage("cached answer")
    mini = fake("gpt-4o-mini", shared)
    router = ModelRouter(tiers=[Tier(mini, quality=1.0)])
    reply = router.invoke(EASY)
    assert ROUTE_KEY in reply.response_metadata
    assert ROUTE_KEY not in shared.response_metadata


# ------------------------------------------------------------------ streaming


def test_stream_comes_from_the_chosen_tier_with_the_decision_on_the_first_chunk() -> None:
    router, _, _ = two_tiers()
    chunks = list(router.stream(EASY))
    assert len(chunks) > 1
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert "".join(str(c.content) for c in chunks) == "answer from gpt-4o-mini"
    assert chunks[0].response_metadata[ROUTE_KEY]["tier"] == "mini"
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert merged.response_metadata[ROUTE_KEY]["tier"] == "mini"


def test_stream_falls_through_when_the_tier_fails_before_the_first_chunk() -> None:
    router, mini, _ = two_tiers()
    mini.fail_with = rate_limit_error()
    chunks = list(router.stream(EASY))
    assert "".join(str(c.content) for c in chunks) == "answer from gpt-4o"
    assert chunks[0].response_metadata[ROUTE_KEY]["fallbacks"] == ["mini"]


def test_stream_failure_after_the_first_chunk_is_raised_not_retried() -> None:
    router, mini, big = two_tiers()
    mini.fail_after_first_chunk = True
    received: list[Any] = []
    with pytest.raises(RuntimeError, match="mid-stream"):
        for chunk in router.stream(EASY):
            received.append(chunk)
    assert len(received) == 1
    assert not big.calls


async def test_astream_falls_through_before_the_first_chunk() -> None:
    router, mini, _ = two_tiers()
    mini.fail_with = rate_limit_error()
    chunks = [c async for c in router.astream(EASY)]
    assert "".join(str(c.content) for c in chunks) == "answer from gpt-4o"
    assert chunks[0].response_metadata[ROUTE_KEY]["fallbacks"] == ["mini"]


async def test_ainvoke_falls_through_and_counts() -> None:
    router, mini, _ = two_tiers()
    mini.fail_with = rate_limit_error()
    reply = await router.ainvoke(EASY)
    assert reply.content == "answer from gpt-4o"
    assert router.stats().fallbacks == 1


async def test_async_route_reads_the_budget() -> None:
    router, _, _ = two_tiers(scorer=FixedScorer(0.5), budget=lambda: 0.05)
    decision = await router.aroute(EASY)
    assert decision.relaxed_by == 0.5 and decision.tier == "mini"


# ------------------------------------------------------------------ tools and structured output


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return "sunny"


class Answer(BaseModel):
    """A short answer with a confidence."""

    text: str
    confidence: float


def test_bind_tools_binds_every_tier() -> None:
    router, mini, big = two_tiers()
    bound = router.bind_tools([get_weather], tool_choice="auto")
    mini.fail_with = rate_limit_error()
    bound.invoke(EASY)
    for model in (mini, big):
        assert [t["function"]["name"] for t in model.calls[0]["tools"]] == ["get_weather"]
        assert model.calls[0]["tool_choice"] == "auto"


def test_bound_tools_count_in_cost_and_difficulty() -> None:
    router, _, _ = two_tiers(scorer=HeuristicScorer())
    bound = router.bind_tools([get_weather])
    plain_decision, bound_decision = router.route(EASY), bound.route(EASY)
    assert bound_decision.score == pytest.approx(plain_decision.score + 0.15)
    messages = [HumanMessage(EASY)]
    tokens = TokenCounter("gpt-4o").count_messages(messages, tools=[get_weather])
    assert bound_decision.estimated_cost_usd["big"] == price(
        "gpt-4o", {"input_tokens": int(tokens), "output_tokens": DEFAULT_EXPECTED_OUTPUT_TOKENS}
    )


def test_bound_router_shares_the_stats_and_leaves_the_original_unbound() -> None:
    router, mini, _ = two_tiers()
    router.bind_tools([get_weather]).invoke(EASY)
    router.invoke(EASY)
    assert "tools" in mini.calls[0] and "tools" not in mini.calls[1]
    assert router.stats().calls == {"mini": 2}


def structured_reply(arguments: dict[str, Any]) -> AIMessage:
    return AIMessage(
        "", tool_calls=[{"name": "Answer", "args": arguments, "id": "call_1", "type": "tool_call"}]
    )


def test_with_structured_output_parses_on_every_tier_and_falls_through_on_bad_output() -> None:
    mini = fake("gpt-4o-mini", structured_reply({"text": "Paris"}))  # confidence missing
    big = fake("gpt-4o", structured_reply({"text": "Paris", "confidence": 0.9}))
    router = ModelRouter(tiers=[Tier(mini, quality=0.3), Tier(big, quality=1.0)])
    structured = router.with_structured_output(Answer)
    recorder = EventRecorder()
    result = structured.invoke(EASY, config={"callbacks": [recorder]})
    assert result == Answer(text="Paris", confidence=0.9)
    assert recorder.events[0][1]["fallbacks"] == ["gpt-4o-mini"]
    assert mini.calls[0]["tools"][0]["function"]["name"] == "Answer"


def test_structured_output_none_falls_through_and_the_last_tiers_none_is_returned() -> None:
    mini = fake("gpt-4o-mini", AIMessage("I would rather chat"))  # calls no tool: None
    big = fake("gpt-4o", structured_reply({"text": "Paris", "confidence": 0.9}))
    router = ModelRouter(tiers=[Tier(mini, quality=0.3), Tier(big, quality=1.0)])
    assert router.with_structured_output(Answer).invoke(EASY) == Answer(
        text="Paris", confidence=0.9
    )
    alone = ModelRouter(tiers=[Tier(fake("gpt-4o-mini", AIMessage("no tool")), quality=1.0)])
    assert alone.with_structured_output(Answer).invoke(EASY) is None


def test_structured_output_with_raw_carries_the_decision_on_the_raw_message() -> None:
    big = fake("gpt-4o", structured_reply({"text": "Paris", "confidence": 0.9}))
    router = ModelRouter(tiers=[Tier(big, quality=1.0)])
    result = router.with_structured_output(Answer, include_raw=True).invoke(EASY)
    assert result["parsed"] == Answer(text="Paris", confidence=0.9)
    assert result["raw"].response_metadata[ROUTE_KEY]["tier"] == "gpt-4o"


# ------------------------------------------------------------------ validation


def test_a_router_needs_tiers_with_unique_names() -> None:
    with pytest.raises(ValueError, match="at least one Tier"):
        ModelRouter(tiers=[])
    with pytest.raises(ValueError, match="unique"):
        ModelRouter(tiers=[Tier(fake("gpt-4o"), quality=1.0), Tier(fake("gpt-4o"), quality=0.5)])


def test_tier_without_a_price_is_rejected_unless_priced() -> None:
    local = fake("my-local-llama")
    with pytest.raises(UnknownModelError, match="my-local-llama"):
        ModelRouter(tiers=[Tier(local, quality=0.5)])
    table = PriceTable({"my-local-llama": {"input_per_mtok": 0.05, "output_per_mtok": 0.1}})
    router = ModelRouter(tiers=[Tier(local, quality=0.5)], prices=table)
    assert router.route("hi").estimated_cost_usd["my-local-llama"] > 0


def test_tier_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="quality"):
        Tier(fake("gpt-4o"), quality=1.5)
    with pytest.raises(TypeError, match="chat model"):
        Tier("gpt-4o", quality=0.5)  # type: ignore[arg-type]
    nameless = GenericFakeChatModel(messages=iter(["x"]))
    with pytest.raises(ValueError, match="model_name="):
        Tier(nameless, quality=0.5)
    assert Tier(nameless, quality=0.5, model_name="gpt-4o").name == "gpt-4o"


def test_router_checks_its_arguments() -> None:
    tiers = [Tier(fake("gpt-4o"), quality=1.0)]
    with pytest.raises(ValueError, match="min_quality"):
        ModelRouter(tiers=tiers, min_quality=2.0)
    with pytest.raises(ValueError, match="remaining"):
        ModelRouter(tiers=tiers, budget=0.5)
    with pytest.raises(ValueError, match="relax less"):
        ModelRouter(tiers=tiers, relaxation=((0.5, 0.5), (0.1, 0.1)))


def test_input_that_is_not_chat_input_gets_a_type_error() -> None:
    router, _, _ = two_tiers()
    with pytest.raises(TypeError, match="ModelRouter takes a str, a list of messages"):
        router.route(42)  # type: ignore[arg-type]


def test_scorer_results_are_clipped_and_nan_rejected() -> None:
    router, _, _ = two_tiers(scorer=FixedScorer(7.0))
    assert router.route(EASY).score == 1.0
    broken, _, _ = two_tiers(scorer=FixedScorer(float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        broken.route(EASY)


def test_default_scorer_is_the_pretrained_one() -> None:
    router, _, _ = two_tiers()
    assert isinstance(router.scorer, PretrainedScorer)
    assert router.route(HARD).score == pytest.approx(router.scorer.score_text(HARD))


def test_record_counts_a_request_routed_by_other_code() -> None:
    router, _, _ = two_tiers()
    decision = router.route(EASY)
    metadata = router.record(decision, "big", ["mini"])
    assert metadata["tier"] == "big" and metadata["fallbacks"] == ["mini"]
    assert metadata["estimated_cost_usd"] == format(decision.estimated_cost_usd["big"], "f")
    stats = router.stats()
    assert stats.calls == {"big": 1} and stats.failures == {"mini": 1} and stats.fallbacks == 1
    with pytest.raises(ValueError, match="unknown tier 'huge'"):
        router.record(decision, "huge")


# ------------------------------------------------------------------ knobs and tier thresholds


def test_max_strong_share_and_quality_target_set_the_cheap_tier_threshold() -> None:
    mini, big = fake("gpt-4o-mini"), fake("gpt-4o")
    tiers = [Tier(mini, name="mini"), Tier(big, name="big")]
    scorer = PretrainedScorer()
    capped = ModelRouter(tiers=tiers, max_strong_share=0.1)
    careful = ModelRouter(tiers=tiers, quality_target=0.95)
    default = ModelRouter(tiers=tiers)
    assert capped.thresholds == {"mini": scorer.threshold_for_share(0.1), "big": 1.0}
    assert careful.thresholds["mini"] == scorer.threshold_for_quality(0.95)
    assert default.thresholds["mini"] == scorer.default_threshold
    assert capped.thresholds["mini"] > default.thresholds["mini"] > careful.thresholds["mini"]


def test_knobs_need_a_tier_left_to_them_and_only_one_knob() -> None:
    mini, big = fake("gpt-4o-mini"), fake("gpt-4o")
    with pytest.raises(ValueError, match="not both"):
        ModelRouter(tiers=[Tier(mini), Tier(big)], max_strong_share=0.2, quality_target=0.9)
    with pytest.raises(ValueError, match="every tier but the last has one"):
        ModelRouter(tiers=[Tier(mini, quality=0.3), Tier(big)], max_strong_share=0.2)
    with pytest.raises(
        InvalidArgumentError, match="max_strong_share must be a finite number >= 0 and <= 1"
    ):
        ModelRouter(tiers=[Tier(mini), Tier(big)], max_strong_share=2.0)


def test_three_tiers_ordered_by_cost_each_with_its_threshold() -> None:
    nano, mini, big = fake("gpt-4.1-nano"), fake("gpt-4o-mini"), fake("gpt-4o")
    router = ModelRouter(
        tiers=[Tier(nano, name="nano"), Tier(mini, quality=0.6, name="mini"), Tier(big, name="big")]
    )
    threshold = PretrainedScorer().default_threshold
    assert router.thresholds == {"nano": threshold, "mini": 0.6, "big": 1.0}
    assert router.route("What is the capital of France?").tier == "nano"
    assert router.route("Prove that the sum of the first n odd numbers is n^2").tier == "mini"
    assert router.route(HARD).tier == "big"
