"""Semantic cache matching: wrong answers against paraphrase hits, and cost at scale.

    uv run python -m benchmarks.bench_semantic           # everything (1,000,000 takes a while)
    uv run python -m benchmarks.bench_semantic --quick   # quality, 10,000 entries, 20,000 writes

1. Quality on `benchmarks/data/semantic_pairs.jsonl`: near-miss pairs (a cached prompt and
   a prompt that needs another answer: direction swaps, antonyms, lowercase entities,
   units, days and times, numbers, negation) and paraphrase pairs (a cached prompt and a
   rewording that deserves its answer), each in a cased and a lowercase variant. A pair
   belongs to the dev or the held-out half by the first byte of the SHA-256 of its cased
   texts (both variants in the same half); the word lists were tuned on dev only. For
   each setting: wrong answers served on near-misses and paraphrases, and the share of
   paraphrases answered. Rows: LangChain's `InMemoryCache` (exact), `semantic=True`, the
   threshold mode at each threshold, and the same TF-IDF scores behind the guard this
   package had before (exactness features + capitalized names only), so the trade-off
   of a score alone is visible.
2. Scale, `semantic=True` at 10,000 / 100,000 / 1,000,000 entries in a SQLite file: cold
   open (a new process opens the file, misses an unseen prompt, which loads the TF-IDF
   index in the threshold mode, and answers a reworded prompt), p50 / p95
   of a lookup (wall and CPU, reworded hits and unseen misses), peak RSS of that process;
   the threshold mode (TF-IDF index, `similarity_threshold=0.7`) at 10,000 / 100,000.
   Prompts are 6-word windows of big.txt (then 7 and 8 words past 466,000). Each size
   runs in its own process.
3. Memory under writes only: `max_entries=1000`, N updates and no lookup, RSS at the
   start and the end, for `semantic=True` and for the threshold mode.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.caches import InMemoryCache
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation

from benchmarks.common import PROSE, ROOT
from langchain_tokenopt.cache.exactness import exactness_features, names_agree
from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.cache.semantic import semantic_item, wording_key
from langchain_tokenopt.core.textindex import TextIndex
from langchain_tokenopt.stores import SQLiteStore

PAIRS = ROOT / "benchmarks" / "data" / "semantic_pairs.jsonl"
LLM = "[('_type', 'fake'), ('model', 'gpt-4o'), ('stop', None)]"
THRESHOLDS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.3)
SAMPLE = 200


def load_pairs() -> list[dict[str, str]]:
    return [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]


def as_prompt(text: str) -> str:
    return dumps([HumanMessage(text)])


_TEMPLATE = as_prompt("@@TEXT@@")


def fast_prompt(text: str) -> str:
    """`as_prompt(text)` without building the message (bulk fills only)."""
    return _TEMPLATE.replace('"@@TEXT@@"', json.dumps(text))


# --------------------------------------------------------------------------- quality

Answerer = Callable[[list[str]], Callable[[str], str | None]]


def cache_answerer(**options: Any) -> Answerer:
    """A TokenOptCache filled with `cached` (each answered with its own text)."""

    def build(cached: list[str]) -> Callable[[str], str | None]:
        cache = TokenOptCache(**options)
        for text in cached:
            cache.update(as_prompt(text), LLM, [Generation(text=text)])

        def answer(text: str) -> str | None:
            found = cache.lookup(as_prompt(text), LLM)
            return None if found is None else found[0].text

        return answer

    return build


def exact_answerer(cached: list[str]) -> Callable[[str], str | None]:
    """LangChain's InMemoryCache: only the same prompt."""
    cache = InMemoryCache()
    for text in cached:
        cache.update(as_prompt(text), LLM, [Generation(text=text)])

    def answer(text: str) -> str | None:
        found = cache.lookup(as_prompt(text), LLM)
        return None if found is None else found[0].text

    return answer


