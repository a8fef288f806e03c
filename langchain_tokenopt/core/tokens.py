"""Exact token counts per model: the one place in the package that counts.

Every component asks a `TokenCounter` how many tokens a text, a chat request or a set
of tool schemas costs; nothing else in the package calls tiktoken. Counting is
memoized per message, so re-counting a history that grew by one message costs about
one message's encoding.

Counting rules
--------------
Models. A model name is normalized first: surrounding blanks and case are dropped,
a provider prefix goes (``"openai:gpt-4o"``, ``"azure/gpt-4o"``,
``"openrouter/openai/gpt-4o"``), Azure's ``gpt-35-turbo`` reads ``gpt-3.5-turbo``,
and a fine-tune names its base model
(``"ft:gpt-4o-mini:org::id"`` counts as ``gpt-4o-mini``). Dated snapshots
(``"gpt-4o-2024-08-06"``) are matched by prefix, as tiktoken and `ChatOpenAI` do.

Exact models are the ones `ChatOpenAI.get_num_tokens_from_messages` frames: names
starting with ``gpt-3.5-turbo``, ``gpt-4`` (gpt-4o, gpt-4.1, ...), ``gpt-5``,
``gpt-6``, ``o1``, ``o3`` or ``o4``. Their encoding is tiktoken's for the model
(o200k_base for gpt-4o and later, cl100k_base for gpt-4 and gpt-3.5-turbo).

Chat framing (OpenAI's cookbook, as `ChatOpenAI` applies it): each message costs
3 tokens plus the tokens of its role, content and other fields; a ``name`` costs its
tokens plus 1 (``gpt-3.5-turbo-0301``: 4 per message and -1 per name); a tool
message's ``tool_call_id`` costs 3; an assistant tool call costs the tokens of its
name and of its JSON arguments (``json.dumps(args, ensure_ascii=False)``); a legacy
``function_call`` or ``audio`` field costs the tokens of its Python ``str()``; every
request adds 3 tokens that prime the reply. `count_messages` equals
`ChatOpenAI(model=M).get_num_tokens_from_messages(messages)` for these models, with
these documented differences:

- Tools. `ChatOpenAI` ignores ``tools=`` (it warns). We add `count_tools`: the
  OpenAI cookbook's formula (its accuracy is in docs/benchmarks.md, "Token
  counting"). Per function 7 tokens (10 on cl100k models), plus
  ``name:description``; with parameters 3 more, and per parameter 3 plus
  ``name:type:description`` (one trailing period dropped from descriptions), an enum
  -3 plus 3 and the value's tokens per item; 12 per request that has tools. Nested
  object schemas are not expanded (the cookbook does not either). Built-in tools
  that are not functions count 0 and make the count approximate.
- Special tokens such as ``<|endoftext|>`` in text count as plain text (ChatOpenAI
  raises ValueError on them).
- Content blocks Chat Completions does not send (``reasoning`` and ``tool_call``
  blocks of v1 messages) count 0; ChatOpenAI raises ValueError on them. Blocks we do
  not know are counted as the tokens of their JSON text and make the count
  approximate (ChatOpenAI raises). ``file`` and ``input_audio`` blocks count 0 and
  make the count approximate (ChatOpenAI ignores files and raises on audio).
- Images follow OpenAI's published rules (below) where they differ from ChatOpenAI's
  single 85/170 rule, and URLs are never downloaded.

Images (``image_url`` blocks, and LangChain/Anthropic image blocks converted to
them). Tile models: ``detail="low"`` costs the base; otherwise (``"high"`` and
``"auto"``, which ChatOpenAI treats as high) the image is scaled to fit 2048x2048,
then its shortest side to 768 (integer arithmetic, as ChatOpenAI), and costs
``base + tile * tiles`` where tiles are 512px squares. Base/tile: 85/170 by default
(gpt-4o, gpt-4.1, gpt-4, o1: same as ChatOpenAI), 2833/5667 for gpt-4o-mini,
75/150 for o3, 70/140 for gpt-5. Patch models (gpt-4.1-mini x1.62, gpt-4.1-nano
x2.46, gpt-5-mini x1.62, gpt-5-nano x2.46, o4-mini x1.72) ignore ``detail``: 32px
patches, scaled down to at most 1536, times the multiplier (rounded up). The size
comes from the PNG, JPEG, GIF or WebP header of a ``data:`` URL; for any other URL,
or an unreadable header, we assume 1024x1024 (765 tokens at 85/170) and mark the
count approximate.

Other models (claude-*, gemini-*, llama, mistral, "my-model", ...) get a documented
approximation: o200k_base (cl100k_base where tiktoken maps the name to it), with
the OpenAI framing above. Other tokenizers can differ by tens of
percent; such counts are `TokenCount(..., approximate=True)` and
`counter.approximate` is True (logged once per model at INFO). An explicit
``encoding=`` always wins; if it is not the model's own encoding the counter is
approximate too.

Memoization. Per-message counts live in an LRU keyed on the message's content (a
message edited in place gets a new key). `count_messages` also remembers the last 8
lists it counted (holding references to their messages): when a list starts with
the same message objects as one of them, the shared prefix is not read again, only
compared by identity at C speed, so a history that grew by one message costs one
message's encoding whatever its length. Like LangChain, we treat a message as an
immutable value once counted: the last message a list shares with a remembered one
is always re-read (``trim_messages`` and streaming edit the last message in place),
but an older message edited in place inside a list counted before is not noticed;
call `clear_cache` after such edits. A history read back from a store (equal but
new message objects) is served from the LRU, one lookup per message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tiktoken
import tiktoken.model
from cachetools import LRUCache
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
    is_data_content_block,
)
from langchain_core.messages.block_translators.openai import convert_to_openai_data_block
from langchain_core.prompt_values import PromptValue
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_tokenopt.core.images import image_size_from_data_url
from langchain_tokenopt.core.logs import log_once
from langchain_tokenopt.core.validation import check_depth, shown
from langchain_tokenopt.errors import (
    ArgumentTypeError,
    EncodingUnavailableError,
    InvalidArgumentError,
)

__all__ = [
    "TokenCount",
    "TokenCounter",
    "normalize_model_name",
]

logger = logging.getLogger(__name__)

#: Name prefixes `ChatOpenAI.get_num_tokens_from_messages` frames (exact models).
_OPENAI_CHAT_PREFIXES = ("gpt-3.5-turbo", "gpt-4", "gpt-5", "gpt-6", "o1", "o3", "o4")
#: ChatOpenAI's encoding fallback for exact models tiktoken does not know yet.
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-5", "gpt-6")
_APPROXIMATE_ENCODING = "o200k_base"
_REPLY_PRIMING_TOKENS = 3
_TOOL_CALL_ID_TOKENS = 3

# OpenAI cookbook, "How to count tokens with tiktoken", num_tokens_for_tools().
_TOOL_FUNC_INIT_TOKENS = 7
_TOOL_FUNC_INIT_TOKENS_CL100K = 10
_TOOL_PROP_INIT_TOKENS = 3
_TOOL_PROP_KEY_TOKENS = 3
_TOOL_ENUM_INIT_TOKENS = -3
_TOOL_ENUM_ITEM_TOKENS = 3
_TOOL_FUNC_END_TOKENS = 12

# Content block types ChatOpenAI drops before sending (chat/completions).
_DROPPED_BLOCK_TYPES = frozenset(
    {"tool_use", "thinking", "reasoning_content", "function_call", "code_interpreter_call"}
)
# v1 blocks that are not sent to Chat Completions (tool calls travel in `tool_calls`).
_UNSENT_BLOCK_TYPES = frozenset({"reasoning", "tool_call", "tool_call_chunk"})
_DATA_BLOCK_TYPES = frozenset({"image", "audio", "file", "video", "text-plain", "text"})

_ASSUMED_IMAGE_SIZE = (1024, 1024)
_KEY_DIGEST_CHARS = 1024  # longer key parts are replaced by a digest
_PREFIX_MEMO_SLOTS = 8
# `count_text` memoizes the last texts of between these many characters (shorter ones
# cost less to count than to look up; the memo holds at most a few MB of text)
_TEXT_MEMO_SLOTS = 256
#: Encodings whose pre-tokenizer starts a new piece after a non-space followed by a
#: space and after a newline followed by a non-space, so the tokens of texts joined at
#: such a seam are the sum of theirs (the history's planner and extractive summarizer
#: count recall lines and summaries that way; their tests hold the sums exact).
SEAM_ADDITIVE_ENCODINGS = frozenset({"cl100k_base", "o200k_base"})
_TEXT_MEMO_MIN_CHARS = 100
_TEXT_MEMO_MAX_CHARS = 20_000


@dataclass(frozen=True)
class _ImageRule:
    """How one model prices an image (OpenAI's vision guide)."""

    kind: str  # "tile" or "patch"
    base_tokens: int = 0
    tile_tokens: int = 0
    patch_multiplier: float = 1.0

    def tokens(self, width: int, height: int, detail: str | None) -> int:
        if self.kind == "patch":
            return _patch_image_tokens(width, height, self.patch_multiplier)
        if detail == "low":
            return self.base_tokens
        return _tile_image_tokens(width, height, self.base_tokens, self.tile_tokens)


_DEFAULT_IMAGE_RULE = _ImageRule("tile", 85, 170)
# First matching prefix wins, so longer names come first.
_IMAGE_RULES: tuple[tuple[str, _ImageRule], ...] = (
    ("gpt-4o-mini", _ImageRule("tile", 2833, 5667)),
    ("gpt-4.1-mini", _ImageRule("patch", patch_multiplier=1.62)),
    ("gpt-4.1-nano", _ImageRule("patch", patch_multiplier=2.46)),
    ("gpt-5-mini", _ImageRule("patch", patch_multiplier=1.62)),
    ("gpt-5-nano", _ImageRule("patch", patch_multiplier=2.46)),
    ("o4-mini", _ImageRule("patch", patch_multiplier=1.72)),
    ("gpt-5", _ImageRule("tile", 70, 140)),
    ("o3", _ImageRule("tile", 75, 150)),
)


class TokenCount(int):
    """An `int` token count that also says whether it is exact.

    `approximate` is True when the model is unknown or not an OpenAI model and the
    count comes from a documented approximation rather than the provider's tokenizer.

    Example:
        >>> n = TokenCount(12, approximate=True)
        >>> n + 1, n.approximate
        (13, True)
    """

    approximate: bool

    def __new__(cls, value: int, approximate: bool = False) -> TokenCount:
        obj = super().__new__(cls, value)
        obj.approximate = approximate
        return obj


def normalize_model_name(model: str) -> str:
    """The model name the counting rules match on.

    Lower-cased, without a provider prefix, a fine-tune's base model.

    Example:
        >>> normalize_model_name("openai:ft:gpt-4o-mini:my-org::abc123")
        'gpt-4o-mini'
        >>> normalize_model_name("azure/GPT-4o")
        'gpt-4o'
    """
    name = model.strip().lower().rsplit("/", 1)[-1].replace("gpt-35", "gpt-3.5")  # Azure
    while ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix == "ft":
            name = rest.split(":", 1)[0]
        elif re.fullmatch(r"[a-z_]+", prefix) and rest:
            name = rest  # "openai:gpt-4o", "azure_openai:gpt-4o" (init_chat_model style)
        else:
            break
    return name


@dataclass(frozen=True)
class _Profile:
    """Encoding and framing of one model."""

    encoding_name: str
    tokens_per_message: int
    tokens_per_name: int
    tool_func_init_tokens: int
    image_rule: _ImageRule
    approximate: bool


def _model_encoding_name(name: str, exact: bool) -> str:
    try:
        known = str(tiktoken.model.encoding_name_for_model(name))
    except KeyError:
        if exact:  # ChatOpenAI's fallback for names tiktoken does not know yet
            return "o200k_base" if name.startswith(_O200K_PREFIXES) else "cl100k_base"
        return _APPROXIMATE_ENCODING
    # Approximations stay on the two chat encodings (no download of older ones).
    return known if exact or known in ("cl100k_base", "o200k_base") else _APPROXIMATE_ENCODING


def _profile_for(name: str, encoding: str | None) -> _Profile:
    exact = name.startswith(_OPENAI_CHAT_PREFIXES)
    model_encoding = _model_encoding_name(name, exact)
    if name.startswith("gpt-3.5-turbo-0301"):
        per_message, per_name = 4, -1
    else:
        per_message, per_name = 3, 1
    image_rule = next(
        (rule for prefix, rule in _IMAGE_RULES if name.startswith(prefix)), _DEFAULT_IMAGE_RULE
    )
    encoding_name = encoding or model_encoding
    return _Profile(
        encoding_name=encoding_name,
        tokens_per_message=per_message,
        tokens_per_name=per_name,
        tool_func_init_tokens=(
            _TOOL_FUNC_INIT_TOKENS_CL100K
            if exact and model_encoding == "cl100k_base"
            else _TOOL_FUNC_INIT_TOKENS
        ),
        image_rule=image_rule,
        approximate=not exact or encoding_name != model_encoding,
    )


def _load_encoding(name: str, explicit: bool) -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding(name)
    except ValueError as exc:
        if explicit:
            known = ", ".join(sorted(tiktoken.list_encoding_names()))
            raise InvalidArgumentError(
                f"Unknown tiktoken encoding {shown(name)}; use one of: {known}."
            ) from exc
        error: Exception = exc
    except Exception as exc:  # tiktoken downloads files it has not cached
        if explicit:
            raise EncodingUnavailableError(name, str(exc)) from exc
        error = exc
    log_once(
        logger,
        f"tokens:encoding:{name}",
        logging.INFO,
        "Cannot load encoding %r (%s); counting with %s instead.",
        name,
        error,
        _APPROXIMATE_ENCODING,
    )
    try:
        return tiktoken.get_encoding(_APPROXIMATE_ENCODING)
    except Exception as exc:  # not cached either: nothing left to count with
        raise EncodingUnavailableError(_APPROXIMATE_ENCODING, str(exc)) from exc


# ---------------------------------------------------------------------------- images


def _tile_image_tokens(width: int, height: int, base_tokens: int, tile_tokens: int) -> int:
    """OpenAI's tile rule, with ChatOpenAI's integer resizing."""
    if width > 2048 or height > 2048:
        if width > height:
            height, width = (height * 2048) // width, 2048
        else:
            width, height = (width * 2048) // height, 2048
    if width > 768 and height > 768:
        if width > height:
            width, height = (width * 768) // height, 768
        else:
            height, width = (height * 768) // width, 768
    tiles = math.ceil(width / 512) * math.ceil(height / 512)
    return base_tokens + tile_tokens * tiles


def _patch_image_tokens(width: int, height: int, multiplier: float) -> int:
    """OpenAI's 32px patch rule (gpt-4.1-mini, o4-mini, ...)."""
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    if patches > 1536:
        shrink = math.sqrt(32 * 32 * 1536 / (width * height))
        shrink *= min(
            math.floor(width * shrink / 32) / (width * shrink / 32),
            math.floor(height * shrink / 32) / (height * shrink / 32),
        )
        patches = math.ceil(int(width * shrink) / 32) * math.ceil(int(height * shrink) / 32)
    return math.ceil(min(patches, 1536) * multiplier)


# ----------------------------------------------------------- messages -> OpenAI dicts


def _format_content(content: Any) -> Any:
    """ChatOpenAI's `_format_message_content` for chat/completions, for counting."""
    if not (content and isinstance(content, list)):
        return content
    formatted: list[Any] = []
    for block in content:
        if not isinstance(block, dict):
            formatted.append(block)
            continue
        block_type = block.get("type")
        if block_type in _DROPPED_BLOCK_TYPES:
            continue
        if block_type in _DATA_BLOCK_TYPES and is_data_content_block(block):
            try:
                formatted.append(convert_to_openai_data_block(block))
            except (ValueError, KeyError):
                formatted.append({"type": "__unconvertible__", "block": block})
            continue
        source = block.get("source")
        if block_type == "image" and isinstance(source, dict) and source:
            # Anthropic image blocks
            if source.get("type") == "base64" and source.get("media_type") and source.get("data"):
                url = f"data:{source['media_type']};base64,{source['data']}"
                formatted.append({"type": "image_url", "image_url": {"url": url}})
            elif source.get("type") == "url" and source.get("url"):
                formatted.append({"type": "image_url", "image_url": {"url": source["url"]}})
            continue
        formatted.append(block)
    return formatted


def _tool_call_dict(name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def _openai_fields(message: BaseMessage) -> dict[str, Any]:
    """The fields ChatOpenAI's `_convert_message_to_dict` sends, ids left out."""
    fields: dict[str, Any] = {"content": _format_content(message.content)}
    name = message.name or message.additional_kwargs.get("name")
    if name is not None:
        fields["name"] = name
    if isinstance(message, ChatMessage):
        fields["role"] = message.role
    elif isinstance(message, HumanMessage):
        fields["role"] = "user"
    elif isinstance(message, AIMessage):
        fields["role"] = "assistant"
        if message.tool_calls or message.invalid_tool_calls:
            fields["tool_calls"] = [
                _tool_call_dict(call["name"], json.dumps(call["args"], ensure_ascii=False))
                for call in message.tool_calls
            ] + [
                _tool_call_dict(call.get("name"), call.get("args"))
                for call in message.invalid_tool_calls
            ]
        elif "tool_calls" in message.additional_kwargs:
            fields["tool_calls"] = [
                {k: v for k, v in call.items() if k in ("type", "function")}
                for call in message.additional_kwargs["tool_calls"]
                if isinstance(call, Mapping)
            ]
        elif "function_call" in message.additional_kwargs:
            fields["function_call"] = message.additional_kwargs["function_call"]
        audio = _assistant_audio(message)
        if audio:
            fields["audio"] = audio
    elif isinstance(message, SystemMessage):
        fields["role"] = message.additional_kwargs.get("__openai_role__", "system")
    elif isinstance(message, FunctionMessage):
        fields["role"] = "function"
    elif isinstance(message, ToolMessage):
        # ChatOpenAI keeps only content, role and tool_call_id (no name).
        return {
            "content": fields["content"],
            "role": "tool",
            "tool_call_id": message.tool_call_id,
        }
    else:
        raise ArgumentTypeError(
            f"Cannot count a {type(message).__name__}: expected a HumanMessage, "
            "AIMessage, SystemMessage, ToolMessage, FunctionMessage or ChatMessage."
        )
    return fields


def _assistant_audio(message: AIMessage) -> dict[str, Any] | None:
    audio: dict[str, Any] | None = None
    if isinstance(message.content, list):
        for block in message.content:
            if isinstance(block, dict) and block.get("type") == "audio" and block.get("id"):
                audio = {"id": block["id"]}
    raw = message.additional_kwargs.get("audio")
    if not audio and raw:
        audio = {"id": raw["id"]} if isinstance(raw, Mapping) and "id" in raw else raw
    return audio


# ------------------------------------------------------------------- memo keys


def _freeze(value: Any) -> str:
    try:
        return json.dumps(
            value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr
        )
    except (TypeError, ValueError):
        return repr(value)


def _compact(text: str) -> Hashable:
    if len(text) <= _KEY_DIGEST_CHARS:
        return text
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return (len(text), digest)


def _message_key(message: BaseMessage) -> Hashable:
    """Everything in a message that can change its count."""
    content = message.content
    content_key = _compact(content if isinstance(content, str) else _freeze(content))
    kwargs_key = _compact(_freeze(message.additional_kwargs)) if message.additional_kwargs else None
    calls_key: Hashable = None
    if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
        calls_key = _compact(_freeze([message.tool_calls, message.invalid_tool_calls]))
    role = message.role if isinstance(message, ChatMessage) else None
    return (type(message), role, message.name, content_key, kwargs_key, calls_key)


def _raw_key(item: Any) -> Hashable:
    """Memo key of a message given as dict, str or (role, text) pair."""
    if isinstance(item, str):
        return ("str", _compact(item))
    if isinstance(item, dict):
        return ("dict", _compact(_freeze(item)))
    return ("pair", _compact(_freeze(list(item))))


# ------------------------------------------------------------------- the counter


@dataclass
class _PrefixMemo:
    """A list counted before: its items and running totals (framing, no priming)."""

    items: list[Any]
    cumulative_tokens: list[int]
    cumulative_approximate: list[int]  # how many approximate messages so far

    def item_tokens(self, index: int) -> tuple[int, bool]:
        tokens = self.cumulative_tokens[index]
        approximate = self.cumulative_approximate[index]
        if index:
            tokens -= self.cumulative_tokens[index - 1]
            approximate -= self.cumulative_approximate[index - 1]
        return tokens, bool(approximate)

    def truncate(self, length: int) -> None:
        del self.items[length:]
        del self.cumulative_tokens[length:]
        del self.cumulative_approximate[length:]

    def append(self, item: Any, tokens: int, approximate: bool) -> None:
        self.items.append(item)
        previous_tokens = self.cumulative_tokens[-1] if self.cumulative_tokens else 0
        previous_approximate = self.cumulative_approximate[-1] if self.cumulative_approximate else 0
        self.cumulative_tokens.append(previous_tokens + tokens)
        self.cumulative_approximate.append(previous_approximate + approximate)


def _shared_prefix(memo_items: list[Any], items: list[Any]) -> int | None:
    """Index p such that items[:p + 1] equals memo_items[:p + 1] (item p the same object).

    Only the last shared position and the one before it are tried: the list grew,
    shrank, or had its last message replaced. List equality compares identical
    objects without calling `__eq__`, so a long shared prefix costs microseconds.
    """
    length, memo_length = len(items), len(memo_items)
    shared = min(length, memo_length)
    if shared == 0:
        return None
    pivot = shared - 1
    if items[pivot] is memo_items[pivot]:
        if length >= memo_length:
            memo_items.extend(items[memo_length:])  # compare without copying the prefix
            equal = memo_items == items
            del memo_items[memo_length:]
        else:
            equal = memo_items[:length] == items
        if equal:
            return pivot
    pivot = shared - 2
    if (
        pivot >= 0
        and items[pivot] is memo_items[pivot]
        and items[: pivot + 1] == memo_items[: pivot + 1]
    ):
        return pivot
    return None


class TokenCounter:
    """Counts tokens of text, messages and tool schemas for one model.

    Exact for OpenAI chat models (equal to `ChatOpenAI.get_num_tokens_from_messages`,
    plus tool schemas); a flagged approximation for other models. Thread-safe.
    See the module docstring for the counting rules.

    Args:
        model: model name, e.g. "gpt-4o". Decides encoding and chat framing.
        encoding: tiktoken encoding name; always wins over `model`.
        cache_size: how many per-message counts to memoize (0 turns memoizing off).

    Attributes:
        model, encoding_name, approximate (True if counts are approximations).

    Example:
        >>> from langchain_core.messages import HumanMessage, trim_messages
        >>> counter = TokenCounter("gpt-4o")
        >>> counter.count_text("hello world")
        2
        >>> n = counter.count_messages([HumanMessage("hello world")])
        >>> n, n.approximate
        (9, False)
        >>> kept = trim_messages([HumanMessage("hi")] * 5, max_tokens=20,
        ...                      token_counter=counter, strategy="last")
        >>> len(kept)  # 3 + 5 tokens per message ("user", "hi" and framing)
        3
    """

    model: str
    encoding_name: str
    approximate: bool

    def __init__(
        self, model: str = "gpt-4o", *, encoding: str | None = None, cache_size: int = 65536
    ) -> None:
        if not isinstance(model, str):
            raise ArgumentTypeError(
                f"model must be a model name (str), got {type(model).__name__}."
            )
        if not model.strip():
            raise InvalidArgumentError("model must be a non-empty model name such as 'gpt-4o'.")
        if encoding is not None and not isinstance(encoding, str):
            raise ArgumentTypeError(
                f"encoding must be a tiktoken encoding name (str), got {type(encoding).__name__}."
            )
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise InvalidArgumentError(f"cache_size must be an int >= 0, got {shown(cache_size)}.")
        name = normalize_model_name(model)
        profile = _profile_for(name, encoding)
        self._encoding = _load_encoding(profile.encoding_name, explicit=encoding is not None)
        self.model = model
        self.encoding_name = self._encoding.name
        self.approximate = profile.approximate or self.encoding_name != profile.encoding_name
        self._profile = profile
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._message_cache: LRUCache[Hashable, tuple[int, bool]] = LRUCache(max(cache_size, 1))
        self._tool_cache: LRUCache[Hashable, tuple[Any, int, bool]] = LRUCache(1024)
        # A text is often counted again soon after (a summary when it is written, then
        # when it is capped; a recall message when it is built, then when it is sent).
        self._text_cache: LRUCache[str, int] = LRUCache(_TEXT_MEMO_SLOTS)
        self._memos: list[_PrefixMemo] = []
        if self.approximate:
            log_once(
                logger,
                f"tokens:model:{name}:{self.encoding_name}",
                logging.INFO,
                "Token counts for model %r are approximate (%s with OpenAI chat framing).",
                model,
                self.encoding_name,
            )

    def __repr__(self) -> str:
        return (
            f"TokenCounter(model={self.model!r}, encoding={self.encoding_name!r}, "
            f"approximate={self.approximate})"
        )

    # -- text

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (special tokens treated as plain text)."""
        _check_text(text)
        return list(self._encoding.encode_ordinary(text))

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of token ids."""
        return str(self._encoding.decode(list(tokens)))

    def count_text(self, text: str) -> TokenCount:
        """Tokens of a plain string (the last few long texts memoized)."""
        _check_text(text)
        if not _TEXT_MEMO_MIN_CHARS <= len(text) <= _TEXT_MEMO_MAX_CHARS or not self._cache_size:
            return TokenCount(self._tokens(text), self.approximate)
        with self._lock:
            tokens = self._text_cache.get(text)
        if tokens is None:
            tokens = self._tokens(text)
            with self._lock:
                self._text_cache[text] = tokens
        return TokenCount(tokens, self.approximate)

    def _tokens(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text)) if text else 0

    # -- messages

    def count_message(self, message: BaseMessage | dict[str, Any]) -> TokenCount:
        """Tokens one message adds to a chat request, framing included (memoized)."""
        tokens, approximate = self._count_item(message, 0)
        return TokenCount(tokens, self.approximate or approximate)

    def count_messages(
        self,
        messages: Sequence[BaseMessage | dict[str, Any] | str | tuple[str, str]],
        tools: Sequence[Any] | None = None,
    ) -> TokenCount:
        """Tokens of a whole chat request: messages (+ reply priming) and tool schemas.

        Equals `ChatOpenAI(model=M).get_num_tokens_from_messages(messages, tools)`
        (plus `count_tools(tools)`, which ChatOpenAI leaves out).
        """
        items = _as_item_list(messages)
        tokens, approximate = self._count_items(items)
        tokens += _REPLY_PRIMING_TOKENS
        if tools:
            tool_tokens = self.count_tools(tools)
            tokens += tool_tokens
            approximate = approximate or tool_tokens.approximate
        return TokenCount(tokens, self.approximate or approximate)

    def __call__(self, messages: Sequence[BaseMessage]) -> int:
        """So a counter can be passed as `token_counter=` to `trim_messages`."""
        return int(self.count_messages(messages))

    def clear_cache(self) -> None:
        """Forget memoized counts (after editing counted messages in place)."""
        with self._lock:
            self._message_cache.clear()
            self._tool_cache.clear()
            self._memos.clear()
            self._text_cache.clear()

    def _count_items(self, items: list[Any]) -> tuple[int, bool]:
        with self._lock:
            memo, start = self._take_memo(items)
        if memo is None:
            memo = _PrefixMemo([], [], [])
        length = len(items)
        tail = items[start:]
        recounted = [self._count_item(item, index) for index, item in enumerate(tail, start)]
        tokens = memo.cumulative_tokens[start - 1] if start else 0
        approximate = bool(memo.cumulative_approximate[start - 1]) if start else False
        for item_tokens, item_approximate in recounted:
            tokens += item_tokens
            approximate = approximate or item_approximate
        unchanged_prefix = length <= len(memo.items) and all(
            item is memo.items[index] and counted == memo.item_tokens(index)
            for index, (item, counted) in enumerate(zip(tail, recounted, strict=True), start)
        )
        if not unchanged_prefix:  # else keep remembering the longer list
            memo.truncate(start)
            for item, (item_tokens, item_approximate) in zip(tail, recounted, strict=True):
                memo.append(item, item_tokens, item_approximate)
        if length:
            with self._lock:
                self._memos.insert(0, memo)
                del self._memos[_PREFIX_MEMO_SLOTS:]
        return tokens, approximate

    def _take_memo(self, items: list[Any]) -> tuple[_PrefixMemo | None, int]:
        """Remove and return the remembered list sharing the longest prefix with `items`."""
        for position, memo in enumerate(self._memos):
            pivot = _shared_prefix(memo.items, items)
            if pivot is not None:
                del self._memos[position]
                return memo, pivot
        return None, 0

    def _count_item(self, item: Any, index: int) -> tuple[int, bool]:
        if not isinstance(item, str):  # its key and fields are walked recursively below
            check_depth(item, f"message {index}")
        if isinstance(item, BaseMessage):
            key = _message_key(item)
        elif isinstance(item, (str, dict)) or (isinstance(item, (tuple, list)) and len(item) == 2):
            key = _raw_key(item)
        else:
            raise ArgumentTypeError(
                f"Message {index} is a {type(item).__name__}; expected a LangChain "
                "BaseMessage, an OpenAI-format dict, a str or a (role, text) pair."
            )
        if self._cache_size:
            with self._lock:
                cached = self._message_cache.get(key)
            if cached is not None:
                return cached
        message = item if isinstance(item, BaseMessage) else _to_message(item, index)
        result = self._count_fields(_openai_fields(message))
        if self._cache_size:
            with self._lock:
                self._message_cache[key] = result
        return result

    def _count_fields(self, fields: dict[str, Any]) -> tuple[int, bool]:
        """ChatOpenAI's per-message loop over the OpenAI dict."""
        profile = self._profile
        tokens = profile.tokens_per_message
        approximate = False
        for key, value in fields.items():
            if key == "tool_call_id":
                tokens += _TOOL_CALL_ID_TOKENS
                continue
            if isinstance(value, list):
                for part in value:
                    part_tokens, part_approximate = self._count_part(part)
                    tokens += part_tokens
                    approximate = approximate or part_approximate
            elif not value:
                continue
            else:
                tokens += self._tokens(str(value))
            if key == "name":
                tokens += profile.tokens_per_name
        return tokens, approximate

    def _count_part(self, part: Any) -> tuple[int, bool]:
        """One content block or tool call of a message."""
        if isinstance(part, str):
            return self._tokens(part), False
        if not isinstance(part, dict):
            raise ArgumentTypeError(
                f"A content block is a {type(part).__name__}; expected a str or a dict "
                "with a 'type' key."
            )
        part_type = part.get("type")
        if part_type == "text":
            text = part.get("text") or ""
            if not isinstance(text, str):
                raise ArgumentTypeError(
                    f"A text block's 'text' is a {type(text).__name__}, not a str."
                )
            return self._tokens(text), False
        if part_type == "image_url":
            return self._image_tokens(part.get("image_url"))
        if part_type == "function":
            function = part.get("function") or {}
            arguments = function.get("arguments") or ""
            name = function.get("name") or ""
            return self._tokens(str(arguments)) + self._tokens(str(name)), False
        if part_type in _UNSENT_BLOCK_TYPES:
            return 0, False
        if part_type in ("file", "input_audio"):
            log_once(
                logger,
                f"tokens:block:{part_type}",
                logging.DEBUG,
                "%s blocks are not counted (0 tokens); the count is marked approximate.",
                part_type,
            )
            return 0, True
        log_once(
            logger,
            f"tokens:block:{part_type}",
            logging.DEBUG,
            "Unknown content block type %r counted as its JSON text (approximate).",
            part_type,
        )
        block = part.get("block", part) if part_type == "__unconvertible__" else part
        return self._tokens(_freeze(block)), True

    def _image_tokens(self, image_url: Any) -> tuple[int, bool]:
        if isinstance(image_url, str):
            url, detail = image_url, None
        elif isinstance(image_url, Mapping):
            url, detail = image_url.get("url") or "", image_url.get("detail")
        else:
            raise ArgumentTypeError("An image_url block needs an 'image_url' dict with a 'url'.")
        rule = self._profile.image_rule
        if rule.kind == "tile" and detail == "low":
            return rule.base_tokens, False
        size = image_size_from_data_url(url) if isinstance(url, str) else None
        if size is None:
            log_once(
                logger,
                "tokens:image:unknown-size",
                logging.DEBUG,
                "Image size unknown (not a readable data: URL); assuming %dx%d (approximate).",
                *_ASSUMED_IMAGE_SIZE,
            )
            return rule.tokens(*_ASSUMED_IMAGE_SIZE, detail), True
        return rule.tokens(*size, detail), False

    # -- tools

    def count_tools(self, tools: Sequence[Any]) -> TokenCount:
        """Tokens the tool schemas add to a request (BaseTool, functions, dicts)."""
        if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
            raise ArgumentTypeError(
                "tools must be a list of tools (BaseTool, functions, pydantic classes or "
                f"OpenAI tool dicts), got {type(tools).__name__}."
            )
        if not tools:
            return TokenCount(0, self.approximate)
        tokens = _TOOL_FUNC_END_TOKENS
        approximate = False
        for index, tool in enumerate(tools):
            tool_tokens, tool_approximate = self._count_tool(tool, index)
            tokens += tool_tokens
            approximate = approximate or tool_approximate
        return TokenCount(tokens, self.approximate or approximate)

    def _count_tool(self, tool: Any, index: int) -> tuple[int, bool]:
        check_depth(tool, f"tool {index}")
        key: Hashable = ("dict", _freeze(tool)) if isinstance(tool, dict) else ("obj", id(tool))
        with self._lock:
            cached = self._tool_cache.get(key)
        # Objects are keyed by id(); the entry holds the object so the id stays its own.
        if cached is not None and (isinstance(tool, dict) or cached[0] is tool):
            return cached[1], cached[2]
        try:
            schema = convert_to_openai_tool(tool)
        except (ValueError, TypeError, KeyError) as exc:
            raise ArgumentTypeError(
                f"Tool {index} ({type(tool).__name__}) is not a tool: {exc}. Pass BaseTool "
                "objects, functions, pydantic classes or OpenAI tool dicts."
            ) from exc
        tokens, approximate = self._count_tool_schema(schema)
        with self._lock:
            self._tool_cache[key] = (None if isinstance(tool, dict) else tool, tokens, approximate)
        return tokens, approximate

    def _count_tool_schema(self, schema: Mapping[str, Any]) -> tuple[int, bool]:
        function = schema.get("function")
        if schema.get("type") != "function" or not isinstance(function, Mapping):
            log_once(
                logger,
                f"tokens:tool:{schema.get('type')}",
                logging.DEBUG,
                "Built-in tool %r is not counted (0 tokens, approximate).",
                schema.get("type"),
            )
            return 0, True
        tokens = self._profile.tool_func_init_tokens
        description = _strip_one_period(function.get("description") or "")
        tokens += self._tokens(f"{function.get('name', '')}:{description}")
        parameters = function.get("parameters") or {}
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        if isinstance(properties, Mapping) and properties:
            tokens += _TOOL_PROP_INIT_TOKENS
            for prop_name, prop in properties.items():
                prop = prop if isinstance(prop, Mapping) else {}
                tokens += _TOOL_PROP_KEY_TOKENS
                if "enum" in prop:
                    tokens += _TOOL_ENUM_INIT_TOKENS
                    for item in prop.get("enum") or []:
                        tokens += _TOOL_ENUM_ITEM_TOKENS
                        tokens += self._tokens(item if isinstance(item, str) else json.dumps(item))
                prop_description = _strip_one_period(prop.get("description") or "")
                tokens += self._tokens(f"{prop_name}:{_schema_type(prop)}:{prop_description}")
        return tokens, False


def _strip_one_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def _schema_type(prop: Mapping[str, Any]) -> str:
    """A JSON schema's type as the cookbook writes it (unions joined with ' | ')."""
    schema_type = prop.get("type")
    if isinstance(schema_type, str):
        return schema_type
    if isinstance(schema_type, list):
        return " | ".join(str(t) for t in schema_type)
    for union in ("anyOf", "oneOf"):
        options = prop.get(union)
        if isinstance(options, list):
            return " | ".join(
                _schema_type(option) for option in options if isinstance(option, Mapping)
            )
    return "object"


def _check_text(text: Any) -> None:
    if not isinstance(text, str):
        raise ArgumentTypeError(f"Expected text as str, got {type(text).__name__}.")


def _as_item_list(messages: Any) -> list[Any]:
    if isinstance(messages, PromptValue):
        return list(messages.to_messages())
    if isinstance(messages, (str, bytes)):
        raise ArgumentTypeError(
            "count_messages takes a list of messages; count a plain string with count_text."
        )
    if isinstance(messages, (BaseMessage, Mapping)):
        raise ArgumentTypeError(
            "count_messages takes a list of messages; use count_message for one."
        )
    if isinstance(messages, list):
        return messages
    if isinstance(messages, Sequence):
        return list(messages)
    raise ArgumentTypeError(f"messages must be a list of messages, got {type(messages).__name__}.")


def _to_message(item: Any, index: int) -> BaseMessage:
    try:
        return convert_to_messages([item])[0]
    except (NotImplementedError, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(
            f"Message {index} ({shown(str(item)[:80])}) is not a chat message: {exc}"
        ) from exc
