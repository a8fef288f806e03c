"""What a replayed request sends, and what the provider charges for it.

`Message` interns a logged message once (its key, its token count per encoding, its
LangChain form on demand), so a log where every request repeats the last 40 messages
counts and converts each message once. `Sent` is one request as a lever would send
it. `ProviderCache` models the prefix caching the provider already gives (OpenAI:
automatic for prefixes of 1,024+ tokens, in 128-token steps; Anthropic: up to the last
`cache_control` block), so every dollar figure is net of it. `Rates` prices token
counts per model from genai-prices (one `price()` per model and kind of token).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    convert_to_messages,
    convert_to_openai_messages,
)

from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.usage import Usage
from langchain_tokenopt.errors import (
    EncodingUnavailableError,
    InvalidArgumentError,
    UnknownModelError,
)

__all__ = [
    "OPENAI_MIN_PREFIX_TOKENS",
    "OPENAI_PREFIX_STEP_TOKENS",
    "Counters",
    "Interner",
    "Measure",
    "Message",
    "ProviderCache",
    "Rates",
    "Sent",
    "measure",
    "message_key",
    "provider_of",
]

OPENAI_MIN_PREFIX_TOKENS = 1024
OPENAI_PREFIX_STEP_TOKENS = 128
ANTHROPIC_MIN_PREFIX_TOKENS = 1024
_REPLY_PRIMING_TOKENS = 3
_SIMPLE_FIELDS = frozenset(("role", "content", "name", "tool_call_id"))


def message_key(message: dict[str, Any]) -> Hashable:
    """A key equal for equal messages (cheap for plain text messages)."""
    content = message.get("content")
    if isinstance(content, str) and message.keys() <= _SIMPLE_FIELDS:
        return (message.get("role"), content, message.get("name"), message.get("tool_call_id"))
    return json.dumps(message, sort_keys=True, separators=(",", ":"), default=str)


def _has_cache_control(message: dict[str, Any]) -> bool:
    if "cache_control" in message:
        return True
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and "cache_control" in block for block in content
    )


class Message:
    """One distinct message of the log: key, OpenAI dict, tokens per encoding, LangChain form."""

    __slots__ = ("_base", "_text", "_tokens", "_words", "cache_marker", "key", "raw", "role")

    def __init__(self, key: Hashable, raw: dict[str, Any], base: BaseMessage | None = None) -> None:
        self.key = key
        self.raw = raw
        self.role: str = raw.get("role", "")
        self.cache_marker = _has_cache_control(raw)
        self._tokens: dict[str, int] = {}
        self._base = base
        self._text: str | None = None
        self._words: frozenset[str] | None = None

    @classmethod
    def from_base(cls, base: BaseMessage) -> Message:
        converted = convert_to_openai_messages([base])
        raw = converted[0] if isinstance(converted, list) else converted
        return cls(message_key(raw), raw, base)

    def tokens(self, counter: TokenCounter) -> int:
        name = counter.encoding_name
        count = self._tokens.get(name)
        if count is None:
            count = self._tokens[name] = int(counter.count_message(self.base))
        return count

    def know_tokens(self, counter: TokenCounter, tokens: int) -> None:
        """Take `tokens` as its count under `counter` (exact, computed elsewhere) unless
        it was counted already."""
        self._tokens.setdefault(counter.encoding_name, tokens)

    @property
    def base(self) -> BaseMessage:
        if self._base is None:
            raw = self.raw if self.raw.get("content") is not None else {**self.raw, "content": ""}
            try:
                self._base = convert_to_messages([raw])[0]
            except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise InvalidArgumentError(
                    f"a {self.role or 'role-less'} message is not a chat message: {detail}"
                ) from None
        return self._base

    @property
    def words(self) -> frozenset[str]:
        """The distinct lower-cased words of its text."""
        if self._words is None:
            self._words = frozenset(self.text.lower().split())
        return self._words

    @property
    def text(self) -> str:
        """The message's text (text blocks joined)."""
        if self._text is None:
            content = self.raw.get("content")
            if isinstance(content, str):
                self._text = content
            elif isinstance(content, list):
                self._text = "\n".join(
                    str(block.get("text", "")) if isinstance(block, dict) else str(block)
                    for block in content
                )
            else:
                self._text = ""
        return self._text


