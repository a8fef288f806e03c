"""What the package would save on a real conversation: `tokenopt analyze` as a library.

`read_transcript` reads a logged conversation (OpenAI messages as JSON or JSON Lines,
LangChain message dicts, or a JSON Lines log of request bodies) and names the file,
line and field of anything it cannot read. `analyze_transcript` replays it model call by model
call through the summarizing history, the cache, de-duplication and compression, and
counts with the model's exact tokenizer what each call would have sent with and
without each of them. This is a surface: the work is done by the components.

Example:
    >>> transcript = read_transcript(
    ...     '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]')
    >>> analysis = analyze_transcript(transcript, model="gpt-4o")
    >>> analysis.calls, analysis.input_tokens
    (1, 8)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from langchain_core.load import dumps
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ToolMessage,
    convert_to_messages,
    messages_from_dict,
)
from langchain_core.outputs import ChatGeneration

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.compression import CompressionLevel, PromptCompressor
from langchain_tokenopt.core.extras import require
from langchain_tokenopt.core.pricing import Processing, price
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.dedup import DedupResult, MessageDeduplicator
from langchain_tokenopt.errors import UnknownModelError

__all__ = ["Analysis", "ModelCall", "Saving", "Transcript", "analyze_transcript", "read_transcript"]

logger = logging.getLogger(__name__)

TranscriptKind = Literal["conversation", "requests"]
Progress = Callable[[Iterable[Any], int], Iterable[Any]]

_ROLES = ("system", "developer", "user", "human", "assistant", "ai", "tool", "function")
_LC_TYPES = ("system", "human", "ai", "tool", "function", "chat", "developer")


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ModelCall:
    """One model call: what it was sent, and its reply when the log has it."""

    messages: list[BaseMessage]
    tools: list[dict[str, Any]] = field(default_factory=list)
    reply: AIMessage | None = None


@dataclass(frozen=True)
class Transcript:
    """A conversation (each assistant message is one call, sent everything before it)
    or a log of independent requests, as model calls."""

    source: str
    kind: TranscriptKind
    calls: list[ModelCall]
    messages: int
    tools: int


class _Located:
    """A JSON value and the line it starts on."""

    __slots__ = ("line", "value")

    def __init__(self, line: int, value: Any) -> None:
        self.line = line
        self.value = value


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _array_items(text: str, start: int) -> list[_Located]:
    """The items of the JSON array at `start` (a valid document), with their lines."""
    decoder = json.JSONDecoder()
    items: list[_Located] = []
    index = _skip_space(text, start + 1)
    while index < len(text) and text[index] != "]":
        value, end = decoder.raw_decode(text, index)
        items.append(_Located(_line_of(text, index), value))
        index = _skip_space(text, end)
        if index < len(text) and text[index] == ",":
            index = _skip_space(text, index + 1)
    return items


def _member_start(text: str, start: int, key: str) -> int | None:
    """Offset of the value of `key` in the JSON object at `start` (a valid document)."""
    decoder = json.JSONDecoder()
    index = _skip_space(text, start + 1)
    while index < len(text) and text[index] != "}":
        name, end = decoder.raw_decode(text, index)
        index = _skip_space(text, _skip_space(text, end) + 1)  # past ':'
        if name == key:
            return index
        _, end = decoder.raw_decode(text, index)
        index = _skip_space(text, end)
        if index < len(text) and text[index] == ",":
            index = _skip_space(text, index + 1)
    return None


class _Reader:
    """Turns located JSON values into messages, with errors naming source, line, field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, line: int | None, message: str) -> ValueError:
        where = f"{self.source}, line {line}" if line is not None else self.source
        return ValueError(f"{where}: {message}")

    def message(self, item: _Located, path: str = "") -> BaseMessage:
        value, line = item.value, item.line
        name = f"{path}." if path else ""
        if not isinstance(value, dict):
            raise self.fail(
                line, f"{path or 'a message'} must be a JSON object, not {_kind(value)}"
            )
        if "lc" in value and "kwargs" in value:
            return self._serialized(value, line, path)
        if isinstance(value.get("data"), dict) and "type" in value:
            try:
                return messages_from_dict([value])[0]
            except (KeyError, ValueError, TypeError) as exc:
                raise self.fail(
                    line, f"field '{name}data': not a LangChain message: {exc}"
                ) from None
        role_field = "role" if "role" in value else "type" if "type" in value else None
        if role_field is None:
            raise self.fail(line, f"field '{name}role' is missing (a message needs a role)")
        role = value[role_field]
        if role not in _ROLES + _LC_TYPES:
            raise self.fail(
                line,
                f"field '{name}{role_field}': unknown role {role!r} (expected one of "
                "system, user, assistant, tool)",
            )
        content = value.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise self.fail(
                line,
                f"field '{name}content' must be a string or a list of content blocks, "
                f"not {_kind(content)}",
            )
        if role == "tool" and not isinstance(value.get("tool_call_id"), str):
            raise self.fail(
                line, f"field '{name}tool_call_id' is missing (a tool message needs it)"
            )
        self._check_tool_calls(value.get("tool_calls"), line, name)
        data = dict(value)
        if data.get("content") is None:
            data["content"] = ""
        try:
            return convert_to_messages([data])[0]
        except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
            detail = str(exc).splitlines()[0]
            raise self.fail(line, f"{path or 'message'} is not a chat message: {detail}") from None

    def _serialized(self, value: dict[str, Any], line: int, path: str) -> BaseMessage:
        from langchain_core.load import load

        try:
            revived = load(value, allowed_objects="messages")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise self.fail(
                line, f"{path or 'message'} is not a LangChain message: {exc}"
            ) from None
        if not isinstance(revived, BaseMessage):
            raise self.fail(
                line, f"{path or 'message'} is a {type(revived).__name__}, not a message"
            )
        return revived

    def _check_tool_calls(self, calls: Any, line: int, name: str) -> None:
        if calls is None:
            return
        if not isinstance(calls, list):
            raise self.fail(line, f"field '{name}tool_calls' must be a list, not {_kind(calls)}")
        for position, call in enumerate(calls):
            where = f"{name}tool_calls[{position}]"
            if not isinstance(call, dict):
                raise self.fail(line, f"field '{where}' must be an object, not {_kind(call)}")
            function = call.get("function", call)
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise self.fail(line, f"field '{where}.function.name' is missing")
            arguments = function.get("arguments", function.get("args", {}))
            if isinstance(arguments, str):
                try:
                    json.loads(arguments or "{}")
                except json.JSONDecodeError as exc:
                    raise self.fail(
                        line, f"field '{where}.function.arguments' is not valid JSON ({exc.msg})"
                    ) from None
            elif not isinstance(arguments, dict):
                raise self.fail(
                    line, f"field '{where}.function.arguments' must be a JSON object or string"
                )

    def tools(self, value: Any, line: int | None, path: str) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
            raise self.fail(line, f"field '{path}' must be a list of tool objects")
        return list(value)

    def messages(self, items: list[_Located], path: str) -> list[BaseMessage]:
        if not items:
            raise self.fail(None, f"'{path}' holds no messages")
        return [self.message(item, f"{path}[{n}]") for n, item in enumerate(items)]


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


