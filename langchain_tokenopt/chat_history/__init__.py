"""A chat history that stays within a token budget, and the summarizers it folds with."""

from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.chat_history.planner import ContextPlanner, ContextView
from langchain_tokenopt.chat_history.summarizers import (
    BaseSummarizer,
    ExtractiveSummarizer,
    LLMSummarizer,
    SummaryRequest,
)

__all__ = [
    "BaseSummarizer",
    "ContextPlanner",
    "ContextView",
    "ExtractiveSummarizer",
    "LLMSummarizer",
    "SummarizingChatMessageHistory",
    "SummaryRequest",
]
