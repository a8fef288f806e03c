"""Token-saving middleware for LangChain v1 agents (`langchain.agents.create_agent`).

An agent re-sends its whole conversation and every tool schema on each model call,
so its cost grows with every step. These middleware plug the package's components
into the agent loop, each at the hook where it saves the most (one per module):

- `ToolRetrievalMiddleware` binds only the tools a `ToolRetriever` ranks relevant.
- `CostRouterMiddleware` sends each call to the model `ModelRouter` picks.
- `TokenBudgetMiddleware` enforces a `TokenBudget` and ends the run cleanly when spent.
- `CompressionMiddleware` compresses tool outputs losslessly before they enter state.
- `SummaryRecallMiddleware` sends a running summary, the older turns relevant to the
  question and the recent turns; its summary state lives in agent state (checkpointed).

The agent state always keeps the full conversation: middleware change what one model
call is sent, not what the run remembers (compression aside, which is lossless).
Needs the `langchain` extra (`pip install 'langchain-tokenopt[langchain]'`).
"""

from langchain_tokenopt.middleware.budget import TokenBudgetMiddleware
from langchain_tokenopt.middleware.compression import CompressionMiddleware, CompressionStats
from langchain_tokenopt.middleware.routing import CostRouterMiddleware
from langchain_tokenopt.middleware.summarizing import SummaryRecallMiddleware, SummaryRecallStats
from langchain_tokenopt.middleware.tool_retrieval import (
    ToolRetrievalMiddleware,
    ToolRetrievalStats,
)

__all__ = [
    "CompressionMiddleware",
    "CompressionStats",
    "CostRouterMiddleware",
    "SummaryRecallMiddleware",
    "SummaryRecallStats",
    "TokenBudgetMiddleware",
    "ToolRetrievalMiddleware",
    "ToolRetrievalStats",
]
