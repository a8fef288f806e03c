"""Request logs made from real text, for `bench_analyze` and the shipped sample.

Conversations are built from real data: each conversation's system prompt is one of
the awesome-chatgpt-prompts (CC0), its user turns are sentences of Norvig's big.txt
(public-domain books) and further prompts, and tool results are real prose in
pretty-printed JSON. Each conversation is one of gpt-4o, gpt-4o-mini,
claude-3-5-sonnet-latest (its system prompt marked with `cache_control`) or
claude-3-5-haiku-latest; agent conversations offer 12 tool schemas and call one per
turn. Every request is the system prompt plus the last 40 messages (a sliding window,
as apps send), with the logged reply; every third request logs usage. A few users ask
the same question again (exact repeats) or paste the same document twice (duplicates).

`make_chat_log` makes the other shape of log, the one issue 17 measured on: long chats
without tools, half on gpt-4o and half on gpt-4o-mini, each turn one sentence of
big.txt, each request the system prompt and the last 40 messages.

Run: python -m benchmarks.analyze_logs OUT.jsonl [--conversations N] [--max-turns T]
[--chat] (the shipped sample: `--conversations 5 --max-turns 5`)
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from pathlib import Path
from typing import Any

from benchmarks.common import PROMPTS_CSV, PROSE
from langchain_tokenopt.core.tokens import TokenCounter

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-latest", "claude-3-5-haiku-latest")
WINDOW = 40
TOOL_NAMES = (
    ("search_docs", "Search the product documentation for a query"),
    ("get_order", "Look up an order by its id"),
    ("refund_order", "Refund an order, fully or partly"),
    ("get_weather", "Current weather for a city"),
    ("book_meeting", "Book a meeting in the calendar"),
    ("send_email", "Send an email to a customer"),
    ("translate_text", "Translate text into another language"),
    ("summarize_text", "Summarize a long text"),
    ("run_sql", "Run a read-only SQL query on the analytics database"),
    ("create_ticket", "Create a support ticket"),
    ("get_invoice", "Fetch an invoice as PDF"),
    ("convert_currency", "Convert an amount between currencies"),
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "what to act on"}},
                "required": ["query"],
            },
        },
    }
    for name, description in TOOL_NAMES
]


def _prompts() -> list[str]:
    csv.field_size_limit(2**31 - 1)
    with PROMPTS_CSV.open(encoding="utf-8") as handle:
        return [row["prompt"] for row in csv.DictReader(handle) if 200 < len(row["prompt"]) < 1500]


def _sentences() -> list[str]:
    text = PROSE.read_text(encoding="utf-8", errors="replace")[:1_500_000]
    parts = re.split(r"(?<=[.?!])\s+", " ".join(text.split()))
    return [p for p in parts if 40 < len(p) < 400]


def make_log(
    conversations: int, seed: int = 7, turns: tuple[int, int] = (4, 30)
) -> list[dict[str, Any]]:
    """Request bodies of `conversations` conversations, interleaved as they would be logged."""
    rng = random.Random(seed)
    prompts, sentences = _prompts(), _sentences()
    streams: list[list[dict[str, Any]]] = []
    for number in range(conversations):
        model = MODELS[number % len(MODELS)]
        agent = number % 3 != 2
        system: dict[str, Any] = {"role": "system", "content": rng.choice(prompts)}
        if model.startswith("claude"):
            system = {
                "role": "system",
                "content": [
                    {
                        "type": "text",
                        "text": system["content"],
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            }
        history: list[dict[str, Any]] = []
        requests: list[dict[str, Any]] = []
        pasted = " ".join(rng.sample(sentences, 6))
        for turn in range(rng.randint(*turns)):
            if turn == 3 or (turn > 3 and rng.random() < 0.1):  # pasted again
                question = f"Here is the document:\n\n{pasted}"
            elif rng.random() < 0.3:
                question = rng.choice(sentences) + " Can you explain that?"
            else:
                question = rng.choice(prompts)[:600]
            if turn == 1:
                question = f"Here is the document:\n\n{pasted}"
            history.append({"role": "user", "content": question})
            if agent:
                tool, purpose = TOOL_NAMES[rng.randrange(len(TOOL_NAMES))]
                question += f"\n\n{purpose}, please."
                history[-1] = {"role": "user", "content": question}
                call_id = f"call_{number}_{turn}"
                reply = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {
                                "name": tool,
                                "arguments": json.dumps({"query": question[:60]}),
                            },
                        }
                    ],
                }
                requests.append(_body(model, system, history, TOOLS, reply, rng))
                history.append(reply)
                result = {
                    "results": [
                        {"title": rng.choice(sentences)[:80], "text": rng.choice(sentences)}
                        for _ in range(3)
                    ]
                }
                history.append(
                    {
                        "role": "tool",
                        "tool_call_id": call_id,
                        "content": json.dumps(result, indent=4),
                    }
                )
            answer = {"role": "assistant", "content": " ".join(rng.sample(sentences, 3))}
            requests.append(_body(model, system, history, TOOLS if agent else None, answer, rng))
            history.append(answer)
        streams.append(requests)
    # A few users ask exactly what another asked first (the cache's exact hits).
    for stream in streams[: max(1, conversations // 10)]:
        stream.append(json.loads(json.dumps(stream[0])))
    return _interleave(streams, rng)


def make_chat_log(
    conversations: int, seed: int = 7, turns: tuple[int, int] = (60, 200)
) -> list[dict[str, Any]]:
    """Request bodies of long chats without tools, interleaved as they would be logged.

    The shape of the log issue 17 timed (2,951 requests, 19 MB): every request is the
    system prompt and the last 40 messages, so most of its bytes were sent before and
    each request adds one short turn and its reply. 21 conversations make 2,978 requests,
    22.4 MB (7.5 KB a request, against 6.4 KB in the issue's log).
    """
    rng = random.Random(seed)
    prompts, sentences = _prompts(), _sentences()
    streams: list[list[dict[str, Any]]] = []
    for number in range(conversations):
        model = ("gpt-4o", "gpt-4o-mini")[number % 2]
        system = {"role": "system", "content": rng.choice(prompts)}
        history: list[dict[str, Any]] = []
        requests: list[dict[str, Any]] = []
        for _ in range(rng.randint(*turns)):
            history.append({"role": "user", "content": rng.choice(sentences)})
            answer = {"role": "assistant", "content": rng.choice(sentences)}
            requests.append(_body(model, system, history, None, answer, rng))
            history.append(answer)
        streams.append(requests)
    return _interleave(streams, rng)


def _interleave(streams: list[list[dict[str, Any]]], rng: random.Random) -> list[dict[str, Any]]:
    """The conversations' requests in one log, each next from a conversation at random."""
    log: list[dict[str, Any]] = []
    while any(streams):
        stream = rng.choice([s for s in streams if s])
        log.append(stream.pop(0))
    return log


def _body(
    model: str,
    system: dict[str, Any],
    history: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    reply: dict[str, Any],
    rng: random.Random,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [system, *history[-WINDOW:]]}
    if tools:
        body["tools"] = tools
    response: dict[str, Any] = {"choices": [{"index": 0, "message": reply}]}
    if rng.random() < 1 / 3:  # logged usage: our count, off by a few tokens as providers are
        counter = TokenCounter(model)
        prompt = int(counter.count_messages(body["messages"], tools=tools)) + rng.randint(-8, 8)
        completion = max(int(counter.count_message(reply)) - 3, 1)
        response["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    body["response"] = response
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--conversations", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-turns", type=int, help="turns of the longest conversation")
    parser.add_argument("--chat", action="store_true", help="long chats (make_chat_log)")
    args = parser.parse_args()
    if args.chat:
        log = make_chat_log(args.conversations, args.seed, (60, args.max_turns or 200))
    else:
        log = make_log(args.conversations, args.seed, (4, args.max_turns or 30))
    Path(args.out).write_text("".join(json.dumps(body) + "\n" for body in log), "utf-8")
    print(f"{len(log)} requests, {Path(args.out).stat().st_size / 1e6:.2f} MB -> {args.out}")


if __name__ == "__main__":
    main()
