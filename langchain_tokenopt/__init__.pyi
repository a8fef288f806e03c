"""Type stub of the public API: the one list of public names.

`__init__.py` reads this file at run time (lazy_loader) to import each name on
first use; type checkers read it as the package's interface. Add a public name here
and nowhere else.
"""

from .analysis import (
    analyze_log as analyze_log,
)
from .analytics.efficiency import (
    TaskEfficiency as TaskEfficiency,
)
from .analytics.efficiency import (
    analyze_token_efficiency as analyze_token_efficiency,
)
from .analytics.events import (
    UsageEvent as UsageEvent,
)
from .analytics.report import (
    UsageReport as UsageReport,
)
from .analytics.suggestions import (
    Suggestion as Suggestion,
)
from .analytics.totals import (
    UsageTotals as UsageTotals,
)
from .batch.runnable import (
    BatchAPIRunnable as BatchAPIRunnable,
)
from .cache.llm_cache import (
    TokenOptCache as TokenOptCache,
)
from .cache.stats import (
    CacheStats as CacheStats,
)
from .cache.stats import (
    ModelCacheStats as ModelCacheStats,
)
from .cache.streaming import (
    CachedStreamRunnable as CachedStreamRunnable,
)
from .callbacks.budget import (
    BudgetRemaining as BudgetRemaining,
)
from .callbacks.budget import (
    TokenBudget as TokenBudget,
)
from .callbacks.tracker import (
    UsageTracker as UsageTracker,
)
from .callbacks.tracker import (
    track_usage as track_usage,
)
from .chat_history.history import (
    SummarizingChatMessageHistory as SummarizingChatMessageHistory,
)
from .chat_history.planner import (
    ContextView as ContextView,
)
from .chat_history.summarizers import (
    BaseSummarizer as BaseSummarizer,
)
from .chat_history.summarizers import (
    ExtractiveSummarizer as ExtractiveSummarizer,
)
from .chat_history.summarizers import (
    LLMSummarizer as LLMSummarizer,
)
from .chat_history.summarizers import (
    SummaryRequest as SummaryRequest,
)
from .cli.analysis import (
    Analysis as Analysis,
)
from .cli.analysis import (
    analyze_transcript as analyze_transcript,
)
from .cli.transcript import (
    read_transcript as read_transcript,
)
from .coalescing import (
    CoalescingRunnable as CoalescingRunnable,
)
from .coalescing import (
    CoalescingStats as CoalescingStats,
)
from .compression import (
    CompressionResult as CompressionResult,
)
from .compression import (
    PromptCompressor as PromptCompressor,
)
from .core.pricing import (
    ModelPrice as ModelPrice,
)
from .core.pricing import (
    PriceTable as PriceTable,
)
from .core.pricing import (
    price as price,
)
from .core.textindex import (
    TextIndex as TextIndex,
)
from .core.tokens import (
    TokenCount as TokenCount,
)
from .core.tokens import (
    TokenCounter as TokenCounter,
)
from .core.usage import (
    CallStart as CallStart,
)
from .core.usage import (
    Usage as Usage,
)
from .dedup import (
    DedupResult as DedupResult,
)
from .dedup import (
    MessageDeduplicator as MessageDeduplicator,
)
from .dedup import (
    deduplicate_messages as deduplicate_messages,
)
from .errors import (
    ArgumentTypeError as ArgumentTypeError,
)
from .errors import (
    BatchItemError as BatchItemError,
)
from .errors import (
    BudgetExceededError as BudgetExceededError,
)
from .errors import (
    CorruptStateError as CorruptStateError,
)
from .errors import (
    EncodingUnavailableError as EncodingUnavailableError,
)
from .errors import (
    InvalidArgumentError as InvalidArgumentError,
)
from .errors import (
    MissingExtraError as MissingExtraError,
)
from .errors import (
    NotFittedError as NotFittedError,
)
from .errors import (
    NumberOverflowError as NumberOverflowError,
)
from .errors import (
    ScorerFileError as ScorerFileError,
)
from .errors import (
    StoreUnavailableError as StoreUnavailableError,
)
from .errors import (
    TokenOptError as TokenOptError,
)
from .errors import (
    UnknownModelError as UnknownModelError,
)
from .errors import (
    UnstorableValueError as UnstorableValueError,
)
from .middleware.budget import (
    TokenBudgetMiddleware as TokenBudgetMiddleware,
)
from .middleware.compression import (
    CompressionMiddleware as CompressionMiddleware,
)
from .middleware.routing import (
    CostRouterMiddleware as CostRouterMiddleware,
)
from .middleware.summarizing import (
    SummaryRecallMiddleware as SummaryRecallMiddleware,
)
from .middleware.tool_retrieval import (
    ToolRetrievalMiddleware as ToolRetrievalMiddleware,
)
from .routing.dataset import (
    RoutingData as RoutingData,
)
from .routing.evaluation import (
    RoutingMetrics as RoutingMetrics,
)
from .routing.pretrained import (
    PretrainedScorer as PretrainedScorer,
)
from .routing.router import (
    ModelRouter as ModelRouter,
)
from .routing.router import (
    RouteDecision as RouteDecision,
)
from .routing.router import (
    Tier as Tier,
)
from .routing.scorers import (
    ComplexityScorer as ComplexityScorer,
)
from .routing.scorers import (
    HeuristicScorer as HeuristicScorer,
)
from .routing.scorers import (
    LearnedScorer as LearnedScorer,
)
from .routing.scorers import (
    ScoreExplanation as ScoreExplanation,
)
from .routing.stats import (
    RouterStats as RouterStats,
)
from .routing.training import (
    train_scorer as train_scorer,
)
from .stores.base import (
    Store as Store,
)
from .stores.memory import (
    MemoryStore as MemoryStore,
)
from .stores.redis import (
    RedisStore as RedisStore,
)
from .stores.sqlite import (
    SQLiteStore as SQLiteStore,
)
from .text_splitters import (
    TokenAwareTextSplitter as TokenAwareTextSplitter,
)
from .tool_retrieval.retriever import (
    ToolMatch as ToolMatch,
)
from .tool_retrieval.retriever import (
    ToolRetriever as ToolRetriever,
)
from .tool_retrieval.runnable import (
    RelevantToolsRunnable as RelevantToolsRunnable,
)
from .tool_retrieval.runnable import (
    bind_relevant_tools as bind_relevant_tools,
)

__version__: str
__all__: list[str]
