"""`--jobs N`: the analysis in several processes, partitioned by conversation, with the
same report as one process, in memory bounded as one process's is.

Each worker reads the whole log and makes the decisions that span it as one process
does: it groups every request into conversations (`Grouper`, deterministic, so every
worker numbers them alike) and runs the cache lever over every request (a hit may
repeat a request of another conversation). It replays its share of the conversations
(conversation number modulo N) through every lever and streams, in log order, one
`Record` per request and the closing of each of its conversations. The parent reads the
log once for its statistics and the progress bar, merges the workers' streams by
position and prices them in log order (the provider's prefix cache shared across
conversations, the budget and the per-call series depend on it), then adds the
workers' lever counts. Nothing the parent or a worker keeps grows with the log: open
conversations are bounded as in one process.
"""

from __future__ import annotations

import hashlib
import heapq
import multiprocessing
import queue
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

from langchain_tokenopt.analysis.engine import Grouper, Pricer, Replayer
from langchain_tokenopt.analysis.levers import (
    CacheLever,
    CompressionLever,
    Conversation,
    Lever,
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


# An event of a worker's stream: (position in the log, 0 and a `Record`) for a request,
# (position, 1 + k, (number, id)) for the k-th conversation closed at that request.
_Event = tuple[int, int, Any]


def _worker(
    part: int,
    jobs: int,
    open_requests: Callable[[], Iterable[Request]],
    make_levers: Callable[[], list[Lever]],
    default_model: str,
    max_open_conversations: int,
    out: Any,
) -> None:
    try:
        levers = make_levers()
        cache = next((lever for lever in levers if isinstance(lever, CacheLever)), None)
        preset = frozenset({cache.name}) if cache is not None else frozenset()
        for lever in levers:
            if isinstance(lever, CompressionLever):
                lever.digests = set()
        replayer = Replayer(default_model, levers, preset)
        closing: list[Conversation] = []
        grouper = Grouper(max_open_conversations, closing.append)
        memo: OrderedDict[Hashable, bytes] = OrderedDict()
        chunk: list[_Event] = []

        def closed(position: int) -> None:
            for k, conversation in enumerate(closing):
                conversation.state.clear()
                if conversation.number % jobs == part:
                    chunk.append((position, 1 + k, (conversation.number, conversation.id)))
            closing.clear()

        index = -1
        for index, request in enumerate(open_requests()):
            messages, reply = replayer.intern(request)
            conversation = grouper.assign(request, messages, reply)
            notes = None
            if cache is not None:  # every request: the cache spans the whole log
                step, _ = replayer.step(index, request, conversation, messages, reply)
                cache.observe(step)
                if step.notes.get(cache.name):
                    notes = {cache.name: True}
            if conversation.number % jobs == part:
                record, _ = replayer.replay(index, request, conversation, messages, reply, notes)
                record.measures = [
                    m if m.shared is None else replace(m, shared=_digest(m.shared, memo))
                    for m in record.measures
                ]
                chunk.append((index, 0, record))
            closed(index)
            if len(chunk) >= _CHUNK:
                out.put(("events", chunk))
                chunk = []
        count = index + 1
        grouper.close_all()  # conversations still open close after the last request
        closed(count)
        if chunk:
            out.put(("events", chunk))
        # the cache's counts (the whole log's, alike in every worker) come from the first
        summaries = [None if lever is cache and part else lever.summary() for lever in levers]
        grouping = (grouper.count, grouper.by_id, grouper.by_prefix)
        out.put(("done", (count, summaries, grouping)))
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
    files gives them); the parent only counts `requests`. `on_priced(position, count)`
    is called after each request is priced (a progress bar's hook).
    """
    levers = make_levers()
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
                max_open_conversations,
                outs[part],
            ),
            daemon=True,
        )
        for part in range(jobs)
    ]
    for worker in workers:
        worker.start()
    pricer = Pricer(2 + len(levers), budget_usd)
    try:
        count = sum(1 for _ in requests)  # the reader's statistics and the bar's first half
        ends: list[tuple[int, list[dict[str, Any] | None], tuple[int, int, int]]] = []
        streams = [_events(out, worker, ends) for out, worker in zip(outs, workers, strict=True)]
        priced = 0
        for position, order, payload in heapq.merge(*streams, key=lambda e: (e[0], e[1])):
            if order:
                pricer.close(*payload)
                continue
            if position != priced:
                raise RuntimeError(f"analysis workers sent request {position} for {priced}")
            pricer.add(payload)
            priced += 1
            if on_priced is not None:
                on_priced(position, count)
        if priced != count or any(end[0] != count for end in ends):
            raise RuntimeError(
                f"analysis workers read {sorted({end[0] for end in ends})} requests and "
                f"priced {priced}, the log holds {count}"
            )
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
    for n, lever in enumerate(levers):
        for _, summaries, _ in ends:
            summary = summaries[n]
            if summary is not None:
                lever.absorb(summary)
    grouper = Grouper(max_open_conversations, None)
    grouper.count, grouper.by_id, grouper.by_prefix = ends[0][2]
    return pricer.report(count, grouper, levers, settings)


def _events(
    out: Any,
    worker: Any,
    ends: list[tuple[int, list[dict[str, Any] | None], tuple[int, int, int]]],
) -> Iterator[_Event]:
    """A worker's events in log order; what it sends when done goes to `ends`."""
    while True:
        try:
            kind, payload = out.get(timeout=1.0)
        except queue.Empty:
            if not worker.is_alive() and out.empty():
                raise RuntimeError(
                    f"an analysis worker stopped (exit code {worker.exitcode})"
                ) from None
            continue
        if kind == "events":
            yield from payload
        elif kind == "done":
            ends.append(payload)
            return
        else:
            raise payload
