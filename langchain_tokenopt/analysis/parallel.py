"""`--jobs N`: the analysis in several processes, partitioned by conversation, with the
same report as one process.

The parent reads the log once to group it into conversations and to decide the
levers that span the whole log (the cache: a hit may repeat a request of another
conversation). Each worker reads the log again, replays its share of the
conversations (conversation number modulo N) through every lever with the parent's
cache decisions, and streams one `Record` per request back. The parent charges and
prices the records in log order (the provider's prefix cache shared across
conversations, the budget and the per-call series depend on it), then adds the
workers' lever counts.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

from langchain_tokenopt.analysis.engine import Grouper, Pricer, Record, Replayer
from langchain_tokenopt.analysis.levers import (
    CacheLever,
    CompressionLever,
    Conversation,
    Lever,
    Step,
)
from langchain_tokenopt.analysis.records import Request
from langchain_tokenopt.analysis.report import Report

__all__ = ["analyze_parallel"]

_CHUNK = 64  # records per message from a worker
_QUEUE_CHUNKS = 16  # chunks a worker may be ahead of the parent


def _digest(key: Hashable, memo: OrderedDict[Hashable, bytes]) -> bytes:
    found = memo.get(key)
    if found is None:
        found = memo[key] = hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
        if len(memo) > 10_000:
            memo.popitem(last=False)
    return found


def _worker(
    part: int,
    jobs: int,
    open_requests: Callable[[], Iterable[Request]],
    make_levers: Callable[[], list[Lever]],
    default_model: str,
    numbers: array[int],
    hits: set[int],
    last: dict[int, int],
    out: Any,
) -> None:
    try:
        levers = make_levers()
        preset = frozenset(lever.name for lever in levers if isinstance(lever, CacheLever))
        for lever in levers:
            if isinstance(lever, CompressionLever):
                lever.digests = set()
        replayer = Replayer(default_model, levers, preset)
        conversations: dict[int, Conversation] = {}
        memo: OrderedDict[Hashable, bytes] = OrderedDict()
        chunk: list[Record] = []
        for index, request in enumerate(open_requests()):
            number = numbers[index]
            if number % jobs != part:
                continue
            conversation = conversations.get(number)
            if conversation is None:
                conversation = conversations[number] = Conversation(str(number), False, number)
            messages, reply = replayer.intern(request)
            notes = {name: True for name in preset} if index in hits else None
            record, _ = replayer.replay(index, request, conversation, messages, reply, notes)
            record.measures = [
                m if m.shared is None else replace(m, shared=_digest(m.shared, memo))
                for m in record.measures
            ]
            chunk.append(record)
            if last[number] == index:
                del conversations[number]
            if len(chunk) >= _CHUNK:
                out.put(("records", chunk))
                chunk = []
        if chunk:
            out.put(("records", chunk))
        summaries = [None if lever.name in preset else lever.summary() for lever in levers]
        out.put(("done", summaries))
    except BaseException as exc:  # reported to the parent, which raises it
        out.put(("error", exc))


def analyze_parallel(
    requests: Iterable[Request],
    open_requests: Callable[[], Iterable[Request]],
    make_levers: Callable[[], list[Lever]],
    jobs: int,
    *,
    default_model: str = "gpt-4o",
    budget_usd: Decimal | None = None,
    max_open_conversations: int = 2000,
    settings: dict[str, Any] | None = None,
    on_priced: Callable[[int, int], None] | None = None,
) -> Report:
    """`analyze_requests(requests, levers=make_levers())` in `jobs` processes.

    Each worker calls `open_requests` for the same requests again (a `LogReader` of
    files gives them). `on_priced(position, count)` is called after each request is
    priced (a progress bar's hook).
    """
    levers = make_levers()
    cache = next((lever for lever in levers if isinstance(lever, CacheLever)), None)
    replayer = Replayer(default_model, [cache] if cache is not None else [], frozenset())
    numbers: array[int] = array("q")
    hits: set[int] = set()
    last: dict[int, int] = {}
    closes: dict[int, list[tuple[int, str]]] = {}
    index = -1

    def close(conversation: Conversation) -> None:
        closes.setdefault(index, []).append((conversation.number, conversation.id))

    grouper = Grouper(max_open_conversations, close)
    for index, request in enumerate(requests):
        messages, reply = replayer.intern(request)
        conversation = grouper.assign(request, messages, reply)
        numbers.append(conversation.number)
        last[conversation.number] = index
        if cache is not None:
            baseline, _ = replayer.baseline(request, messages, reply)
            step = Step(
                index,
                request,
                conversation,
                baseline,
                reply,
                replayer.counters,
                replayer.interner,
            )
            cache.observe(step)
            if step.notes.get(cache.name):
                hits.add(index)
    count = index + 1
    index = count  # conversations still open close after the last request
    grouper.close_all()
    del replayer

    pricer = Pricer(2 + len(levers), budget_usd)
    context: Any = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    outs = [context.Queue(_QUEUE_CHUNKS) for _ in range(jobs)]
    workers = [
        context.Process(
            target=_worker,
            args=(
                part,
                jobs,
                open_requests,
                make_levers,
                default_model,
                numbers,
                hits,
                last,
                outs[part],
            ),
            daemon=True,
        )
        for part in range(jobs)
    ]
    for worker in workers:
        worker.start()
    try:
        streams = [_records(out, worker) for out, worker in zip(outs, workers, strict=True)]
        for position in range(count):
            record = next(streams[numbers[position] % jobs])
            pricer.add(record)
            if on_priced is not None:
                on_priced(position, count)
            for number, conversation_id in closes.get(position, ()):
                pricer.close(number, conversation_id)
        for number, conversation_id in closes.get(count, ()):
            pricer.close(number, conversation_id)
        summaries = [_summaries(stream) for stream in streams]
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
    for n, lever in enumerate(levers):
        if lever is cache:
            continue
        for found in summaries:
            summary = found[n]
            if summary is not None:
                lever.absorb(summary)
    return pricer.report(count, grouper, levers, settings)


class _Done(Exception):
    def __init__(self, summaries: list[dict[str, Any] | None]) -> None:
        super().__init__("worker done")
        self.summaries = summaries


def _records(out: Any, worker: Any) -> Iterator[Record]:
    """A worker's records in order; its lever summaries when done (as `_Done`)."""
    while True:
        try:
            kind, payload = out.get(timeout=1.0)
        except queue.Empty:
            if not worker.is_alive() and out.empty():
                raise RuntimeError(
                    f"an analysis worker stopped (exit code {worker.exitcode})"
                ) from None
            continue
        if kind == "records":
            yield from payload
        elif kind == "done":
            raise _Done(payload)
        else:
            raise payload


def _summaries(stream: Iterator[Record]) -> list[dict[str, Any] | None]:
    try:
        extra = next(stream)
    except _Done as done:
        return done.summaries
    raise RuntimeError(f"an analysis worker sent request {extra.index} no one asked for")
