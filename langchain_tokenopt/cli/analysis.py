"""What the package would save on a real conversation: `tokenopt analyze` as a library.

`analyze_transcript` replays a transcript (from `read_transcript`) model call by model
call through the summarizing history, the cache, de-duplication and compression, and
counts with the model's exact tokenizer what each call would have sent with and
without each of them. This is a surface: the work is done by the components.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

from langchain_core.load import dumps
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.cli.costs import Pricer
from langchain_tokenopt.cli.transcript import ModelCall, Transcript, TranscriptKind
from langchain_tokenopt.compression import CompressionLevel, PromptCompressor
from langchain_tokenopt.core.extras import require
from langchain_tokenopt.core.formatting import decimal_str, plural, usd
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import (
    finite_number,
    instance_of,
    int_in_range,
    optional,
    shown,
)
from langchain_tokenopt.dedup import DedupResult, MessageDeduplicator
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["Analysis", "Progress", "Saving", "analyze_transcript"]

logger = logging.getLogger(__name__)

Progress = Callable[[Iterable[Any], int], Iterable[Any]]


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
            "cost_saved_usd": decimal_str(self.cost_saved_usd),
            "hits": self.hits,
            "note": self.note,
            "sent_input_tokens": self.sent_input_tokens,
        }


@dataclass(frozen=True)
class Analysis:
    """The baseline (every call as logged) and what each optimization would save.

    Example:
        >>> from langchain_tokenopt.cli.transcript import read_transcript
        >>> transcript = read_transcript(
        ...     '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]')
        >>> analysis = analyze_transcript(transcript, model="gpt-4o")
        >>> analysis.calls, analysis.input_tokens, analysis.output_tokens
        (1, 8, 2)
        >>> [saving.name for saving in analysis.savings]
        ['history', 'cache', 'dedup', 'compression']
    """

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
            "cost_usd": decimal_str(self.cost_usd),
            "full_input_tokens": self.full_input_tokens,
            "savings": [saving.to_dict() for saving in self.savings],
            "batch_cost_usd": decimal_str(self.batch_cost_usd),
        }

    def render_table(self) -> str:
        """A plain-text report."""
        what = f"{self.kind}, {plural(self.messages, 'message')}"
        if self.tools:
            what += f", {plural(self.tools, 'tool')}"
        what += f", {plural(self.calls, 'model call')}"
        approx = " (approximate counts)" if self.approximate else ""
        lines = [
            f"transcript: {self.source} ({what})",
            f"model:      {self.model} ({self.encoding}){approx}",
            "",
            "baseline, as logged (each call sends the whole conversation so far):",
            f"  input tokens  {self.input_tokens:>10,}",
            f"  output tokens {self.output_tokens:>10,}",
            f"  cost          {usd(self.cost_usd):>10}",
            f"  batch API     {usd(self.batch_cost_usd):>10}  (the same calls through "
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
                f"  {saving.label:<44}{tokens:>13,}{share:>8}{usd(saving.cost_saved_usd):>11}"
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
                usd(saving.cost_saved_usd),
                (index, values[index]),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        pyplot.close(figure)


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


class _HistoryReplay:
    """Each call sends the summarizing history's view instead of everything before it."""

    def __init__(self, transcript: Transcript, counter: TokenCounter, max_tokens: int) -> None:
        self._counter = counter
        self._max_tokens = max_tokens
        self._history = (
            SummarizingChatMessageHistory(max_tokens=max_tokens, token_counter=counter)
            if transcript.kind == "conversation"
            else None
        )
        self._fed = 0  # messages of the conversation already given to the history
        self.sent: list[int] = []

    def replay(self, call: ModelCall, full_tokens: int) -> None:
        if self._history is not None:
            self._history.add_messages(call.messages[self._fed :])
            self._fed = len(call.messages)
            view = self._history.messages
        else:  # a request log: each request is folded on its own
            alone = SummarizingChatMessageHistory(
                max_tokens=self._max_tokens, token_counter=self._counter
            )
            alone.add_messages(call.messages)
            view = alone.messages
        sent = int(self._counter.count_messages(view, tools=call.tools or None))
        self.sent.append(min(full_tokens, sent))

    @property
    def folded(self) -> int:
        return self._history.folded_message_count if self._history else 0


class _DedupReplay:
    """Each call sends its messages without near-duplicates of earlier ones."""

    def __init__(self, transcript: Transcript, counter: TokenCounter, threshold: float) -> None:
        self._deduplicator = MessageDeduplicator(threshold, token_counter=counter)
        self.sent: list[int] = []
        self.removed_messages = 0
        # A conversation is de-duplicated once: with keep="first" whether a message is a
        # duplicate depends only on the messages before it, so every call's request is a
        # prefix of the same decision (similarity weights are the whole conversation's).
        self._whole: DedupResult | None = None
        self._conversation: list[BaseMessage] = []
        self._message_tokens: list[int] = []
        if transcript.kind == "conversation":
            last = transcript.calls[-1]
            self._conversation = last.messages + ([last.reply] if last.reply else [])
            self._whole = self._deduplicator.deduplicate(self._conversation)
            self._message_tokens = [int(counter.count_message(m)) for m in self._conversation]

    def replay(self, call: ModelCall, full_tokens: int) -> None:
        if self._whole is None:
            result = self._deduplicator.deduplicate(call.messages)
            self.removed_messages += len(result.removed_indices)
            self.sent.append(full_tokens - result.removed_tokens)
            return
        self.removed_messages, removed_tokens = _removed_before(
            self._conversation,
            self._whole.removed_indices,
            self._message_tokens,
            len(call.messages),
        )
        self.sent.append(full_tokens - removed_tokens)


