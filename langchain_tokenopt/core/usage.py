"""What one model call used, read the same way by analytics and budgets.

Providers report usage in different shapes (langchain-anthropic counts cache reads and
writes inside `input_tokens` and may split writes into 5-minute and 1-hour keys;
langchain-openai prefixes flex / priority tier keys; older integrations only fill
`llm_output["token_usage"]`). This core module turns all of them into one `Usage`, and
extracts the facts a callback needs at the start of a call (model, agent, max_tokens),
so `analytics.py` and `budget.py` agree without importing each other.

`SpendGate` is the small protocol a `UsageTracker` drives when it is given a budget:
`reserve` before the call, then `settle` with the real usage or `release` it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable
from uuid import UUID

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult

from langchain_tokenopt.core.markers import CACHE_HIT_KEY

__all__ = [
    "DEFAULT_AGENT",
    "CallResult",
    "CallStart",
    "SpendGate",
    "Usage",
    "call_start",
    "output_text",
    "prompt_hash",
    "read_result",
    "resolve_agent",
    "usage_from_metadata",
    "usage_from_token_usage",
]

logger = logging.getLogger(__name__)

#: Agent name of a call that names none (no metadata, tag or run name).
DEFAULT_AGENT = "default"
#: Tag prefix that names the agent of a call: `tags=["agent:researcher"]`.
AGENT_TAG_PREFIX = "agent:"

_TIERS = ("flex", "priority")
_MAX_TOKEN_PARAMS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


_EMPTY: Mapping[str, Any] = {}


def _int(value: Any) -> int:
    """A provider count as a non-negative int; anything else (None, junk) is 0."""
    if type(value) is int:
        return value if value > 0 else 0
    if value is None:
        return 0
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    return 0


def _details(value: Any) -> Mapping[str, Any]:
    """A usage details mapping, or an empty one for None and junk."""
    if type(value) is dict:  # the common case, without an ABC isinstance check
        return value
    return value if value and isinstance(value, Mapping) else _EMPTY


class Usage(NamedTuple):
    """Token counts of one call in LangChain's convention.

    `input_tokens` includes cache reads and writes, `output_tokens` includes reasoning;
    the other fields say how many of them were of which kind.
    `cache_write_1h_tokens` is the part of `cache_write_tokens` written with a one-hour
    lifetime (Anthropic prices it higher than the default five minutes).

    Example:
        >>> Usage(input_tokens=100, output_tokens=20, cache_read_tokens=60).total_tokens
        120
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0
    service_tier: str | None = None

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def as_usage_metadata(self) -> dict[str, Any]:
        """This usage as a standard LangChain `UsageMetadata` dict, ready for `price()`."""
        input_details: dict[str, int] = {}
        if self.cache_read_tokens:
            input_details["cache_read"] = self.cache_read_tokens
        if self.cache_write_tokens:
            input_details["cache_creation"] = self.cache_write_tokens
            if self.cache_write_1h_tokens:
                input_details["ephemeral_1h_input_tokens"] = self.cache_write_1h_tokens
                input_details["ephemeral_5m_input_tokens"] = (
                    self.cache_write_tokens - self.cache_write_1h_tokens
                )
        result: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }
        if input_details:
            result["input_token_details"] = input_details
        if self.reasoning_tokens:
            result["output_token_details"] = {"reasoning": self.reasoning_tokens}
        return result


def _tier_of(input_details: Mapping[str, Any], output_details: Mapping[str, Any]) -> str | None:
    # langchain-openai writes the bare tier key ("flex": n) next to its prefixed keys.
    for tier in _TIERS:
        if tier in input_details or tier in output_details:
            return tier
    return None


