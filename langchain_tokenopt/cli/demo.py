"""An optimized chat app, end to end and offline: what `tokenopt demo` runs.

A support assistant answers scripted customer sessions twice on the same offline
model: once as a plain app (whole history every turn, no cache), once with the
package's parts (`SummarizingChatMessageHistory`, `TokenOptCache`, `PromptCompressor`,
`UsageTracker`). Both runs are measured by a `UsageTracker`, so the comparison is the
same bookkeeping a real app would get. This is a surface: the work is the components'.

Example:
    >>> result = run_demo(sessions=2)
    >>> result.optimized.input_tokens < result.baseline.input_tokens
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from langchain_tokenopt.analytics.totals import UsageTotals
from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.compression import PromptCompressor
from langchain_tokenopt.core.messages import content_to_text
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import shown
from langchain_tokenopt.errors import InvalidArgumentError

__all__ = ["DemoChatModel", "DemoResult", "run_demo"]

SYSTEM_PROMPT = """# Role

You are **Ada**, the support assistant of *Northwind Outdoor*.

## Rules

-   Be   concise   and   friendly.
-   **Always** confirm order numbers before changing an order.
-   Never   promise   a   delivery   date   the   order   data   does   not   show.

## Policies

Returns:   30 days,   unused,   with the receipt.   Shipping:   free over $50.
"""

ORDER_DATA = """Here is what your order page shows:

