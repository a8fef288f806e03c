"""LangChain v1 agent middleware (`create_agent(middleware=[...])`); needs the `langchain` extra."""

from langchain_tokenopt.middleware.agent import (
    CompressionMiddleware,
    ModelRouterMiddleware,
    SummarizingMiddleware,
    TokenBudgetMiddleware,
    ToolRetrievalMiddleware,
)

__all__ = [
    "CompressionMiddleware",
    "ModelRouterMiddleware",
    "SummarizingMiddleware",
    "TokenBudgetMiddleware",
    "ToolRetrievalMiddleware",
]
