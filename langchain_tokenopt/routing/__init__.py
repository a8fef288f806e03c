"""Route each request to the cheapest model tier that is good enough for it."""

from langchain_tokenopt.routing.router import (
    ComplexityScorer,
    HeuristicScorer,
    LearnedScorer,
    ModelRouter,
    RouteDecision,
    RouterStats,
    ScoreExplanation,
    Tier,
)

__all__ = [
    "ComplexityScorer",
    "HeuristicScorer",
    "LearnedScorer",
    "ModelRouter",
    "RouteDecision",
    "RouterStats",
    "ScoreExplanation",
    "Tier",
]
