"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches) as a LangChain Runnable."""

from langchain_tokenopt.batch.runnable import BatchAPIRunnable

__all__ = ["BatchAPIRunnable"]