def read_transcript(text: str, source: str = "<input>") -> Transcript:
    """Read a chat transcript, or raise ValueError naming `source`, the line and field.

    Accepted:
      * a JSON list of messages, or an object ``{"messages": [...], "tools": [...]}``;
      * JSON Lines with one message per line;
      * JSON Lines with one request body per line (``{"messages": [...], "tools":
        [...]}``, as logged from a chat completions API): each line is one call.

    Messages are OpenAI chat messages (``role``, ``content``, ``tool_calls``,
    ``tool_call_id``) or LangChain message dicts (``messages_to_dict``, ``dumpd``, or
    ``{"type": "human", "content": ...}``).

    Example:
        >>> read_transcript('{"role": "user", "content": "Hi"}\\n{"role": "robot"}', "a.jsonl")
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: a.jsonl, line 2: field 'role': unknown role 'robot' (expected ...)
    """
    reader = _Reader(source)
    stripped = text.lstrip("\ufeff")
    start = _skip_space(stripped, 0)
    if start == len(stripped):
        raise reader.fail(None, "the file is empty (expected a JSON list of chat messages)")
    if stripped[start] not in "[{":
        raise reader.fail(
            _line_of(stripped, start),
            "not a chat transcript: expected a JSON list of messages, an object with "
            "'messages', or JSON Lines with one message or request per line",
        )
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError as exc:
        if stripped[start] == "{" and _first_line_is_json(stripped):
            return _read_lines(reader, stripped)
        raise reader.fail(exc.lineno, f"invalid JSON at column {exc.colno}: {exc.msg}") from None
    if isinstance(document, list):
        if all(isinstance(item, dict) and "messages" in item for item in document) and document:
            raise reader.fail(
                _line_of(stripped, start),
                "a list of request bodies: write them as JSON Lines (one per line)",
            )
        messages = reader.messages(_array_items(stripped, start), "messages")
        return _conversation(source, messages, [])
    if "messages" in document:
        offset = _member_start(stripped, start, "messages")
        if not isinstance(document["messages"], list) or offset is None:
            raise reader.fail(_line_of(stripped, start), "field 'messages' must be a list")
        messages = reader.messages(_array_items(stripped, offset), "messages")
        tools = reader.tools(document.get("tools"), _line_of(stripped, start), "tools")
        return _conversation(source, messages, tools)
    message = reader.message(_Located(_line_of(stripped, start), document))
    return _conversation(source, [message], [])