def _consistent(usage: Usage) -> Usage:
    """Repair counts that cannot be in LangChain's convention.

    More cache tokens than input tokens means the integration passed the provider's
    raw numbers, where `input_tokens` excludes the cache (Anthropic's API does): add
    them back. More reasoning than output tokens is cut to the output.
    """
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    input_tokens = usage.input_tokens
    if cached > input_tokens:
        logger.debug("input_tokens %d excludes %d cache tokens: adding them", input_tokens, cached)
        input_tokens += cached
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    if input_tokens == usage.input_tokens and reasoning == usage.reasoning_tokens:
        return usage
    return Usage(
        input_tokens=input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=reasoning,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        service_tier=usage.service_tier,
    )


def usage_from_metadata(usage_metadata: Mapping[str, Any]) -> Usage:
    """Normalize an `AIMessage.usage_metadata` of any integration.

    Example:
        >>> usage_from_metadata({"input_tokens": 1500, "output_tokens": 20,
        ...     "input_token_details": {"cache_read": 1000, "cache_creation": 0,
        ...         "ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 100}})
        ... # doctest: +NORMALIZE_WHITESPACE
        Usage(input_tokens=1500, output_tokens=20, cache_read_tokens=1000,
              cache_write_tokens=400, reasoning_tokens=0, cache_write_1h_tokens=100,
              service_tier=None)
    """
    input_details = _details(usage_metadata.get("input_token_details"))
    output_details = _details(usage_metadata.get("output_token_details"))
    input_tokens = _int(usage_metadata.get("input_tokens"))
    output_tokens = _int(usage_metadata.get("output_tokens"))
    if not input_details and not output_details:
        return Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    tier = _tier_of(input_details, output_details)
    cache_read = _int(input_details.get("cache_read"))
    creation = _int(input_details.get("cache_creation"))
    reasoning = _int(output_details.get("reasoning"))
    if tier is not None:
        cache_read = cache_read or _int(input_details.get(f"{tier}_cache_read"))
        creation = creation or _int(input_details.get(f"{tier}_cache_creation"))
        reasoning = reasoning or _int(output_details.get(f"{tier}_reasoning"))
    # langchain-anthropic lists 5m / 1h writes besides `cache_creation`; older versions
    # also kept the total in `cache_creation`, newer ones zero it: the larger is right.
    write_1h = _int(input_details.get("ephemeral_1h_input_tokens"))
    write_5m = _int(input_details.get("ephemeral_5m_input_tokens"))
    return _consistent(
        Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=max(creation, write_5m + write_1h),
            reasoning_tokens=reasoning,
            cache_write_1h_tokens=write_1h,
            service_tier=tier,
        )
    )


def usage_from_token_usage(token_usage: Mapping[str, Any]) -> Usage | None:
    """Normalize a legacy `llm_output["token_usage"]` (OpenAI or Anthropic raw shape).

    Returns None when the mapping holds no token counts.

    Example:
        >>> usage_from_token_usage({"prompt_tokens": 12, "completion_tokens": 3,
        ...     "prompt_tokens_details": {"cached_tokens": 8}}).cache_read_tokens
        8
    """
    if "prompt_tokens" in token_usage or "completion_tokens" in token_usage:
        prompt_details = token_usage.get("prompt_tokens_details") or {}
        completion_details = token_usage.get("completion_tokens_details") or {}
        if not isinstance(prompt_details, Mapping):
            prompt_details = {}
        if not isinstance(completion_details, Mapping):
            completion_details = {}
        return _consistent(
            Usage(
                input_tokens=_int(token_usage.get("prompt_tokens")),
                output_tokens=_int(token_usage.get("completion_tokens")),
                cache_read_tokens=_int(prompt_details.get("cached_tokens")),
                cache_write_tokens=_int(prompt_details.get("cache_write_tokens")),
                reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
            )
        )
    if "input_tokens" in token_usage or "output_tokens" in token_usage:
        # Anthropic's API shape: input_tokens excludes cache reads and writes.
        cache_read = _int(token_usage.get("cache_read_input_tokens"))
        cache_write = _int(token_usage.get("cache_creation_input_tokens"))
        return _consistent(
            Usage(
                input_tokens=_int(token_usage.get("input_tokens")) + cache_read + cache_write,
                output_tokens=_int(token_usage.get("output_tokens")),
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
            )
        )
    return None