class Interner:
    """The log's distinct messages, the least recently seen dropped beyond `max_messages`."""

    def __init__(self, max_messages: int = 200_000) -> None:
        self._messages: OrderedDict[Hashable, Message] = OrderedDict()
        self._max = max_messages

    def get(self, raw: dict[str, Any]) -> Message:
        key = message_key(raw)
        found = self._messages.get(key)
        if found is None:
            found = self._messages[key] = Message(key, raw)
            if len(self._messages) > self._max:
                self._messages.popitem(last=False)
        return found

    def add(self, message: Message) -> Message:
        return self._messages.setdefault(message.key, message)


class Counters:
    """One `TokenCounter` per model, and each tool list's tokens per encoding."""

    def __init__(self, default_model: str) -> None:
        self._default = default_model
        self._counters: dict[str | None, TokenCounter] = {}
        self._tools: OrderedDict[tuple[str, Hashable], int] = OrderedDict()
        self._empty_reply: dict[str, int] = {}

    def counter(self, model: str | None) -> TokenCounter:
        found = self._counters.get(model)
        if found is None:
            try:
                found = TokenCounter(model or self._default)
            except (EncodingUnavailableError, UnknownModelError, ValueError):
                found = TokenCounter(self._default)
            self._counters[model] = found
        return found

    def tools(self, counter: TokenCounter, tools: Sequence[dict[str, Any]], key: Hashable) -> int:
        if not tools:
            return 0
        memo_key = (counter.encoding_name, key)
        found = self._tools.get(memo_key)
        if found is None:
            found = self._tools[memo_key] = int(counter.count_tools(list(tools)))
            if len(self._tools) > 10_000:
                self._tools.popitem(last=False)
        return found

    def reply(self, counter: TokenCounter, reply: Message) -> int:
        """Output tokens of a logged reply (its framing left out)."""
        name = counter.encoding_name
        if name not in self._empty_reply:
            self._empty_reply[name] = int(counter.count_message(AIMessage("")))
        return max(reply.tokens(counter) - self._empty_reply[name], 0)