def _first_line_is_json(text: str) -> bool:
    first = text.strip().splitlines()[0]
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _read_lines(reader: _Reader, text: str) -> Transcript:
    located: list[_Located] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            located.append(_Located(number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise reader.fail(number, f"invalid JSON at column {exc.colno}: {exc.msg}") from None
    requests = [
        item for item in located if isinstance(item.value, dict) and "messages" in item.value
    ]
    if requests and len(requests) != len(located):
        odd = next(item for item in located if item not in requests)
        raise reader.fail(
            odd.line, "a line without 'messages' in a log of requests (one request per line)"
        )
    if not requests:
        messages = [reader.message(item) for item in located]
        return _conversation(reader.source, messages, [])
    calls: list[ModelCall] = []
    total_messages = 0
    tool_names: set[str] = set()
    for item in requests:
        body = item.value
        if not isinstance(body["messages"], list) or not body["messages"]:
            raise reader.fail(item.line, "field 'messages' must be a non-empty list")
        messages = [
            reader.message(_Located(item.line, value), f"messages[{n}]")
            for n, value in enumerate(body["messages"])
        ]
        tools = reader.tools(body.get("tools"), item.line, "tools")
        total_messages += len(messages)
        tool_names.update(json.dumps(tool, sort_keys=True) for tool in tools)
        calls.append(ModelCall(messages, tools))
    return Transcript(reader.source, "requests", calls, total_messages, len(tool_names))


def _conversation(
    source: str, messages: list[BaseMessage], tools: list[dict[str, Any]]
) -> Transcript:
    calls = [
        ModelCall(messages[:i], tools, message)
        for i, message in enumerate(messages)
        if isinstance(message, AIMessage) and i > 0
    ]
    if not calls:  # a request without its reply: one call with everything
        calls = [ModelCall(messages, tools)]
    return Transcript(source, "conversation", calls, len(messages), len(tools))


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Saving:
    """What one optimization would have saved over all calls, measured on its own.

    `sent_input_tokens[i]` is what call i would have sent with it; `hits` counts
    what it acted on (cache hits, removed duplicates, compressed messages, folds).
    """

    name: str
    label: str
    input_tokens_saved: int
    output_tokens_saved: int
    cost_saved_usd: Decimal | None
    sent_input_tokens: list[int]
    hits: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "input_tokens_saved": self.input_tokens_saved,
            "output_tokens_saved": self.output_tokens_saved,
            "cost_saved_usd": _money(self.cost_saved_usd),
            "hits": self.hits,
            "note": self.note,
            "sent_input_tokens": self.sent_input_tokens,
        }


@dataclass(frozen=True)
class Analysis:
    """The baseline (every call as logged) and what each optimization would save."""

    source: str
    kind: TranscriptKind
    model: str
    encoding: str
    approximate: bool
    max_tokens: int
    messages: int
    tools: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    full_input_tokens: list[int]
    savings: list[Saving]
    #: the same calls through a provider batch API (BatchAPIRunnable), for work that can wait
    batch_cost_usd: Decimal | None = None

    def saving(self, name: str) -> Saving:
        """The saving called `name` ("history", "cache", "dedup", "compression")."""
        for saving in self.savings:
            if saving.name == name:
                return saving
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: money as decimal strings, per-call token lists included."""
        return {
            "source": self.source,
            "kind": self.kind,
            "model": self.model,
            "encoding": self.encoding,
            "approximate": self.approximate,
            "max_tokens": self.max_tokens,
            "messages": self.messages,
            "tools": self.tools,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": _money(self.cost_usd),
            "full_input_tokens": self.full_input_tokens,
            "savings": [saving.to_dict() for saving in self.savings],
            "batch_cost_usd": _money(self.batch_cost_usd),
        }

    def render_table(self) -> str:
        """A plain-text report."""
        what = f"{self.kind}, {_plural(self.messages, 'message')}"
        if self.tools:
            what += f", {_plural(self.tools, 'tool')}"
        what += f", {_plural(self.calls, 'model call')}"
        approx = " (approximate counts)" if self.approximate else ""
        lines = [
            f"transcript: {self.source} ({what})",
            f"model:      {self.model} ({self.encoding}){approx}",
            "",
            "baseline, as logged (each call sends the whole conversation so far):",
            f"  input tokens  {self.input_tokens:>10,}",
            f"  output tokens {self.output_tokens:>10,}",
            f"  cost          {_usd(self.cost_usd):>10}",
            f"  batch API     {_usd(self.batch_cost_usd):>10}  (the same calls through "
            "BatchAPIRunnable, for work that can wait up to 24 h)",
            "",
            "what each would save on its own (they overlap; not additive):",
        ]
        header = f"  {'optimization':<44}{'tokens saved':>13}{'share':>8}{'dollars':>11}"
        lines.append(header)
        lines.append("  " + "-" * (len(header) - 2))
        for saving in self.savings:
            tokens = saving.input_tokens_saved + saving.output_tokens_saved
            total = self.input_tokens + self.output_tokens
            share = f"{100 * tokens / total:.1f}%" if total else "-"
            lines.append(
                f"  {saving.label:<44}{tokens:>13,}{share:>8}{_usd(saving.cost_saved_usd):>11}"
            )
            if saving.note:
                lines.append(f"    {saving.note}")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> None:
        """Save a chart: input tokens per call with and without each optimization, and
        the dollars each saves (needs matplotlib, the `viz` extra)."""
        matplotlib = require("matplotlib", "viz")
        matplotlib.use("Agg")
        pyplot = require("matplotlib.pyplot", "viz")
        figure, (per_call, totals) = pyplot.subplots(
            1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]}
        )
        colors = {"history": "#4c72b0", "cache": "#dd8452", "dedup": "#55a868"}
        colors["compression"] = "#c44e52"
        calls = list(range(1, self.calls + 1))
        per_call.plot(calls, self.full_input_tokens, label="as logged", color="black", lw=2)
        for saving in self.savings:
            if saving.input_tokens_saved:
                per_call.plot(
                    calls,
                    saving.sent_input_tokens,
                    label=saving.label,
                    lw=1.5,
                    color=colors.get(saving.name),
                )
        per_call.set_xlabel("model call")
        per_call.set_ylabel("input tokens sent")
        per_call.set_title(f"{self.model}: input tokens per call")
        per_call.legend(fontsize=8)
        labels = [saving.name for saving in self.savings]
        values = [saving.input_tokens_saved + saving.output_tokens_saved for saving in self.savings]
        totals.bar(
            labels, values, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][: len(labels)]
        )
        totals.set_ylabel("tokens saved")
        totals.set_title("saved over the transcript")
        for index, saving in enumerate(self.savings):
            totals.annotate(
                _usd(saving.cost_saved_usd),
                (index, values[index]),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        pyplot.close(figure)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _usd(value: Decimal | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.4f}" if value < 100 else f"${value:,.2f}"


class _Pricer:
    def __init__(self, model: str) -> None:
        self.model = model
        self.known = True

    def __call__(
        self, input_tokens: int, output_tokens: int = 0, processing: Processing = "standard"
    ) -> Decimal | None:
        if not self.known:
            return None
        try:
            return price(
                self.model,
                {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "total_tokens": input_tokens + output_tokens,
                },
                processing=processing,
            )
        except UnknownModelError:
            self.known = False
            logger.info("No price known for %r: dollars are not reported.", self.model)
            return None


def _iterate(items: Sequence[Any], progress: Progress | None) -> Iterator[Any]:
    yield from (progress(items, len(items)) if progress is not None else items)


def _removed_before(
    messages: Sequence[BaseMessage], removed: Sequence[int], tokens: Sequence[int], end: int
) -> tuple[int, int]:
    """(messages, tokens) de-duplication removes from the request `messages[:end]`.

    `removed` are the indices removed from the whole conversation. The newest unit of
    a request (its last message, with the assistant message whose tool calls it
    answers) is never removed.
    """
    newest = end - 1
    while newest > 0 and isinstance(messages[newest], ToolMessage):
        newest -= 1
    gone = [i for i in removed if i < newest]
    return len(gone), sum(tokens[i] for i in gone)


def analyze_transcript(
    transcript: Transcript,
    *,
    model: str = "gpt-4o",
    max_tokens: int = 1000,
    dedup_threshold: float = 0.9,
    cache_similarity: float | None = 0.9,
    compression_level: CompressionLevel = "lossless",
    progress: Progress | None = None,
) -> Analysis:
    """Replay `transcript` call by call and measure what each optimization saves.

    - history: a `SummarizingChatMessageHistory(max_tokens=...)` (extractive summary)
      is fed the conversation message by message; each call sends its view instead of
      everything before it. For a request log, each request is folded on its own.
    - cache: each call's request goes through a `TokenOptCache` (exact, and semantic
      at `cache_similarity` when not None); a hit saves the call's input and output.
      A single conversation never repeats a request (each call extends the previous
      one), so this measures request logs.
    - dedup: `MessageDeduplicator(dedup_threshold)` on each call's messages.
    - compression: `PromptCompressor(compression_level)` on every human, system and
      tool message (AI messages are left alone), counted in every call that sends it.

    Output tokens are the logged replies' (content and tool calls, as counted); a
    request log without replies has none. `progress(items, total)` may wrap the loop
    over calls (the command line passes a tqdm bar).
    """
    counter = TokenCounter(model)
    pricer = _Pricer(model)
    calls = transcript.calls
    empty = int(counter.count_message(AIMessage("")))

    full: list[int] = []
    outputs: list[int] = []
    history_sent: list[int] = []
    dedup_sent: list[int] = []
    compressed_sent: list[int] = []
    removed_messages = 0

    compressor = PromptCompressor(level=compression_level, model=model)
    compressed_tokens: dict[int, int] = {}  # id(message) -> tokens saved by compression
    deduplicator = MessageDeduplicator(dedup_threshold, token_counter=counter)
    conversation_history = (
        SummarizingChatMessageHistory(max_tokens=max_tokens, token_counter=counter)
        if transcript.kind == "conversation"
        else None
    )
    fed = 0  # messages of the conversation already given to the history
    # A conversation is de-duplicated once: with keep="first" whether a message is a
    # duplicate depends only on the messages before it, so every call's request is a
    # prefix of the same decision (similarity weights are the whole conversation's).
    whole: DedupResult | None = None
    message_tokens: list[int] = []
    conversation: list[BaseMessage] = []
    if transcript.kind == "conversation":
        conversation = calls[-1].messages + ([calls[-1].reply] if calls[-1].reply else [])
        whole = deduplicator.deduplicate(conversation)
        message_tokens = [int(counter.count_message(m)) for m in conversation]

    cache = TokenOptCache(similarity_threshold=cache_similarity, flush_interval_seconds=0)
    cache_possible = transcript.kind == "requests"
    cache_sent: list[int] = []

    for call in _iterate(calls, progress):
        tools = call.tools or None
        sent = int(counter.count_messages(call.messages, tools=tools))
        full.append(sent)
        reply_tokens = int(counter.count_message(call.reply)) - empty if call.reply else 0
        outputs.append(max(reply_tokens, 0))

        # summarizing history
        if conversation_history is not None:
            conversation_history.add_messages(call.messages[fed:])
            fed = len(call.messages)
            view = conversation_history.messages
        else:
            alone = SummarizingChatMessageHistory(max_tokens=max_tokens, token_counter=counter)
            alone.add_messages(call.messages)
            view = alone.messages
        history_sent.append(min(sent, int(counter.count_messages(view, tools=tools))))

        # de-duplication
        if whole is None:
            result = deduplicator.deduplicate(call.messages)
            removed_messages += len(result.removed_indices)
            dedup_sent.append(sent - result.removed_tokens)
        else:
            removed_messages, removed_tokens = _removed_before(
                conversation, whole.removed_indices, message_tokens, len(call.messages)
            )
            dedup_sent.append(sent - removed_tokens)

        # compression
        saved = 0
        for message in call.messages:
            key = id(message)
            if key not in compressed_tokens:
                smaller = compressor.compress_message(message)
                compressed_tokens[key] = (
                    int(counter.count_message(message)) - int(counter.count_message(smaller))
                    if smaller is not message
                    else 0
                )
            saved += compressed_tokens[key]
        compressed_sent.append(sent - saved)

        # cache
        cache_sent.append(sent)
        if cache_possible:
            prompt = dumps(call.messages)
            llm_string = json.dumps({"model_name": model, "tools": call.tools}, sort_keys=True)
            if cache.lookup(prompt, llm_string) is not None:
                cache_sent[-1] = 0
            else:
                reply = AIMessage(
                    "",
                    response_metadata={"model_name": model},
                    usage_metadata={
                        "input_tokens": sent,
                        "output_tokens": outputs[-1],
                        "total_tokens": sent + outputs[-1],
                    },
                )
                cache.update(prompt, llm_string, [ChatGeneration(message=reply)])

    input_tokens, output_tokens = sum(full), sum(outputs)
    savings: list[Saving] = []

    def add(name: str, label: str, sent: list[int], hits: int, note: str) -> None:
        saved = input_tokens - sum(sent)
        savings.append(Saving(name, label, saved, 0, pricer(saved), sent, hits, note))

    folded = conversation_history.folded_message_count if conversation_history else 0
    add(
        "history",
        f"summarizing history (max {max_tokens:,} tokens)",
        history_sent,
        folded,
        f"{_plural(sum(1 for a, b in zip(full, history_sent, strict=True) if b < a), 'call')} "
        "sent a summary and the recent turns instead of the whole conversation",
    )

    stats = cache.stats()
    if cache_possible:
        saved_in, saved_out = stats.saved_input_tokens, stats.saved_output_tokens
        semantic = f", {stats.semantic_hits} of them similar" if cache_similarity else ""
        note = f"{stats.hits} of {len(calls)} requests repeat an earlier one{semantic}"
    else:
        saved_in = saved_out = 0
        note = "one conversation never repeats a request: measure it on a log of requests"
    savings.append(
        Saving(
            "cache",
            "cache (repeated requests)",
            saved_in,
            saved_out,
            pricer(saved_in, saved_out),
            cache_sent,
            stats.hits,
            note,
        )
    )

    add(
        "dedup",
        f"de-duplication (similarity >= {dedup_threshold:g})",
        dedup_sent,
        removed_messages,
        f"{_plural(removed_messages, 'near-duplicate message')} removed "
        + ("from the requests" if transcript.kind == "requests" else "from the last request"),
    )
    compressed = sum(1 for tokens in compressed_tokens.values() if tokens > 0)
    add(
        "compression",
        f"compression ({compression_level})",
        compressed_sent,
        compressed,
        f"{_plural(compressed, 'message')} shorter (whitespace, markdown, JSON), "
        "saved again on every later call",
    )
    return Analysis(
        source=transcript.source,
        kind=transcript.kind,
        model=model,
        encoding=counter.encoding_name,
        approximate=counter.approximate,
        max_tokens=max_tokens,
        messages=transcript.messages,
        tools=transcript.tools,
        calls=len(calls),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=pricer(input_tokens, output_tokens),
        full_input_tokens=full,
        savings=savings,
        batch_cost_usd=pricer(input_tokens, output_tokens, "batch"),
    )
