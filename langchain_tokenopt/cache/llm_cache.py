"""A LangChain LLM cache that knows what it saves, on memory, SQLite or Redis.

`TokenOptCache` is a langchain-core `BaseCache`: set it with `set_llm_cache(...)` or
`ChatOpenAI(cache=...)`. Beyond LangChain's built-in caches it adds TTL and an LRU size
bound on every backend, safe JSON serialization (`langchain_core.load`, never pickle),
an opt-in guarded semantic match, per-model statistics of the tokens and dollars that
hits saved (priced from each cached response's own `usage_metadata`), and a marker on
replayed messages so usage trackers record a hit as saved, not spent.

How langchain-core marks a cache hit (langchain-core 1.x,
`BaseChatModel._convert_cached_generations`): it replays the cached `AIMessage` with its
original `usage_metadata` plus `"total_cost": 0` and then fires `on_llm_end` as for a
real call, so callback-based trackers count every hit again as spent tokens. Messages
replayed by `TokenOptCache` also carry `response_metadata[CACHE_HIT_KEY] = True`
(`langchain_tokenopt.core.markers.CACHE_HIT_KEY`, "tokenopt_cache_hit"); semantic hits add
`response_metadata["tokenopt_cache_similarity"]`. Plain-text `Generation`s (non-chat
LLMs) have no message to mark and are returned unchanged.

Layout of the keys in the `Store` (``ns`` is the `namespace`):

- ``ns:cache:e:<sha256>``: one entry, ``{"v": 1, "g": dumps(generations), "m": model,
  "i": input tokens, "o": output tokens, "u": dollars in 1e-12 units or None,
  "c": created (epoch seconds)}``; the hash covers `llm_string` and the prompt.
- ``ns:cache:a:<sha256>``: last access time of an entry (only with `max_entries`).
- ``ns:cache:n``: shared entry counter (only with `max_entries`).
- ``ns:cache:q:<sha256>``: the semantic side index, ``{"p": partition, "t": text}``,
  and ``ns:cacheindex:version``, bumped on each write and clear so other processes
  know to re-sync (only with `similarity_threshold`).
- ``ns:cachestats:...``: hit / miss / savings counters, kept apart so `clear()` drops
  the entries but not the history of what was saved (`reset_stats()` drops that).
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import json
import logging
import math
import re
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import Serializable, dumps, loads
from langchain_core.load.load import default_init_validator
from langchain_core.messages import BaseMessage
from langchain_core.outputs import Generation
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.pricing import PriceTable, price
from langchain_tokenopt.errors import StoreUnavailableError, TokenOptError
from langchain_tokenopt.stores import MemoryStore, SQLiteStore, Store

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

    from langchain_tokenopt.cache.streaming import CachedStreamRunnable

__all__ = [
    "CACHE_SIMILARITY_KEY",
    "CacheStats",
    "ModelCacheStats",
    "TokenOptCache",
    "exactness_features",
    "prompt_text",
]

logger = logging.getLogger(__name__)

#: `response_metadata` entry with the similarity score of a semantic cache hit.
CACHE_SIMILARITY_KEY = "tokenopt_cache_similarity"

_ENTRY_VERSION = 1
_PICO = Decimal(10) ** 12
_UNKNOWN_MODEL = "unknown"
# How often (at most) a process checks the store for semantic entries written by
# other processes; `TokenOptCache.refresh()` forces it.
_SEMANTIC_REFRESH_SECONDS = 1.0
# Decoded entries kept per process to skip deserialization on repeated hits.
_DECODED_ENTRIES = 1024
# Semantic candidates examined per lookup after the index query.
_SEMANTIC_CANDIDATES = 4
# While the store is unavailable, at most one warning per cache this often.
_OUTAGE_WARNING_INTERVAL_SECONDS = 30.0

# Classes a cache entry may contain: generations and messages, nothing that runs
# logic on construction. Checked before each object is built.
_ALLOWED_CLASS_NAMES = frozenset(
    {
        "Generation",
        "GenerationChunk",
        "ChatGeneration",
        "ChatGenerationChunk",
        "AIMessage",
        "AIMessageChunk",
        "HumanMessage",
        "HumanMessageChunk",
        "SystemMessage",
        "SystemMessageChunk",
        "ToolMessage",
        "ToolMessageChunk",
        "ChatMessage",
        "ChatMessageChunk",
        "FunctionMessage",
        "FunctionMessageChunk",
    }
)


class _CorruptEntryError(ValueError):
    """A stored value is not a readable TokenOptCache entry."""


def _only_generations_and_messages(class_path: tuple[str, ...], kwargs: dict[str, Any]) -> None:
    """`init_validator` for `loads`: refuse every class but generations and messages."""
    if class_path[0] not in ("langchain", "langchain_core") or (
        class_path[-1] not in _ALLOWED_CLASS_NAMES
    ):
        raise ValueError(f"{'.'.join(class_path)} may not appear in a cache entry")
    default_init_validator(class_path, kwargs)


def _decode_generations(entry: Any) -> list[Generation]:
    """The generations of a stored entry; `_CorruptEntryError` if it is not one."""
    if not isinstance(entry, dict) or entry.get("v") != _ENTRY_VERSION:
        raise _CorruptEntryError("not a TokenOptCache entry")
    payload = entry.get("g")
    if not isinstance(payload, str):
        raise _CorruptEntryError("entry has no serialized generations")
    try:
        # "core" keeps langchain-core's cached allowlist of class paths (fast); the
        # validator narrows it to generations and messages before anything is built.
        value = loads(
            payload, allowed_objects="core", init_validator=_only_generations_and_messages
        )
    except Exception as exc:  # any failure to revive means the entry is unusable
        raise _CorruptEntryError(f"cannot deserialize: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(g, Generation) for g in value):
        raise _CorruptEntryError("entry does not hold a list of Generation")
    return value


_SCALARS = (str, int, float, bool, type(None))


def _fresh_copy(value: Any) -> Any:
    """A deep copy of a decoded cache value, several times cheaper than `copy.deepcopy`.

    Decoded entries are trees of JSON values and pydantic models (generations,
    messages), without shared references: those are rebuilt field by field the way
    pydantic's own `__deepcopy__` does; anything else goes through `copy.deepcopy`.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {key: _fresh_copy(item) for key, item in value.items()}
    if kind is list:
        return [_fresh_copy(item) for item in value]
    if isinstance(value, BaseModel) and getattr(value, "__pydantic_private__", None) is None:
        model = type(value)
        clone = model.__new__(model)
        extra = value.__pydantic_extra__
        setattr_ = object.__setattr__
        setattr_(clone, "__dict__", {k: _fresh_copy(v) for k, v in value.__dict__.items()})
        setattr_(clone, "__pydantic_extra__", None if extra is None else _fresh_copy(extra))
        setattr_(clone, "__pydantic_fields_set__", set(value.__pydantic_fields_set__))
        setattr_(clone, "__pydantic_private__", None)
        return clone
    return copy.deepcopy(value)


# ---------------------------------------------------------------------------
# Serialization: langchain_core.load.dumps, with a fast path for plain generations


class _NotFast(Exception):
    """`_fast_dumps` does not handle this value; `langchain_core.load.dumps` does."""


