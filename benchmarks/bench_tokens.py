"""What does counting a chat request cost with `TokenCounter` vs LangChain's ChatOpenAI?

Measured in one run, on real prompts (data/prompts/awesome-chatgpt-prompts.csv) and
prose (data/text/big.txt):

1. Growth: the time of `count_messages(history)` right after appending one new
   message, around the 100th and around the 10,000th message (median of many
   appends). The memo should make both cost about one message's encoding: the goal
   is a ratio <= 1.5. ChatOpenAI re-counts the whole history on every call.
2. Cold: one fresh count of a 100-message history (nothing memoized).
3. Text: `count_text` throughput on big.txt vs `ChatOpenAI.get_num_tokens`.

Times are process CPU time (`time.process_time`), so other work on a shared machine
does not decide the result. Runs in well under a minute.

Run: python benchmarks/bench_tokens.py [--appends 200]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Callable

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_openai import ChatOpenAI

from benchmarks.common import DATA
from langchain_tokenopt.core.tokens import TokenCounter

MODEL = "gpt-4o"


def _prompts() -> list[str]:
    csv.field_size_limit(2**31 - 1)
    with open(DATA / "prompts" / "awesome-chatgpt-prompts.csv", encoding="utf-8") as handle:
        return [row["prompt"] for row in csv.DictReader(handle) if row["prompt"].strip()]


class _Messages:
    """Unique, realistic chat messages (real prompts, alternating roles)."""

    def __init__(self, prompts: list[str]) -> None:
        self._prompts = prompts
        self._next = 0

    def __call__(self) -> BaseMessage:
        index = self._next
        self._next += 1
        text = f"{self._prompts[index % len(self._prompts)][:800]} (#{index})"
        return HumanMessage(text) if index % 2 == 0 else AIMessage(text)

    def history(self, length: int) -> list[BaseMessage]:
        return [self() for _ in range(length)]


def _cpu_seconds(call: Callable[[], object]) -> float:
    start = time.process_time()
    call()
    return time.process_time() - start


def _median_append_seconds(
    count: Callable[[list[BaseMessage]], object],
    messages: _Messages,
    around: int,
    appends: int,
) -> float:
    """Median time of one count right after one append, for lengths around `around`."""
    history = messages.history(max(around - appends // 2, 0))
    count(history)
    times = []
    for _ in range(appends):
        history.append(messages())
        times.append(_cpu_seconds(lambda: count(history)))
    return statistics.median(times)


def _langchain_seconds(chat: ChatOpenAI, messages: _Messages, around: int, calls: int) -> float:
    history = messages.history(around)
    return min(
        _cpu_seconds(lambda: chat.get_num_tokens_from_messages(history)) for _ in range(calls)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=200, help="appends measured per size")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    messages = _Messages(_prompts())
    chat = ChatOpenAI(model=MODEL, api_key="not-used")

    # Same numbers first: the benchmark is pointless if the counts differ.
    sample = messages.history(300)
    assert TokenCounter(MODEL).count_messages(sample) == chat.get_num_tokens_from_messages(sample)

    rows: list[tuple[str, str, str, str]] = []
    ours_at: dict[int, float] = {}
    for around in (100, 10_000):
        counter = TokenCounter(MODEL)
        ours_at[around] = _median_append_seconds(
            counter.count_messages, messages, around, args.appends
        )
        theirs = _langchain_seconds(chat, messages, around, calls=3 if around > 1000 else 20)
        rows.append(
            (
                f"count after appending message ~{around:,}",
                f"{ours_at[around] * 1e6:,.0f} us",
                f"{theirs * 1e6:,.0f} us",
                f"{theirs / ours_at[around]:,.0f}x faster",
            )
        )
    growth = ours_at[10_000] / ours_at[100]
    rows.append(
        (
            "growth cost ratio 10,000th / 100th (goal <= 1.5)",
            f"{growth:.2f}",
            "n/a (recounts all)",
            "ok" if growth <= 1.5 else "MISSED",
        )
    )

    cold_history = messages.history(100)
    cold = min(
        _cpu_seconds(lambda: TokenCounter(MODEL).count_messages(cold_history)) for _ in range(5)
    )
    cold_theirs = min(
        _cpu_seconds(lambda: chat.get_num_tokens_from_messages(cold_history)) for _ in range(5)
    )
    rows.append(
        (
            "cold count of 100 messages (fresh counter)",
            f"{cold * 1e3:.2f} ms",
            f"{cold_theirs * 1e3:.2f} ms",
            f"{cold_theirs / cold:.2f}x",
        )
    )

    text = (DATA / "text" / "big.txt").read_text(encoding="utf-8")
    megabytes = len(text.encode("utf-8")) / 1e6
    counter = TokenCounter(MODEL)
    ours_text = min(_cpu_seconds(lambda: counter.count_text(text)) for _ in range(2))
    theirs_text = min(_cpu_seconds(lambda: chat.get_num_tokens(text)) for _ in range(2))
    assert counter.count_text(text) == chat.get_num_tokens(text)
    rows.append(
        (
            f"count_text big.txt ({megabytes:.2f} MB)",
            f"{megabytes / ours_text:.1f} MB/s",
            f"{megabytes / theirs_text:.1f} MB/s",
            f"{theirs_text / ours_text:.2f}x",
        )
    )

    header = ("measurement", "TokenCounter", "ChatOpenAI", "ratio")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    print(f"TokenCounter vs ChatOpenAI ({MODEL}), CPU time")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 0 if growth <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
