"""`tokenopt count`: tokens and input cost of a text file or a chat transcript."""

from __future__ import annotations

import argparse
import json
from typing import Any

from langchain_tokenopt.cli.commands._options import (
    add_command,
    add_model_option,
    add_output_options,
)
from langchain_tokenopt.cli.costs import Pricer
from langchain_tokenopt.cli.transcript import InputError, Transcript, read_input, read_transcript
from langchain_tokenopt.core.formatting import plural
from langchain_tokenopt.core.tokens import TokenCount, TokenCounter


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "count",
        help="tokens and input cost of a file or stdin",
        description=(
            "Count the tokens of a text file, or of a chat transcript (a JSON list of "
            "OpenAI or LangChain messages, a request body with 'messages', or JSON Lines "
            "with one message or request body per line), and price them as input tokens."
        ),
        handler=run,
    )
    parser.add_argument("file", nargs="?", default="-", help="file to count; '-' is stdin")
    parser.add_argument(
        "--sample",
        action="store_true",
        help="count the built-in sample conversation (a support chat with tool calls)",
    )
    parser.add_argument(
        "--text",
        action="store_true",
        help="count the file as plain text, even when it starts like JSON",
    )
    add_model_option(parser, "gpt-4o", "model name")
    parser.add_argument("--encoding", default=None, help="tiktoken encoding (overrides --model)")
    add_output_options(parser, plot=False)


def _looks_like_json(text: str) -> bool:
    """Whether `text` starts like JSON (then it must be a transcript, unless --text)."""
    return text.lstrip("\ufeff \t\r\n")[:1] in ("[", "{")


def _count_transcript(counter: TokenCounter, transcript: Transcript) -> TokenCount:
    """Input tokens of the whole conversation, or of every logged request together."""
    if transcript.kind == "conversation":
        tools = transcript.calls[0].tools or None
        return counter.count_messages(transcript.conversation, tools=tools)
    counts = [counter.count_messages(c.messages, tools=c.tools or None) for c in transcript.calls]
    return TokenCount(sum(counts), any(count.approximate for count in counts))


def _describe(transcript: Transcript | None) -> str:
    if transcript is None:
        return "text"
    what = "chat transcript" if transcript.kind == "conversation" else "request log"
    what += f", {plural(transcript.messages, 'message')}"
    if transcript.tools:
        what += f", {plural(transcript.tools, 'tool')}"
    if transcript.kind == "requests":
        what += f", {plural(len(transcript.calls), 'request')}"
    return what


def run(args: argparse.Namespace) -> int:
    if args.sample and args.file != "-":
        raise InputError("give a FILE or --sample, not both")
    if args.sample and args.text:
        raise InputError("--sample is a chat transcript: drop --text")
    name, text = read_input(args.file, sample=args.sample)
    try:
        counter = TokenCounter(args.model, encoding=args.encoding)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from exc
    transcript: Transcript | None = None
    if not args.text and _looks_like_json(text):
        try:
            transcript = read_transcript(text, name)
        except ValueError as exc:
            raise InputError(f"{exc} (to count the file as plain text, add --text)") from exc
    tokens = (
        counter.count_text(text) if transcript is None else _count_transcript(counter, transcript)
    )
    cost = Pricer(args.model)(int(tokens))
    if args.json:
        report = {
            "file": name,
            "model": args.model,
            "encoding": counter.encoding_name,
            "kind": "text" if transcript is None else "messages",
            "messages": transcript.messages if transcript is not None else None,
            "tools": transcript.tools if transcript is not None else None,
            "tokens": int(tokens),
            "approximate": tokens.approximate,
            "input_cost_usd": str(cost) if cost is not None else None,
        }
        print(json.dumps(report))
        return 0
    print(f"file:     {name} ({_describe(transcript)})")
    print(f"model:    {args.model} ({counter.encoding_name})")
    print(f"tokens:   {int(tokens)}{' (approximate)' if tokens.approximate else ''}")
    if cost is None:
        print(f"cost:     unknown (no price known for model {args.model!r})")
    else:
        print(f"cost:     ${cost} as input")
    return 0