_NO_DEFAULT = object()


@dataclass(frozen=True)
class _ClassPlan:
    """What `Serializable.to_json` computes per call that only depends on the class."""

    lc_id: list[str]
    # field name -> (required, default_factory, default or _NO_DEFAULT, excluded)
    fields: Mapping[str, tuple[bool, Any, Any, bool]]
    attributes: tuple[property, ...]  # the `lc_attributes` getters to_json merges, in order


_PLANS: dict[type, _ClassPlan | None] = {}


def _resolve(mro: tuple[type, ...], start: int, name: str) -> Any:
    for klass in mro[start:]:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _build_plan(cls: type) -> _ClassPlan | None:
    """The plan of `cls`, or None when only the generic `to_json` is right for it."""
    if not (issubclass(cls, Serializable) and cls.is_lc_serializable()):
        return None
    if hasattr(cls, "lc_namespace") or hasattr(cls, "lc_serializable"):
        return None  # to_json raises for these deprecated attributes
    mro = cls.__mro__
    stop = mro.index(Serializable)
    base_secrets = vars(Serializable)["lc_secrets"]
    attributes: list[property] = []
    # to_json walks self, then super(c, self) for each c before Serializable.
    for start in range(stop + 1):
        if _resolve(mro, start, "lc_secrets") is not base_secrets:
            return None  # secrets need to_json's replacement logic
        getter = _resolve(mro, start, "lc_attributes")
        if not isinstance(getter, property) or getter.fget is None:
            return None
        if not attributes or attributes[-1] is not getter:
            attributes.append(getter)
    fields: dict[str, tuple[bool, Any, Any, bool]] = {}
    for name, info in cls.model_fields.items():
        try:
            # As langchain-core's _get_field_default: a factory is never called.
            default = info.get_default()
            if default is PydanticUndefined and info.default_factory is not None:
                default = None
        except Exception:
            default = _NO_DEFAULT
        fields[name] = (info.is_required(), info.default_factory, default, bool(info.exclude))
    return _ClassPlan(list(cls.lc_id()), fields, tuple(attributes))


def _class_plan(cls: type) -> _ClassPlan | None:
    try:
        return _PLANS[cls]
    except KeyError:
        pass
    try:
        plan = _build_plan(cls)
    except Exception:  # anything unexpected: the generic path decides
        plan = None
    _PLANS[cls] = plan
    return plan


def _fast_object(obj: Any) -> dict[str, Any]:
    """`langchain_core.load.dumpd(obj)` for a `Serializable` without secrets."""
    plan = _class_plan(type(obj))
    if plan is None:
        raise _NotFast
    fields = plan.fields
    kwargs: dict[str, Any] = {}
    for name, value in obj.__dict__.items():
        spec = fields.get(name)
        if spec is None:
            continue
        required, factory, default, excluded = spec
        if excluded:
            continue
        if not required:
            try:
                truthy = bool(value)
            except Exception as exc:
                raise _NotFast from exc
            if not truthy:
                if (factory is dict and isinstance(value, dict)) or (
                    factory is list and isinstance(value, list)
                ):
                    continue
                if default is not _NO_DEFAULT:
                    try:
                        differs = bool(default != value)
                    except Exception as exc:
                        raise _NotFast from exc
                    if not differs:
                        continue
        kwargs[name] = value
    for getter in plan.attributes:
        kwargs.update(getter.fget(obj))  # type: ignore[misc]
    return {
        "lc": 1,
        "type": "constructor",
        "id": plan.lc_id,
        "kwargs": {name: _fast_value(value) for name, value in kwargs.items()},
    }