class _CompressionReplay:
    """Each call sends its messages compressed (each message compressed once)."""

    def __init__(self, counter: TokenCounter, level: CompressionLevel, model: str) -> None:
        self._counter = counter
        self._compressor = PromptCompressor(level=level, model=model)
        self._saved: dict[int, int] = {}  # id(message) -> tokens saved by compression
        self.sent: list[int] = []

    def _tokens_saved(self, message: BaseMessage) -> int:
        key = id(message)
        if key not in self._saved:
            smaller = self._compressor.compress_message(message)
            self._saved[key] = (
                int(self._counter.count_message(message))
                - int(self._counter.count_message(smaller))
                if smaller is not message
                else 0
            )
        return self._saved[key]

    def replay(self, call: ModelCall, full_tokens: int) -> None:
        self.sent.append(full_tokens - sum(self._tokens_saved(m) for m in call.messages))

    @property
    def compressed(self) -> int:
        return sum(1 for tokens in self._saved.values() if tokens > 0)


class _CacheReplay:
    """Each request goes through a `TokenOptCache`; a hit sends nothing."""

    def __init__(self, transcript: Transcript, model: str, similarity: float | None) -> None:
        self._model = model
        self.cache = TokenOptCache(similarity_threshold=similarity, flush_interval_seconds=0)
        # One conversation never repeats a request (each call extends the previous one).
        self.possible = transcript.kind == "requests"
        self.sent: list[int] = []

    def replay(self, call: ModelCall, full_tokens: int, output_tokens: int) -> None:
        self.sent.append(full_tokens)
        if not self.possible:
            return
        prompt = dumps(call.messages)
        llm_string = json.dumps({"model_name": self._model, "tools": call.tools}, sort_keys=True)
        if self.cache.lookup(prompt, llm_string) is not None:
            self.sent[-1] = 0
            return
        reply = AIMessage(
            "",
            response_metadata={"model_name": self._model},
            usage_metadata={
                "input_tokens": full_tokens,
                "output_tokens": output_tokens,
                "total_tokens": full_tokens + output_tokens,
            },
        )
        self.cache.update(prompt, llm_string, [ChatGeneration(message=reply)])


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
    instance_of(
        transcript, "transcript", Transcript, "a Transcript: read one with read_transcript(text)"
    )
    int_in_range(max_tokens, "max_tokens", minimum=16, hint="the smallest useful budget is 16")
    finite_number(dedup_threshold, "dedup_threshold", above=0, maximum=1, hint="e.g. 0.9")
    optional(finite_number, cache_similarity, "cache_similarity", above=0, maximum=1)
    if compression_level not in get_args(CompressionLevel):
        raise InvalidArgumentError(
            f"compression_level must be one of {get_args(CompressionLevel)}, "
            f"got {shown(compression_level)}"
        )
    if progress is not None and not callable(progress):
        raise ArgumentTypeError(f"progress must be a callable or None, got {shown(progress)}")
    counter = TokenCounter(model)
    pricer = Pricer(model)
    calls = transcript.calls
    empty = int(counter.count_message(AIMessage("")))
    history = _HistoryReplay(transcript, counter, max_tokens)
    dedup = _DedupReplay(transcript, counter, dedup_threshold)
    compression = _CompressionReplay(counter, compression_level, model)
    cache = _CacheReplay(transcript, model, cache_similarity)

    full: list[int] = []
    outputs: list[int] = []
    for call in _iterate(calls, progress):
        sent = int(counter.count_messages(call.messages, tools=call.tools or None))
        reply_tokens = int(counter.count_message(call.reply)) - empty if call.reply else 0
        full.append(sent)
        outputs.append(max(reply_tokens, 0))
        history.replay(call, sent)
        dedup.replay(call, sent)
        compression.replay(call, sent)
        cache.replay(call, sent, outputs[-1])

    input_tokens, output_tokens = sum(full), sum(outputs)

    def input_saving(name: str, label: str, sent: list[int], hits: int, note: str) -> Saving:
        saved = input_tokens - sum(sent)
        return Saving(name, label, saved, 0, pricer(saved), sent, hits, note)

    shorter_calls = sum(1 for a, b in zip(full, history.sent, strict=True) if b < a)
    stats = cache.cache.stats()
    if cache.possible:
        saved_in, saved_out = stats.saved_input_tokens, stats.saved_output_tokens
        semantic = f", {stats.semantic_hits} of them similar" if cache_similarity else ""
        cache_note = f"{stats.hits} of {len(calls)} requests repeat an earlier one{semantic}"
    else:
        saved_in = saved_out = 0
        cache_note = "one conversation never repeats a request: measure it on a log of requests"
    savings = [
        input_saving(
            "history",
            f"summarizing history (max {max_tokens:,} tokens)",
            history.sent,
            history.folded,
            f"{plural(shorter_calls, 'call')} "
            "sent a summary and the recent turns instead of the whole conversation",
        ),
        Saving(
            "cache",
            "cache (repeated requests)",
            saved_in,
            saved_out,
            pricer(saved_in, saved_out),
            cache.sent,
            stats.hits,
            cache_note,
        ),
        input_saving(
            "dedup",
            f"de-duplication (similarity >= {dedup_threshold:g})",
            dedup.sent,
            dedup.removed_messages,
            f"{plural(dedup.removed_messages, 'near-duplicate message')} removed "
            + ("from the requests" if transcript.kind == "requests" else "from the last request"),
        ),
        input_saving(
            "compression",
            f"compression ({compression_level})",
            compression.sent,
            compression.compressed,
            f"{plural(compression.compressed, 'message')} shorter (whitespace, markdown, JSON), "
            "saved again on every later call",
        ),
    ]
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
        batch_cost_usd=pricer(input_tokens, output_tokens, processing="batch"),
    )
