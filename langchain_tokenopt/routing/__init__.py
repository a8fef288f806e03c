"""Route each request to the cheapest model tier that is good enough for it."""

from langchain_tokenopt.routing.dataset import RoutingData
from langchain_tokenopt.routing.evaluation import RoutingMetrics
from langchain_tokenopt.routing.pretrained import PretrainedScorer
from langchain_tokenopt.routing.router import ModelRouter, RouteDecision, Tier
from langchain_tokenopt.routing.scorers import (
    ComplexityScorer,
    HeuristicScorer,
    LearnedScorer,
    ScoreExplanation,
)
from langchain_tokenopt.routing.stats import RouterStats
from langchain_tokenopt.routing.training import train_scorer

__all__ = [
    "ComplexityScorer",
    "HeuristicScorer",
    "LearnedScorer",
    "ModelRouter",
    "PretrainedScorer",
    "RouteDecision",
    "RouterStats",
    "RoutingData",
    "RoutingMetrics",
    "ScoreExplanation",
    "Tier",
    "train_scorer",
]
