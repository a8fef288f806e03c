"""The analysis: a loop over requests and levers, pricing each replay chain.

Chains: the baseline (every request as logged), each lever alone, and all levers
combined (in `LEVER_ORDER`). Each chain keeps its own provider prefix cache, so every
dollar is net of what the provider already discounts. Conversations are found by a
logged id, else by shared messages (`Grouper`); at most `max_open_conversations` are
kept open (the least recently active is closed), so memory is bounded by the open
conversations, not the log.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from langchain_tokenopt.analysis.levers import (
    CacheLever,
    CompressionLever,
    Conversation,
    DedupLever,
    HistoryLever,
    Lever,
    RoutingLever,
    Step,
    ToolBindingLever,
)
from langchain_tokenopt.analysis.records import Request
from langchain_tokenopt.analysis.replay import (
    Charge,
    Counters,
    Interner,
    Measure,
    Message,
    ProviderCache,
    Rates,
    Sent,
    measure,
    tools_key,
)
from langchain_tokenopt.analysis.report import (
    ConversationRow,
    LeverResult,
    ModelRow,
    Report,
    Totals,
)
from langchain_tokenopt.compression import CompressionLevel

__all__ = ["LEVER_ORDER", "Grouper", "analyze_requests", "default_levers"]

LEVER_ORDER = ("cache", "tools", "history", "dedup", "compression", "routing")
_TOP_CONVERSATIONS = 50
_MAX_POINTS = 2000
_TAIL_SEARCH = 64
_ZERO = Decimal(0)


def default_levers(
    *,
    max_tokens: int = 1000,
    similarity: float = 0.9,
    compression: CompressionLevel = "lossless",
) -> list[Lever]:
    """Every lever, in `LEVER_ORDER`."""
    return [
        CacheLever(similarity),
        ToolBindingLever(),
        HistoryLever(max_tokens),
        DedupLever(similarity),
        CompressionLever(compression),
        RoutingLever(),
    ]


class Grouper:
    """Which conversation a request belongs to: its logged id, else the open conversation
    whose latest message (or reply) it repeats, else a new one."""

    def __init__(self, max_open: int, on_close: Any) -> None:
        self._open: OrderedDict[str, Conversation] = OrderedDict()
        self._tails: dict[Hashable, str] = {}
        self._max = max_open
        self._on_close = on_close
        self.count = 0
        self.by_id = 0
        self.by_prefix = 0

    def assign(
        self, request: Request, messages: tuple[Message, ...], reply: Message | None
    ) -> Conversation:
        conversation_id = request.conversation_id
        by_id = conversation_id is not None
        if conversation_id is None:
            conversation_id = self._by_tail(messages)
        found = self._open.get(conversation_id) if conversation_id is not None else None
        if found is None:
            self.count += 1
            if by_id:
                self.by_id += 1
            else:
                self.by_prefix += 1
            found = Conversation(
                conversation_id if conversation_id is not None else f"prefix:{self.count}",
                by_id,
                self.count,
            )
            self._open[found.id] = found
            if len(self._open) > self._max:
                _, oldest = self._open.popitem(last=False)
                self._on_close(oldest)
        else:
            self._open.move_to_end(found.id)
        if not by_id:
            for message in (messages[-1] if messages else None, reply):
                if message is not None and message.role != "system":
                    self._tails[message.key] = found.id
            if len(self._tails) > 4 * self._max + 1000:
                live = set(self._open)
                self._tails = {k: v for k, v in self._tails.items() if v in live}
        return found

    def _by_tail(self, messages: tuple[Message, ...]) -> str | None:
        for message in reversed(messages[max(0, len(messages) - _TAIL_SEARCH) : -1]):
            if message.role == "system":
                continue
            found = self._tails.get(message.key)
            if found is not None and found in self._open:
                return found
        return None

    def close_all(self) -> None:
        while self._open:
            _, oldest = self._open.popitem(last=False)
            self._on_close(oldest)


@dataclass
class _ConversationTally:
    requests: int = 0
    input_tokens: int = 0
    models: set[str] = field(default_factory=set)
    costs: list[Decimal] = field(default_factory=list)


class _Points:
    """Per-call series thinned evenly to at most `_MAX_POINTS`."""

    def __init__(self) -> None:
        self.every = 1
        self.rows: list[tuple[int, str, int, int]] = []

    def add(self, index: int, model: str, before: int, after: int) -> None:
        if index % self.every:
            return
        self.rows.append((index, model, before, after))
        if len(self.rows) >= _MAX_POINTS:
            self.every *= 2
            self.rows = [row for row in self.rows if row[0] % self.every == 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "index": [r[0] for r in self.rows],
            "model": [r[1] for r in self.rows],
            "input_tokens": [r[2] for r in self.rows],
            "combined_input_tokens": [r[3] for r in self.rows],
        }


@dataclass(slots=True)
class Record:
    """One replayed request, measured along every chain: what `Pricer` needs (picklable)."""

    index: int
    conversation: int
    model: str
    usage: Any
    counted_output: int
    measures: list[Measure]
    changed: list[bool]
    routed: bool


class Replayer:
    """The per-conversation part of the analysis: each request through every lever.

    `preset` names levers whose notes are decided elsewhere (the parent of `--jobs`
    workers decides the cache across the whole log): they are not observed, and
    `replay` takes their notes.
    """

    def __init__(self, default_model: str, levers: list[Lever], preset: frozenset[str]) -> None:
        self.levers = levers
        self.observed = [lever for lever in levers if lever.name not in preset]
        self.counters = Counters(default_model)
        self.interner = Interner()
        self.chains = 2 + len(levers)
        self.default_model = default_model
        self.routing = next((lever for lever in levers if isinstance(lever, RoutingLever)), None)

    def intern(self, request: Request) -> tuple[tuple[Message, ...], Message | None]:
        interner = self.interner
        messages = tuple(interner.get(raw) for raw in request.messages)
        reply = interner.get(request.reply) if request.reply is not None else None
        return messages, reply

    def baseline(
        self, request: Request, messages: tuple[Message, ...], reply: Message | None
    ) -> tuple[Sent, int]:
        """(the request as logged, its reply's counted output tokens)."""
        model = request.model or self.default_model
        counter = self.counters.counter(model)
        counted_output = self.counters.reply(counter, reply) if reply is not None else 0
        output = request.usage.output_tokens if request.usage is not None else counted_output
        sent = Sent(model, messages, tuple(request.tools), tools_key(request.tools), output)
        return sent, counted_output

    def step(
        self,
        index: int,
        request: Request,
        conversation: Conversation,
        messages: tuple[Message, ...],
        reply: Message | None,
        new_messages: tuple[Message, ...] = (),
    ) -> tuple[Step, int]:
        """(the step of `request` as logged, its reply's counted output tokens)."""
        baseline, counted_output = self.baseline(request, messages, reply)
        step = Step(
            index,
            request,
            conversation,
            baseline,
            reply,
            self.counters,
            self.interner,
            new_messages,
        )
        return step, counted_output

    def replay(
        self,
        index: int,
        request: Request,
        conversation: Conversation,
        messages: tuple[Message, ...],
        reply: Message | None,
        notes: dict[str, Any] | None = None,
    ) -> tuple[Record, Step]:
        new_messages = _new_messages(conversation, messages, reply)
        step, counted_output = self.step(
            index, request, conversation, messages, reply, new_messages
        )
        baseline = step.baseline
        if notes:
            step.notes.update(notes)
        for lever in self.observed:
            lever.observe(step)
        sents = [baseline]
        combined = baseline
        for lever in self.levers:
            sents.append(lever.apply(baseline, step))
            combined = lever.apply(combined, step)
        sents.append(combined)
        previous: list[Sent | None] = conversation.state.setdefault(
            "_previous", [None] * self.chains
        )
        measures = []
        sums: dict[tuple[int, str, Hashable], list[int]] = {}  # `sents` keep the ids alive
        # chains that send the same request after the same previous one measure the same
        # (`measure` is a pure function of both); `sents` and `before` keep the ids alive
        done: dict[tuple[int, int], tuple[Measure, Sent | None]] = {}
        before = list(previous)
        for chain, sent in enumerate(sents):
            pair = (id(sent), id(before[chain]))
            found = done.get(pair)
            if found is None:
                found = done[pair] = measure(sent, before[chain], self.counters, sums)
            measured, previous[chain] = found
            measures.append(measured)
        record = Record(
            index,
            conversation.number,
            str(baseline.model),
            request.usage,
            counted_output,
            measures,
            [sent is not baseline for sent in sents],
            self.routing is not None and bool(step.notes.get(self.routing.name)),
        )
        return record, step


class Pricer:
    """The log-wide part of the analysis: records charged and priced in log order."""

    def __init__(self, chains: int, budget_usd: Decimal | None) -> None:
        self.chains = chains
        self.rates = Rates()
        self.caches = [ProviderCache() for _ in range(chains)]
        self.totals = [Totals() for _ in range(chains)]
        self.changed = [0] * chains
        self.models: dict[str, ModelRow] = {}
        self.top: list[tuple[Decimal, int, ConversationRow]] = []
        self.tallies: dict[int, _ConversationTally] = {}
        self.points = _Points()
        self.usage_check = {
            "requests_with_usage": 0,
            "logged_input_tokens": 0,
            "counted_input_tokens": 0,
            "logged_output_tokens": 0,
            "counted_output_tokens": 0,
        }
        self.uncached = Decimal(0)
        self.budget_usd = budget_usd
        self.budget_spent = Decimal(0)
        self.stopped = 0
        self.stopped_cost = Decimal(0)
        self.first_stopped: int | None = None
        self.moved_cost = Decimal(0)
        self.baseline_cost = Decimal(0)

    def close(self, number: int, conversation_id: str) -> None:
        tally = self.tallies.pop(number, None)
        if tally is None:
            return
        row = ConversationRow(
            conversation_id, tally.requests, sorted(tally.models), tally.input_tokens, tally.costs
        )
        entry = (tally.costs[0], -number, row)
        if len(self.top) < _TOP_CONVERSATIONS:
            heapq.heappush(self.top, entry)
        elif entry[:2] > self.top[0][:2]:
            heapq.heapreplace(self.top, entry)

    def add(self, record: Record) -> None:
        zero = _ZERO
        chains = self.chains
        model = record.model
        usage = record.usage
        tally = self.tallies.get(record.conversation)
        if tally is None:
            tally = self.tallies[record.conversation] = _ConversationTally(costs=[zero] * chains)
        row = self.models.get(model)
        if row is None:
            row = self.models[model] = ModelRow(model, costs=[zero] * chains)
        offset = 0
        baseline_cost: Decimal | None = None
        baseline_input = combined_input = 0
        for chain, measured in enumerate(record.measures):
            charge = self.caches[chain].charge(measured)
            if chain == 0:
                charge, offset = _logged(charge, usage, record.counted_output, self.usage_check)
            elif not measured.answered and offset:
                charge.input_tokens = max(charge.input_tokens + offset, 0)
                charge.cache_read_tokens = min(charge.cache_read_tokens, charge.input_tokens)
                charge.cache_write_tokens = min(
                    charge.cache_write_tokens, charge.input_tokens - charge.cache_read_tokens
                )
            cost = self.rates.cost(measured.model, charge)
            self.totals[chain].add(charge, cost)
            if cost is not None:
                row.costs[chain] += cost
                tally.costs[chain] += cost
            if chain == 0:
                baseline_cost = cost
                baseline_input = charge.input_tokens
                row.add(charge, cost)
                if cost is not None:
                    plain = Charge(charge.input_tokens, 0, 0, charge.output_tokens)
                    self.uncached += self.rates.cost(measured.model, plain) or zero
            elif record.changed[chain]:
                self.changed[chain] += 1
            if chain == chains - 1:
                combined_input = charge.input_tokens
        tally.requests += 1
        tally.input_tokens += baseline_input
        tally.models.add(model)
        self.points.add(record.index, model, baseline_input, combined_input)
        if baseline_cost is not None:
            self.baseline_cost += baseline_cost
            if record.routed:
                self.moved_cost += baseline_cost
            if self.budget_usd is not None:
                self.budget_spent += baseline_cost
                if self.budget_spent > self.budget_usd:
                    self.stopped += 1
                    self.stopped_cost += baseline_cost
                    if self.first_stopped is None:
                        self.first_stopped = record.index

    def report(
        self,
        requests: int,
        grouper: Grouper,
        levers: list[Lever],
        settings: dict[str, Any] | None,
    ) -> Report:
        routing = next((lever for lever in levers if isinstance(lever, RoutingLever)), None)
        if routing is not None:
            routing.baseline_cost_usd += self.baseline_cost
            routing.moved_cost_usd += self.moved_cost
        totals = self.totals
        results = [
            LeverResult(
                lever.name,
                lever.label,
                totals[n + 1],
                self.changed[n + 1],
                lever.note(),
                lever.details(),
            )
            for n, lever in enumerate(levers)
        ]
        top = self.top
        return Report(
            requests=requests,
            conversations=grouper.count,
            grouping={"by_id": grouper.by_id, "by_prefix": grouper.by_prefix},
            baseline=totals[0],
            levers=results,
            combined=totals[-1],
            models=sorted(self.models.values(), key=lambda r: r.costs[0], reverse=True),
            conversations_top=[
                entry[2] for entry in sorted(top, key=lambda e: e[:2], reverse=True)
            ],
            usage_check=self.usage_check,
            budget=(
                None
                if self.budget_usd is None
                else {
                    "budget_usd": self.budget_usd,
                    "stopped_requests": self.stopped,
                    "stopped_cost_usd": self.stopped_cost,
                    "first_stopped_request": self.first_stopped,
                }
            ),
            calls=self.points.to_dict(),
            settings=dict(settings or {}),
            lever_names=[lever.name for lever in levers],
            baseline_uncached_cost_usd=self.uncached if totals[0].priced_requests else None,
        )


def analyze_requests(
    requests: Iterable[Request],
    *,
    default_model: str = "gpt-4o",
    levers: list[Lever] | None = None,
    budget_usd: Decimal | None = None,
    max_open_conversations: int = 2000,
    settings: dict[str, Any] | None = None,
    on_analysed: Callable[[], None] | None = None,
) -> Report:
    """Replay `requests` (in log order) through the baseline, each lever and all combined.

    `on_analysed()` is called after each request (a progress bar's hook).
    """
    levers = default_levers() if levers is None else levers
    replayer = Replayer(default_model, levers, frozenset())
    pricer = Pricer(replayer.chains, budget_usd)

    def close(conversation: Conversation) -> None:
        conversation.state.clear()
        pricer.close(conversation.number, conversation.id)

    grouper = Grouper(max_open_conversations, close)
    index = -1
    for index, request in enumerate(requests):
        messages, reply = replayer.intern(request)
        conversation = grouper.assign(request, messages, reply)
        record, _ = replayer.replay(index, request, conversation, messages, reply)
        pricer.add(record)
        if on_analysed is not None:
            on_analysed()
    grouper.close_all()
    return pricer.report(index + 1, grouper, levers, settings)


def _new_messages(
    conversation: Conversation, messages: tuple[Message, ...], reply: Message | None
) -> tuple[Message, ...]:
    """What `messages` add to the conversation: those after the previous request's last
    message (or its reply); without it, those not seen in the conversation before."""
    tail: tuple[Hashable, ...] = conversation.state.get("_tail", ())
    seen: set[Hashable] = conversation.state.setdefault("_seen", set())
    start = None
    for position in range(len(messages) - 1, -1, -1):
        if messages[position].key in tail:
            start = position + 1
            break
    if start is None:
        new = tuple(m for m in messages if m.key not in seen) if seen else messages
    else:
        new = messages[start:]
    seen.update(m.key for m in new)
    ends = [m.key for m in (messages[-1] if messages else None, reply) if m is not None]
    conversation.state["_tail"] = tuple(ends)
    return new


def _logged(
    charge: Charge, usage: Any, counted_output: int, check: dict[str, int]
) -> tuple[Charge, int]:
    """The baseline charge with logged usage winning over our count; (charge, input offset)."""
    if usage is None:
        return charge, 0
    check["requests_with_usage"] += 1
    check["logged_input_tokens"] += usage.input_tokens
    check["counted_input_tokens"] += charge.input_tokens
    check["logged_output_tokens"] += usage.output_tokens
    check["counted_output_tokens"] += counted_output
    offset = usage.input_tokens - charge.input_tokens
    if usage.cache_read_tokens or usage.cache_write_tokens:
        read, write = usage.cache_read_tokens, usage.cache_write_tokens
    else:  # the log did not say: the modelled prefix cache, within the logged input
        read = min(charge.cache_read_tokens, usage.input_tokens)
        write = min(charge.cache_write_tokens, usage.input_tokens - read)
    logged = Charge(usage.input_tokens, read, write, usage.output_tokens)
    return logged, offset