def score_only_answerer(threshold: float) -> Answerer:
    """The TF-IDF match behind the previous guard: same exactness features, capitalized
    names agree, cosine >= threshold (what `similarity_threshold` did before)."""

    def build(cached: list[str]) -> Callable[[str], str | None]:
        index = TextIndex(word_ngram_range=(1, 2), char_ngrams=True, sublinear_tf=True)
        index.add_many(enumerate(cached))
        features: dict[Hashable, Any] = {
            i: exactness_features(text) for i, text in enumerate(cached)
        }
        texts: dict[Hashable, str] = dict(enumerate(cached))

        def answer(text: str) -> str | None:
            if text in cached:
                return text
            wanted = exactness_features(text)
            for key, _ in index.query(
                text, k=4, min_score=threshold, where=lambda key: features.get(key) == wanted
            ):
                if names_agree(text, texts[key]):
                    return texts[key]
            return None

        return answer

    return build


def quality_row(pairs: list[dict[str, str]], build: Answerer) -> dict[str, list[int]]:
    """{split: [near-misses, wrong on them, paraphrases, answered right, wrong on them]}."""
    result = {split: [0, 0, 0, 0, 0] for split in ("dev", "heldout")}
    for case in ("cased", "lower"):
        subset = [pair for pair in pairs if pair["case"] == case]
        answer = build(sorted({pair["cached"] for pair in subset}))
        for pair in subset:
            got = answer(pair["asked"])
            row = result[pair["split"]]
            if pair["kind"] == "near_miss":
                row[0] += 1
                row[1] += got is not None and got != pair["asked"]
            else:
                row[2] += 1
                row[3] += got == pair["cached"]
                row[4] += got is not None and got not in (pair["cached"], pair["asked"])
    return result


def bench_quality() -> None:
    pairs = load_pairs()
    kinds = {
        (kind, split): sum(p["kind"] == kind and p["split"] == split for p in pairs)
        for kind in ("near_miss", "paraphrase")
        for split in ("dev", "heldout")
    }
    print(
        f"1. Quality on {PAIRS.relative_to(ROOT)}: near-misses dev {kinds['near_miss', 'dev']}"
        f" / held-out {kinds['near_miss', 'heldout']}, paraphrases dev "
        f"{kinds['paraphrase', 'dev']} / held-out {kinds['paraphrase', 'heldout']} "
        "(cased + lowercase)"
    )
    settings: list[tuple[str, Answerer]] = [
        ("InMemoryCache (exact, langchain-core)", exact_answerer),
        ("TokenOptCache(semantic=True)", cache_answerer(semantic=True)),
    ]
    settings += [
        (f"TokenOptCache(similarity_threshold={t})", cache_answerer(similarity_threshold=t))
        for t in THRESHOLDS
    ]
    settings += [(f"score + previous guard, {t}", score_only_answerer(t)) for t in THRESHOLDS]
    header = "| setting | dev near-miss wrong | dev paraphrase hits | held-out near-miss wrong"
    print(f"\n{header} | held-out paraphrase hits |")
    print("|---|---|---|---|---|")
    for name, build in settings:
        row = quality_row(pairs, build)
        cells = []
        for split in ("dev", "heldout"):
            near, near_wrong, para, right, para_wrong = row[split]
            wrong = f"{near_wrong}/{near}" + (
                f" (+{para_wrong} on paraphrases)" if para_wrong else ""
            )
            cells += [wrong, f"{right}/{para} ({right / para:.0%})"]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


# --------------------------------------------------------------------------- scale


def prose_windows(count: int) -> list[str]:
    """`count` distinct windows of big.txt, one word apart: of 6 words, then (past the
    466,000 distinct ones) of 7, then of 8."""
    words = PROSE.read_text(encoding="utf-8", errors="replace").split()
    found: dict[str, None] = {}
    for length in (6, 7, 8):
        for i in range(len(words) - length):
            found[" ".join(words[i : i + length])] = None
            if len(found) == count:
                return list(found)
    raise SystemExit(f"big.txt gives only {len(found)} prompts, {count} wanted")


def reworded(text: str) -> str:
    """A rewording `semantic=True` must answer: other case, a polite preamble."""
    return "Please, " + text.lower().rstrip(".,;!?") + "?"


