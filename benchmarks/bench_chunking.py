"""How well does TokenAwareTextSplitter chunk a book, against LangChain's splitters and semchunk?

Splits ../shared/data/text/big.txt (2.8 MB of Project Gutenberg prose) into chunks of at
most 512 gpt-4o tokens with no overlap and prints, per splitter: throughput, chunk count,
chunks over the limit (counted exactly on each chunk), the share of chunks that end at a
sentence end, chunks containing U+FFFD (a cut multi-byte character), and whether
joining the chunks gives back the input.

Run: python benchmarks/bench_chunking.py [--path FILE] [--chunk-size 512] [--model gpt-4o]
     [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from langchain_text_splitters import (
    RecursiveCharacterTextSplitter,
    TokenTextSplitter,
)

from benchmarks.common import PROSE
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.text_splitters import TokenAwareTextSplitter

DEFAULT_PATH = PROSE
SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")


def ends_at_sentence_end(chunk: str) -> bool:
    """True when the chunk, trailing whitespace aside, ends with . ! ? or … (+ quotes)."""
    return SENTENCE_END.search(chunk.rstrip()) is not None


def paragraph_end_share(text: str, chunks: list[str]) -> float:
    """Share of chunks whose text is followed in `text` by a blank line (or the end).

    Chunks are located in order, so splitters that strip whitespace are judged alike.
    """
    ends = 0
    cursor = 0
    for chunk in chunks:
        body = chunk.strip()
        found = text.find(body, cursor)
        if found < 0:  # a splitter that altered the text (e.g. U+FFFD): not an end
            continue
        cursor = found + len(body)
        following = text[cursor : cursor + 40]
        gap = following[: len(following) - len(following.lstrip())]
        ends += gap.count("\n") >= 2 or cursor + len(gap) >= len(text)
    return ends / len(chunks)


def splitters(chunk_size: int, model: str) -> dict[str, Callable[[], Callable[[str], list[str]]]]:
    """The contenders: for each, a factory of a fresh text -> chunks function.

    Fresh per timed run, so memoizing splitters (semchunk) do not profit from the
    previous run over the same text.
    """
    import semchunk

    def ours() -> Callable[[str], list[str]]:
        return TokenAwareTextSplitter(chunk_size=chunk_size, model=model).split_text

    def token_splitter() -> Callable[[str], list[str]]:
        return TokenTextSplitter(
            model_name=model, chunk_size=chunk_size, chunk_overlap=0
        ).split_text

    def recursive() -> Callable[[str], list[str]]:
        return RecursiveCharacterTextSplitter.from_tiktoken_encoder(
            model_name=model, chunk_size=chunk_size, chunk_overlap=0
        ).split_text

    def semchunk_chunker() -> Callable[[str], list[str]]:
        chunker = semchunk.chunkerify(model, chunk_size)  # type: ignore[attr-defined]
        return lambda text: cast(list[str], chunker(text))

    return {
        "TokenAwareTextSplitter (ours)": ours,
        "TokenTextSplitter": token_splitter,
        "RecursiveCharacter.from_tiktoken": recursive,
        "semchunk": semchunk_chunker,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--model", default="gpt-4o")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = parser.parse_args()

    text = args.path.read_text(encoding="utf-8")
    megabytes = len(text.encode("utf-8")) / 1e6
    counter = TokenCounter(args.model)
    print(
        f"{args.path.name}: {megabytes:.2f} MB, {counter.count_text(text):,} {args.model} tokens, "
        f"chunk_size={args.chunk_size}, overlap=0\n"
    )
    header = (
        f"{'splitter':34} {'MB/s':>6} {'x ours':>7} {'chunks':>7} {'over':>5} "
        f"{'max tok':>8} {'sent.end':>9} {'para.end':>9} {'U+FFFD':>7} {'join==input':>12}"
    )
    print(header)
    print("-" * len(header))
    ours_speed = None
    for name, make_splitter in splitters(args.chunk_size, args.model).items():
        elapsed_seconds = float("inf")
        for _ in range(args.repeat):  # best of N: the machine is shared
            split = make_splitter()
            started = time.perf_counter()
            chunks = split(text)
            elapsed_seconds = min(elapsed_seconds, time.perf_counter() - started)
        speed = megabytes / elapsed_seconds
        if ours_speed is None:
            ours_speed = speed
        sizes = [int(counter.count_text(chunk)) for chunk in chunks]
        over = sum(size > args.chunk_size for size in sizes)
        sentence_share = sum(map(ends_at_sentence_end, chunks)) / len(chunks)
        paragraph_share = paragraph_end_share(text, chunks)
        broken = sum("\ufffd" in chunk for chunk in chunks)
        joins = "".join(chunks) == text
        print(
            f"{name:34} {speed:6.2f} {speed / ours_speed:7.2f} {len(chunks):7d} {over:5d} "
            f"{max(sizes):8d} {sentence_share:9.1%} {paragraph_share:9.1%} {broken:7d} "
            f"{joins!s:>12}"
        )


if __name__ == "__main__":
    main()
