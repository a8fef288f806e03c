"""What does `TokenOptCache` save and cost per lookup, against LangChain's own caches?

Measured in one run on one machine:

0. Requests sent for repeated multi-turn sessions: users replaying the same 3-turn
   support conversation through `ChatOpenAI` (against the local OpenAI-compatible
   server of tests/support, which counts requests), with `TokenOptCache`, with
   langchain-core's `InMemoryCache`, and the ideal (one request per distinct turn).
1. Hit and miss cost against langchain-core `InMemoryCache` (goals: a raw hit within
   20x, an `invoke()` hit within 1.2x, with TTL, LRU bound and stats on) and of the
   SQLite cache against langchain-community `SQLiteCache` (goal: not slower), both as
   raw cache calls and as a whole `GenericFakeChatModel.invoke()` through the cache
   (what an application sees). `InMemoryCache` keeps the very objects it was given
   and returns them (no copy, no TTL, no stats); `TokenOptCache` returns a fresh copy
   per hit so a caller cannot change the cache.
2. Redis: `TokenOptCache.redis` against langchain-redis `RedisCache` on the same
   server (REDIS_URL, or /usr/bin/redis-server started on a free port). langchain-redis
   needs the RedisJSON module; on a plain Redis the comparison falls back to
   langchain-community `RedisCache` (hashes, plain Redis) and says so.
3. Semantic lookup latency (p50, p95) with 10,000 and 100,000 entries (goal: p50 under
   2 ms at 10,000): queries that should hit (re-punctuated, re-cased copies of stored
   prompts, whose right answer is checked) and queries of text that was not stored (the
   next windows of big.txt; the few that hit overlap a stored window by 4 of 6 words).
   Prompts are 6-word windows of big.txt, 4 words apart. The 10,000 entries go through
   `update()`; the 100,000 are written straight into the store in the cache's
   documented layout and loaded with `refresh()` (the path another process takes), so
   the run stays short; `update()`'s own cost is printed from the 10,000.

Times are the median of short rounds, interleaved across the caches compared: CPU
time of the benchmark thread for the memory caches (what a call costs, whatever else
a shared machine runs), wall clock for SQLite (commits wait on the file), Redis
(network waits; Redis also prints the client's CPU time, read in the same rounds,
which the scheduling of the server on a loaded machine does not move) and the
semantic percentiles.

Run: python benchmarks/bench_cache.py [--ops 300] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from langchain_core.caches import BaseCache, InMemoryCache
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation

from benchmarks.common import PROSE
from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.cache.semantic import semantic_item
from langchain_tokenopt.stores import MemoryStore

warnings.filterwarnings("ignore")

BIG_TXT = PROSE
LLM_STRING = GenericFakeChatModel(messages=iter([]))._get_llm_string()


def answer(i: int | str) -> list[Generation]:
    message = AIMessage(
        content=f"Answer {i}: " + "The capital of France is Paris, on the Seine. " * 6,
        usage_metadata={"input_tokens": 850, "output_tokens": 120, "total_tokens": 970},
        response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"},
        id=f"run-{i}",
    )
    return [ChatGeneration(message=message)]


def prompt(i: int) -> str:
    return dumps([HumanMessage(f"Question number {i}: what is the capital of France?")])


_CHAT_TEMPLATE = dumps([HumanMessage("__TEXT__")])


def chat_prompt(text: str) -> str:
    """`dumps([HumanMessage(text)])`, built from a template to keep set-up short."""
    return _CHAT_TEMPLATE.replace('"__TEXT__"', json.dumps(text))


Round = Callable[[], None]
Row = tuple[str, float, float]  # name, hit seconds, miss seconds


def interleaved(
    cases: list[tuple[str, Round, Round]],
    ops: int,
    rounds: int,
    clock: Callable[[], float] = time.thread_time,
) -> list[Row]:
    """Median per-op (hit, miss) time of each case over `rounds`, rounds interleaved
    across cases so a burst of load on the shared machine hits every case alike.

    `clock` is CPU time of this thread by default (what a hit costs, whatever else
    the machine runs); wall clock where the time is spent waiting (Redis)."""
    return interleaved_clocks(cases, ops, rounds, (clock,))[0]


def interleaved_clocks(
    cases: list[tuple[str, Round, Round]],
    ops: int,
    rounds: int,
    clocks: tuple[Callable[[], float], ...],
) -> list[list[Row]]:
    """`interleaved` read on several clocks at once: one list of rows per clock."""
    times: dict[str, list[tuple[list[float], list[float]]]] = {
        name: [([], []) for _ in clocks] for name, _, _ in cases
    }
    for _ in range(rounds):
        for name, *runs in cases:
            for slot, run in enumerate(runs):
                starts = [clock() for clock in clocks]
                run()
                for hit_miss, clock, start in zip(times[name], clocks, starts, strict=True):
                    hit_miss[slot].append((clock() - start) / ops)
    return [
        [
            (name, statistics.median(times[name][i][0]), statistics.median(times[name][i][1]))
            for name, _, _ in cases
        ]
        for i in range(len(clocks))
    ]


def raw_case(name: str, cache: BaseCache, ops: int, rounds: int) -> tuple[str, Round, Round]:
    """Rounds of hit lookups and of misses (lookup + update), on `cache`."""
    prompts = [prompt(i) for i in range(ops)]
    for i, p in enumerate(prompts):
        cache.update(p, LLM_STRING, answer(i))
    fresh = iter([prompt(10_000_000 + i) for i in range(ops * rounds)])
    reply = answer(0)

    def hits() -> None:
        for p in prompts:
            cache.lookup(p, LLM_STRING)

    def misses() -> None:
        for p in itertools.islice(fresh, ops):
            if cache.lookup(p, LLM_STRING) is None:
                cache.update(p, LLM_STRING, reply)

    return name, hits, misses


def model_case(name: str, cache: BaseCache | None, ops: int) -> tuple[str, Round, Round]:
    """Rounds of `invoke()` of a fake chat model through `cache`: repeated and new prompts."""
    replies = itertools.cycle([answer(i)[0].message for i in range(8)])  # type: ignore[attr-defined]
    model = GenericFakeChatModel(messages=replies, cache=cache if cache is not None else False)
    model.invoke("warm up the cache")
    counter = itertools.count()

    def hits() -> None:
        for _ in range(ops):
            model.invoke("warm up the cache")

    def misses() -> None:
        for _ in range(ops):
            model.invoke(f"a new question {next(counter)}")

    return name, hits, misses


def table(rows: list[Row], baseline: str) -> None:
    base = {name: (hit, miss) for name, hit, miss in rows}[baseline]
    print(f"  {'cache':44} {'hit us':>9} {'x base':>7} {'miss us':>9} {'x base':>7}")
    for name, hit, miss in rows:
        print(
            f"  {name:44} {hit * 1e6:9.1f} {hit / base[0]:7.2f} "
            f"{miss * 1e6:9.1f} {miss / base[1]:7.2f}"
        )


def bench_sessions(session_counts: tuple[int, ...] = (5, 20)) -> None:
    """Requests the provider receives for users replaying one 3-turn conversation."""
    from langchain_openai import ChatOpenAI

    from tests.support.conversations import SUPPORT_TURNS, replay_sessions
    from tests.support.openai_server import FakeOpenAIServer

    print("\n0. Provider requests for repeated 3-turn sessions through ChatOpenAI")
    print(f"  {'sessions':>8} {'TokenOptCache':>14} {'InMemoryCache':>14} {'ideal':>6}")
    with FakeOpenAIServer() as server:
        for sessions in session_counts:
            sent = []
            for cache in (TokenOptCache(), InMemoryCache()):
                server.reset()
                model = ChatOpenAI(
                    base_url=server.base_url, api_key="bench", model="gpt-4o-mini", cache=cache
                )
                replay_sessions(model, sessions)
                sent.append(server.request_count)
            print(f"  {sessions:>8} {sent[0]:>14} {sent[1]:>14} {len(SUPPORT_TURNS):>6}")


def community_sqlite_cache(path: Path) -> BaseCache:
    from langchain_community.cache import SQLiteCache

    return SQLiteCache(database_path=str(path))


def bench_local(ops: int, rounds: int, tmp: Path) -> None:
    print("\n1. Hit / miss cost against LangChain's InMemoryCache and SQLiteCache")

    def db() -> Path:
        return tmp / f"c{time.perf_counter_ns()}.db"

    memory: list[tuple[str, Callable[[], BaseCache]]] = [
        ("InMemoryCache (langchain-core)", InMemoryCache),
        ("TokenOptCache (memory)", TokenOptCache),
        (
            "TokenOptCache (memory, ttl + max_entries)",
            lambda: TokenOptCache(MemoryStore(), ttl_seconds=3600, max_entries=100_000),
        ),
    ]
    sqlite: list[tuple[str, Callable[[], BaseCache]]] = [
        ("SQLiteCache (langchain-community)", lambda: community_sqlite_cache(db())),
        ("TokenOptCache (sqlite file)", lambda: TokenOptCache.sqlite(str(db()))),
        (
            "TokenOptCache (sqlite, ttl + max_entries)",
            lambda: TokenOptCache.sqlite(str(db()), ttl_seconds=3600, max_entries=100_000),
        ),
    ]
    # SQLite waits on its file (commits): wall clock there, CPU time for memory.
    for label, makers, clock in (
        ("memory, CPU time", memory, time.thread_time),
        ("SQLite, wall clock", sqlite, time.perf_counter),
    ):
        print(f" a) raw lookup / update calls, {label}")
        raw = [raw_case(name, make(), ops, rounds) for name, make in makers]
        table(interleaved(raw, ops, rounds, clock), makers[0][0])
        print(f" b) GenericFakeChatModel.invoke() through the cache, {label}")
        calls = [model_case("no cache (model answers every call)", None, ops)]
        calls += [model_case(name, make(), ops) for name, make in makers]
        table(interleaved(calls, ops, rounds, clock), makers[0][0])


def redis_url() -> Iterator[str | None]:
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    from tests.support.redis_server import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        yield None
        return
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-cache-redis-"))).start()
    try:
        yield server.url
    finally:
        server.stop()


def langchain_redis_cache(url: str) -> tuple[str, Callable[[], BaseCache]]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.execute_command("JSON.SET", "bench:probe", "$", "1")  # type: ignore[no-untyped-call]
        client.delete("bench:probe")
    except redis.ResponseError:
        from langchain_community.cache import RedisCache as CommunityRedisCache

        return (
            "RedisCache (langchain-community; no RedisJSON)",
            lambda: CommunityRedisCache(redis.Redis.from_url(url)),
        )
    from langchain_redis import RedisCache

    return "RedisCache (langchain-redis)", lambda: RedisCache(redis_url=url)


def bench_redis(ops: int, rounds: int) -> None:
    print("\n2. Redis: TokenOptCache.redis against LangChain's RedisCache, same server")
    for url in redis_url():
        if url is None:
            print("  skipped: no redis-server (apt-get install redis-server or set REDIS_URL)")
            return
        import redis

        redis.Redis.from_url(url).flushdb()
        name, make = langchain_redis_cache(url)
        plain = partial(TokenOptCache.redis, url)
        bounded = partial(TokenOptCache.redis, url, ttl_seconds=3600, max_entries=100_000)
        cases = [
            raw_case(name, make(), ops, rounds),
            raw_case("TokenOptCache.redis", plain(), ops, rounds),
            raw_case("TokenOptCache.redis (ttl + max_entries)", bounded(), ops, rounds),
        ]
        wall, cpu = interleaved_clocks(cases, ops, rounds, (time.perf_counter, time.thread_time))
        print(" a) wall clock (what a caller waits, network and the server included)")
        table(wall, name)
        print(" b) CPU time of the benchmark thread (the client's own work per call)")
        table(cpu, name)


def corpus(count: int) -> list[str]:
    """`count` distinct prompt texts: 6-word windows of big.txt, 4 words apart."""
    words = BIG_TXT.read_text(encoding="utf-8", errors="replace").split()
    texts = dict.fromkeys(" ".join(words[i : i + 6]) for i in range(0, len(words), 4))
    found = list(texts)
    if len(found) < count:
        raise SystemExit(f"big.txt gives only {len(found)} prompts, {count} wanted")
    return found[:count]


def bulk_fill(cache: TokenOptCache, texts: list[str]) -> None:
    """Write entries and semantic side keys as `update()` would, without the index.

    Uses the cache's private key helpers: this is the layout another process leaves
    in a shared store, which `refresh()` then loads.
    """
    store = cache.store
    entry = cache._encode(LLM_STRING, answer("__ANSWER__"))
    assert entry is not None
    payload = entry["g"]
    for i, text in enumerate(texts):
        chat = chat_prompt(text)
        key = cache._hash(chat, LLM_STRING)
        store.set(cache._entry_prefix + key, {**entry, "g": payload.replace("__ANSWER__", str(i))})
        item = semantic_item(chat, LLM_STRING)
        assert item is not None
        store.set(cache._semantic_prefix + key, {"p": item[0], "t": item[1]})
    store.add(cache._semantic_version_key, 1)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95)]


def semantic_latency(cache: TokenOptCache, stored: list[tuple[int, str]], unseen: list[str]) -> str:
    near_samples, right, wrong = [], 0, 0
    for i, text in stored:
        query = chat_prompt(text.lower().rstrip(".,;") + "!")  # a near-duplicate
        start = time.perf_counter()
        hit = cache.lookup(query, LLM_STRING)
        near_samples.append(time.perf_counter() - start)
        if hit is not None:
            right += hit[0].text.startswith(f"Answer {i}:")
            wrong += not hit[0].text.startswith(f"Answer {i}:")
    miss_samples, false_hits = [], 0
    for text in unseen:
        query = chat_prompt(text)
        start = time.perf_counter()
        false_hits += cache.lookup(query, LLM_STRING) is not None
        miss_samples.append(time.perf_counter() - start)
    near_p50, near_p95 = percentiles(near_samples)
    miss_p50, miss_p95 = percentiles(miss_samples)
    return (
        f"near-duplicates: p50 {near_p50 * 1e3:5.2f} ms, p95 {near_p95 * 1e3:5.2f} ms, "
        f"right {right}/{len(stored)}, wrong {wrong}\n"
        f"          unseen:          p50 {miss_p50 * 1e3:5.2f} ms, p95 {miss_p95 * 1e3:5.2f} ms, "
        f"hits {false_hits}/{len(unseen)}"
    )


def bench_semantic(quick: bool) -> None:
    print("\n3. Semantic lookup latency (similarity_threshold=0.7, memory store)")
    sizes = [10_000] if quick else [10_000, 100_000]
    texts = corpus(max(sizes) + 200)
    unseen = texts[-200:]
    for size in sizes:
        cache = TokenOptCache(similarity_threshold=0.7)
        stored = texts[:size]
        start = time.perf_counter()
        if size <= 10_000:
            for i, text in enumerate(stored):
                cache.update(chat_prompt(text), LLM_STRING, answer(i))
            how = f"update() {(time.perf_counter() - start) / size * 1e6:.0f} us/entry"
        else:
            bulk_fill(cache, stored)
            how = f"written to the store in {time.perf_counter() - start:.0f} s"
        load_start = time.perf_counter()
        cache.refresh()
        cache.lookup(chat_prompt(stored[0] + "?"), LLM_STRING)  # folds the index once
        how += f", index load {time.perf_counter() - load_start:.1f} s"
        step = max(1, size // 200)
        sample = [(i, stored[i]) for i in range(0, size, step)][:200]
        print(f"  {size:>7,} entries ({how})")
        print(f"          {semantic_latency(cache, sample, unseen)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip 100,000 entries")
    args = parser.parse_args()
    started = time.perf_counter()
    bench_sessions()
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        bench_local(args.ops, args.rounds, Path(tmp))
    bench_redis(args.ops, args.rounds)
    bench_semantic(args.quick)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