class CallStart(NamedTuple):
    """The facts of a model call known when it starts (`on_chat_model_start`).

    `messages` is set for chat models, `prompts` for completion models; `tools` are
    the tool schemas bound to the call, `max_output_tokens` the call's `max_tokens`.
    """

    run_id: UUID
    parent_run_id: UUID | None
    agent: str
    model: str | None
    provider: str | None
    tags: Sequence[str]
    metadata: Mapping[str, Any]
    name: str | None
    messages: Sequence[BaseMessage] | None
    prompts: Sequence[str] | None
    tools: Sequence[Any]
    max_output_tokens: int | None


def resolve_agent(metadata: Mapping[str, Any], tags: Sequence[str], name: str | None) -> str:
    """Which agent a call belongs to.

    In order: `metadata["agent"]`, a tag `"agent:<name>"`, `metadata["lc_agent_name"]`
    (set by `create_agent(name=...)`), the run name, `metadata["langgraph_node"]`,
    else `"default"`.

    Example:
        >>> resolve_agent({}, ["agent:researcher"], None)
        'researcher'
    """
    agent = metadata.get("agent")
    if isinstance(agent, str) and agent:
        return agent
    for tag in tags:
        if tag.startswith(AGENT_TAG_PREFIX) and len(tag) > len(AGENT_TAG_PREFIX):
            return tag[len(AGENT_TAG_PREFIX) :]
    for candidate in (metadata.get("lc_agent_name"), name, metadata.get("langgraph_node")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return DEFAULT_AGENT


def _model_name(metadata: Mapping[str, Any], invocation_params: Mapping[str, Any]) -> str | None:
    for candidate in (
        metadata.get("ls_model_name"),
        invocation_params.get("model"),
        invocation_params.get("model_name"),
        invocation_params.get("model_id"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def _max_output_tokens(
    metadata: Mapping[str, Any], invocation_params: Mapping[str, Any]
) -> int | None:
    for candidate in (
        *(invocation_params.get(key) for key in _MAX_TOKEN_PARAMS),
        metadata.get("ls_max_tokens"),
    ):
        if isinstance(candidate, int) and not isinstance(candidate, bool) and candidate > 0:
            return candidate
    return None


def call_start(
    *,
    run_id: UUID,
    parent_run_id: UUID | None,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
    kwargs: Mapping[str, Any],
    messages: Sequence[BaseMessage] | None = None,
    prompts: Sequence[str] | None = None,
    agent_key: Callable[[CallStart], str | None] | None = None,
) -> CallStart:
    """Build a `CallStart` from the arguments of `on_chat_model_start` / `on_llm_start`.

    `agent_key`, when given, names the agent; if it returns None the default
    resolution (`resolve_agent`) applies.
    """
    meta: Mapping[str, Any] = metadata or {}
    tag_list: Sequence[str] = tags or ()
    params = _details(kwargs.get("invocation_params"))
    name = kwargs.get("name")
    run_name = name if isinstance(name, str) else None
    tools = params.get("tools") or ()
    if type(tools) is not list and not isinstance(tools, Sequence):
        tools = ()
    provider = meta.get("ls_provider")
    call = CallStart(
        run_id=run_id,
        parent_run_id=parent_run_id,
        agent=resolve_agent(meta, tag_list, run_name),
        model=_model_name(meta, params),
        provider=provider if isinstance(provider, str) else None,
        tags=tag_list,
        metadata=meta,
        name=run_name,
        messages=messages,
        prompts=prompts,
        tools=tools,
        max_output_tokens=_max_output_tokens(meta, params),
    )
    if agent_key is not None:
        chosen = agent_key(call)
        if chosen:
            return call._replace(agent=chosen)
    return call


def prompt_hash(call: CallStart) -> str:
    """A stable hash of the call's input, equal for identical prompts across processes.

    Example:
        >>> from uuid import uuid4
        >>> from langchain_core.messages import HumanMessage
        >>> a = call_start(run_id=uuid4(), parent_run_id=None, tags=None, metadata=None,
        ...                kwargs={}, messages=[HumanMessage("hi")])
        >>> b = call_start(run_id=uuid4(), parent_run_id=None, tags=None, metadata=None,
        ...                kwargs={}, messages=[HumanMessage("hi")])
        >>> prompt_hash(a) == prompt_hash(b)
        True
    """
    parts: list[str] = [call.model or ""]
    if call.messages is not None:
        for message in call.messages:
            content = message.content
            parts.append(message.type)
            parts.append(content if isinstance(content, str) else repr(content))
            # isinstance, not getattr: a missing pydantic attribute costs an exception.
            if isinstance(message, AIMessage) and message.tool_calls:
                parts.append(repr(message.tool_calls))
    if call.prompts is not None:
        parts.extend(call.prompts)
    data = "\x1e".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class CallResult(NamedTuple):
    """What `on_llm_end` tells about a call.

    `usage` is None when the provider reported none; `model` is the model the provider
    says answered (often a dated snapshot); `cache_hit` is True when the answer came
    from a cache (`TokenOptCache`'s marker, or langchain-core's zeroed `total_cost`);
    `streamed` when the result was assembled from chunks.
    """

    usage: Usage | None
    model: str | None
    cache_hit: bool
    streamed: bool


def output_text(response: LLMResult) -> str:
    """The text of every generation of a result, joined (for estimating output tokens)."""
    return "".join(g.text for generations in response.generations for g in generations)


def _message_model(message: BaseMessage) -> str | None:
    metadata = message.response_metadata
    for key in ("model_name", "model"):
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def read_result(response: LLMResult) -> CallResult:
    """Usage, answering model and cache-hit flag of one run's `LLMResult`."""
    usage: Usage | None = None
    model: str | None = None
    cache_hit = False
    streamed = False
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGenerationChunk):
                streamed = True
            if not isinstance(generation, ChatGeneration):
                continue
            message = generation.message
            model = model or _message_model(message)
            if message.response_metadata.get(CACHE_HIT_KEY):
                cache_hit = True
            if isinstance(message, AIMessage) and message.usage_metadata:
                metadata = message.usage_metadata
                # langchain-core marks generations replayed from its cache this way.
                if metadata.get("total_cost", None) == 0:
                    cache_hit = True
                # Every choice of an n > 1 call carries the usage of the whole call.
                if usage is None and ("input_tokens" in metadata or "output_tokens" in metadata):
                    usage = usage_from_metadata(metadata)
    llm_output = response.llm_output or {}
    if usage is None:
        token_usage = llm_output.get("token_usage") or llm_output.get("usage")
        if isinstance(token_usage, Mapping):
            usage = usage_from_token_usage(token_usage)
    if model is None:
        value = llm_output.get("model_name") or llm_output.get("model")
        model = value if isinstance(value, str) and value else None
    return CallResult(usage=usage, model=model, cache_hit=cache_hit, streamed=streamed)


@runtime_checkable
class SpendGate(Protocol):
    """What a `UsageTracker` drives when it is given a budget (`TokenBudget` is one).

    `reserve` runs before the request is sent and raises `BudgetExceededError` to stop
    it; exactly one of `settle` (the call used `usage`) or `release` (it cost nothing:
    a cache hit, or a failure) follows for every successful `reserve`.
    `run_inline` is False when the gate does blocking I/O (so async runs call it in an
    executor, not on the event loop).
    """

    @property
    def run_inline(self) -> bool: ...

    def reserve(self, call: CallStart) -> None: ...

    def settle(self, run_id: UUID, usage: Usage, *, model: str | None = None) -> None: ...

    def release(self, run_id: UUID) -> None: ...
