"""How well a scorer routes between a weak and a strong model, as RouteLLM measures it.

For a share of requests sent to the strong model (the top-scored ones, ties broken at
random, seeded), the quality is the accuracy reached; PGR = (q - q_weak) / (q_strong -
q_weak); APGR is the area under PGR over the strong-call shares 0, 5, ..., 100 %;
CPT(x) is the smallest share reaching PGR x. Because a router that sends long prompts to
the strong model spends more per strong call than random routing, the quality kept at
EQUAL COST (half of always-strong's spend) is reported next to random routing's. ECE is
the expected calibration error of predicted probabilities (10 equal-width bins).
Used by training (`training.py`), `tokenopt router train` and the benchmark.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["GRID", "RoutingMetrics", "evaluate_scores", "expected_calibration_error"]

#: Strong-call shares 0 %, 5 %, ..., 100 %.
GRID: tuple[float, ...] = tuple(i / 20 for i in range(21))


@dataclass(frozen=True)
class RoutingMetrics:
    """RouteLLM's figures for one scorer on one set of requests (see the module doc).

    `kept_at_half_cost` is accuracy / always-strong accuracy at 50 % of always-strong's
    spend; `random_kept_at_half_cost` is what random routing keeps at that spend.
    `ece` is None when no probabilities were given.

    Example:
        >>> import numpy as np
        >>> weak = np.array([1.0, 0.0, 1.0, 0.0])
        >>> m = evaluate_scores(np.array([0.1, 0.9, 0.2, 0.8]), weak, np.ones(4),
        ...                     np.ones(4), np.full(4, 10.0))
        >>> m.apgr > 0.5, m.cpt50
        (True, 0.15)
    """

    apgr: float
    cpt50: float | None
    cpt80: float | None
    kept_at_half_cost: float
    random_kept_at_half_cost: float
    ece: float | None
    requests: int

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data."""
        return asdict(self)


def expected_calibration_error(probabilities: Any, labels: Any, bins: int = 10) -> float:
    """Mean |predicted - observed| rate over equal-width bins, weighted by bin size."""
    import numpy as np

    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        chosen = index == b
        if chosen.any():
            total += float(chosen.mean()) * abs(float(p[chosen].mean() - y[chosen].mean()))
    return total


def _curve(
    scores: np.ndarray,
    weak_correct: np.ndarray,
    strong_correct: np.ndarray,
    weak_cost: np.ndarray,
    strong_cost: np.ndarray,
    seed: int,
) -> tuple[list[float], list[float]]:
    import numpy as np

    tie_break = np.asarray(random.Random(seed).sample(range(len(scores)), len(scores)))
    ranking = np.lexsort((tie_break, -scores))  # highest score first, ties at random
    quality, cost = [], []
    for share in GRID:
        strong = np.zeros(len(scores), dtype=bool)
        strong[ranking[: round(share * len(scores))]] = True
        quality.append(float(np.where(strong, strong_correct, weak_correct).mean()))
        cost.append(float(np.where(strong, strong_cost, weak_cost).sum()))
    return quality, cost


def _area(pgr: Sequence[float]) -> float:
    """Trapezoid area under PGR over `GRID` (numpy 1.26 has no `trapezoid`)."""
    pairs = zip(itertools.pairwise(pgr), itertools.pairwise(GRID), strict=True)
    return sum((a + b) / 2 * (right - left) for (a, b), (left, right) in pairs)


def _cpt(pgr: Sequence[float], target: float) -> float | None:
    return next((s for s, v in zip(GRID, pgr, strict=True) if v >= target - 1e-12), None)


def evaluate_scores(
    scores: Any,
    weak_correct: Any,
    strong_correct: Any,
    weak_cost: Any,
    strong_cost: Any,
    *,
    probabilities: Any = None,
    labels: Any = None,
    seed: int = 0,
) -> RoutingMetrics:
    """RouteLLM's metrics for `scores` (higher = send to the strong model) on requests
    with known correctness (0/1 or a score in [0, 1]) and cost of both models.

    `probabilities` and `labels` (what the probabilities predict) give the ECE.
    """
    import numpy as np  # imported here: scoring requests never needs numpy

    s = np.asarray(scores, dtype=float)
    wc, sc = np.asarray(weak_correct, dtype=float), np.asarray(strong_correct, dtype=float)
    wk, sk = np.asarray(weak_cost, dtype=float), np.asarray(strong_cost, dtype=float)
    quality, cost = _curve(s, wc, sc, wk, sk, seed)
    q_weak, q_strong = float(wc.mean()), float(sc.mean())
    gap = q_strong - q_weak
    pgr = [(q - q_weak) / gap if gap else 0.0 for q in quality]
    total_strong = float(sk.sum()) or 1.0
    spent = [c / total_strong for c in cost]
    kept = float(np.interp(0.5, spent, quality)) / q_strong if q_strong else 0.0
    random_quality = [(1 - g) * q_weak + g * q_strong for g in GRID]
    random_spent = [((1 - g) * float(wk.sum()) + g * float(sk.sum())) / total_strong for g in GRID]
    random_kept = float(np.interp(0.5, random_spent, random_quality)) / (q_strong or 1.0)
    ece = None
    if probabilities is not None and labels is not None:
        ece = expected_calibration_error(probabilities, labels)
    return RoutingMetrics(
        apgr=_area(pgr),
        cpt50=_cpt(pgr, 0.5),
        cpt80=_cpt(pgr, 0.8),
        kept_at_half_cost=kept,
        random_kept_at_half_cost=random_kept,
        ece=ece,
        requests=len(s),
    )