{
    "order_id":    "NW-48213",
    "status":      "in_transit",
    "carrier":     "UPS",
    "items":  [
        {  "sku": "RL2-ORG",  "name": "Ridgeline 2 tent",  "qty": 1  }
    ],
    "eta":    "2025-03-14"
}
"""

#: Every session opens with one of these (the cache answers repeats), then goes on.
OPENERS = [
    "What is your return policy?",
    "Do you offer free shipping?",
]

#: Customers of the sessions: a session's follow-ups name its customer, so only the
#: openers repeat across sessions.
CUSTOMERS = ["Priya", "Tomas", "Aiko", "Lena", "Omar", "Grace", "Mateo", "Zanele"]

FOLLOW_UPS = [
    "I'm {name}. " + ORDER_DATA + "\nWhere is my order NW-48213?",
    "Can you change the delivery address to 221 Harbor Street, Portland?",
    "What is the difference between the Ridgeline 2 and the Ridgeline 3 tents?",
    "Which one would you recommend for a family of three with a small dog?",
    "Is the Ridgeline 3 in stock in green?",
    "Does the discount code SPRING15 work on tents?",
    "Please remind me: what was my order number again?",
]

_ANSWERS = {
    "return": (
        "You can return any unused item within 30 days with the receipt; we refund the "
        "full price to the original payment method within five business days."
    ),
    "shipping": (
        "Yes: shipping is free on orders over $50. Below that, standard shipping is "
        "$6.95 and express shipping is $19.00."
    ),
    "where": (
        "Order NW-48213 (a Ridgeline 2 tent) is in transit with UPS and is expected on March 14th."
    ),
    "address": (
        "To confirm: change the delivery address of order NW-48213 to 221 Harbor Street, "
        "Portland. Shall I go ahead?"
    ),
    "difference": (
        "The Ridgeline 2 sleeps two and weighs 1.9 kg; the Ridgeline 3 sleeps three, "
        "weighs 2.4 kg and has 60 cm more floor width."
    ),
    "recommend": (
        "For three people and a dog I would take the Ridgeline 3: the extra floor width "
        "matters more than the 0.5 kg of weight."
    ),
    "stock": "Yes, we have 14 Ridgeline 3 tents in green at our Reno warehouse.",
    "spring15": "Yes: SPRING15 gives 15% off tents and sleeping bags until April 30th.",
    "order number": "Your order number is NW-48213.",
}


class DemoChatModel(BaseChatModel):
    """An offline support model: canned answers, usage counted like the real model's.

    Each reply carries `usage_metadata` with the request's exact input tokens for
    `model_name` (`TokenCounter.count_messages`) and the answer's tokens, so trackers,
    caches and budgets see what the real model would report.

    Example:
        >>> model = DemoChatModel()
        >>> reply = model.invoke("What is your return policy?")
        >>> reply.content.startswith("You can return"), reply.usage_metadata["input_tokens"]
        (True, 13)
    """

    model_name: str = "gpt-4o-mini"
    _counter: TokenCounter | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "tokenopt-demo"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._counter is None:
            self._counter = TokenCounter(self.model_name)
        question = content_to_text(messages[-1].content).lower() if messages else ""
        answer = next(
            (text for key, text in _ANSWERS.items() if key in question),
            "Happy to help! Could you tell me a little more?",
        )
        input_tokens = int(self._counter.count_messages(messages))
        output_tokens = int(self._counter.count_text(answer))
        message = AIMessage(
            answer,
            response_metadata={"model_name": self.model_name},
            usage_metadata={
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


@dataclass(frozen=True)
class DemoResult:
    """Both runs' totals (from their `UsageTracker`s) and what each part did."""

    model: str
    sessions: int
    turns: int
    baseline: UsageTotals
    optimized: UsageTotals
    cache_hits: int
    folded_messages: int
    compression_tokens_saved: int

    @property
    def input_tokens_saved(self) -> int:
        """Input tokens the optimized run did not send."""
        return self.baseline.input_tokens - self.optimized.input_tokens

    @property
    def cost_saved_usd(self) -> Decimal:
        """Dollars the optimized run did not spend."""
        return self.baseline.cost_usd - self.optimized.cost_usd

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (money as decimal strings)."""
        return {
            "model": self.model,
            "sessions": self.sessions,
            "turns": self.turns,
            "baseline": self.baseline.to_dict(),
            "optimized": self.optimized.to_dict(),
            "cache_hits": self.cache_hits,
            "folded_messages": self.folded_messages,
            "compression_tokens_saved": self.compression_tokens_saved,
            "input_tokens_saved": self.input_tokens_saved,
            "cost_saved_usd": format(self.cost_saved_usd, "f"),
        }

    def render_table(self) -> str:
        """A plain-text report."""
        base, best = self.baseline, self.optimized

        def share(before: float, after: float) -> str:
            return f"{100 * (before - after) / before:.0f}%" if before else "-"

        rows = [
            ("model calls made", f"{base.calls:,}", f"{best.calls - best.cache_hits:,}", ""),
            ("input tokens", f"{base.input_tokens:,}", f"{best.input_tokens:,}", ""),
            ("output tokens", f"{base.output_tokens:,}", f"{best.output_tokens:,}", ""),
            ("cost", f"${base.cost_usd:.6f}", f"${best.cost_usd:.6f}", ""),
        ]
        rows[1] = (*rows[1][:3], share(base.input_tokens, best.input_tokens))
        rows[2] = (*rows[2][:3], share(base.output_tokens, best.output_tokens))
        rows[3] = (*rows[3][:3], share(float(base.cost_usd), float(best.cost_usd)))
        rows[0] = (*rows[0][:3], share(base.calls, best.calls - best.cache_hits))
        lines = [
            f"tokenopt demo: {self.sessions} support sessions, {self.turns} questions, "
            f"offline model priced as {self.model}",
            "",
            f"  {'':<20}{'plain app':>12}{'optimized':>12}{'saved':>8}",
        ]
        lines += [f"  {a:<20}{b:>12}{c:>12}{d:>8}" for a, b, c, d in rows]
        lines += [
            "",
            "what did it:",
            f"  cache:        {self.cache_hits} questions answered from TokenOptCache "
            f"(${best.saved_cost_usd:.6f} not spent)",
            f"  history:      {self.folded_messages} old messages folded into running summaries "
            "(SummarizingChatMessageHistory)",
            f"  compression:  {self.compression_tokens_saved} input tokens of whitespace, "
            "markdown and JSON indentation not sent (PromptCompressor)",
        ]
        return "\n".join(lines)


def _sessions(count: int) -> list[list[str]]:
    scripts = []
    for i in range(count):
        name = f"{CUSTOMERS[i % len(CUSTOMERS)]} ({i + 1})" if i >= len(CUSTOMERS) else ""
        name = name or CUSTOMERS[i]
        follow_ups = [question.replace("{name}", name) for question in FOLLOW_UPS]
        scripts.append([OPENERS[i % len(OPENERS)], *follow_ups])
    return scripts


def run_demo(
    *, sessions: int = 4, model: str = "gpt-4o-mini", max_history_tokens: int = 300
) -> DemoResult:
    """Run the scripted sessions plain and optimized on `DemoChatModel`; compare."""
    if sessions < 1:
        raise InvalidArgumentError(f"sessions must be at least 1, not {shown(sessions)}.")
    price(model, {"input_tokens": 0, "output_tokens": 0})  # UnknownModelError up front
    scripts = _sessions(sessions)
    system = SystemMessage(SYSTEM_PROMPT)

    # The plain app: the whole history every turn, no cache, prompt as written.
    plain_tracker = UsageTracker()
    plain = DemoChatModel(model_name=model)
    for script in scripts:
        history: list[BaseMessage] = []
        for question in script:
            human = HumanMessage(question)
            reply = plain.invoke([system, *history, human], config={"callbacks": [plain_tracker]})
            history += [human, reply]

    # The optimized app: summarizing history, cache, lossless compression, tracker.
    tracker = UsageTracker()
    cache = TokenOptCache()
    optimized = DemoChatModel(model_name=model, cache=cache)
    compressor = PromptCompressor(level="lossless", model=model)
    folded = 0
    compressed_saved = 0
    for script in scripts:
        budgeted = SummarizingChatMessageHistory(max_tokens=max_history_tokens, model=model)
        for question in script:
            human = HumanMessage(question)
            request: Sequence[BaseMessage] = [system, *budgeted.messages, human]
            compact = [compressor.compress_message(message) for message in request]
            counter = compressor.token_counter
            compressed_saved += int(counter.count_messages(request)) - int(
                counter.count_messages(compact)
            )
            reply = optimized.invoke(compact, config={"callbacks": [tracker]})
            budgeted.add_messages([human, reply])
        folded += budgeted.folded_message_count
    stats = cache.stats()
    return DemoResult(
        model=model,
        sessions=sessions,
        turns=sum(len(script) for script in scripts),
        baseline=plain_tracker.report().totals,
        optimized=tracker.report().totals,
        cache_hits=stats.hits,
        folded_messages=folded,
        compression_tokens_saved=compressed_saved,
    )
