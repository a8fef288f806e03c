"""LangChain callback handlers: usage tracking and token / dollar budgets."""

from langchain_tokenopt.callbacks.budget import BudgetRemaining, TokenBudget
from langchain_tokenopt.callbacks.tracker import UsageTracker, track_usage

__all__ = ["BudgetRemaining", "TokenBudget", "UsageTracker", "track_usage"]
