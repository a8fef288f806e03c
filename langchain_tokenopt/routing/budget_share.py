"""How much of a budget is left, as one share in [0, 1], for the router to relax on.

A `TokenBudget` gives the smaller of tokens left / `max_tokens` and dollars left /
`max_cost_usd` (of the request's agent when the budget is `per_agent`). Code with its
own notion of a budget passes an object whose `remaining()` returns the share, or a
callable without arguments returning it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol, TypeAlias, runtime_checkable

from langchain_tokenopt.callbacks.budget import BudgetRemaining, TokenBudget

__all__ = ["Budget", "ShareBudget", "is_budget", "reads_inline", "remaining_share"]

logger = logging.getLogger(__name__)


@runtime_checkable
class ShareBudget(Protocol):
    """A budget of your own: `remaining()` returns the share left, in [0, 1]."""

    def remaining(self) -> float: ...


#: What `ModelRouter(budget=...)` accepts.
Budget: TypeAlias = TokenBudget | ShareBudget | Callable[[], float]


def is_budget(value: object) -> bool:
    """Whether `value` is something `remaining_share` can read."""
    return isinstance(value, (TokenBudget, ShareBudget)) or callable(value)


def reads_inline(budget: Budget | None) -> bool:
    """Whether reading `budget` is cheap enough for the event loop (no store I/O)."""
    return not isinstance(budget, TokenBudget) or bool(budget.run_inline)


def _ratio(left: int | Decimal | None, limit: int | Decimal | None) -> float | None:
    if left is None or limit is None or limit <= 0:
        return None
    return float(Decimal(left) / Decimal(limit))


def _clip(value: float) -> float | None:
    if math.isnan(value):
        return None
    return min(max(value, 0.0), 1.0)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    return _clip(float(value))


def _token_budget_share(budget: TokenBudget, left: BudgetRemaining) -> float | None:
    shares = [
        share
        for share in (
            _ratio(left.tokens, budget.max_tokens),
            _ratio(left.cost_usd, budget.max_cost_usd),
        )
        if share is not None
    ]
    return _clip(min(shares)) if shares else None


def remaining_share(budget: Budget | None, agent: str | None = None) -> float | None:
    """The share of `budget` left, in [0, 1]; None if unknown (no budget, no limits).

    Reading a budget can fail (a Redis store that is down): that is logged as a warning
    and gives None, so routing carries on without relaxing instead of failing the call.

    Example:
        >>> remaining_share(lambda: 0.25)
        0.25
        >>> remaining_share(TokenBudget(max_tokens=1_000))
        1.0
        >>> remaining_share(None) is None
        True
    """
    if budget is None:
        return None
    try:
        if isinstance(budget, TokenBudget):
            left = budget.remaining(agent if budget.per_agent else None)
            share = _token_budget_share(budget, left)
        else:
            value = budget.remaining() if isinstance(budget, ShareBudget) else budget()
            share = _number(value)
    except Exception as exc:  # a store that is down must not fail the routed call
        logger.warning("Could not read the remaining budget (%s): routing without it", exc)
        return None
    if share is None:
        logger.debug("Budget %r reports no share the router can read", budget)
    return share
