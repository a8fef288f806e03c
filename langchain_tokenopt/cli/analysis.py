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
from typing import Any

from langchain_core.load import dumps
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.cli.costs import Pricer
from langchain_tokenopt.cli.transcript import Transcript, TranscriptKind
from langchain_tokenopt.compression import CompressionLevel, PromptCompressor
from langchain_tokenopt.core.extras import require
from langchain_tokenopt.core.formatting import decimal_str, plural, usd
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.dedup import DedupResult, MessageDeduplicator

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
    pricer = Pricer(model)
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
        f"{plural(sum(1 for a, b in zip(full, history_sent, strict=True) if b < a), 'call')} "
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
        f"{plural(removed_messages, 'near-duplicate message')} removed "
        + ("from the requests" if transcript.kind == "requests" else "from the last request"),
    )
    compressed = sum(1 for tokens in compressed_tokens.values() if tokens > 0)
    add(
        "compression",
        f"compression ({compression_level})",
        compressed_sent,
        compressed,
        f"{plural(compressed, 'message')} shorter (whitespace, markdown, JSON), "
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
    )
