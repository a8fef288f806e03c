"""How much of a budget is left, as one share in [0, 1], whatever the budget is.

The router relaxes its quality need as a budget runs out, but components never import
each other: this core module reads any budget-like object through a small protocol, so
`routing.py` works with `TokenBudget` (or anything shaped like it) without importing
`budget.py`.

Accepted budgets:

- an object whose `remaining()` returns an object with `tokens` and / or `cost_usd`
  (None for a limit it does not set), and which has the limits as `max_tokens` /
  `max_cost_usd` (this is `TokenBudget`); the share is the smaller of tokens left /
  `max_tokens` and dollars left / `max_cost_usd`. With `per_agent` true,
  `remaining(agent)` is asked;
- an object whose `remaining()` returns a number: that number is the share;
- a callable without arguments returning the share.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

__all__ = ["RemainingBudget", "remaining_share"]

logger = logging.getLogger(__name__)


@runtime_checkable
class RemainingBudget(Protocol):
    """Anything with a `remaining()` method (see the module docstring for what it returns)."""

    def remaining(self) -> Any: ...


def _ratio(left: Any, limit: Any) -> float | None:
    if left is None or limit is None:
        return None
    if isinstance(left, bool) or isinstance(limit, bool):
        return None
    if not isinstance(left, (int, float, Decimal)) or not isinstance(limit, (int, float, Decimal)):
        return None
    if limit <= 0:
        return None
    return float(Decimal(str(left)) / Decimal(str(limit)))


def _clip(value: float) -> float | None:
    if math.isnan(value):
        return None
    return min(max(value, 0.0), 1.0)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    return _clip(float(value))


def remaining_share(
    budget: RemainingBudget | Callable[[], float] | None, agent: str | None = None
) -> float | None:
    """The share of `budget` left, in [0, 1]; None if unknown (no budget, no limits).

    Reading a budget can fail (a Redis store that is down): that is logged as a warning
    and gives None, so routing carries on without relaxing instead of failing the call.

    Example:
        >>> remaining_share(lambda: 0.25)
        0.25
        >>> remaining_share(None) is None
        True
    """
    if budget is None:
        return None
    try:
        if isinstance(budget, RemainingBudget):
            if agent is not None and getattr(budget, "per_agent", False):
                left = budget.remaining(agent)  # type: ignore[call-arg]
            else:
                left = budget.remaining()
        else:
            left = budget()
    except Exception as exc:  # a store that is down must not fail the routed call
        logger.warning("Could not read the remaining budget (%s): routing without it", exc)
        return None
    number = _number(left)
    if number is not None:
        return number
    shares = [
        share
        for share in (
            _ratio(getattr(left, "tokens", None), getattr(budget, "max_tokens", None)),
            _ratio(getattr(left, "cost_usd", None), getattr(budget, "max_cost_usd", None)),
        )
        if share is not None
    ]
    if not shares:
        logger.debug("Budget %r reports no limit the router can read", budget)
        return None
    return _clip(min(shares))
