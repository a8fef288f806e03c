"""How fast `tokenopt analyze` reads and replays a request log, against a plain tiktoken
count of the same log (the ceiling) and the analysis this package shipped before
(`analyze_transcript`, one function over one reader).

The log is made by `benchmarks.analyze_logs` from real text (awesome-chatgpt-prompts
system prompts and turns, Norvig's big.txt prose): conversations on gpt-4o,
gpt-4o-mini, claude-3-5-sonnet-latest and claude-3-5-haiku-latest, two in three of them
agents offering 12 tool schemas, each request the system prompt and the last 40
messages with its logged reply, a third with logged usage. A second log has the shape
issue 17 was timed on (`make_chat_log`): 21 long chats without tools on gpt-4o and
gpt-4o-mini, one sentence a turn, each request again the system prompt and the last 40
messages, so each request adds little that is new.

Times are process CPU time (`time.process_time`), median of `--repeats` runs, after one
warm-up that pays the imports and tokenizer loads (a shared machine: CPU time, not wall).
`--jobs 2` is shown twice: wall time (what the user waits for, on a loaded machine an
upper bound) and CPU time of the parent and its workers together (`resource.getrusage`).

Run: python -m benchmarks.bench_analyze [--log agent|chat|both] [--conversations 30]
[--chats 21] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tiktoken

from benchmarks.analyze_logs import make_chat_log, make_log
from langchain_tokenopt.analysis import analyze_log
from langchain_tokenopt.cli.analysis import analyze_transcript
from langchain_tokenopt.cli.transcript import read_transcript


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def plain_count(path: Path) -> int:
    """The ceiling: parse every line and tiktoken-count every message's text."""
    encoding = tiktoken.get_encoding("o200k_base")
    total = 0
    with path.open("rb") as handle:
        for line in handle:
            body = json.loads(line)
            for message in body["messages"]:
                total += len(encoding.encode_ordinary(_text(message.get("content"))))
    return total


def cpu_seconds(work: Callable[[], object], repeats: int) -> float:
    work()  # warm-up: imports, tokenizer files, scorer
    times = []
    for _ in range(repeats):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return statistics.median(times)


def _all_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def parallel_seconds(work: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of this process and its children)."""
    work()
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), _all_cpu()
        work()
        walls.append(time.perf_counter() - start)
        cpus.append(_all_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=30, help="of the agent log")
    parser.add_argument("--chats", type=int, default=21, help="conversations of the chat log")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="processes for the parallel run")
    parser.add_argument(
        "--old-requests", type=int, default=200, help="requests for the old analysis"
    )
    parser.add_argument(
        "--log", choices=("agent", "chat", "both"), default="both", help="which log to time"
    )
    args = parser.parse_args()
    logging.getLogger("langchain_tokenopt").setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="bench-analyze-"))
    if args.log in ("agent", "both"):
        bench("agent log", make_log(args.conversations), folder / "agent.jsonl", args)
    if args.log in ("chat", "both"):
        bench("chat log", make_chat_log(args.chats), folder / "chat.jsonl", args)


def bench(title: str, log: list[dict[str, Any]], path: Path, args: argparse.Namespace) -> None:
    """Time the ceiling, the analysis (one process and `--jobs`) and the old analysis."""
    path.write_text("".join(json.dumps(body) + "\n" for body in log), "utf-8")
    megabytes = path.stat().st_size / 1e6
    models = sorted({body["model"] for body in log})
    print(f"{title}: {len(log):,} requests, {megabytes:.1f} MB, models {', '.join(models)}")

    def show(name: str, seconds: float, size_mb: float, requests: int, unit: str = "CPU") -> None:
        print(
            f"  {name:<44} {seconds:8.2f} s {unit:<4} {size_mb / seconds:7.2f} MB/s  "
            f"{requests / seconds:9.1f} requests/s"
        )

    ceiling = cpu_seconds(lambda: plain_count(path), args.repeats)
    show("plain tiktoken count (ceiling)", ceiling, megabytes, len(log))
    new = cpu_seconds(lambda: analyze_log([str(path)]), args.repeats)
    show("tokenopt analyze, every lever (this package)", new, megabytes, len(log))
    one = analyze_log([str(path)]).to_dict()
    many = analyze_log([str(path)], jobs=args.jobs).to_dict()
    one["settings"].pop("jobs")
    many["settings"].pop("jobs")
    same = json.dumps(one, default=str, sort_keys=True) == json.dumps(
        many, default=str, sort_keys=True
    )
    assert same, f"--jobs {args.jobs} changed the report"
    wall, cpu = parallel_seconds(lambda: analyze_log([str(path)], jobs=args.jobs), args.repeats)
    show(f"tokenopt analyze --jobs {args.jobs}, wall time", wall, megabytes, len(log), "wall")
    show(f"tokenopt analyze --jobs {args.jobs}, CPU of all processes", cpu, megabytes, len(log))

    # The analysis shipped before, on the first requests only (it is slow).
    head = path.with_suffix(".head.jsonl")
    lines = path.read_text("utf-8").splitlines(keepends=True)[: args.old_requests]
    head.write_text("".join(lines), "utf-8")
    head_mb = head.stat().st_size / 1e6
    text = head.read_text("utf-8")
    old = cpu_seconds(lambda: analyze_transcript(read_transcript(text, "head")), 1)
    show(f"analyze_transcript (before), first {len(lines)}", old, head_mb, len(lines))
    print(
        f"  speed-up over before: {(megabytes / new) / (head_mb / old):.1f}x; "
        f"share of the ceiling: {ceiling / new:.1%}"
    )


if __name__ == "__main__":
    main()
