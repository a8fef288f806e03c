"""Send each request to the cheapest chat model that is good enough for it.

Most requests an app sends are easy; paying the strongest model for all of them wastes
money. `ModelRouter` scores each request's difficulty, keeps the tiers whose quality
meets the need, and calls the cheapest of them (by the request's exact input token
count, priced with `price()`), falling through to the next tier when one fails. As a
budget runs out, the need relaxes step by step so the rest of the budget lasts.

Routing rule
------------
1. A `ComplexityScorer` maps the request to a difficulty ``d`` in [0, 1]. The default,
   `PretrainedScorer`, gives the calibrated probability that the strong model answers
   right where the cheap one answers wrong (learned from real routing data).
   A tier's `quality` is a threshold on that scale: the highest difficulty the tier
   takes. Left None, the last tier takes everything (1.0) and any other the router's
   threshold: from `max_strong_share` (the share of requests that may go past the
   cheap tier) or `quality_target` (the share of the strong model's quality to keep),
   translated with the scorer's calibration table, else the scorer's default.
2. With a budget, its remaining share ``s`` relaxes the difficulty by the first step of
   `relaxation` whose share it is at or below (`DEFAULT_RELAXATION`):

   ======================  =====================
   share of budget left    difficulty relaxed by
   ======================  =====================
   more than 50 %          0
   50 % or less            0.10
   25 % or less            0.25
   10 % or less            0.50
   nothing left (0 %)      1.0 (cheapest tier meeting `min_quality`)
   ======================  =====================

3. The need is ``max(min_quality, d - relaxed_by)``: `min_quality` is a floor the
   budget never relaxes. A tier is acceptable when its `quality` is at least the need,
   so a tier's quality reads as "the hardest request it handles well".
4. Acceptable tiers are tried cheapest first (expected cost: exact input tokens of the
   request, tools included, for that tier's model plus `expected_output_tokens`, priced
   with `price()`; ties go to the higher quality). A tier that raises (rate limit,
   server error, a structured output that does not parse, a `BudgetExceededError`,
   any `Exception` in `fallback_on`) falls through to the next acceptable tier, so
   from the chosen one to stronger or dearer ones. Weaker tiers are tried last only
   with `fallback_to_weaker=True`. If no tier meets the need, all tiers are tried
   strongest first. When every tier fails, the last error is raised.

Every decision is visible three ways: `response_metadata[ROUTE_KEY]` of the returned
message, a custom callback event `ROUTE_EVENT` (for `on_custom_event` handlers and
`astream_events`), and `ModelRouter.stats()`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.core.formatting import decimal_str
from langchain_tokenopt.core.markers import ROUTE_EVENT, ROUTE_KEY
from langchain_tokenopt.core.messages import as_messages
from langchain_tokenopt.core.pricing import PriceTable, price
from langchain_tokenopt.core.runnables import acall_in_run, astream_one, call_in_run, stream_one
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.usage import resolve_agent
from langchain_tokenopt.core.validation import TypedValidationModel, shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError, UnknownModelError
from langchain_tokenopt.routing.budget_share import (
    Budget,
    is_budget,
    reads_inline,
    remaining_share,
)
from langchain_tokenopt.routing.pretrained import PretrainedScorer
from langchain_tokenopt.routing.scorers import ComplexityScorer
from langchain_tokenopt.routing.stats import RouterStats, StatsBook, answer_usage

__all__ = [
    "DEFAULT_RELAXATION",
    "ModelRouter",
    "RouteDecision",
    "Tier",
]

logger = logging.getLogger(__name__)

#: (share of the budget left at most, difficulty relaxed by): the first matching step wins.
DEFAULT_RELAXATION: tuple[tuple[float, float], ...] = (
    (0.0, 1.0),
    (0.10, 0.50),
    (0.25, 0.25),
    (0.50, 0.10),
)
#: Output tokens assumed for a call when estimating its cost (per tier overridable).
DEFAULT_EXPECTED_OUTPUT_TOKENS = 256


def _as_messages(input: LanguageModelInput) -> list[BaseMessage]:
    return as_messages(input, taker="ModelRouter")


# -- tiers and decisions --------------------------------------------------------------------


def _model_name_of(model: BaseChatModel) -> str | None:
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass(frozen=True, eq=False)
class Tier:
    """One model the router can call, and the hardest requests it takes.

    List tiers cheapest first. `quality` is a threshold on the scorer's difficulty
    scale: the tier takes requests scored at most that. With the default
    `PretrainedScorer` the score is the probability that the strong model answers right
    where the cheap one answers wrong, so ``quality=0.3`` reads "use this tier unless
    the strong model is more than 30 % likely to do better". Leave it None to let the
    router set it: the last tier takes everything, the others the router's threshold
    (`ModelRouter(max_strong_share=...)`, `quality_target=...`, or the scorer's default).

    Args:
        model: any chat model.
        quality: in [0, 1], or None (set by the router, see above).
        name: how decisions and stats name the tier; default the model name.
        model_name: the model name used for token counts and prices; default the
            model's `model_name` / `model` attribute.
        expected_output_tokens: output assumed when estimating a call's cost; default
            the router's `expected_output_tokens`.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> fast = GenericFakeChatModel(messages=iter(["ok"]))
        >>> Tier(fast, model_name="gpt-4o-mini").name
        'gpt-4o-mini'
    """

    model: BaseChatModel
    quality: float | None = None
    name: str = ""
    model_name: str = ""
    expected_output_tokens: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, BaseChatModel):
            raise ArgumentTypeError(
                f"a Tier needs a chat model (BaseChatModel), got {type(self.model)}"
            )
        if self.quality is not None and (
            isinstance(self.quality, bool)
            or not isinstance(self.quality, (int, float))
            or not 0.0 <= self.quality <= 1.0
        ):
            raise InvalidArgumentError(
                f"quality must be a number in [0, 1] or None, got {shown(self.quality)}"
            )
        if self.expected_output_tokens is not None and (
            isinstance(self.expected_output_tokens, bool)
            or not isinstance(self.expected_output_tokens, int)
            or self.expected_output_tokens < 0
        ):
            raise InvalidArgumentError("expected_output_tokens must be an int >= 0 or None")
        model_name = self.model_name or _model_name_of(self.model)
        if not model_name:
            raise InvalidArgumentError(
                f"cannot tell the model name of {type(self.model).__name__} (for token counts "
                "and prices): pass Tier(..., model_name='gpt-4o-mini')"
            )
        object.__setattr__(self, "model_name", model_name)
        object.__setattr__(self, "name", self.name or model_name)
        if self.quality is not None:
            object.__setattr__(self, "quality", float(self.quality))


@dataclass(frozen=True)
class RouteDecision:
    """What the router decided for one request, before calling any model.

    `order` is the tiers to try, first the chosen one; `estimated_cost_usd` the
    expected cost of the request on each tier; `strongest` the tier that always-strongest
    routing would call.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> router = ModelRouter(tiers=[
        ...     Tier(GenericFakeChatModel(messages=iter([])), quality=0.4,
        ...          model_name="gpt-4o-mini"),
        ...     Tier(GenericFakeChatModel(messages=iter([])), quality=1.0,
        ...          model_name="gpt-4o")])
        >>> decision = router.route("What is the capital of France?")
        >>> decision.tier, decision.order, decision.strongest
        ('gpt-4o-mini', ('gpt-4o-mini', 'gpt-4o'), 'gpt-4o')
    """

    tier: str
    model: str
    score: float
    need: float
    reason: str
    order: tuple[str, ...]
    budget_share: float | None
    relaxed_by: float
    estimated_cost_usd: Mapping[str, Decimal]
    strongest: str


def _route_metadata(
    decision: RouteDecision, answered: Tier | None, failed: Sequence[str]
) -> dict[str, Any]:
    """The decision as JSON-ready data (money as decimal strings)."""
    return {
        "tier": answered.name if answered else None,
        "model": answered.model_name if answered else None,
        "score": decision.score,
        "need": decision.need,
        "reason": decision.reason,
        "fallbacks": list(failed),
        "budget_share": decision.budget_share,
        "estimated_cost_usd": (
            decimal_str(decision.estimated_cost_usd[answered.name]) if answered else None
        ),
        "strongest_tier": decision.strongest,
        "strongest_cost_usd": decimal_str(decision.estimated_cost_usd[decision.strongest]),
    }


def _stamp(result: Any, metadata: dict[str, Any]) -> Any:
    """`result` with the decision in its response_metadata (a copy; models may share it)."""
    if isinstance(result, BaseMessage):
        return result.model_copy(
            update={"response_metadata": {**result.response_metadata, ROUTE_KEY: metadata}}
        )
    if isinstance(result, dict) and isinstance(result.get("raw"), BaseMessage):
        return {**result, "raw": _stamp(result["raw"], metadata)}
    return result


# -- the router -----------------------------------------------------------------------------


class ModelRouter(TypedValidationModel, RunnableSerializable[LanguageModelInput, Any]):
    """Calls, per request, the cheapest chat model tier whose quality meets the need.

    Takes what a chat model takes (str, messages, `PromptValue`) and returns what the
    chosen model returns. See the module docstring for the routing rule, the budget
    relaxation curve and the fall-through order. Sync, async, streaming and batching
    route the same way; a stream falls through only if its tier fails before the first
    chunk. `bind_tools` and `with_structured_output` return a new router whose tiers
    are all bound; it shares this router's stats.

    Each answer carries `response_metadata[ROUTE_KEY]` (tier, model, score, need,
    reason, fallbacks, budget share, estimated and strongest-tier cost as decimal
    strings): on the message, on the first chunk of a stream, on `"raw"` of
    `include_raw=True` structured output, and nowhere on plain structured output. The
    same data is sent as custom callback event `ROUTE_EVENT` once per request (with
    tier None when every tier failed), and `stats()` adds up the real cost: the usage
    each answer reported, estimates only for answers without usage, cache hits apart.

    Knobs: leave the cheap tiers' `quality` None and say what you want instead:
    `max_strong_share=0.3` lets at most about 30 % of requests past the cheapest tier,
    `quality_target=0.95` keeps about 95 % of the strong model's quality with as few
    strong calls as that takes. The scorer's calibration table (made from requests of
    tasks it had not seen) turns either into the cheap tier's threshold, shown in
    `thresholds`. Both hold on traffic like the scorer's reference data; on yours,
    check `stats()` or train a scorer on your own logs (`train_scorer`).

    Args:
        tiers: the models, cheapest first, each with its quality or None (at least one).
        scorer: a `ComplexityScorer`; default `PretrainedScorer()`.
        max_strong_share: the share of requests, in [0, 1], that may go past the cheap
            tiers; sets the threshold of tiers whose quality is None.
        quality_target: the share of the strong model's quality to keep, in (0, 1];
            sets the threshold of tiers whose quality is None (not with
            `max_strong_share`).
        min_quality: the lowest tier quality any request may get, in [0, 1].
        budget: an object with `remaining()` (a `TokenBudget`), or a callable returning
            the share left; its remaining share relaxes the need (`relaxation`).
        relaxation: (share left at most, difficulty relaxed by) steps.
        expected_output_tokens: output assumed per call when estimating costs.
        prices: a `PriceTable` for models genai-prices does not know.
        fallback_on: exception types that fall through to the next tier.
        fallback_to_weaker: after the acceptable tiers, also try weaker ones.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> mini = GenericFakeChatModel(messages=iter(["Paris"]))
        >>> big = GenericFakeChatModel(messages=iter(["a proof"]))
        >>> router = ModelRouter(tiers=[Tier(mini, model_name="gpt-4o-mini"),
        ...                             Tier(big, model_name="gpt-4o")])
        >>> reply = router.invoke("What is the capital of France?")
        >>> reply.content, reply.response_metadata["tokenopt_route"]["tier"]
        ('Paris', 'gpt-4o-mini')
        >>> router.route("Prove that the sum of the first n odd numbers is n^2").tier
        'gpt-4o'

        A worked example of the knobs: at most 20 % of requests to gpt-4o, or keep
        95 % of its quality (which takes a lower threshold, so more gpt-4o calls):

        >>> capped = ModelRouter(tiers=router.tiers, max_strong_share=0.2)
        >>> careful = ModelRouter(tiers=router.tiers, quality_target=0.95)
        >>> capped.thresholds["gpt-4o-mini"] > careful.thresholds["gpt-4o-mini"]
        True
        >>> capped.thresholds["gpt-4o"]
        1.0
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tiers: list[Tier]
    scorer: ComplexityScorer = Field(default_factory=PretrainedScorer)
    max_strong_share: float | None = None
    quality_target: float | None = None
    min_quality: float = 0.0
    budget: Budget | None = None
    relaxation: tuple[tuple[float, float], ...] = DEFAULT_RELAXATION
    expected_output_tokens: int = DEFAULT_EXPECTED_OUTPUT_TOKENS
    prices: PriceTable | None = None
    fallback_on: tuple[type[BaseException], ...] = (Exception,)
    fallback_to_weaker: bool = False

    _runnables: list[Runnable[LanguageModelInput, Any]] = PrivateAttr(default_factory=list)
    _tools: list[Any] = PrivateAttr(default_factory=list)
    _count_tools: list[Any] = PrivateAttr(default_factory=list)
    _none_fails: bool = PrivateAttr(default=False)
    _counters: dict[str, TokenCounter] = PrivateAttr(default_factory=dict)
    _quality: dict[str, float] = PrivateAttr(default_factory=dict)
    _stats: StatsBook = PrivateAttr(default_factory=StatsBook)

    @field_validator("tiers")
    @classmethod
    def _valid_tiers(cls, tiers: list[Tier]) -> list[Tier]:
        if not tiers:
            raise InvalidArgumentError("a ModelRouter needs at least one Tier")
        names = [tier.name for tier in tiers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidArgumentError(
                f"tier names must be unique; give Tier(name=...) to {duplicates}"
            )
        return tiers

    @field_validator("min_quality")
    @classmethod
    def _valid_min_quality(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise InvalidArgumentError(f"min_quality must be in [0, 1], got {value}")
        return value

    @field_validator("budget", mode="before")
    @classmethod
    def _valid_budget(cls, value: Any) -> Any:
        if value is None or is_budget(value):
            return value
        raise InvalidArgumentError(
            "budget must have a remaining() method (a TokenBudget) or be a callable "
            f"returning the share left, got {type(value).__name__}"
        )

    @field_validator("relaxation")
    @classmethod
    def _valid_relaxation(
        cls, steps: tuple[tuple[float, float], ...]
    ) -> tuple[tuple[float, float], ...]:
        ordered = tuple(sorted((float(share), float(relax)) for share, relax in steps))
        for share, relax in ordered:
            if not (0.0 <= share <= 1.0 and 0.0 <= relax <= 1.0):
                raise InvalidArgumentError(
                    "relaxation steps are (share left, relaxed by), both in [0, 1]"
                )
        relaxes = [relax for _, relax in ordered]
        if any(later > earlier for earlier, later in itertools.pairwise(relaxes)):
            raise InvalidArgumentError(
                "relaxation must not relax less when less of the budget is left"
            )
        return ordered

    @field_validator("expected_output_tokens")
    @classmethod
    def _valid_output_tokens(cls, value: int) -> int:
        if value < 0:
            raise InvalidArgumentError("expected_output_tokens must be >= 0")
        return value

    @model_validator(mode="after")
    def _prepare(self) -> ModelRouter:
        for tier in self.tiers:
            try:
                price(tier.model_name, {"input_tokens": 0, "output_tokens": 0}, table=self.prices)
            except UnknownModelError as exc:
                raise UnknownModelError(
                    tier.model_name,
                    f"Tier {tier.name!r}: no price is known for model {tier.model_name!r}, so "
                    "the router cannot compare costs. Pass prices=PriceTable({...}) or "
                    "Tier(..., model_name=<a priced model>).",
                ) from exc
        if not self._runnables:
            self._runnables = [tier.model for tier in self.tiers]
        self._quality = self._resolve_qualities()
        return self

    def _knob_threshold(self) -> float:
        """The threshold of tiers left at quality None (all but the last)."""
        if self.max_strong_share is not None and self.quality_target is not None:
            raise InvalidArgumentError("set max_strong_share or quality_target, not both")
        if self.max_strong_share is not None:
            name, argument = "threshold_for_share", self.max_strong_share
        elif self.quality_target is not None:
            name, argument = "threshold_for_quality", self.quality_target
        else:
            name, argument = "default_threshold", None
        lookup = getattr(self.scorer, name, None)
        if lookup is None:
            raise InvalidArgumentError(
                f"{type(self.scorer).__name__} has no calibration table to set thresholds "
                "from: give every tier but the last Tier(quality=...), or use "
                "PretrainedScorer"
            )
        return float(lookup if argument is None else lookup(argument))

    def _resolve_qualities(self) -> dict[str, float]:
        """Each tier's threshold: its own quality, else the knob's (1.0 for the last)."""
        unset = [tier for tier in self.tiers[:-1] if tier.quality is None]
        knob = self.max_strong_share is not None or self.quality_target is not None
        if knob and not unset:
            raise InvalidArgumentError(
                "max_strong_share / quality_target set the threshold of tiers whose quality "
                "is None, and every tier but the last has one: drop Tier(quality=...) from "
                "the cheap tiers or the knob"
            )
        threshold = self._knob_threshold() if unset or knob else 1.0
        last = self.tiers[-1]
        return {
            tier.name: (
                tier.quality
                if tier.quality is not None
                else (1.0 if tier is last else min(max(threshold, 0.0), 1.0))
            )
            for tier in self.tiers
        }

    @property
    def thresholds(self) -> dict[str, float]:
        """Each tier's quality as routing uses it: the highest difficulty it takes."""
        return dict(self._quality)

    # -- LangChain plumbing

    @property
    def InputType(self) -> Any:
        return LanguageModelInput

    @property
    def OutputType(self) -> Any:
        return Any

    def _derive(
        self,
        runnables: list[Runnable[LanguageModelInput, Any]],
        tools: list[Any],
        count_tools: list[Any],
        none_fails: bool = False,
    ) -> ModelRouter:
        router = self.model_copy()
        router._runnables = runnables
        router._tools = tools
        router._count_tools = count_tools
        router._none_fails = none_fails
        router._counters = self._counters
        router._stats = self._stats
        return router

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ModelRouter:
        """A router whose every tier has `tools` bound (`model.bind_tools(tools, **kwargs)`)."""
        tool_list = list(tools)
        runnables = [tier.model.bind_tools(tool_list, **kwargs) for tier in self.tiers]
        return self._derive(runnables, tool_list, tool_list)

    def with_structured_output(
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> ModelRouter:
        """A router whose every tier returns `schema` (`model.with_structured_output`).

        A tier whose output does not parse (the parser raises), or that returns None
        (it called no tool, or its arguments were not JSON: LangChain's parsers return
        None then), falls through to the next tier; the last tier's None is returned as
        is. With `include_raw=True` parsing errors are returned, not raised, so only
        call errors fall through.
        """
        runnables = [
            tier.model.with_structured_output(schema, include_raw=include_raw, **kwargs)
            for tier in self.tiers
        ]
        return self._derive(runnables, [], [schema], none_fails=not include_raw)

    # -- deciding

    def _counter(self, model_name: str) -> TokenCounter:
        counter = self._counters.get(model_name)
        if counter is None:
            counter = self._counters.setdefault(model_name, TokenCounter(model_name))
        return counter

    def _estimate(self, tier: Tier, messages: Sequence[BaseMessage]) -> Decimal:
        input_tokens = self._counter(tier.model_name).count_messages(
            messages, tools=self._count_tools or None
        )
        output_tokens = (
            self.expected_output_tokens
            if tier.expected_output_tokens is None
            else tier.expected_output_tokens
        )
        usage = {"input_tokens": int(input_tokens), "output_tokens": output_tokens}
        return price(tier.model_name, usage, table=self.prices)

    def _relaxed_by(self, share: float | None) -> float:
        if share is None:
            return 0.0
        for at_most, relax in self.relaxation:
            if share <= at_most:
                return relax
        return 0.0

    def _budget_share(self, config: RunnableConfig | None) -> float | None:
        if self.budget is None:
            return None
        agent = None
        if isinstance(self.budget, TokenBudget) and self.budget.per_agent:
            config = config or {}
            agent = resolve_agent(config.get("metadata") or {}, config.get("tags") or [], None)
        return remaining_share(self.budget, agent)

    async def _abudget_share(self, config: RunnableConfig | None) -> float | None:
        if self.budget is None or reads_inline(self.budget):
            return self._budget_share(config)
        # A budget over SQLite / Redis blocks: keep it off the event loop.
        return await asyncio.get_running_loop().run_in_executor(None, self._budget_share, config)

    def _score(self, messages: Sequence[BaseMessage]) -> float:
        value = float(self.scorer.score(messages, tools=self._tools))
        if math.isnan(value):
            raise InvalidArgumentError(f"{type(self.scorer).__name__} returned NaN as a difficulty")
        return min(max(value, 0.0), 1.0)

    def _decide(self, messages: Sequence[BaseMessage], share: float | None) -> RouteDecision:
        difficulty = self._score(messages)
        relaxed_by = self._relaxed_by(share)
        need = max(self.min_quality, difficulty - relaxed_by)
        costs = {tier.name: self._estimate(tier, messages) for tier in self.tiers}
        position = {tier.name: index for index, tier in enumerate(self.tiers)}
        quality = self._quality
        strongest = max(
            self.tiers, key=lambda t: (quality[t.name], costs[t.name], -position[t.name])
        )
        acceptable = sorted(
            (tier for tier in self.tiers if quality[tier.name] >= need - 1e-12),
            key=lambda t: (costs[t.name], -quality[t.name], position[t.name]),
        )
        budget_note = ""
        if share is not None:
            budget_note = f"; budget {share:.0%} left"
            if relaxed_by:
                budget_note += f", difficulty relaxed by {relaxed_by:.2f}"
        if acceptable:
            order = list(acceptable)
            if self.fallback_to_weaker:
                taken = {tier.name for tier in acceptable}
                weaker = [tier for tier in self.tiers if tier.name not in taken]
                order += sorted(weaker, key=lambda t: (-quality[t.name], costs[t.name]))
            reason = (
                f"cheapest tier with quality >= need {need:.2f} "
                f"(difficulty {difficulty:.2f}, min_quality {self.min_quality:.2f}{budget_note})"
            )
        else:
            order = sorted(self.tiers, key=lambda t: (-quality[t.name], costs[t.name]))
            reason = (
                f"no tier has quality >= need {need:.2f} (difficulty {difficulty:.2f}"
                f"{budget_note}): strongest tier first"
            )
        chosen = order[0]
        return RouteDecision(
            tier=chosen.name,
            model=chosen.model_name,
            score=difficulty,
            need=need,
            reason=reason,
            order=tuple(tier.name for tier in order),
            budget_share=share,
            relaxed_by=relaxed_by,
            estimated_cost_usd=costs,
            strongest=strongest.name,
        )

    def route(
        self, input: LanguageModelInput, config: RunnableConfig | None = None
    ) -> RouteDecision:
        """The decision for `input` without calling any model (stats are not changed)."""
        return self._decide(_as_messages(input), self._budget_share(config))

    async def aroute(
        self, input: LanguageModelInput, config: RunnableConfig | None = None
    ) -> RouteDecision:
        """Async `route` (a blocking budget store is read in an executor)."""
        return self._decide(_as_messages(input), await self._abudget_share(config))

    def stats(self) -> RouterStats:
        """Calls per tier, fallbacks and estimated cost against always-strongest."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Start counting `stats()` from zero."""
        self._stats.reset()

    def record(
        self,
        decision: RouteDecision,
        answered: str | None,
        failed: Sequence[str] = (),
        answer: Any = None,
    ) -> dict[str, Any]:
        """Count one routed request in `stats()` and return its decision metadata.

        For code that calls the tiers itself (an agent middleware): `answered` is the
        tier that answered (None if all failed), `failed` the tiers that failed before,
        `answer` the answer message (its reported usage prices the call; without usage
        the call's estimate counts, marked as estimated). The result is what
        `response_metadata[ROUTE_KEY]` and the `ROUTE_EVENT` carry.
        """
        metadata = self._metadata(decision, answered, failed)
        self._count(decision, answered, failed, answer)
        logger.debug("Routed to %s: %s", answered, decision.reason)
        return metadata

    def _metadata(
        self, decision: RouteDecision, answered: str | None, failed: Sequence[str]
    ) -> dict[str, Any]:
        tiers = {tier.name: tier for tier in self.tiers}
        for name in (*failed, *(() if answered is None else (answered,))):
            if name not in tiers:
                raise InvalidArgumentError(f"unknown tier {shown(name)}; tiers are {sorted(tiers)}")
        return _route_metadata(decision, None if answered is None else tiers[answered], failed)

    def _count(
        self, decision: RouteDecision, answered: str | None, failed: Sequence[str], answer: Any
    ) -> None:
        """Add one request to `stats()`, priced from the answer's reported usage if any."""
        if answered is None:
            self._stats.record(None, failed)
            return
        tiers = {tier.name: tier for tier in self.tiers}
        reported = answer_usage(answer)
        if reported.cache_hit:
            self._stats.record(answered, failed, cache_hit=True)
            return
        if reported.usage is None:
            self._stats.record(
                answered,
                failed,
                cost_usd=decision.estimated_cost_usd[answered],
                strongest_cost_usd=decision.estimated_cost_usd[decision.strongest],
            )
            return
        usage = reported.usage
        same_tokens = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
        strongest = tiers[decision.strongest].model_name
        self._stats.record(
            answered,
            failed,
            cost_usd=price(tiers[answered].model_name, usage, table=self.prices),
            strongest_cost_usd=price(strongest, same_tokens, table=self.prices),
            reported=True,
        )

    # -- calling

    def _attempts(self, decision: RouteDecision) -> _Attempts:
        by_name = {tier.name: (tier, self._runnables[i]) for i, tier in enumerate(self.tiers)}
        return _Attempts(self, decision, [by_name[name] for name in decision.order])

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        return call_in_run(self, self._invoke, input, config, **kwargs)

    def _invoke(
        self,
        input: LanguageModelInput,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        attempts = self._attempts(self._decide(_as_messages(input), self._budget_share(config)))
        for tier, runnable in attempts:
            try:
                result = attempts.check(tier, runnable.invoke(input, config, **kwargs))
            except attempts.catch as exc:
                attempts.failed(tier, exc)
                continue
            metadata = attempts.answered(tier, result)
            dispatch_custom_event(ROUTE_EVENT, metadata, config=config)
            return _stamp(result, metadata)
        dispatch_custom_event(ROUTE_EVENT, attempts.unanswered(), config=config)
        raise attempts.last_error()

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        return await acall_in_run(self, self._ainvoke, input, config, **kwargs)

    async def _ainvoke(
        self,
        input: LanguageModelInput,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        share = await self._abudget_share(config)
        attempts = self._attempts(self._decide(_as_messages(input), share))
        for tier, runnable in attempts:
            try:
                result = attempts.check(tier, await runnable.ainvoke(input, config, **kwargs))
            except attempts.catch as exc:
                attempts.failed(tier, exc)
                continue
            metadata = attempts.answered(tier, result)
            await adispatch_custom_event(ROUTE_EVENT, metadata, config=config)
            return _stamp(result, metadata)
        await adispatch_custom_event(ROUTE_EVENT, attempts.unanswered(), config=config)
        raise attempts.last_error()

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[Any]:
        yield from stream_one(self, input, self._stream, config, **kwargs)

    def _stream(
        self,
        inputs: Iterator[LanguageModelInput],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Iterator[Any]:
        input = next(inputs)
        attempts = self._attempts(self._decide(_as_messages(input), self._budget_share(config)))
        for tier, runnable in attempts:
            chunks = runnable.stream(input, config, **kwargs)
            try:
                first = next(chunks, _NO_CHUNK)
            except attempts.catch as exc:
                attempts.failed(tier, exc)
                continue
            metadata = attempts.streaming(tier)
            dispatch_custom_event(ROUTE_EVENT, metadata, config=config)
            total = _Total()
            try:
                if first is not _NO_CHUNK:
                    yield _stamp(total.add(first), metadata)
                    for chunk in chunks:
                        yield total.add(chunk)
            finally:
                attempts.streamed(tier, total.value)
            return
        dispatch_custom_event(ROUTE_EVENT, attempts.unanswered(), config=config)
        raise attempts.last_error()

    async def astream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Any]:
        async for chunk in astream_one(self, input, self._astream, config, **kwargs):
            yield chunk

    async def _astream(
        self,
        inputs: AsyncIterator[LanguageModelInput],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        input = await inputs.__anext__()
        share = await self._abudget_share(config)
        attempts = self._attempts(self._decide(_as_messages(input), share))
        for tier, runnable in attempts:
            chunks = runnable.astream(input, config, **kwargs)
            try:
                first = await anext(chunks, _NO_CHUNK)
            except attempts.catch as exc:
                attempts.failed(tier, exc)
                continue
            metadata = attempts.streaming(tier)
            await adispatch_custom_event(ROUTE_EVENT, metadata, config=config)
            total = _Total()
            try:
                if first is not _NO_CHUNK:
                    yield _stamp(total.add(first), metadata)
                    async for chunk in chunks:
                        yield total.add(chunk)
            finally:
                attempts.streamed(tier, total.value)
            return
        await adispatch_custom_event(ROUTE_EVENT, attempts.unanswered(), config=config)
        raise attempts.last_error()


class _NoStructuredOutput(Exception):
    """A structured-output tier returned None while other tiers are left to try."""


class _Attempts:
    """The tiers one request tries in order, and what happened to each."""

    def __init__(
        self,
        router: ModelRouter,
        decision: RouteDecision,
        plan: list[tuple[Tier, Runnable[LanguageModelInput, Any]]],
    ) -> None:
        self.router = router
        self.decision = decision
        self.plan = plan
        self.catch: tuple[type[BaseException], ...] = (_NoStructuredOutput, *router.fallback_on)
        self.failures: list[str] = []
        self.errors: list[BaseException] = []

    def __iter__(self) -> Iterator[tuple[Tier, Runnable[LanguageModelInput, Any]]]:
        return iter(self.plan)

    def _left(self) -> int:
        return len(self.plan) - len(self.failures) - 1

    def check(self, tier: Tier, result: Any) -> Any:
        """`result`, unless it is a structured router's None with tiers left to try."""
        if result is None and self.router._none_fails and self._left() > 0:
            raise _NoStructuredOutput(f"tier {tier.name!r} returned no structured output")
        return result

    def failed(self, tier: Tier, error: BaseException) -> None:
        logger.warning(
            "Tier %r failed (%s: %s): %s",
            tier.name,
            type(error).__name__,
            error,
            "falling through to the next tier" if self._left() else "no tier left",
        )
        self.failures.append(tier.name)
        self.errors.append(error)

    def answered(self, tier: Tier, answer: Any) -> dict[str, Any]:
        return self.router.record(self.decision, tier.name, self.failures, answer)

    def streaming(self, tier: Tier) -> dict[str, Any]:
        """The metadata of a stream's first chunk; `streamed` counts it once it ends."""
        return self.router._metadata(self.decision, tier.name, self.failures)

    def streamed(self, tier: Tier, answer: Any) -> None:
        self.router._count(self.decision, tier.name, self.failures, answer)

    def unanswered(self) -> dict[str, Any]:
        return self.router.record(self.decision, None, self.failures)

    def last_error(self) -> BaseException:
        return self.errors[-1]


_NO_CHUNK: Any = object()


class _Total:
    """The message chunks of a stream added up (their usage with them), for stats."""

    def __init__(self) -> None:
        self.value: Any = None

    def add(self, chunk: Any) -> Any:
        if isinstance(chunk, AIMessageChunk):
            self.value = chunk if self.value is None else self.value + chunk
        return chunk
