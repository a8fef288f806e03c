"""What one model call used: one `Usage` type and one parser for every provider shape.

Providers report usage in different shapes (langchain-anthropic counts cache reads and
writes inside `input_tokens` and may split writes into 5-minute and 1-hour keys;
langchain-openai prefixes flex / priority tier keys; older integrations only fill
`llm_output["token_usage"]` with the provider's raw numbers). `Usage.parse` reads all
of them, strictly (an error naming the bad field: what `price()` does with usage a user
passes) or leniently (junk counts are 0 and impossible ones repaired: what a callback
does with whatever an integration reported). This module also reads the facts a
callback needs at the start and end of a call (`CallStart`, `CallResult`), so the
tracker and the budget read calls the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple
from uuid import UUID

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult

from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.requestkey import request_digest
from langchain_tokenopt.core.validation import shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError

__all__ = [
    "DEFAULT_AGENT",
    "CallResult",
    "CallStart",
    "Usage",
    "call_start",
    "output_text",
    "prompt_hash",
    "read_result",
    "resolve_agent",
]

logger = logging.getLogger(__name__)

#: Agent name of a call that names none (no metadata, tag or run name).
DEFAULT_AGENT = "default"
#: Tag prefix that names the agent of a call: `tags=["agent:researcher"]`.
AGENT_TAG_PREFIX = "agent:"

_TIERS = ("flex", "priority")
_MAX_TOKEN_PARAMS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# Keys that say a usage mapping holds token counts (LangChain's or a provider's raw ones).
_COUNT_KEYS = ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens")

_EMPTY: Mapping[str, Any] = {}


# --------------------------------------------------------------------------- reading counts


def _lenient_count(value: Any, field: str) -> int:
    """A provider count as a non-negative int; anything else (None, junk) is 0."""
    if type(value) is int:
        return value if value > 0 else 0
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    return 0


def _strict_count(value: Any, field: str) -> int:
    """A count that must be a whole, non-negative number (missing or None is 0)."""
    value = value or 0
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ArgumentTypeError(
                f"usage field {shown(field)} must be a whole number, got {shown(value)}"
            )
    if value < 0:
        raise InvalidArgumentError(f"usage field {shown(field)} must not be negative, got {value}")
    return int(value)


def _lenient_details(value: Any, field: str) -> Mapping[str, Any]:
    """A usage details mapping, or an empty one for None and junk."""
    if type(value) is dict:  # the common case, without an ABC isinstance check
        return value
    return value if value and isinstance(value, Mapping) else _EMPTY


def _strict_details(value: Any, field: str) -> Mapping[str, Any]:
    if not value:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"usage field {shown(field)} must be a mapping, got {shown(value)}")
    return value


class _Reader(NamedTuple):
    """How counts and details mappings are read: strictly or leniently."""

    number: Callable[[Any, str], int]
    mapping: Callable[[Any, str], Mapping[str, Any]]


_STRICT = _Reader(_strict_count, _strict_details)
_LENIENT = _Reader(_lenient_count, _lenient_details)


class Usage(NamedTuple):
    """Token counts of one model call, in LangChain's `UsageMetadata` convention.

    `input_tokens` includes cache reads and writes (and input audio), `output_tokens`
    includes reasoning (and output audio); the other fields say how many of them were
    of which kind. `cache_write_5m_tokens` / `cache_write_1h_tokens` are the parts of
    `cache_write_tokens` a provider reported by lifetime (Anthropic prices one hour
    higher than five minutes). `price()` accepts a `Usage` as it is; `Usage.parse`
    builds one from any provider's usage mapping.

    Example:
        >>> usage = Usage.parse({"input_tokens": 100, "output_tokens": 20,
        ...                      "input_token_details": {"cache_read": 60}})
        >>> usage.cache_read_tokens, usage.total_tokens
        (60, 120)
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    service_tier: str | None = None

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @classmethod
    def parse(cls, data: Usage | Mapping[str, Any], *, strict: bool = True) -> Usage:
        """Read the usage of one call from any shape a provider or integration reports.

        Shapes: a LangChain `UsageMetadata` (with langchain-anthropic's 5m / 1h cache
        write keys and langchain-openai's flex / priority prefixed keys), OpenAI's raw
        `{"prompt_tokens", "completion_tokens", ...}` and Anthropic's raw
        `{"input_tokens", "cache_read_input_tokens", ...}` (whose `input_tokens`
        excludes the cache), or a `Usage`.

        `strict=True` (the default) raises `TypeError` / `ValueError` naming the bad
        field: a count that is not a whole non-negative number, details that are not
        a mapping, more cache tokens than input tokens or more reasoning than output
        tokens. `strict=False` reads what it can: junk counts are 0, cache tokens
        beyond the input are added to it (an integration passed raw provider
        numbers), reasoning beyond the output is cut.

        Example:
            >>> Usage.parse({"input_tokens": 100, "output_tokens": 5,
            ...              "input_token_details": {"cache_read": 1000}}, strict=False)
            ... # doctest: +NORMALIZE_WHITESPACE
            Usage(input_tokens=1100, output_tokens=5, cache_read_tokens=1000,
                  cache_write_tokens=0, reasoning_tokens=0, cache_write_5m_tokens=0,
                  cache_write_1h_tokens=0, input_audio_tokens=0, output_audio_tokens=0,
                  service_tier=None)
            >>> Usage.parse({"input_tokens": -1, "output_tokens": 0})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            langchain_tokenopt.errors.InvalidArgumentError: usage field 'input_tokens' must ...
        """
        reader = _STRICT if strict else _LENIENT
        if isinstance(data, Usage):
            usage = data
            if not all(type(value) is int and value >= 0 for value in data[:_COUNTS]):
                counts = [reader.number(getattr(data, name), name) for name in _COUNT_FIELDS]
                usage = Usage._make([*counts, data.service_tier])
        elif isinstance(data, Mapping):
            if "prompt_tokens" in data or "completion_tokens" in data:
                usage = _openai_raw(data, reader)
            elif "cache_read_input_tokens" in data or "cache_creation_input_tokens" in data:
                usage = _anthropic_raw(data, reader)
            else:
                usage = _usage_metadata(data, reader)
        elif strict:
            raise ArgumentTypeError(
                f"usage must be a UsageMetadata mapping, got {type(data).__name__}"
            )
        else:
            return cls()
        return _checked(usage) if strict else _consistent(usage)