def answer_of(i: int) -> list[Generation]:
    message = AIMessage(f"Answer {i}: " + "lorem ipsum " * 20)
    return [ChatGeneration(message=message)]


def store_rows(cache: TokenOptCache, texts: list[str], first: int = 0) -> Iterator[tuple[str, Any]]:
    """(key, value) of every store key `update()` writes with `semantic=True`.

    Uses the cache's private key helpers: this is the layout `update()` leaves.
    """
    entry = cache._encode(LLM, answer_of(0))
    assert entry is not None
    payload = entry["g"]
    assert fast_prompt(texts[0]) == as_prompt(texts[0])
    for i, text in enumerate(texts, start=first):
        prompt = fast_prompt(text)
        key = cache._hash(prompt, LLM)
        item = semantic_item(prompt, LLM)
        assert item is not None
        wording = wording_key(*item)
        yield (
            cache._entry_prefix + key,
            {**entry, "g": payload.replace("Answer 0:", f"Answer {i}:")},
        )
        yield cache._semantic_prefix + key, {"p": item[0], "t": item[1], "w": wording}
        yield cache._wording_prefix + wording, key
    # what every update() bumps: tells a threshold-mode reader there is an index to load
    yield cache._semantic_version_key, 1


def chunk_rows(chunk: tuple[int, list[str]]) -> list[tuple[str, str]]:
    """The store rows of texts[first:first + len(texts)], as compact JSON."""
    first, texts = chunk
    cache = TokenOptCache(semantic=True)  # only its key helpers are used
    return [
        (key, json.dumps(value, separators=(",", ":")))
        for key, value in store_rows(cache, texts, first)
    ]


def fill_sqlite(path: str, texts: list[str]) -> None:
    """Write the rows in bulk, as compact JSON in `SQLiteStore`'s table (one transaction
    per 5,000 prompts instead of one per `set`; rows computed by two processes)."""
    SQLiteStore(path).close()  # creates the table
    chunks = ((start, texts[start : start + 5000]) for start in range(0, len(texts), 5000))
    with multiprocessing.get_context("fork").Pool(2) as pool, sqlite3.connect(path) as conn:
        for rows in pool.imap(chunk_rows, chunks):
            conn.executemany("INSERT OR REPLACE INTO tokenopt_store VALUES (?, ?, NULL)", rows)
            conn.commit()  # one transaction per chunk: a single one grows the WAL to GBs


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def timed(lookup: Callable[[str], Any], prompts: list[str]) -> tuple[list[float], list[float], int]:
    walls, cpus, hits = [], [], 0
    for prompt in prompts:
        wall, cpu = time.perf_counter(), time.thread_time()
        hits += lookup(prompt) is not None
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return walls, cpus, hits


def percentiles_ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"{statistics.median(ordered) * 1e3:.2f} / {ordered[int(len(ordered) * 0.95)] * 1e3:.2f}"


