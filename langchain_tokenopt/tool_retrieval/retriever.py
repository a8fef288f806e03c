"""Which registered tools does a request need? A `BaseRetriever` over tool schemas.

Every bound tool's JSON schema is sent with every request, so an agent with 50 tools
pays for 50 schemas on each call even when one would do. `ToolRetriever` ranks a tool
registry against the request with the package's `TextIndex` (one TF-IDF document per
tool: its name, description and arguments) and returns the best few within a token
budget; `tool_retrieval.runnable` binds them to a chat model for each input.

A request of several sentences is also scored part by part and the picks go for
coverage, so "book a hotel and tell me the time in Tokyo" gets a tool for each ask; a
tool the request names verbatim ranks first. How each choice was made, and what it
is worth in recall, is in docs/benchmarks.md ("Tool retrieval").
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any, TypeAlias

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator

from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import TypedValidationModel, check_depth, shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError

if TYPE_CHECKING:  # numpy (and the index, which needs it) load on first use
    import numpy as np
    from numpy.typing import NDArray

    from langchain_tokenopt.core.textindex import TextIndex

__all__ = ["ToolLike", "ToolMatch", "ToolRetriever", "split_identifier", "tool_document"]

logger = logging.getLogger(__name__)

#: What a registry accepts: anything `convert_to_openai_tool` turns into a function tool.
ToolLike: TypeAlias = BaseTool | Callable[..., Any] | Mapping[str, Any] | type[BaseModel]

# Name words are written this many times into a tool's document (the name's weight).
_NAME_REPEATS = 2
# Character n-gram sizes of the index (docs/benchmarks.md, "Tool retrieval").
_CHAR_NGRAM_RANGE = (4, 5)
# A tool's score is its cosine times (its document's words / the longest's) to this power.
_LENGTH_EXPONENT = 0.1
# Argument schemas are read this deep (object properties, array items).
_MAX_SCHEMA_DEPTH = 2
# At most this many enum values of one argument go into the document.
_MAX_ENUM_VALUES = 20
# Longer queries keep only their head and tail (docs/benchmarks.md, "Tool retrieval").
_MAX_QUERY_CHARS = 4000
# A request is scored in at most this many parts (more sentences are grouped).
_MAX_PARTS = 12
# Picking for coverage: weight of the whole-request score next to the best part score,
# and how much of a part a pick covers when it reaches that part's best score.
_WHOLE_WEIGHT = 1.0
_COVERAGE = 0.8

# Each query asks the index for at least this many candidates (more when k is larger),
# so combining the latest message with recent turns and skipping tools that do not fit
# the budget still has candidates to choose from.
_MIN_FETCH = 32

# Up to this many tools, a request is searched for their names as plain substrings
# before it is read for identifiers (most requests name none).
_NAME_SEARCH_TOOLS = 64

# Iterable, but one tool (or name) rather than a list of them.
_NOT_A_LIST = (str, bytes, Mapping, BaseModel, type)

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NAME_SEPARATORS = re.compile(r"[\W_]+")
_WORD = re.compile(r"\w+")


def split_identifier(name: str) -> str:
    """Words of a snake_case, camelCase or dotted identifier.

    Example:
        >>> split_identifier("GeometryPresentation.createPresentation")
        'Geometry Presentation create Presentation'
        >>> split_identifier("get_HTTPResponse_code-v2")
        'get HTTP Response code v2'
    """
    spaced = _CAMEL_BOUNDARY.sub(" ", name)
    return " ".join(word for word in _NAME_SEPARATORS.split(spaced) if word)


def _clip(text: str) -> str:
    """`text`, or its head and tail when it is longer than `_MAX_QUERY_CHARS`."""
    if len(text) <= _MAX_QUERY_CHARS:
        return text
    half = _MAX_QUERY_CHARS // 2
    return text[:half] + "\n" + text[-half:]


# after . ? ! ; and a space, after their full-width forms (no space follows them in
# Chinese or Japanese text), and at line breaks
_SENTENCE_BREAK = re.compile(r"(?<=[.?!;])\s+|(?<=[。？！；])\s*|\n+")
_IDENTIFIER = re.compile(r"[A-Za-z_][\w.-]*")


def _request_parts(text: str) -> list[str]:
    """The sentences of a request, grouped into at most `_MAX_PARTS` parts."""
    parts = [part.strip() for part in _SENTENCE_BREAK.split(text) if _WORD.search(part)]
    if len(parts) > _MAX_PARTS:
        bounds = [i * len(parts) // _MAX_PARTS for i in range(_MAX_PARTS + 1)]
        parts = [" ".join(parts[start:end]) for start, end in pairwise(bounds)]
    return parts


def _named_tools(text: str) -> list[str]:
    """Identifiers in `text` that could be tool names: words joined by `_`, `.` or `-`,
    or camelCase (a plain word such as "search" does not count), first mention first.

    Example:
        >>> _named_tools("Use 'get_weather' then getForecast, not search or e-mail.")
        ['get_weather', 'getForecast', 'e-mail']
    """
    found: dict[str, None] = {}
    for match in _IDENTIFIER.finditer(text):
        word = match.group().rstrip(".-")
        if "_" in word or "." in word or "-" in word or _CAMEL_BOUNDARY.search(word):
            found[word] = None
    return list(found)


def _registered_names(text: str, registered: Mapping[str, object]) -> list[str]:
    """`_named_tools(text)` that are `registered`, in the same order.

    A name found there is part of `text`, so with none of a few registered names in it
    as a substring, nothing needs reading.
    """
    if len(registered) <= _NAME_SEARCH_TOOLS and not any(name in text for name in registered):
        return []
    return [name for name in _named_tools(text) if name in registered]


def _by_score(scores: NDArray[np.float64], first: Sequence[int]) -> list[int]:
    """Positions `first`, then the others by score (stable: ties keep position order)."""
    import numpy as np

    head = set(first)
    return [*first, *(int(i) for i in np.argsort(-scores, kind="stable") if int(i) not in head)]


def _cover(
    parts: NDArray[np.float64], whole: NDArray[np.float64], first: Sequence[int], picks: int
) -> list[int]:
    """Tool positions in the order that covers the parts of a request (docs/benchmarks.md).

    `parts[j, i]` is tool i's score for part j and `whole[i]` its score for the whole
    request. Each part starts uncovered (residual 1). Positions `first` are taken first,
    or else the best of `whole`. A pick's value is its best residual-weighted part score
    plus `_WHOLE_WEIGHT` times its whole score; taking tool i multiplies part j's
    residual by 1 - `_COVERAGE` * parts[j, i] / (part j's best score). After `picks`
    in all, the rest follow by best part score plus whole score.
    """
    import numpy as np

    best = parts.max(axis=1, keepdims=True)
    share = parts / np.where(best > 0, best, 1.0)
    residual = np.ones(parts.shape[0])
    taken = np.zeros(parts.shape[1], dtype=bool)
    order: list[int] = []
    leading = list(first) or [int(np.argmax(whole))]  # else the whole request's best
    while leading or len(order) < min(picks, parts.shape[1]):
        if leading:
            i = leading.pop(0)
        else:
            value = (residual[:, None] * parts).max(axis=0) + _WHOLE_WEIGHT * whole
            value[taken] = -np.inf
            i = int(np.argmax(value))
        order.append(i)
        taken[i] = True
        residual *= np.clip(1.0 - _COVERAGE * share[:, i], 0.0, 1.0)
    return _by_score(parts.max(axis=0) + _WHOLE_WEIGHT * whole, order)


def _argument_lines(schema: Mapping[str, Any], depth: int = 0) -> list[str]:
    """Split names, descriptions and enum values of the arguments in a JSON schema."""
    lines: list[str] = []
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return lines
    for arg_name, arg_schema in properties.items():
        parts = [split_identifier(str(arg_name))]
        if isinstance(arg_schema, Mapping):
            description = arg_schema.get("description")
            if isinstance(description, str):
                parts.append(description)
            enum = arg_schema.get("enum")
            if isinstance(enum, list):
                parts.append(" ".join(str(value) for value in enum[:_MAX_ENUM_VALUES]))
            if depth < _MAX_SCHEMA_DEPTH:
                lines.extend(_argument_lines(arg_schema, depth + 1))
                items = arg_schema.get("items")
                if isinstance(items, Mapping):
                    lines.extend(_argument_lines(items, depth + 1))
        lines.append(" ".join(part for part in parts if part))
    return lines


def tool_document(schema: Mapping[str, Any]) -> str:
    """The text a tool is indexed under, from its OpenAI tool schema.

    Example:
        >>> print(tool_document({"type": "function", "function": {
        ...     "name": "get_weather", "description": "Current weather.",
        ...     "parameters": {"type": "object", "properties": {
        ...         "city": {"type": "string", "description": "City name."}}}}}))
        get_weather
        get weather
        get weather
        Current weather.
        city City name.
    """
    function = schema["function"]
    name = str(function["name"])
    words = split_identifier(name)
    lines = [name, *([words] * _NAME_REPEATS)]
    description = function.get("description")
    if isinstance(description, str) and description:
        lines.append(description)
    parameters = function.get("parameters")
    if isinstance(parameters, Mapping):
        lines.extend(_argument_lines(parameters))
    return "\n".join(lines)


@dataclass(frozen=True)
class ToolMatch:
    """One selected tool.

    Example:
        >>> def get_weather(city: str) -> str:
        ...     "Current weather in a city."
        ...     return "sunny"
        >>> match = ToolRetriever([get_weather]).select("weather in Oslo")[0]
        >>> match.name, match.tool is get_weather, match.score > 0, match.tokens > 0
        ('get_weather', True, True, True)

    Attributes:
        tool: the object as registered (a `BaseTool`, function, pydantic class or dict).
        name: its function name.
        score: relevance to the query: the TF-IDF cosine times the length factor of
            docs/benchmarks.md, in [0, 1] (with recent turns, the latest message's score
            plus their down-weighted one). For a request of several sentences, the
            best of its score for the whole request and for any one part of it. 0.0
            for a tool included without matching (always-included or already called).
            Matches come in pick order, so for a request of several parts a later
            match can score higher than an earlier one (docs/benchmarks.md).
        tokens: what its schema alone adds to a request,
            `TokenCounter.count_tools([tool])`. A request with n tools costs less than
            the sum by (n - 1) times the per-request tool framing; `select` counts that.
    """

    tool: Any
    name: str
    score: float
    tokens: int


@dataclass
class _Entry:
    order: int  # registration sequence, breaks score ties
    tool: Any
    schema: dict[str, Any]
    length: int  # words in its document (see `_LENGTH_EXPONENT`)
    tokens: int | None = None  # counted on first use


def _normalize_tool(tool: Any, position: int) -> dict[str, Any]:
    """The OpenAI function-tool schema of `tool`, or TypeError naming what is wrong."""
    if isinstance(tool, (str, bytes)):
        raise ArgumentTypeError(
            f"Tool {position} is a {type(tool).__name__}, not a tool: pass BaseTool "
            "objects, @tool functions, python functions, pydantic classes or OpenAI tool "
            "dicts (use remove_tools to remove tools by name)."
        )
    check_depth(tool, f"tool {position}")
    try:
        schema = convert_to_openai_tool(tool)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ArgumentTypeError(
            f"Tool {position} ({type(tool).__name__}) cannot be converted to an OpenAI "
            f"function tool: {exc}"
        ) from exc
    function = schema.get("function")
    if schema.get("type") != "function" or not isinstance(function, Mapping):
        raise ArgumentTypeError(
            f"Tool {position} is not a function tool (type {shown(schema.get('type'))}); "
            "built-in provider tools cannot be retrieved, bind them directly."
        )
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ArgumentTypeError(f"Tool {position} has no function name.")
    return schema


def check_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < 0:
        raise InvalidArgumentError(f"{what} must be >= 0, got {value}")
    return value


def _new_index() -> TextIndex:
    from langchain_tokenopt.core.textindex import TextIndex

    return TextIndex(char_ngrams=True, char_ngram_range=_CHAR_NGRAM_RANGE)


class ToolRetriever(TypedValidationModel, BaseRetriever):
    """A retriever over a tool registry: which tools does this request need?

    Tools are anything `convert_to_openai_tool` accepts as a function tool: `BaseTool`
    (and `@tool` functions), plain python functions, pydantic classes and OpenAI tool
    dicts. Each is indexed by name, description and arguments (`tool_document`);
    `invoke(query)` returns `Document`s (page_content is the description, metadata
    holds `name`, `score` and `schema_tokens`), best first (a request of several
    sentences gets the best tool for each part before look-alikes of the first; see
    docs/benchmarks.md); `get_tool(name)` gives back the registered object. `select`
    returns `ToolMatch`es within a token budget.

    Guarantees:
        - At most `k` retrieved tools, plus the `always_include` ones (which come first
          and are kept even past `k` or the budget, with a warning for the budget).
        - Only tools sharing at least one term with the query are retrieved: a query
          about nothing in the registry gets no tools rather than arbitrary ones.
        - With a `token_budget`, `TokenCounter(model).count_tools(selected)` never
          exceeds it (unless always-included tools alone do): tools are taken in rank
          order and one that does not fit is skipped for the next.
        - A registered tool the request names verbatim (`get_weather`, `getWeather`)
          is retrieved before the others, within `k` and the budget.
        - `add_tools` / `remove_tools` update the index incrementally (a tool with the
          name of a registered one replaces it); nothing is rebuilt from scratch.
        - Retrieval is in-memory CPU work of about a millisecond, so the async methods
          run it inline rather than in a thread.

    Args:
        tools: the registry.
        k: how many tools to retrieve (`invoke(query, k=...)` overrides it per call).
        token_budget: most tokens the selected schemas may add to a request, or None.
        always_include: names of tools bound whatever the query (must be registered).
        model: model whose tokenizer and framing count schema tokens.

    Example:
        >>> from langchain_core.tools import tool
        >>> @tool
        ... def get_weather(city: str) -> str:
        ...     '''Current weather in a city.'''
        ...     return "sunny"
        >>> @tool
        ... def convert_currency(amount: float, to_currency: str) -> float:
        ...     '''Convert money to another currency.'''
        ...     return amount
        >>> retriever = ToolRetriever([get_weather, convert_currency], k=1)
        >>> [doc.metadata["name"] for doc in retriever.invoke("weather in Paris?")]
        ['get_weather']
        >>> [m.name for m in retriever.select("convert 20 dollars to yen")]
        ['convert_currency']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = 5
    token_budget: int | None = None
    always_include: tuple[str, ...] = ()
    model: str = "gpt-4o"

    _index: TextIndex = PrivateAttr(default_factory=lambda: _new_index())
    _entries: dict[str, _Entry] = PrivateAttr(default_factory=dict)
    _lock: threading.RLock = PrivateAttr(default_factory=threading.RLock)
    _counter: TokenCounter = PrivateAttr()
    _framing_tokens: int | None = PrivateAttr(default=None)
    _registrations: int = PrivateAttr(default=0)
    # how many registered documents have each length, and the longest (None: recount)
    _lengths: Counter[int] = PrivateAttr(default_factory=Counter)
    _longest: int | None = PrivateAttr(default=None)

    def __init__(self, tools: Iterable[ToolLike] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._counter = TokenCounter(self.model)
        self.add_tools(tools)
        unknown = [name for name in self.always_include if name not in self._entries]
        if unknown:
            raise InvalidArgumentError(
                f"always_include names tools that are not in the registry: {unknown}; "
                f"registered tools are {sorted(self._entries)}."
            )

    @field_validator("k", mode="before")
    @classmethod
    def _valid_k(cls, value: Any) -> int:
        return check_count(value, "k")

    @field_validator("token_budget", mode="before")
    @classmethod
    def _valid_budget(cls, value: Any) -> int | None:
        return None if value is None else check_count(value, "token_budget")

    # ------------------------------------------------------------- registry
    def add_tools(self, tools: Iterable[ToolLike]) -> None:
        """Register tools (a tool named like a registered one replaces it).

        Every tool is checked first: on a TypeError nothing is registered.
        """
        if isinstance(tools, _NOT_A_LIST) or not isinstance(tools, Iterable):
            raise ArgumentTypeError(
                f"tools must be an iterable of tools, got {type(tools).__name__}; wrap a "
                "single tool in a list."
            )
        items = list(tools)
        schemas = [_normalize_tool(tool, position) for position, tool in enumerate(items)]
        documents: list[tuple[str, str]] = []
        with self._lock:
            for tool, schema in zip(items, schemas, strict=True):
                name = str(schema["function"]["name"])
                if name in self._entries:
                    logger.debug("Tool %r replaces the registered tool of that name.", name)
                    self._forget_length(self._entries[name])
                self._registrations += 1
                document = tool_document(schema)
                entry = _Entry(self._registrations, tool, schema, len(_WORD.findall(document)))
                self._entries[name] = entry
                self._lengths[entry.length] += 1
                self._longest = None
                documents.append((name, document))
            self._index.add_many(documents)

    def _forget_length(self, entry: _Entry) -> None:
        self._lengths[entry.length] -= 1
        if not self._lengths[entry.length]:
            del self._lengths[entry.length]
        self._longest = None

    def remove_tools(self, tools: Iterable[str | ToolLike]) -> list[str]:
        """Unregister tools given by name or as tool objects; returns the names removed."""
        if isinstance(tools, _NOT_A_LIST) or not isinstance(tools, Iterable):
            raise ArgumentTypeError(
                f"tools must be an iterable of names or tools, got {type(tools).__name__}; "
                "wrap a single one in a list."
            )
        names = [
            item if isinstance(item, str) else str(_normalize_tool(item, i)["function"]["name"])
            for i, item in enumerate(tools)
        ]
        removed: list[str] = []
        with self._lock:
            for name in names:
                entry = self._entries.pop(name, None)
                if entry is not None:
                    self._forget_length(entry)
                    self._index.remove(name)
                    removed.append(name)
        return removed

    @property
    def tool_names(self) -> list[str]:
        """Names of the registered tools, in registration order."""
        with self._lock:
            return list(self._entries)

    def get_tool(self, name: str) -> Any:
        """The registered tool object named `name` (KeyError if there is none)."""
        entry = self._entries.get(name)
        if entry is None:
            raise KeyError(f"No tool named {name!r} is registered in this ToolRetriever.")
        return entry.tool

    def schema_tokens(self, name: str) -> int:
        """Tokens the schema of tool `name` adds to a request on its own."""
        entry = self._entries.get(name)
        if entry is None:
            raise KeyError(f"No tool named {name!r} is registered in this ToolRetriever.")
        return self._tokens_of(entry)

    # -------------------------------------------------------------- select
    def select(
        self, query: str, k: int | None = None, token_budget: int | None = None
    ) -> list[ToolMatch]:
        """The best tools for `query` that fit the budget: always-included ones first,
        then up to `k` retrieved ones in rank order (see the class guarantees)."""
        if not isinstance(query, str):
            raise ArgumentTypeError(f"query must be a str, got {type(query).__name__}")
        return self._select([(query, 1.0)], k, token_budget)

    def _select(
        self,
        queries: Sequence[tuple[str, float]],
        k: int | None,
        token_budget: int | None,
        pinned: Sequence[str] = (),
    ) -> list[ToolMatch]:
        """`select` over weighted queries, keeping `pinned` names like always-included."""
        k = self.k if k is None else check_count(k, "k")
        if token_budget is not None:
            check_count(token_budget, "token_budget")
        budget = self.token_budget if token_budget is None else token_budget
        entries = self._entries
        included: list[str] = []
        for name in (*self.always_include, *pinned):
            if name in entries and name not in included:
                included.append(name)
            elif name not in entries:
                logger.debug("Tool %r is no longer registered; not binding it.", name)
        fetch = max(_MIN_FETCH, 4 * k)
        while True:
            ranked, exhausted = self._ranked(queries, fetch + len(included), k + len(included))
            scores = dict(ranked)
            chosen = [(name, scores.get(name, 0.0)) for name in included]
            used = self._cost(name for name, _ in chosen)
            if budget is not None and used > budget:
                logger.warning(
                    "Always-included and already-called tools alone need %d tokens, over "
                    "the %d-token budget; no other tool is selected.",
                    used,
                    budget,
                )
            retrieved = 0
            for name, score in ranked:
                if retrieved >= k:
                    break
                entry = entries.get(name)
                if entry is None or name in included:
                    continue
                if budget is not None:
                    marginal = self._tokens_of(entry) - self._framing()
                    total = (used or self._framing()) + marginal
                    if total > budget:
                        continue
                    used = total
                chosen.append((name, score))
                retrieved += 1
            if retrieved >= k or budget is None or exhausted:
                break
            fetch *= 4  # tools skipped for the budget used up the candidates: widen
        matches = []
        for name, score in chosen:
            entry = entries.get(name)
            if entry is not None:
                matches.append(ToolMatch(entry.tool, name, score, self._tokens_of(entry)))
        return matches

    def _ranked(
        self, queries: Sequence[tuple[str, float]], fetch: int, picks: int
    ) -> tuple[list[tuple[str, float]], bool]:
        """Names best first, with their scores, and whether every index query returned
        all of its matches.

        `queries[0]` is the request, the others are weighted context. The whole-text
        score is the weighted sum of cosines over the queries. A request of several
        sentences is also scored sentence by sentence, and its first `picks` names are
        chosen for coverage (docs/benchmarks.md, "Tool retrieval"); the rest follow by score.
        """
        request = _clip(queries[0][0]) if queries and queries[0][1] > 0 else ""
        texts = [(_clip(text), weight) for text, weight in queries if text.strip() and weight > 0]
        if not texts:
            return [], True
        parts = _request_parts(request)
        if len(parts) > 1 and " ".join(parts).split() == request.split():
            # the same words as the request: the index reads them once, part by part
            results = [self._index.query_joined(parts, k=fetch)]
            if len(texts) > 1:
                results += self._index.query_many([text for text, _ in texts[1:]], k=fetch)
        else:
            results = self._index.query_many([text for text, _ in texts], k=fetch)
        whole: dict[str, float] = {}
        for (_, weight), hits in zip(texts, results, strict=True):
            for key, score in hits:
                name = str(key)
                whole[name] = whole.get(name, 0.0) + weight * score
        entries = self._entries
        if self._longest is None:
            self._longest = max(self._lengths, default=1)
        longest = self._longest
        named = _registered_names(request, entries)
        names = sorted(
            {name for name in whole if name in entries} | set(named),
            key=lambda name: entries[name].order,
        )
        exhausted = all(len(hits) < fetch for hits in results)
        if not names:
            return [], exhausted
        import numpy as np

        position = {name: i for i, name in enumerate(names)}
        factor = np.array([(entries[name].length / longest) ** _LENGTH_EXPONENT for name in names])
        whole_scores = np.array([whole.get(name, 0.0) for name in names]) * factor
        first = [position[name] for name in named]
        if len(parts) > 1:
            part_scores = self._index.similarities(parts, names) * factor
            order = _cover(part_scores, whole_scores, first, picks)
            best = np.maximum(whole_scores, part_scores.max(axis=0))
        else:
            order = _by_score(whole_scores, first)
            best = whole_scores
        return [(names[i], float(best[i])) for i in order], exhausted

    def _tokens_of(self, entry: _Entry) -> int:
        if entry.tokens is None:
            entry.tokens = int(self._counter.count_tools([entry.schema]))
        return entry.tokens

    def _framing(self) -> int:
        """Tokens a request's tool list costs once, whatever the number of tools."""
        if self._framing_tokens is None:
            entry = next(iter(self._entries.values()), None)
            if entry is None:
                return 0
            one = int(self._counter.count_tools([entry.schema]))
            two = int(self._counter.count_tools([entry.schema, entry.schema]))
            self._framing_tokens = max(0, 2 * one - two)
        return self._framing_tokens

    def _cost(self, names: Iterable[str]) -> int:
        """Tokens the tools `names` add to a request together."""
        marginal = [self._tokens_of(self._entries[name]) - self._framing() for name in names]
        return self._framing() + sum(marginal) if marginal else 0

    # ------------------------------------------------------------ retriever
    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        token_budget: int | None = None,
    ) -> list[Document]:
        return [self._document(match) for match in self.select(query, k, token_budget)]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        token_budget: int | None = None,
    ) -> list[Document]:
        return [self._document(match) for match in self.select(query, k, token_budget)]

    def _document(self, match: ToolMatch) -> Document:
        entry = self._entries.get(match.name)
        schema = entry.schema if entry is not None else convert_to_openai_tool(match.tool)
        description = schema["function"].get("description") or match.name
        return Document(
            id=match.name,
            page_content=str(description),
            metadata={"name": match.name, "score": match.score, "schema_tokens": match.tokens},
        )