def tools_key(tools: Sequence[dict[str, Any]]) -> Hashable:
    if not tools:
        return ()
    return json.dumps(tools, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class Sent:
    """One request as it would be sent: model, messages, tools, and its reply's tokens.

    `answered` means nothing is sent at all (a cache answered it).
    """

    model: str | None
    messages: tuple[Message, ...]
    tools: tuple[dict[str, Any], ...]
    tools_key: Hashable
    output_tokens: int
    answered: bool = False

    def with_messages(self, messages: Sequence[Message]) -> Sent:
        return replace(self, messages=tuple(messages))


def provider_of(model: str | None) -> str | None:
    """'openai', 'anthropic' or None: whose prefix caching applies."""
    if not model:
        return None
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith(("gpt-", "o1", "o3", "o4", "chatgpt", "ft:gpt")):
        return "openai"
    if name.startswith("claude"):
        return "anthropic"
    return None


@dataclass(slots=True)
class Charge:
    """What one sent request uses: input (cache reads and writes included) and output."""

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Measure:
    """One sent request measured within its conversation, before the provider's cache
    shared across conversations is applied (`ProviderCache.charge`).

    Small and picklable: `--jobs` workers measure, the parent charges in log order.
    """

    answered: bool
    model: str | None
    input_tokens: int
    output_tokens: int
    provider: str | None
    shared: Hashable | None
    """(model, tools, first message): a prefix other conversations may have cached."""
    first_tokens: int
    """Tokens of the tools and the first message."""
    common_tokens: int
    """Tokens of the prefix shared with the conversation's previous request."""
    marked_tokens: int | None
    """Tokens up to the last `cache_control` block (Anthropic), None without one."""


def measure(
    sent: Sent,
    previous: Sent | None,
    counters: Counters,
    sums: dict[tuple[int, str, Hashable], list[int]] | None = None,
) -> tuple[Measure, Sent | None]:
    """(`sent` measured against its conversation's `previous` request, the new previous).

    `sums` may hold the running token sums of the chains of one request measured so
    far: chains a lever left alone send the same messages, summed once.
    """
    if sent.answered:
        return Measure(True, sent.model, 0, 0, None, None, 0, 0, None), previous
    counter = counters.counter(sent.model)
    key = (id(sent.messages), counter.encoding_name, sent.tools_key)
    cumulative = sums.get(key) if sums is not None else None
    if cumulative is None:
        total = counters.tools(counter, sent.tools, sent.tools_key)
        cumulative = [total]
        for message in sent.messages:
            total += message.tokens(counter)
            cumulative.append(total)
        if sums is not None:
            sums[key] = cumulative
    total = cumulative[-1]
    provider = provider_of(sent.model)
    shared: Hashable | None = None
    common = 0
    marked: int | None = None
    if provider is not None:
        if sent.messages:
            shared = (sent.model, sent.tools_key, sent.messages[0].key)
        if not (
            previous is None
            or previous.answered
            or previous.model != sent.model
            or previous.tools_key != sent.tools_key
        ):
            same = 0
            for mine, theirs in zip(sent.messages, previous.messages, strict=False):
                if mine is not theirs and mine.key != theirs.key:
                    break
                same += 1
            if same == len(sent.messages):
                same -= 1  # the whole request was sent before: its last message still counts
            common = cumulative[same] if same >= 0 else 0
        if provider == "anthropic":
            last = None
            for i, message in enumerate(sent.messages):
                if message.cache_marker:
                    last = i
            if last is not None:
                marked = cumulative[last + 1]
    first = cumulative[1] if sent.messages else 0
    measured = Measure(
        False,
        sent.model,
        total + _REPLY_PRIMING_TOKENS,
        sent.output_tokens,
        provider,
        shared,
        first,
        common,
        marked,
    )
    return measured, sent


@dataclass
class ProviderCache:
    """The provider's prefix cache along one replay chain: what each request reads from it.

    Per conversation, the previous request of the chain is the cached prefix (`measure`);
    across conversations, a request whose tools and first message were sent before (a
    shared system prompt) finds at least those cached.
    """

    _shared: OrderedDict[Hashable, bool] = field(default_factory=OrderedDict)

    def charge(self, measured: Measure) -> Charge:
        """The charge for a measured request (requests charged in log order)."""
        if measured.answered:
            return Charge()
        charge = Charge(input_tokens=measured.input_tokens, output_tokens=measured.output_tokens)
        if measured.provider is None:
            return charge
        common = 0
        if measured.shared is not None:
            if measured.shared in self._shared:
                self._shared.move_to_end(measured.shared)
                common = measured.first_tokens
            else:
                self._shared[measured.shared] = True
                if len(self._shared) > 10_000:
                    self._shared.popitem(last=False)
        common = max(common, measured.common_tokens)
        if measured.provider == "openai":
            if common >= OPENAI_MIN_PREFIX_TOKENS:
                steps = (common - OPENAI_MIN_PREFIX_TOKENS) // OPENAI_PREFIX_STEP_TOKENS
                charge.cache_read_tokens = (
                    OPENAI_MIN_PREFIX_TOKENS + steps * OPENAI_PREFIX_STEP_TOKENS
                )
        elif measured.marked_tokens is not None:
            prefix = measured.marked_tokens
            if prefix >= ANTHROPIC_MIN_PREFIX_TOKENS:
                if common >= prefix:
                    charge.cache_read_tokens = prefix
                else:
                    charge.cache_write_tokens = prefix
        return charge


class Rates:
    """Dollars per token of each kind, per model, from genai-prices (None: no price)."""

    def __init__(self) -> None:
        self._rates: dict[str, tuple[Decimal, Decimal, Decimal, Decimal] | None] = {}

    def of(self, model: str | None) -> tuple[Decimal, Decimal, Decimal, Decimal] | None:
        if model is None:
            return None
        if model not in self._rates:
            million = 1_000  # a small call: the base tier, not a long-context one
            try:
                plain = price(model, Usage(input_tokens=million))
                read = price(model, Usage(input_tokens=million, cache_read_tokens=million))
                write = price(model, Usage(input_tokens=million, cache_write_tokens=million))
                output = price(model, Usage(output_tokens=million))
            except (UnknownModelError, ValueError):
                self._rates[model] = None
            else:
                self._rates[model] = (
                    plain / million,
                    read / million,
                    write / million,
                    output / million,
                )
        return self._rates[model]

    def cost(self, model: str | None, charge: Charge) -> Decimal | None:
        rates = self.of(model)
        if rates is None:
            return None
        plain = charge.input_tokens - charge.cache_read_tokens - charge.cache_write_tokens
        return (
            rates[0] * plain
            + rates[1] * charge.cache_read_tokens
            + rates[2] * charge.cache_write_tokens
            + rates[3] * charge.output_tokens
        )