def open_and_measure(path: str, size: int, threshold: float | None) -> dict[str, Any]:
    """In this (fresh) process: open the cache, first lookup, then timed lookups."""
    texts = prose_windows(size + SAMPLE)
    stored = texts[: size : max(1, size // SAMPLE)][:SAMPLE]
    unseen = texts[size:]
    before = peak_rss_mb()
    started = time.perf_counter()
    if threshold is not None:  # paid once per process, whatever the size: shown apart
        import sklearn.feature_extraction.text  # noqa: F401
    imports = time.perf_counter() - started
    started = time.perf_counter()
    cache = TokenOptCache.sqlite(path, semantic=True, similarity_threshold=threshold)
    # A miss first: it goes through every path (with a threshold, the index is loaded).
    assert cache.lookup(as_prompt(unseen.pop()), LLM) is None
    first = cache.lookup(as_prompt(reworded(stored[0])), LLM)
    cold = time.perf_counter() - started
    assert first is not None, "the first reworded prompt must hit"

    def lookup(text: str) -> Any:
        return cache.lookup(as_prompt(text), LLM)

    hit_wall, hit_cpu, hits = timed(lookup, [reworded(text) for text in stored])
    miss_wall, miss_cpu, false_hits = timed(lookup, unseen)
    return {
        "cold_s": cold,
        "import_s": imports,
        "hits": f"{hits}/{len(stored)}",
        "false": f"{false_hits}/{len(unseen)}",
        "hit_wall": percentiles_ms(hit_wall),
        "hit_cpu": percentiles_ms(hit_cpu),
        "miss_wall": percentiles_ms(miss_wall),
        "miss_cpu": percentiles_ms(miss_cpu),
        "rss_start_mb": before,
        "rss_peak_mb": peak_rss_mb(),
    }


def write_only(updates: int, threshold: float | None) -> dict[str, Any]:
    """RSS of a `max_entries=1000` memory cache over `updates` writes and no lookup."""
    texts = prose_windows(updates)
    cache = TokenOptCache(
        semantic=True, similarity_threshold=threshold, max_entries=1000, flush_interval_seconds=60
    )
    marks = {}
    for i, text in enumerate(texts):
        cache.update(as_prompt(text), LLM, answer_of(i))
        if i + 1 in (1000, updates // 2, updates):
            marks[i + 1] = round(rss_mb())
    return {"rss_mb": marks, "entries": cache.stats().entries}


def child(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh process; its result is its last stdout line."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_semantic", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench_semantic {' '.join(args)} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_scale(sizes: list[int], tfidf_sizes: list[int], tmp: Path) -> None:
    print("\n2. Scale: SQLite file, each size opened in a fresh process (loaded 2-core machine)")
    print(
        "\n| entries | mode | fill s | cold open s (+ scikit-learn import) | reworded hits "
        "| hit p50 / p95 ms (wall) | (CPU) | unseen p50 / p95 ms (wall) | (CPU) "
        "| false hits | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        path = str(tmp / f"semantic-{size}.db")
        started = time.perf_counter()
        child(["--fill", path, "--size", str(size)])
        fill = time.perf_counter() - started
        modes: list[tuple[str, list[str]]] = [("semantic=True", [])]
        if size in tfidf_sizes:
            modes.append(("similarity_threshold=0.7", ["--threshold", "0.7"]))
        for name, extra in modes:
            got = child(["--open", path, "--size", str(size), *extra])
            print(
                f"| {size:,} | {name} | {fill:.0f} | {got['cold_s']:.2f} (+{got['import_s']:.1f}) "
                f"| {got['hits']} | "
                f"{got['hit_wall']} | {got['hit_cpu']} | {got['miss_wall']} | {got['miss_cpu']} "
                f"| {got['false']} | {got['rss_peak_mb']:.0f} |",
                flush=True,
            )
        os.remove(path)


def bench_writes(updates: int) -> None:
    print(f"\n3. Writes only: max_entries=1000, {updates:,} updates, no lookup (memory store)")
    for name, extra in (
        ("semantic=True", []),
        ("similarity_threshold=0.7", ["--threshold", "0.7"]),
    ):
        got = child(["--writes", str(updates), *extra])
        marks = ", ".join(f"after {int(n):,}: {mb} MB" for n, mb in got["rss_mb"].items())
        print(f"  {name}: RSS {marks}; live entries {got['entries']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 entries, 20,000 writes")
    parser.add_argument("--fill", help=argparse.SUPPRESS)
    parser.add_argument("--open", help=argparse.SUPPRESS)
    parser.add_argument("--writes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--threshold", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help="comma-separated entry counts (default 10k,100k,1M)")
    parser.add_argument("--no-quality", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-writes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill_sqlite(args.fill, prose_windows(args.size))
        print(json.dumps({}))
        return
    if args.open:
        print(json.dumps(open_and_measure(args.open, args.size, args.threshold)))
        return
    if args.writes:
        print(json.dumps(write_only(args.writes, args.threshold)))
        return
    started = time.perf_counter()
    if not args.no_quality:
        bench_quality()
    sizes = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",") if size]
    with tempfile.TemporaryDirectory(prefix="bench-semantic-") as tmp:
        bench_scale(sizes, [10_000, 100_000], Path(tmp))
    if not args.no_writes:
        bench_writes(20_000 if args.quick else 100_000)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
