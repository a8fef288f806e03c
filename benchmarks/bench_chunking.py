"""How well does TokenAwareTextSplitter chunk a book, against LangChain's splitters and semchunk?

Splits ../shared/data/text/big.txt (2.8 MB of Project Gutenberg prose) into chunks of at
most 512 gpt-4o tokens with no overlap and prints, per splitter: throughput, chunk count,
chunks over the limit (counted exactly on each chunk), the share of chunks that end at a
sentence end, chunks containing U+FFFD (a cut multi-byte character), and whether
joining the chunks gives back the input.

Run: python benchmarks/bench_chunking.py [--path FILE] [--chunk-size 512] [--model gpt-4o]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))

from langchain_text_splitters import (  # noqa: E402
    RecursiveCharacterTextSplitter,
    TokenTextSplitter,
)

from langchain_tokenopt.chunking import TokenAwareTextSplitter  # noqa: E402
from langchain_tokenopt.tokens import TokenCounter  # noqa: E402

DEFAULT_PATH = ROOT.parent / "shared" / "data" / "text" / "big.txt"
SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")


def ends_at_sentence_end(chunk: str) -> bool:
    """True when the chunk, trailing whitespace aside, ends with . ! ? or … (+ quotes)."""
    return SENTENCE_END.search(chunk.rstrip()) is not None


def splitters(chunk_size: int, model: str) -> dict[str, Callable[[str], list[str]]]:
    """The contenders, each a function text -> chunks, configured for `model` tokens."""
    import semchunk

    ours = TokenAwareTextSplitter(chunk_size=chunk_size, chunk_overlap=0, model=model)
    token_splitter = TokenTextSplitter(model_name=model, chunk_size=chunk_size, chunk_overlap=0)
    recursive = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        model_name=model, chunk_size=chunk_size, chunk_overlap=0
    )
    chunker = semchunk.chunkerify(model, chunk_size)
    return {
        "TokenAwareTextSplitter (ours)": ours.split_text,
        "TokenTextSplitter": token_splitter.split_text,
        "RecursiveCharacter.from_tiktoken": recursive.split_text,
        "semchunk": lambda text: list(chunker(text)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--model", default="gpt-4o")
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
        f"{'max tok':>8} {'sent.end':>9} {'U+FFFD':>7} {'join==input':>12}"
    )
    print(header)
    print("-" * len(header))
    ours_speed = None
    for name, split in splitters(args.chunk_size, args.model).items():
        started = time.perf_counter()
        chunks = split(text)
        elapsed_seconds = time.perf_counter() - started
        speed = megabytes / elapsed_seconds
        if ours_speed is None:
            ours_speed = speed
        sizes = [int(counter.count_text(chunk)) for chunk in chunks]
        over = sum(size > args.chunk_size for size in sizes)
        sentence_share = sum(map(ends_at_sentence_end, chunks)) / len(chunks)
        broken = sum("\ufffd" in chunk for chunk in chunks)
        joins = "".join(chunks) == text
        print(
            f"{name:34} {speed:6.2f} {speed / ours_speed:7.2f} {len(chunks):7d} {over:5d} "
            f"{max(sizes):8d} {sentence_share:9.1%} {broken:7d} {joins!s:>12}"
        )


if __name__ == "__main__":
    main()