_COUNT_FIELDS = Usage._fields[:-1]  # every field but service_tier
_COUNTS = len(_COUNT_FIELDS)


def _tier_of(input_details: Mapping[str, Any], output_details: Mapping[str, Any]) -> str | None:
    # langchain-openai writes the bare tier key ("flex": n) next to its prefixed keys.
    for tier in _TIERS:
        if tier in input_details or tier in output_details:
            return tier
    return None


def _usage_metadata(data: Mapping[str, Any], reader: _Reader) -> Usage:
    """A LangChain `UsageMetadata`, from any integration."""
    count = reader.number
    input_tokens = count(data.get("input_tokens"), "input_tokens")
    output_tokens = count(data.get("output_tokens"), "output_tokens")
    input_details = reader.mapping(data.get("input_token_details"), "input_token_details")
    output_details = reader.mapping(data.get("output_token_details"), "output_token_details")
    if not input_details and not output_details:
        return Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    tier = _tier_of(input_details, output_details)

    def detail(details: Mapping[str, Any], field: str, key: str) -> int:
        # langchain-openai prefixes the keys of a flex / priority call with the tier.
        value = count(details.get(key), f"{field}.{key}")
        if not value and tier is not None:
            prefixed = f"{tier}_{key}"
            value = count(details.get(prefixed), f"{field}.{prefixed}")
        return value

    write_5m = detail(input_details, "input_token_details", "ephemeral_5m_input_tokens")
    write_1h = detail(input_details, "input_token_details", "ephemeral_1h_input_tokens")
    # langchain-anthropic lists 5m / 1h writes besides `cache_creation`; older versions
    # also kept the total in `cache_creation`, newer ones zero it: the larger is right.
    creation = detail(input_details, "input_token_details", "cache_creation")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=detail(input_details, "input_token_details", "cache_read"),
        cache_write_tokens=max(creation, write_5m + write_1h),
        reasoning_tokens=detail(output_details, "output_token_details", "reasoning"),
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        input_audio_tokens=detail(input_details, "input_token_details", "audio"),
        output_audio_tokens=detail(output_details, "output_token_details", "audio"),
        service_tier=tier,
    )


