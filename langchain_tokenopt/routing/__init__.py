"""Route each request to the cheapest model tier that is good enough for it."""

from langchain_tokenopt.routing.router import ModelRouter, RouteDecision, Tier
from langchain_tokenopt.routing.scorers import (
    ComplexityScorer,
    HeuristicScorer,
    LearnedScorer,
    ScoreExplanation,
)
from langchain_tokenopt.routing.stats import RouterStats

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
