"""Reports, suggestions, efficiency and charts over the usage events a `UsageTracker`
records: plain objects, no callbacks (the tracker in `callbacks` builds them)."""

from langchain_tokenopt.analytics.efficiency import TaskEfficiency, analyze_token_efficiency
from langchain_tokenopt.analytics.events import UsageEvent
from langchain_tokenopt.analytics.report import UsageReport
from langchain_tokenopt.analytics.suggestions import Suggestion, suggest
from langchain_tokenopt.analytics.totals import UsageTotals

__all__ = [
    "Suggestion",
    "TaskEfficiency",
    "UsageEvent",
    "UsageReport",
    "UsageTotals",
    "analyze_token_efficiency",
    "suggest",
]