def _openai_raw(data: Mapping[str, Any], reader: _Reader) -> Usage:
    """OpenAI's raw usage (`llm_output["token_usage"]` of older integrations)."""
    count = reader.number
    prompt = reader.mapping(data.get("prompt_tokens_details"), "prompt_tokens_details")
    completion = reader.mapping(data.get("completion_tokens_details"), "completion_tokens_details")
    return Usage(
        input_tokens=count(data.get("prompt_tokens"), "prompt_tokens"),
        output_tokens=count(data.get("completion_tokens"), "completion_tokens"),
        cache_read_tokens=count(prompt.get("cached_tokens"), "prompt_tokens_details.cached_tokens"),
        cache_write_tokens=count(
            prompt.get("cache_write_tokens"), "prompt_tokens_details.cache_write_tokens"
        ),
        reasoning_tokens=count(
            completion.get("reasoning_tokens"), "completion_tokens_details.reasoning_tokens"
        ),
    )


def _anthropic_raw(data: Mapping[str, Any], reader: _Reader) -> Usage:
    """Anthropic's raw usage, whose `input_tokens` excludes cache reads and writes."""
    count = reader.number
    cache_read = count(data.get("cache_read_input_tokens"), "cache_read_input_tokens")
    cache_write = count(data.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    return Usage(
        input_tokens=count(data.get("input_tokens"), "input_tokens") + cache_read + cache_write,
        output_tokens=count(data.get("output_tokens"), "output_tokens"),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _checked(usage: Usage) -> Usage:
    """`usage`, if its details fit in its totals (LangChain's convention); else ValueError."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    if cached > usage.input_tokens:
        raise InvalidArgumentError(
            f"usage has {cached} cache tokens but only {usage.input_tokens} input tokens; "
            "input_tokens must include cache reads and writes (LangChain's convention)"
        )
    if usage.reasoning_tokens > usage.output_tokens:
        raise InvalidArgumentError("usage has more reasoning tokens than output tokens")
    return usage


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
    return usage._replace(input_tokens=input_tokens, reasoning_tokens=reasoning)


def _reports_counts(data: Mapping[str, Any]) -> bool:
    return any(key in data for key in _COUNT_KEYS)


class CallStart(NamedTuple):
    """The facts of a model call known when it starts (`on_chat_model_start`).

    `messages` is set for chat models, `prompts` for completion models; `tools` are
    the tool schemas bound to the call, `max_output_tokens` the call's `max_tokens`,
    `settings` its invocation parameters (model, sampling parameters, tools, ...).
    An `agent_key` of `UsageTracker` / `TokenBudget` receives one to name the agent.

    Example:
        >>> from uuid import uuid4
        >>> call = call_start(run_id=uuid4(), parent_run_id=None, tags=["agent:writer"],
        ...     metadata={"ls_model_name": "gpt-4o"},
        ...     kwargs={"invocation_params": {"max_tokens": 200}}, prompts=["Hi"])
        >>> call.agent, call.model, call.max_output_tokens
        ('writer', 'gpt-4o', 200)
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
    settings: Mapping[str, Any] = MappingProxyType({})


def resolve_agent(
    metadata: Mapping[str, Any],
    tags: Sequence[str],
    name: str | None,
    root_name: str | None = None,
) -> str:
    """Which agent a call belongs to.

    In order: `metadata["agent"]`, a tag `"agent:<name>"`, `metadata["lc_agent_name"]`
    (set by `create_agent(name=...)`), `root_name` (the top-level run's name: the
    `run_name` of its config, else the graph's or chain's own name), the call's own
    run name, else `"default"`.

    Example:
        >>> resolve_agent({}, ["agent:researcher"], None)
        'researcher'
        >>> resolve_agent({"langgraph_node": "model"}, [], None, root_name="faq_chain")
        'faq_chain'
    """
    agent = metadata.get("agent")
    if isinstance(agent, str) and agent:
        return agent
    for tag in tags:
        if tag.startswith(AGENT_TAG_PREFIX) and len(tag) > len(AGENT_TAG_PREFIX):
            return tag[len(AGENT_TAG_PREFIX) :]
    for candidate in (metadata.get("lc_agent_name"), root_name, name):
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
    root_name: str | None = None,
) -> CallStart:
    """Build a `CallStart` from the arguments of `on_chat_model_start` / `on_llm_start`.

    `agent_key`, when given, names the agent; if it returns None the default
    resolution (`resolve_agent`, given `root_name`, the top-level run's name) applies.
    """
    meta: Mapping[str, Any] = metadata or {}
    tag_list: Sequence[str] = tags or ()
    params = _lenient_details(kwargs.get("invocation_params"), "invocation_params")
    name = kwargs.get("name")
    run_name = name if isinstance(name, str) else None
    tools = params.get("tools") or ()
    if type(tools) is not list and not isinstance(tools, Sequence):
        tools = ()
    provider = meta.get("ls_provider")
    call = CallStart(
        run_id=run_id,
        parent_run_id=parent_run_id,
        agent=resolve_agent(meta, tag_list, run_name, root_name),
        model=_model_name(meta, params),
        provider=provider if isinstance(provider, str) else None,
        tags=tag_list,
        metadata=meta,
        name=run_name,
        messages=messages,
        prompts=prompts,
        tools=tools,
        max_output_tokens=_max_output_tokens(meta, params),
        settings=params,
    )
    if agent_key is not None:
        chosen = agent_key(call)
        if chosen:
            return call._replace(agent=chosen)
    return call


def prompt_hash(call: CallStart) -> str:
    """A stable hash of what the model saw, equal for identical requests across processes.

    "Identical" is `TokenOptCache`'s notion (`core.requestkey.request_digest`): the
    messages as a model sees them (no ids, response or usage metadata, cache hit
    markers; tool-call ids only through their pairing), the model and the call's
    invocation parameters (sampling parameters, tools, response format) and LangChain's
    `ls_` metadata, without transport settings.

    Example:
        >>> from uuid import uuid4
        >>> from langchain_core.messages import HumanMessage
        >>> a = call_start(run_id=uuid4(), parent_run_id=None, tags=None, metadata=None,
        ...                kwargs={}, messages=[HumanMessage("hi")])
        >>> b = call_start(run_id=uuid4(), parent_run_id=None, tags=None, metadata=None,
        ...                kwargs={}, messages=[HumanMessage("hi", id="other")])
        >>> prompt_hash(a) == prompt_hash(b)
        True
    """
    # LangChain's `ls_` metadata (model, temperature, max tokens, stop) describes every
    # chat model's request, also one whose invocation parameters leave them out.
    described = {key: value for key, value in call.metadata.items() if key.startswith("ls_")}
    settings = {**described, "model": call.model, **call.settings}
    return request_digest(call.messages, call.prompts, settings)


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
                    usage = Usage.parse(metadata, strict=False)
    llm_output = response.llm_output or {}
    if usage is None:
        token_usage = llm_output.get("token_usage") or llm_output.get("usage")
        if isinstance(token_usage, Mapping) and _reports_counts(token_usage):
            usage = Usage.parse(token_usage, strict=False)
    if model is None:
        value = llm_output.get("model_name") or llm_output.get("model")
        model = value if isinstance(value, str) and value else None
    return CallResult(usage=usage, model=model, cache_hit=cache_hit, streamed=streamed)
