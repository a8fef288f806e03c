"""Running a planned fold: the summarizer calls both front doors make.

`ContextPlanner.fold` says which messages to fold (in chunks); this module turns them
into the new summary text: each chunk is summarized together with the previous
summary, and every result is capped at the fold's token cap. The history and the
agent middleware share it, so a fold reads the same whichever door it came through.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable

from langchain_tokenopt.chat_history.planner import ContextPlanner, FoldRange
from langchain_tokenopt.chat_history.summarizers import ExtractiveSummarizer, LLMSummarizer
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import shown
from langchain_tokenopt.errors import ArgumentTypeError

__all__ = ["as_summarizer", "asummarize_fold", "summarize_fold"]


def as_summarizer(summarizer: Any, token_counter: TokenCounter) -> Runnable[Any, Any]:
    """`summarizer` as a Runnable (a chat model is wrapped in `LLMSummarizer`);
    `ExtractiveSummarizer` when None."""
    if summarizer is None:
        return ExtractiveSummarizer(token_counter=token_counter)
    if isinstance(summarizer, BaseLanguageModel):
        return LLMSummarizer(summarizer)
    if isinstance(summarizer, Runnable):
        return summarizer
    raise ArgumentTypeError(
        "summarizer must be a chat model, a Runnable (SummaryRequest -> str) or None, "
        f"not {shown(type(summarizer))}."
    )


def _request(chunk: list[BaseMessage], previous: str, cap: int) -> dict[str, Any]:
    return {"messages": chunk, "previous_summary": previous, "max_tokens": cap}


def _as_text(result: Any) -> str:
    if isinstance(result, BaseMessage):
        return str(result.text).strip()
    if isinstance(result, str):
        return result.strip()
    raise ArgumentTypeError(f"The summarizer returned {type(result).__name__}, not text.")


def summarize_fold(
    summarizer: Runnable[Any, Any], planner: ContextPlanner, fold: FoldRange, previous: str
) -> str:
    """The summary after `fold`: each chunk summarized with the summary so far."""
    summary = previous
    for chunk in fold.chunks:
        result = summarizer.invoke(_request(chunk, summary, fold.cap_tokens))
        summary = planner.cap_summary(_as_text(result), fold.cap_tokens)
    return summary


async def asummarize_fold(
    summarizer: Runnable[Any, Any], planner: ContextPlanner, fold: FoldRange, previous: str
) -> str:
    """Async `summarize_fold` (the summarizer is awaited natively)."""
    summary = previous
    for chunk in fold.chunks:
        result = await summarizer.ainvoke(_request(chunk, summary, fold.cap_tokens))
        summary = planner.cap_summary(_as_text(result), fold.cap_tokens)
    return summary