def _fast_value(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        if "lc" in value or "__lc_escaped__" in value:
            raise _NotFast  # user data that needs langchain-core's escaping
        for key in value:
            if type(key) not in _SCALARS:
                raise _NotFast
        return {key: _fast_value(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_fast_value(item) for item in value]
    if isinstance(value, Serializable):
        return _fast_object(value)
    if isinstance(value, _SCALARS):  # str subclasses such as ChatGeneration.text
        return value
    raise _NotFast


def _fast_dumps(generations: list[Generation]) -> str | None:
    """`dumps(generations)`, byte for byte, or None where only `dumps` is right.

    `Serializable.to_json` re-derives per call what depends only on the class (the
    MRO walk for secrets and `lc_attributes`, field defaults, the id): that is most
    of the cost of a cache write. This computes it once per class and handles plain
    generations and messages: JSON values, no secrets, no user dict with an "lc"
    key (which langchain-core escapes), nothing that is not `Serializable`.
    """
    try:
        return json.dumps([_fast_value(generation) for generation in generations])
    except _NotFast:
        return None


def _serialize(generations: list[Generation]) -> str:
    fast = _fast_dumps(generations)
    return fast if fast is not None else dumps(generations)


# ---------------------------------------------------------------------------
# What a cached response saves


_PARAM_MODEL_RE = re.compile(r"\('(?:model|model_name|model_id)', '([^']+)'\)")
_JSON_MODEL_RE = re.compile(r'"(?:model|model_name|model_id)": "([^"]+)"')


def _model_from_llm_string(llm_string: str) -> str | None:
    """The model named in an `llm_string`: call-time parameters win over the model's own."""
    head, sep, params = llm_string.rpartition("---")
    for text in (params, head) if sep else (llm_string,):
        found = _PARAM_MODEL_RE.search(text) or _JSON_MODEL_RE.search(text)
        if found:
            return found.group(1)
    return None


def _int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class _Saving:
    model: str
    input_tokens: int
    output_tokens: int
    usd_pico: int | None  # None: the model has no known price


def _saving_of(
    generations: Sequence[Generation], llm_string: str, table: PriceTable | None
) -> _Saving:
    """What replaying `generations` saves, from the first message that reports usage.

    With n > 1 choices providers report one usage for the whole call, so the first
    message's usage is the call's usage; summing them would count it n times.
    """
    usage: Mapping[str, Any] | None = None
    model: str | None = None
    for generation in generations:
        message = getattr(generation, "message", None)
        if not isinstance(message, BaseMessage):
            continue
        metadata = message.response_metadata or {}
        named = metadata.get("model_name") or metadata.get("model")
        if model is None and isinstance(named, str) and named:
            model = named
        found = getattr(message, "usage_metadata", None)
        if found:
            usage = found
            if isinstance(named, str) and named:
                model = named
            break
    model = model or _model_from_llm_string(llm_string) or _UNKNOWN_MODEL
    if not usage:
        return _Saving(model, 0, 0, None)
    input_tokens = _int_or_zero(usage.get("input_tokens"))
    output_tokens = _int_or_zero(usage.get("output_tokens"))
    usd_pico: int | None = None
    if model != _UNKNOWN_MODEL:
        try:
            usd = price(model, usage, table=table)
            usd_pico = int((usd * _PICO).to_integral_value(ROUND_HALF_EVEN))
        except TokenOptError as exc:  # unknown model or unreadable usage: tokens only
            logger.debug("No price for cached response of %r: %s", model, exc)
    return _Saving(model, input_tokens, output_tokens, usd_pico)


# ---------------------------------------------------------------------------
# Semantic matching: the prompt's text and what must match exactly


_HUMAN_CLASSES = frozenset({"HumanMessage", "HumanMessageChunk"})


def _content_text(content: Any) -> str | None:
    """Text of a message content; None when it holds anything but text (images...)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                return None
            parts.append(text)
        else:
            return None
    return "\n".join(parts)


def prompt_text(prompt: str) -> tuple[str, str] | None:
    """Split a cache prompt into (exact context, text to compare), or None.

    For chat models langchain-core passes `dumps(messages)`: the text is the content
    of the last human message, and the context (every earlier message, and the last
    one's other fields) must match exactly. A plain string prompt (text LLMs) is its
    own text with an empty context. None means the prompt cannot be matched
    semantically (last message not a human text message, images, ...).

    Example:
        >>> from langchain_core.load import dumps
        >>> from langchain_core.messages import HumanMessage
        >>> prompt_text(dumps([HumanMessage("What is 2+2?")]))[1]
        'What is 2+2?'
    """
    if not prompt.startswith("[{"):
        return "", prompt
    try:
        messages = json.loads(prompt)
    except ValueError:
        return "", prompt
    if not (
        isinstance(messages, list)
        and messages
        and all(isinstance(m, dict) and m.get("lc") == 1 for m in messages)
    ):
        return "", prompt
    last = messages[-1]
    ident = last.get("id")
    kwargs = last.get("kwargs")
    if not (isinstance(ident, list) and ident and ident[-1] in _HUMAN_CLASSES):
        return None
    if not isinstance(kwargs, dict):
        return None
    text = _content_text(kwargs.get("content"))
    if text is None or not text.strip():
        return None
    rest = {key: value for key, value in kwargs.items() if key != "content"}
    context = json.dumps([*messages[:-1], rest], sort_keys=True, separators=(",", ":"))
    return context, text


_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(_UNIT_WORDS.split(" "))}
_NUMBER_WORDS.update(
    {
        "thirty": "30",
        "forty": "40",
        "fifty": "50",
        "sixty": "60",
        "seventy": "70",
        "eighty": "80",
        "ninety": "90",
        "hundred": "100",
        "thousand": "1000",
        "million": "1000000",
        "billion": "1000000000",
        "trillion": "1000000000000",
        "dozen": "12",
        "half": "0.5",
        "twice": "2",
        "double": "2",
        "triple": "3",
    }
)
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_COMPOUND_NUMBER_RE = re.compile(rf"\b({_TENS})[- ]({_UNITS})\b", re.IGNORECASE)
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}\b)")
# A number, or an arithmetic expression of numbers: "2+2", "3 * 4", "-5", "10%".
_MATH_RE = re.compile(
    r"(?:(?<![\w)])[-−])?\d+(?:\.\d+)?"
    r"(?:\s*[-−+*/×÷^=<>]+\s*[-−]?\d+(?:\.\d+)?)*%?"
)
_FENCED_RE = re.compile(r"```.*?```", re.DOTALL)
_INLINE_CODE_RE = re.compile(r"`[^`\n]+`")
_QUOTED_RE = re.compile(
    r'"([^"\n]+)"|“([^”\n]+)”|‘([^’\n]+)’|«([^»\n]+)»|(?<!\w)\'([^\'\n]+)\'(?!\w)'
)
# Identifiers, paths, URLs, e-mails: os.path.join, my_var, camelCase, a/b, x@y.
_IDENTIFIER_RE = re.compile(r"\b(?:[A-Za-z_][\w]*(?:[._/\\:@#][\w]+)+|[a-z]+_\w+|[a-z]+[A-Z]\w*)\b")
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "nowhere",
        "neither",
        "nor",
        "without",
        "cannot",
        "except",
    }
)
# The question word decides what kind of answer is wanted ("Where is Paris?" is not
# "Why is Paris?"), so the set of them must match too.
_QUESTION_WORDS = frozenset(
    {"what", "why", "where", "when", "who", "whom", "whose", "which", "how"}
)
_CAPITALIZED_RE = re.compile(r"\b[A-Z][a-z]+\b")
_SENTENCE_END = frozenset(".!?:;\n\"'“‘(*-#>")


def _normalize_quotes(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'") if "’" in text else text


def exactness_features(text: str) -> tuple[Any, ...]:
    """What two prompts must share exactly to be answered by one response.

    Numbers (digits and number words) and arithmetic in order, the number of
    negations, quoted strings, code spans, identifiers and question words. "What is 2+2?" and
    "What is 2+3?" differ here, so no similarity score can match them.

    Example:
        >>> exactness_features("What is 2+2?") == exactness_features("what is 2 + 2")
        True
        >>> exactness_features("What is 2+2?") == exactness_features("What is 2+3?")
        False
    """
    text = _normalize_quotes(text)
    code = sorted(span.strip("`").strip() for span in _FENCED_RE.findall(text))
    text = _FENCED_RE.sub(" ", text)
    code += sorted(span.strip("`").strip() for span in _INLINE_CODE_RE.findall(text))
    text = _INLINE_CODE_RE.sub(" ", text)
    quoted = sorted(next(g for g in match if g) for match in _QUOTED_RE.findall(text))
    identifiers = sorted({match.lower() for match in _IDENTIFIER_RE.findall(text)})
    numeric_text = _COMPOUND_NUMBER_RE.sub(
        lambda m: str(
            int(_NUMBER_WORDS[m.group(1).lower()]) + int(_NUMBER_WORDS[m.group(2).lower()])
        ),
        text,
    )
    numeric_text = _NUMBER_WORD_RE.sub(lambda m: _NUMBER_WORDS[m.group(1).lower()], numeric_text)
    numeric_text = _THOUSANDS_RE.sub("", numeric_text)
    numbers = tuple(
        re.sub(r"\s+", "", match).replace("−", "-") for match in _MATH_RE.findall(numeric_text)
    )
    words = _WORD_RE.findall(text.lower())
    negations = sum(1 for word in words if word in _NEGATIONS or word.endswith("n't"))
    questions = tuple(sorted({word.split("'")[0] for word in words} & _QUESTION_WORDS))
    return (numbers, negations, tuple(quoted), tuple(code), tuple(identifiers), questions)


def _proper_nouns(text: str) -> set[str]:
    """Capitalized words that do not start a sentence, lower-cased: likely names."""
    names = set()
    for match in _CAPITALIZED_RE.finditer(text):
        before = text[: match.start()].rstrip(" \t")
        if before and before[-1] not in _SENTENCE_END:
            names.add(match.group().lower())
    return names


def _word_set(text: str) -> set[str]:
    words = set()
    for word in _WORD_RE.findall(_normalize_quotes(text).lower()):
        words.add(word[:-2] if word.endswith("'s") else word)
    return words


def _names_agree(a: str, b: str) -> bool:
    """Every capitalized name inside one text also occurs (in any case) in the other.

    Catches "capital of France" vs "capital of Spain" that a bag of words scores high.
    """
    words_a, words_b = _word_set(a), _word_set(b)
    return _proper_nouns(a) <= words_b and _proper_nouns(b) <= words_a


def _digest(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogatepass"))
        hasher.update(b"\x1f")
    return hasher.hexdigest()


class _SemanticIndex:
    """This process's view of the semantic side index (one `TextIndex`).

    Keys are entry hashes; each belongs to a partition (llm_string, exact context,
    exactness features), and queries only see their own partition.
    """

    def __init__(self) -> None:
        # Imported here: scikit-learn is only paid for when semantic matching is on.
        from langchain_tokenopt.core.textindex import TextIndex

        self.index = TextIndex(word_ngram_range=(1, 2), char_ngrams=True, sublinear_tf=True)
        self.partition_of: dict[str, str] = {}
        self.seen_version: Any = None
        self.last_check = -math.inf
        self.lock = threading.Lock()

    def add(self, key: str, partition: str, text: str) -> None:
        with self.lock:
            self.partition_of[key] = partition
            self.index.add(key, text)

    def forget(self, key: str) -> None:
        with self.lock:
            if self.partition_of.pop(key, None) is not None:
                self.index.remove(key)

    def reset(self) -> None:
        with self.lock:
            for key in list(self.partition_of):
                self.index.remove(key)
            self.partition_of.clear()
            self.seen_version = None
            self.last_check = -math.inf

    def replace_all(self, items: dict[str, tuple[str, str]]) -> None:
        """Make the index hold exactly `items` (key -> (partition, text))."""
        with self.lock:
            for key in [k for k in self.partition_of if k not in items]:
                del self.partition_of[key]
                self.index.remove(key)
            new = [(key, text) for key, (_, text) in items.items() if key not in self.partition_of]
            for key, (partition, _) in items.items():
                self.partition_of[key] = partition
            if new:
                self.index.add_many(new)

    def candidates(self, partition: str, text: str, threshold: float) -> list[tuple[str, float]]:
        with self.lock:
            if not self.partition_of:
                return []
            found = self.index.query(
                text,
                k=_SEMANTIC_CANDIDATES,
                min_score=threshold,
                where=lambda key: self.partition_of.get(str(key)) == partition,
            )
            return [
                (str(key), score)
                for key, score in found
                if _names_agree(text, self.index.text(key) or "")
            ]


def _parse_semantic_item(value: Any) -> tuple[str, str] | None:
    if (
        isinstance(value, dict)
        and isinstance(value.get("p"), str)
        and isinstance(value.get("t"), str)
    ):
        return value["p"], value["t"]
    return None


# ---------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class ModelCacheStats:
    """What cache hits saved for one model.

    `unpriced_hits` counts hits whose model has no known price: their tokens are
    counted, their dollars are not.
    """

    hits: int = 0
    saved_input_tokens: int = 0
    saved_output_tokens: int = 0
    saved_usd: Decimal = Decimal(0)
    unpriced_hits: int = 0


@dataclass(frozen=True)
class CacheStats:
    """Hits, misses and what the hits saved, summed over every process sharing the store.

    Example:
        >>> stats = TokenOptCache().stats()
        >>> (stats.hits, stats.misses, stats.hit_rate, stats.saved_usd)
        (0, 0, 0.0, Decimal('0'))
    """

    hits: int
    misses: int
    semantic_hits: int
    entries: int
    saved_input_tokens: int
    saved_output_tokens: int
    saved_usd: Decimal
    by_model: Mapping[str, ModelCacheStats] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        """Hits over lookups, 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


_MODEL_FIELDS = ("hits", "in", "out", "usd", "unpriced")


def _build_stats(
    totals: Mapping[str, Any], model_counters: Mapping[str, Mapping[str, Any]], entries: int
) -> CacheStats:
    by_model: dict[str, ModelCacheStats] = {}
    for model, counters in sorted(model_counters.items()):
        by_model[model] = ModelCacheStats(
            hits=_int_or_zero(counters.get("hits")),
            saved_input_tokens=_int_or_zero(counters.get("in")),
            saved_output_tokens=_int_or_zero(counters.get("out")),
            saved_usd=Decimal(_int_or_zero(counters.get("usd"))) / _PICO,
            unpriced_hits=_int_or_zero(counters.get("unpriced")),
        )
    return CacheStats(
        hits=_int_or_zero(totals.get("hits")),
        misses=_int_or_zero(totals.get("misses")),
        semantic_hits=_int_or_zero(totals.get("semantic_hits")),
        entries=entries,
        saved_input_tokens=sum(m.saved_input_tokens for m in by_model.values()),
        saved_output_tokens=sum(m.saved_output_tokens for m in by_model.values()),
        saved_usd=sum((m.saved_usd for m in by_model.values()), Decimal(0)),
        by_model=by_model,
    )


# Caches with counters not yet written to their store, flushed at interpreter exit.
_LIVE_CACHES: weakref.WeakSet[TokenOptCache] = weakref.WeakSet()


def _flush_live_caches() -> None:
    for cache in list(_LIVE_CACHES):
        try:
            cache.flush()
        except Exception:  # exit must not fail because a store went away
            logger.warning("Could not flush cache statistics at exit", exc_info=True)


atexit.register(_flush_live_caches)


# ---------------------------------------------------------------------------
# The cache


class TokenOptCache(BaseCache):
    """LangChain LLM cache with TTL, LRU bound, guarded semantic match and savings stats.

    Keys hash `llm_string` and prompt, so a different model, temperature, bound tools
    or stop sequence is a different entry. Values are `langchain_core.load` JSON; an
    entry that cannot be read (corrupt, foreign, or holding a class other than
    generations and messages) is a miss, is deleted and is logged. Every hit returns
    fresh objects (a per-process memo of decoded entries is deep-copied, which is
    cheaper than reviving the JSON again), with replayed messages marked by
    `CACHE_HIT_KEY` in `response_metadata`.

    A cache never takes the application down: when the store is unavailable
    (`StoreUnavailableError`: Redis stopped, unreachable or stalled) a lookup is a miss
    (counted as one, so the model is called), an update is skipped (that response is
    not cached), and hit/miss counters and access times stay buffered in this process
    and are written by the first flush that succeeds (counters that reached the store
    are not written again). A WARNING is logged at most once per 30 s per cache, with
    the number of failures left unlogged since the previous one, and an INFO when the
    store answers again. A stalled store still costs each call up to the store's own
    timeout (`RedisStore(socket_timeout_seconds=..., retries=...)`). One edge: a
    counter add that times out after Redis applied it is retried, so it may count
    twice (a refused or reset connection applied nothing). `stats()`, `clear()` and
    `reset_stats()` are explicit requests: they raise `StoreUnavailableError`.

    Args:
        store: where entries and counters live; `MemoryStore()` when None. Use
            `TokenOptCache.sqlite(path)` for one machine, `TokenOptCache.redis(url)`
            for many.
        ttl_seconds: entries expire this long after they are written (store TTL;
            Redis expires them natively).
        max_entries: LRU bound. Approximate by design, so the hot path stays O(1):
            each insert bumps a shared counter; when it passes the bound, one pass
            scans the access-time side keys, deletes the least recently used entries
            down to 90% of the bound (exactly the bound when it is below 10) and
            resets the counter to the live count. Access times reach the store at the
            next flush (see `flush_interval_seconds`), so recency has that
            resolution; processes evicting at the same moment may remove one extra
            batch; entries that expired by TTL are only uncounted at the next pass.
        similarity_threshold: opt-in semantic matching in (0, 1]. A miss then looks for
            an entry with the same `llm_string` and the same conversation before the
            last human message, whose last human message has the same exactness
            features (numbers, negations, quoted strings, code, identifiers and
            question words, see `exactness_features`) and the same capitalized names,
            and whose TF-IDF cosine (`TextIndex`, on the message text, not LangChain's
            JSON) is at least the threshold. 0.7 is a good start: on the pair sets in
            tests/unit_tests/test_cache_semantic.py it recalls 18 of 20 paraphrases
            and answers none of 34 near-misses (those never match at any threshold)
            nor 4 antonym-style ones (those do below about 0.6: TF-IDF is lexical).
            The index lives in each process: it is loaded from the store on first use
            and re-synced at most once a second when another process wrote
            (`refresh()` forces it). Entries written without a threshold are
            exact-only.
        namespace: key prefix; caches with different namespaces share nothing.
        price_table: prices for the dollars saved (overrides, default for unknown
            models); genai-prices when None.
        flush_interval_seconds: hit/miss counters and access times are buffered in
            the process and written to the store (atomic `add`) at most this often,
            on `stats()`, on `flush()` and at interpreter exit. 0 writes through on
            every lookup. A `multiprocessing` child ends with `os._exit` (no atexit):
            call `cache.flush()` before it returns.
        raise_on_store_error: make `lookup` / `update` (and async twins) raise
            `StoreUnavailableError` instead of degrading to a miss / a skipped write,
            for applications that prefer to fail (statistics writes still only log).

    Example:
        >>> from langchain_core.outputs import Generation
        >>> cache = TokenOptCache(ttl_seconds=3600, max_entries=10_000)
        >>> cache.update("prompt", "llm", [Generation(text="hi")])
        >>> cache.lookup("prompt", "llm")[0].text
        'hi'
        >>> cache.stats().hits
        1
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        ttl_seconds: float | None = None,
        max_entries: int | None = None,
        similarity_threshold: float | None = None,
        namespace: str = "tokenopt",
        price_table: PriceTable | None = None,
        flush_interval_seconds: float = 1.0,
        raise_on_store_error: bool = False,
    ) -> None:
        if ttl_seconds is not None and not (
            isinstance(ttl_seconds, (int, float)) and ttl_seconds > 0
        ):
            raise ValueError(f"ttl_seconds must be a positive number or None, got {ttl_seconds!r}")
        if max_entries is not None and not (
            isinstance(max_entries, int) and not isinstance(max_entries, bool) and max_entries > 0
        ):
            raise ValueError(f"max_entries must be a positive int or None, got {max_entries!r}")
        if similarity_threshold is not None and not (
            isinstance(similarity_threshold, (int, float)) and 0 < similarity_threshold <= 1
        ):
            raise ValueError(
                "similarity_threshold must be in (0, 1] (e.g. 0.9) or None, "
                f"got {similarity_threshold!r}"
            )
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"namespace must be a non-empty string, got {namespace!r}")
        if not (isinstance(flush_interval_seconds, (int, float)) and flush_interval_seconds >= 0):
            raise ValueError(f"flush_interval_seconds must be >= 0, got {flush_interval_seconds!r}")
        self.store: Store = store if store is not None else MemoryStore()
        self.ttl_seconds = float(ttl_seconds) if ttl_seconds is not None else None
        self.max_entries = max_entries
        self.similarity_threshold = (
            float(similarity_threshold) if similarity_threshold is not None else None
        )
        self.namespace = namespace
        self.price_table = price_table
        self.flush_interval_seconds = float(flush_interval_seconds)
        self.raise_on_store_error = bool(raise_on_store_error)

        self._entries_ns = f"{namespace}:cache"
        self._stats_ns = f"{namespace}:cachestats"
        self._entry_prefix = f"{self._entries_ns}:e:"
        self._access_prefix = f"{self._entries_ns}:a:"
        self._semantic_prefix = f"{self._entries_ns}:q:"
        self._count_key = f"{self._entries_ns}:n"
        # Outside the entries namespace so that clear() can bump it instead of
        # resetting it, which tells other processes to re-sync.
        self._semantic_version_key = f"{namespace}:cacheindex:version"
        self._model_prefix = f"{self._stats_ns}:m:"

        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._touches: dict[str, tuple[float, float | None]] = {}
        self._last_flush = time.monotonic()
        # Store outage bookkeeping: failures since the store last answered, monotonic
        # time of the last outage warning, failures not logged since that warning.
        self._outage_failures = 0
        self._outage_warned_at: float | None = None
        self._outage_suppressed = 0
        self._semantic = _SemanticIndex() if self.similarity_threshold is not None else None
        # Recently decoded entries (key -> (serialized payload, pristine generations)):
        # a deep copy is about 3x cheaper than reviving langchain_core.load JSON, and
        # comparing the payload makes a stale copy impossible to serve.
        self._decoded: LRUCache[str, tuple[str, list[Generation]]] = LRUCache(_DECODED_ENTRIES)
        _LIVE_CACHES.add(self)

    # -- constructors -------------------------------------------------------

    @classmethod
    def sqlite(cls, path: str, **kwargs: Any) -> TokenOptCache:
        """A cache in the SQLite file `path` (WAL; shared by processes on one machine).

        Example:
            >>> cache = TokenOptCache.sqlite(":memory:", ttl_seconds=86_400)
        """
        return cls(SQLiteStore(path), **kwargs)

    @classmethod
    def redis(
        cls, url: str, *, store_options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> TokenOptCache:
        """A cache in Redis at `url` (needs the `redis` extra); native TTL expiry.

        `store_options` go to `RedisStore` (e.g. `socket_timeout_seconds`, `retries`:
        how long a call waits on a stalled Redis before the cache treats it as a miss).

        Example::

            cache = TokenOptCache.redis(
                "redis://localhost:6379/0", store_options={"socket_timeout_seconds": 0.2}
            )
        """
        from langchain_tokenopt.stores import RedisStore

        return cls(RedisStore(url, **dict(store_options or {})), **kwargs)

    # -- keys and entries ---------------------------------------------------

    def _hash(self, prompt: str, llm_string: str) -> str:
        return _digest(llm_string, prompt)

    def _remaining_ttl(self, entry: Mapping[str, Any]) -> float | None:
        if self.ttl_seconds is None:
            return None
        created = entry.get("c")
        if not isinstance(created, (int, float)):
            return self.ttl_seconds
        return created + self.ttl_seconds - time.time()

    def _encode(self, llm_string: str, return_val: RETURN_VAL_TYPE) -> dict[str, Any] | None:
        generations = list(return_val)
        payload = _serialize(generations)
        if '"type": "not_implemented"' in payload:
            logger.warning(
                "Not caching a response that langchain_core.load cannot serialize "
                "(a generation or message field is not JSON-serializable)."
            )
            return None
        saving = _saving_of(generations, llm_string, self.price_table)
        entry = {
            "v": _ENTRY_VERSION,
            "g": payload,
            "m": saving.model,
            "i": saving.input_tokens,
            "o": saving.output_tokens,
            "u": saving.usd_pico,
            "c": time.time(),
        }
        return entry

    def _semantic_item(self, prompt: str, llm_string: str) -> tuple[str, str] | None:
        """(partition, text) of a prompt, or None if it cannot match semantically."""
        split = prompt_text(prompt)
        if split is None:
            return None
        context, text = split
        features = json.dumps(exactness_features(text), separators=(",", ":"))
        return _digest(llm_string, context, features)[:32], text

    def _generations(self, key: str, entry: Any) -> list[Generation]:
        """Fresh generations of a stored entry; `_CorruptEntryError` if unreadable."""
        payload = entry.get("g") if isinstance(entry, dict) else None
        if isinstance(payload, str) and entry.get("v") == _ENTRY_VERSION:
            with self._lock:
                remembered = self._decoded.get(key)
            if remembered is not None and remembered[0] == payload:
                return [_fresh_copy(generation) for generation in remembered[1]]
        generations = _decode_generations(entry)
        pristine = [_fresh_copy(generation) for generation in generations]
        with self._lock:
            self._decoded[key] = (entry["g"], pristine)
        return generations

    @staticmethod
    def _mark(generations: list[Generation], score: float | None) -> list[Generation]:
        """Mark freshly deserialized messages as replayed from this cache."""
        for generation in generations:
            message = getattr(generation, "message", None)
            if isinstance(message, BaseMessage):
                message.response_metadata[CACHE_HIT_KEY] = True
                if score is not None:
                    message.response_metadata[CACHE_SIMILARITY_KEY] = round(score, 4)
        return generations

    def _corrupt(self, key: str, error: Exception) -> None:
        logger.warning("Dropping unreadable cache entry %s: %s", key, error)
        if self._semantic is not None:
            self._semantic.forget(key)

    # -- store outages --------------------------------------------------------

    def _store_failed(self, action: str, error: StoreUnavailableError) -> None:
        """Note a store outage; warn unless this cache warned less than 30 s ago."""
        now = time.monotonic()
        with self._lock:
            self._outage_failures += 1
            last = self._outage_warned_at
            if last is not None and now - last < _OUTAGE_WARNING_INTERVAL_SECONDS:
                self._outage_suppressed += 1
                return
            suppressed, self._outage_suppressed = self._outage_suppressed, 0
            self._outage_warned_at = now
        logger.warning(
            "TokenOptCache could not %s (%s); lookups are misses, responses are not "
            "cached and statistics stay buffered until the store is back.%s",
            action,
            error,
            f" {suppressed} failures since the previous warning were not logged."
            if suppressed
            else "",
        )

    def _store_answered(self) -> None:
        """End an outage, if one was going on, with an INFO saying how long it lasted."""
        if not self._outage_failures:  # the common case: no lock
            return
        with self._lock:
            failures, self._outage_failures = self._outage_failures, 0
            self._outage_warned_at = None
            self._outage_suppressed = 0
        if failures:
            logger.info("TokenOptCache store answers again after %d failed calls.", failures)

    # -- counters -----------------------------------------------------------

    def _count(self, key: str, amount: int) -> None:
        self._pending[key] = self._pending.get(key, 0) + amount

    def _record_hit(self, key: str, entry: Mapping[str, Any], semantic: bool) -> None:
        model = entry.get("m")
        model = model if isinstance(model, str) and model else _UNKNOWN_MODEL
        prefix = f"{self._model_prefix}{model}:"
        usd = entry.get("u")
        with self._lock:
            self._count(f"{self._stats_ns}:hits", 1)
            if semantic:
                self._count(f"{self._stats_ns}:semantic_hits", 1)
            self._count(prefix + "hits", 1)
            self._count(prefix + "in", _int_or_zero(entry.get("i")))
            self._count(prefix + "out", _int_or_zero(entry.get("o")))
            if isinstance(usd, int) and not isinstance(usd, bool):
                self._count(prefix + "usd", usd)
            else:
                self._count(prefix + "unpriced", 1)
            if self.max_entries is not None:
                ttl = self._remaining_ttl(entry)
                expires = None if ttl is None else time.time() + ttl
                self._touches[key] = (time.time(), expires)

    def _record_miss(self) -> None:
        with self._lock:
            self._count(f"{self._stats_ns}:misses", 1)

    def _take_pending(self, force: bool) -> tuple[dict[str, int], dict[str, Any]] | None:
        with self._lock:
            if not self._pending and not self._touches:
                return None
            now = time.monotonic()
            if not force and now - self._last_flush < self.flush_interval_seconds:
                return None
            pending, touches = self._pending, self._touches
            self._pending, self._touches = {}, {}
            self._last_flush = now
            return pending, touches

    def _restore_pending(
        self,
        pending: Mapping[str, int],
        touches: Mapping[str, tuple[float, float | None]],
    ) -> None:
        """Put back what a failed flush did not write, for the next flush."""
        with self._lock:
            for key, amount in pending.items():
                self._count(key, amount)
            for key, touch in touches.items():
                self._touches.setdefault(key, touch)  # a newer access wins

    def _touch_writes(
        self, touches: Mapping[str, tuple[float, float | None]]
    ) -> list[tuple[str, float, float | None]]:
        """(entry key, access time, remaining ttl) of the touches whose entry is live."""
        writes = []
        now = time.time()
        for key, (accessed, expires) in touches.items():
            ttl = None if expires is None else expires - now
            if ttl is None or ttl > 0:
                writes.append((key, accessed, ttl))
        return writes

    def flush(self) -> None:
        """Write buffered counters and access times to the store now.

        Never raises for an unavailable store: what was not written stays buffered.
        """
        taken = self._take_pending(force=True)
        if taken is not None:
            self._write_pending(*taken)

    async def aflush(self) -> None:
        """Async `flush`."""
        taken = self._take_pending(force=True)
        if taken is not None:
            await self._awrite_pending(*taken)

    def _maybe_flush(self) -> None:
        taken = self._take_pending(force=False)
        if taken is not None:
            self._write_pending(*taken)

    async def _amaybe_flush(self) -> None:
        taken = self._take_pending(force=False)
        if taken is not None:
            await self._awrite_pending(*taken)

    def _flush_failed(
        self,
        error: Exception,
        pending: dict[str, int],
        touches: dict[str, tuple[float, float | None]],
        written: tuple[set[str], set[str]],
    ) -> None:
        """Keep the counters and access times a flush did not write; log the failure.

        `written` holds the counter keys and the touched entry keys that reached the
        store: those are not kept, so a retry never writes them twice.
        """
        counters, touched = written
        self._restore_pending(
            {k: v for k, v in pending.items() if k not in counters},
            {k: v for k, v in touches.items() if k not in touched},
        )
        if isinstance(error, StoreUnavailableError):
            self._store_failed("write its statistics", error)
        else:
            logger.warning("Could not write cache statistics; keeping them", exc_info=error)

    def _write_pending(
        self, pending: dict[str, int], touches: dict[str, tuple[float, float | None]]
    ) -> None:
        counters: set[str] = set()
        touched: set[str] = set()
        try:
            for key, amount in pending.items():
                if amount:
                    self.store.add(key, amount)
                counters.add(key)
            for key, accessed, ttl in self._touch_writes(touches):
                self.store.set(self._access_prefix + key, accessed, ttl_seconds=ttl)
                touched.add(key)
        except Exception as exc:  # a flush must never fail the call that triggered it
            self._flush_failed(exc, pending, touches, (counters, touched))
            return
        self._store_answered()

    async def _awrite_pending(
        self, pending: dict[str, int], touches: dict[str, tuple[float, float | None]]
    ) -> None:
        counters: set[str] = set()
        touched: set[str] = set()
        try:
            for key, amount in pending.items():
                if amount:
                    await self.store.aadd(key, amount)
                counters.add(key)
            for key, accessed, ttl in self._touch_writes(touches):
                await self.store.aset(self._access_prefix + key, accessed, ttl_seconds=ttl)
                touched.add(key)
        except Exception as exc:  # a flush must never fail the call that triggered it
            self._flush_failed(exc, pending, touches, (counters, touched))
            return
        self._store_answered()

    # -- LRU ----------------------------------------------------------------

    def _eviction_plan(self, access_times: list[tuple[float, str]]) -> tuple[list[str], int]:
        """Keys to evict (oldest access first) and the live count that remains."""
        assert self.max_entries is not None
        live = len(access_times)
        if live <= self.max_entries:
            return [], live
        target = self.max_entries - self.max_entries // 10
        access_times.sort()
        victims = [key for _, key in access_times[: live - target]]
        return victims, live - len(victims)

    def _scan_access_times(self) -> list[tuple[float, str]]:
        start = len(self._access_prefix)
        return [
            (float(value), key[start:])
            for key, value in self.store.scan(self._access_prefix)
            if isinstance(value, (int, float))
        ]

    async def _ascan_access_times(self) -> list[tuple[float, str]]:
        start = len(self._access_prefix)
        return [
            (float(value), key[start:])
            async for key, value in self.store.ascan(self._access_prefix)
            if isinstance(value, (int, float))
        ]

    def _evict(self) -> None:
        self.flush()
        victims, live = self._eviction_plan(self._scan_access_times())
        for key in victims:
            self._delete_keys(key)
        self.store.set(self._count_key, live)
        if victims:
            logger.debug("Evicted %d least recently used cache entries", len(victims))

    async def _aevict(self) -> None:
        await self.aflush()
        victims, live = self._eviction_plan(await self._ascan_access_times())
        for key in victims:
            await self._adelete_keys(key)
        await self.store.aset(self._count_key, live)
        if victims:
            logger.debug("Evicted %d least recently used cache entries", len(victims))

    def _delete_keys(self, key: str) -> None:
        self.store.delete(self._entry_prefix + key)
        if self.max_entries is not None:
            self.store.delete(self._access_prefix + key)
        if self._semantic is not None:
            self.store.delete(self._semantic_prefix + key)
            self._semantic.forget(key)

    async def _adelete_keys(self, key: str) -> None:
        await self.store.adelete(self._entry_prefix + key)
        if self.max_entries is not None:
            await self.store.adelete(self._access_prefix + key)
        if self._semantic is not None:
            await self.store.adelete(self._semantic_prefix + key)
            self._semantic.forget(key)

    # -- semantic side index -------------------------------------------------

    def _semantic_due(self, force: bool) -> bool:
        semantic = self._semantic
        if semantic is None:
            return False
        now = time.monotonic()
        if not force and now - semantic.last_check < _SEMANTIC_REFRESH_SECONDS:
            return False
        semantic.last_check = now
        return True

    def _load_semantic(self, version: Any, items: dict[str, tuple[str, str]]) -> None:
        assert self._semantic is not None
        self._semantic.replace_all(items)
        self._semantic.seen_version = version

    def refresh(self, *, force: bool = True) -> None:
        """Sync this process's semantic index with the store (entries of other processes)."""
        if not self._semantic_due(force):
            return
        assert self._semantic is not None
        version = self.store.get(self._semantic_version_key)
        if version == self._semantic.seen_version:
            return
        start = len(self._semantic_prefix)
        items = {}
        for key, value in self.store.scan(self._semantic_prefix):
            item = _parse_semantic_item(value)
            if item is not None:
                items[key[start:]] = item
        self._load_semantic(version, items)

    async def arefresh(self, *, force: bool = True) -> None:
        """Async `refresh`."""
        if not self._semantic_due(force):
            return
        assert self._semantic is not None
        version = await self.store.aget(self._semantic_version_key)
        if version == self._semantic.seen_version:
            return
        start = len(self._semantic_prefix)
        items = {}
        async for key, value in self.store.ascan(self._semantic_prefix):
            item = _parse_semantic_item(value)
            if item is not None:
                items[key[start:]] = item
        self._load_semantic(version, items)

    def _note_semantic_write(self, key: str, item: tuple[str, str], version: Any) -> None:
        assert self._semantic is not None
        self._semantic.add(key, *item)
        seen = self._semantic.seen_version
        # Nobody else wrote since our last sync: our own write needs no re-scan.
        if isinstance(seen, int) and version == seen + 1:
            self._semantic.seen_version = version

    # -- BaseCache ----------------------------------------------------------

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The cached generations for (prompt, llm_string), marked as a hit, or None.

        None also when the store is unavailable (logged; see the class docstring).
        """
        try:
            found = self._find(prompt, llm_string)
        except StoreUnavailableError as exc:
            if self.raise_on_store_error:
                raise
            self._store_failed("look up a cached response", exc)
            self._record_miss()
            return None  # no flush: the store just failed
        self._store_answered()
        if found is None:
            self._record_miss()
        self._maybe_flush()
        return found

    def _find(self, prompt: str, llm_string: str) -> list[Generation] | None:
        """`lookup` without the miss count and the flush; hits are recorded."""
        key = self._hash(prompt, llm_string)
        entry = self.store.get(self._entry_prefix + key)
        found: list[Generation] | None = None
        if entry is not None:
            try:
                found = self._mark(self._generations(key, entry), None)
                self._record_hit(key, entry, semantic=False)
            except _CorruptEntryError as exc:
                self._corrupt(key, exc)
                self._delete_keys(key)
        if found is None and self._semantic is not None:
            found = self._semantic_lookup(prompt, llm_string)
        return found

    def _semantic_lookup(self, prompt: str, llm_string: str) -> list[Generation] | None:
        assert self._semantic is not None and self.similarity_threshold is not None
        item = self._semantic_item(prompt, llm_string)
        if item is None:
            return None
        self.refresh(force=False)
        partition, text = item
        for key, score in self._semantic.candidates(partition, text, self.similarity_threshold):
            entry = self.store.get(self._entry_prefix + key)
            if entry is None:  # expired or evicted elsewhere
                self._semantic.forget(key)
                continue
            try:
                generations = self._mark(self._generations(key, entry), score)
            except _CorruptEntryError as exc:
                self._corrupt(key, exc)
                self._delete_keys(key)
                continue
            self._record_hit(key, entry, semantic=True)
            return generations
        return None

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Async `lookup` through the store's async methods."""
        try:
            found = await self._afind(prompt, llm_string)
        except StoreUnavailableError as exc:
            if self.raise_on_store_error:
                raise
            self._store_failed("look up a cached response", exc)
            self._record_miss()
            return None
        self._store_answered()
        if found is None:
            self._record_miss()
        await self._amaybe_flush()
        return found

    async def _afind(self, prompt: str, llm_string: str) -> list[Generation] | None:
        """Async `_find`."""
        key = self._hash(prompt, llm_string)
        entry = await self.store.aget(self._entry_prefix + key)
        found: list[Generation] | None = None
        if entry is not None:
            try:
                found = self._mark(self._generations(key, entry), None)
                self._record_hit(key, entry, semantic=False)
            except _CorruptEntryError as exc:
                self._corrupt(key, exc)
                await self._adelete_keys(key)
        if found is None and self._semantic is not None:
            found = await self._asemantic_lookup(prompt, llm_string)
        return found

    async def _asemantic_lookup(self, prompt: str, llm_string: str) -> list[Generation] | None:
        assert self._semantic is not None and self.similarity_threshold is not None
        item = self._semantic_item(prompt, llm_string)
        if item is None:
            return None
        await self.arefresh(force=False)
        partition, text = item
        for key, score in self._semantic.candidates(partition, text, self.similarity_threshold):
            entry = await self.store.aget(self._entry_prefix + key)
            if entry is None:
                self._semantic.forget(key)
                continue
            try:
                generations = self._mark(self._generations(key, entry), score)
            except _CorruptEntryError as exc:
                self._corrupt(key, exc)
                await self._adelete_keys(key)
                continue
            self._record_hit(key, entry, semantic=True)
            return generations
        return None

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store `return_val` for (prompt, llm_string), with TTL, LRU and semantic upkeep.

        Skipped (and logged) when the store is unavailable; see the class docstring.
        """
        entry = self._encode(llm_string, return_val)
        if entry is None:
            return
        try:
            self._put(prompt, llm_string, entry)
        except StoreUnavailableError as exc:
            if self.raise_on_store_error:
                raise
            self._store_failed("store a response", exc)
            return
        self._store_answered()
        self._maybe_flush()

    def _put(self, prompt: str, llm_string: str, entry: dict[str, Any]) -> None:
        """Write an encoded entry with its side keys; evict when over `max_entries`."""
        key = self._hash(prompt, llm_string)
        ttl = self.ttl_seconds
        if self.max_entries is not None:
            # Access time first: an entry never exists without one, so eviction sees it.
            self.store.set(self._access_prefix + key, entry["c"], ttl_seconds=ttl)
        self.store.set(self._entry_prefix + key, entry, ttl_seconds=ttl)
        if self._semantic is not None:
            item = self._semantic_item(prompt, llm_string)
            if item is not None:
                self.store.set(
                    self._semantic_prefix + key, {"p": item[0], "t": item[1]}, ttl_seconds=ttl
                )
                version = self.store.add(self._semantic_version_key, 1)
                self._note_semantic_write(key, item, version)
        if self.max_entries is not None:
            count = self.store.add(self._count_key, 1)
            if count is not None and count > self.max_entries:
                self._evict()

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Async `update` through the store's async methods."""
        entry = self._encode(llm_string, return_val)
        if entry is None:
            return
        try:
            await self._aput(prompt, llm_string, entry)
        except StoreUnavailableError as exc:
            if self.raise_on_store_error:
                raise
            self._store_failed("store a response", exc)
            return
        self._store_answered()
        await self._amaybe_flush()

    async def _aput(self, prompt: str, llm_string: str, entry: dict[str, Any]) -> None:
        """Async `_put`."""
        key = self._hash(prompt, llm_string)
        ttl = self.ttl_seconds
        if self.max_entries is not None:
            await self.store.aset(self._access_prefix + key, entry["c"], ttl_seconds=ttl)
        await self.store.aset(self._entry_prefix + key, entry, ttl_seconds=ttl)
        if self._semantic is not None:
            item = self._semantic_item(prompt, llm_string)
            if item is not None:
                await self.store.aset(
                    self._semantic_prefix + key, {"p": item[0], "t": item[1]}, ttl_seconds=ttl
                )
                version = await self.store.aadd(self._semantic_version_key, 1)
                self._note_semantic_write(key, item, version)
        if self.max_entries is not None:
            count = await self.store.aadd(self._count_key, 1)
            if count is not None and count > self.max_entries:
                await self._aevict()

    def clear(self, **kwargs: Any) -> None:
        """Delete every entry of this namespace (statistics stay; see `reset_stats`)."""
        with self._lock:
            self._touches.clear()
            self._decoded.clear()
        self.store.clear(self._entries_ns)
        if self._semantic is not None:
            self._semantic.reset()
            self.store.add(self._semantic_version_key, 1)

    async def aclear(self, **kwargs: Any) -> None:
        """Async `clear`."""
        with self._lock:
            self._touches.clear()
            self._decoded.clear()
        await self.store.aclear(self._entries_ns)
        if self._semantic is not None:
            self._semantic.reset()
            await self.store.aadd(self._semantic_version_key, 1)

    # -- statistics -----------------------------------------------------------

    def reset_stats(self) -> None:
        """Forget hits, misses and savings (for every process sharing the store)."""
        with self._lock:
            self._pending.clear()
        self.store.clear(self._stats_ns)

    def _split_model_key(self, key: str) -> tuple[str, str] | None:
        model, _, name = key[len(self._model_prefix) :].rpartition(":")
        return (model, name) if model and name in _MODEL_FIELDS else None

    def stats(self) -> CacheStats:
        """Hits, misses, hit rate, live entries and savings, per model.

        Flushes this process's buffered counters first. Counting live entries scans
        the namespace, so this costs O(entries): call it for reports, not per request.
        """
        self.flush()
        totals = {
            name: self.store.get(f"{self._stats_ns}:{name}")
            for name in ("hits", "misses", "semantic_hits")
        }
        models: dict[str, dict[str, Any]] = {}
        for key, value in self.store.scan(self._model_prefix):
            split = self._split_model_key(key)
            if split is not None:
                models.setdefault(split[0], {})[split[1]] = value
        entries = sum(1 for _ in self.store.scan(self._entry_prefix))
        return _build_stats(totals, models, entries)

    async def astats(self) -> CacheStats:
        """Async `stats`."""
        await self.aflush()
        totals = {
            name: await self.store.aget(f"{self._stats_ns}:{name}")
            for name in ("hits", "misses", "semantic_hits")
        }
        models: dict[str, dict[str, Any]] = {}
        async for key, value in self.store.ascan(self._model_prefix):
            split = self._split_model_key(key)
            if split is not None:
                models.setdefault(split[0], {})[split[1]] = value
        entries = 0
        async for _ in self.store.ascan(self._entry_prefix):
            entries += 1
        return _build_stats(totals, models, entries)

    # -- streaming ------------------------------------------------------------

    def wrap_streaming(
        self, model: BaseChatModel | Runnable[Any, Any], **kwargs: Any
    ) -> CachedStreamRunnable:
        """`CachedStreamRunnable(model, self, **kwargs)`: cached `stream()` / `astream()`."""
        from langchain_tokenopt.cache.streaming import CachedStreamRunnable

        return CachedStreamRunnable(model, self, **kwargs)
