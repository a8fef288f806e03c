"""Does the summarizing memory answer the question asked, stay cheap per turn and lose nothing?

One command prints every figure (the machine may be loaded: CPU time, medians):

1. Retention: each conversation is played as user turns (each answered "Noted."), then
   each of its later questions is asked as the newest user turn (and answered "Noted.")
   at a budget of a tenth of the conversation's tokens. A question is answered from a
   context when its answer's words are in it (the question itself left out). Compared:
   the full history, `trim_messages` (LangChain's built-in, same budget, same counter),
   our view without recall (summary + recent turns) and with recall (the default).
   Conversations: the five memory scenarios of the Berkeley Function Calling
   Leaderboard (`bfcl-eval` wheel on PyPI, downloaded once into .bench-data/; their own
   questions and possible answers) and generated long chats (real user-prompt sentences
   as filler, facts with unique subjects planted at random turns, one question per
   fact). Split: DEV (customer, healthcare; generated seeds 1, 2) is what recall's
   settings were chosen on; HELD-OUT (finance, notetaker, student; seeds 11, 12) was
   never looked at while choosing them.
2. Per-turn cost: add a user message, read the view, add the answer, along one
   10,000-turn conversation at a 2,000-token budget: CPU time (process_time) p50 and
   mean around turn 100 and at the last 200 turns, with and without recall, and
   `trim_messages` with a tiktoken counter at 1,000 turns. Then paired, so that the
   machine's speed changing during the run (another job on the other core) weighs on
   both alike: 200 more turns of the long conversation, each right after a turn
   100-300 of a new one.
3. Invariants: a conversation with tool calls through the history over the memory,
   SQLite and Redis state stores and through `SummaryRecallMiddleware` in `create_agent`
   over the in-memory and SQLite LangGraph checkpointers: views over budget, orphaned
   tool messages and lost messages, counted.

Run: python -m benchmarks.bench_history [--turns 10000] [--model gpt-4o]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    trim_messages,
)

from benchmarks.common import PROMPTS_CSV, PROSE, bfcl_wheel
from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.core.tokens import TokenCounter

PROMPTS = PROMPTS_CSV
ACK = "Noted."


# --------------------------------------------------------------------------- data


def prose_sentences(limit: int = 60_000) -> list[str]:
    """Sentences of real English prose (Project Gutenberg) to fill messages."""
    text = PROSE.read_text(encoding="utf-8", errors="replace")[:6_000_000]
    text = re.sub(r"\s+", " ", text)
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text)
    return [s for s in sentences if 30 <= len(s) <= 300][:limit]


def chat_sentences() -> list[str]:
    """Sentences of real user prompts (awesome-chatgpt-prompts) as chat-like filler."""
    import csv

    csv.field_size_limit(2**31 - 1)
    with PROMPTS.open(encoding="utf-8", newline="") as handle:
        prompts = [row["prompt"] for row in csv.DictReader(handle)]
    sentences = []
    for prompt in prompts:
        text = re.sub(r"\s+", " ", prompt)
        sentences += [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text) if 30 <= len(s) <= 300]
    return sentences


def _json_lines(archive: zipfile.ZipFile, name: str) -> list[dict[str, object]]:
    text = archive.read(name).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class Scenario:
    name: str
    turns: list[str]  # user messages, in order
    questions: list[str]  # asked after the conversation, in order
    answers: list[list[str]]  # per question: accepted answer strings


def bfcl_scenarios() -> list[Scenario]:
    """The memory scenarios: conversations, and the answers to the later questions."""
    with zipfile.ZipFile(bfcl_wheel()) as archive:
        prefix = "bfcl_eval/data/memory_prereq_conversation/"
        files = sorted(n for n in archive.namelist() if n.startswith(prefix))
        answers = _json_lines(archive, "bfcl_eval/data/possible_answer/BFCL_v4_memory.json")
        questions = _json_lines(archive, "bfcl_eval/data/BFCL_v4_memory.json")
        scenario_of = {str(q["id"]): str(q["scenario"]) for q in questions}
        asked = {
            str(q["id"]): str(q["question"][0][0]["content"])  # type: ignore[index]
            for q in questions
        }
        scenarios = []
        for name in files:
            rows = _json_lines(archive, name)
            rows.sort(key=lambda r: int(str(r["id"]).rsplit("-", 1)[1]))
            scenario = str(rows[0]["scenario"])
            turns = [
                str(message["content"])
                for row in rows
                for turn in row["question"]  # type: ignore[attr-defined]
                for message in turn
                if message["role"] == "user"
            ]
            rows_asked = [row for row in answers if scenario_of.get(str(row["id"])) == scenario]
            scenario_answers = [
                [str(a) for a in row["ground_truth"]]  # type: ignore[attr-defined]
                for row in rows_asked
            ]
            scenario_questions = [asked[str(row["id"])] for row in rows_asked]
            scenarios.append(Scenario(scenario, turns, scenario_questions, scenario_answers))
    return scenarios


DEV_SCENARIOS = ("customer", "healthcare")
DEV_SEEDS = (1, 2)
HELD_OUT_SEEDS = (11, 12)

FIRST = str.split("Amara Bruno Chen Dmitri Elena Farid Greta Hiro Ines Jonas Kavya Lior Mateo")
LAST = str.split("Okafor Lindqvist Tanaka Moreau Haddad Novak Reyes Fischer Kowalski Ito")
CITIES = str.split("Lisbon Tromso Nagoya Valparaiso Tbilisi Winnipeg Cork Ljubljana Hobart")
THINGS = str.split("bicycle laptop violin kayak telescope sofa espresso-grinder camera tent")
VISITS = str.split("dentist physiotherapist vet barber optician notary tutor mechanic")
ACCOUNTS = [
    "library card",
    "locker",
    "parking permit",
    "insurance policy",
    "frequent flyer",
    "gym badge",
    "pharmacy account",
    "storage unit",
]
DAYS = str.split("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")


def _fact(rng: random.Random, used: set[str]) -> tuple[str, str, str]:
    """A fact with a subject not used before in this chat: (statement, question, answer)."""
    kinds = [0, 1, 2, 3]
    rng.shuffle(kinds)
    for kind in kinds:
        if kind == 1 and (free := [t for t in THINGS if t not in used]):
            thing, price = rng.choice(free), rng.randint(20, 4000)
            used.add(thing)
            return (
                f"I paid ${price} for the new {thing}.",
                f"How much did I pay for the new {thing}?",
                str(price),
            )
        if kind == 2 and (free := [v for v in VISITS if v not in used]):
            visit, day = rng.choice(free), rng.choice(DAYS)
            used.add(visit)
            return (
                f"The {visit} appointment moved to {day} at 4 PM.",
                f"On which day is my {visit} appointment now?",
                day,
            )
        if kind == 3 and (free := [a for a in ACCOUNTS if a not in used]):
            account, code = rng.choice(free), rng.randint(1000, 99999)
            used.add(account)
            return (
                f"My {account} number is {code}, please keep it.",
                f"What is my {account} number?",
                str(code),
            )
    while True:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if name not in used:
            used.add(name)
            city = rng.choice(CITIES)
            return (
                f"My cousin {name} just moved to {city}.",
                f"Which city did my cousin {name} move to?",
                city,
            )


def generated_conversation(seed: int, filler: list[str], turns: int = 400) -> Scenario:
    """A long chat of user-prompt filler with facts planted at random turns."""
    rng = random.Random(seed)
    messages: list[str] = []
    questions: list[tuple[str, str]] = []
    used: set[str] = set()
    for _ in range(turns):
        text = " ".join(rng.choice(filler) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.25:
            fact, question, answer = _fact(rng, used)
            text = f"{fact} {text}" if rng.random() < 0.5 else f"{text} {fact}"
            questions.append((question, answer))
        messages.append(text)
    rng.shuffle(questions)
    return Scenario(
        f"generated (seed {seed})",
        messages,
        [q for q, _ in questions],
        [[a] for _, a in questions],
    )


# ----------------------------------------------------------------------- metrics


def _normalize(text: str) -> str:
    text = text.lower().replace("’", "'")
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9$%.,:'/\- ]", " ", text))


def _contains(haystack: str, answer: str) -> bool:
    needle = _normalize(answer).strip(" .,")
    return bool(needle) and re.search(r"(?<![a-z0-9])" + re.escape(needle), haystack) is not None


def _text(messages: list[BaseMessage]) -> str:
    return _normalize(" \n ".join(str(m.text) for m in messages))


@dataclass
class RetentionResult:
    name: str
    turns: int
    budget_tokens: int
    questions: int
    full_answered: int
    trim_answered: int
    plain_answered: int
    recall_answered: int
    full_tokens: float
    trim_tokens: float
    plain_tokens: float
    recall_tokens: float


def _answered(context: list[BaseMessage], answers: list[str]) -> bool:
    text = _text(context[:-1])  # the question itself left out
    return any(_contains(text, a) for a in answers)


def retention(scenario: Scenario, counter: TokenCounter) -> RetentionResult:
    """Play the conversation, then ask each question as the newest user turn."""
    full: list[BaseMessage] = []
    for text in scenario.turns:
        full += [HumanMessage(text), AIMessage(ACK)]
    budget = max(int(counter.count_messages(full)) // 10, 64)
    plain = SummarizingChatMessageHistory(max_tokens=budget, token_counter=counter, recall=False)
    recall = SummarizingChatMessageHistory(max_tokens=budget, token_counter=counter)
    for history in (plain, recall):
        history.add_messages(full)
    answered = {"full": 0, "trim": 0, "plain": 0, "recall": 0}
    sent: dict[str, list[int]] = {key: [] for key in answered}
    for question, answers in zip(scenario.questions, scenario.answers, strict=True):
        asked = HumanMessage(question)
        full.append(asked)
        contexts = {
            "full": full,
            "trim": trim_messages(
                full, max_tokens=budget, token_counter=counter, strategy="last", start_on="human"
            ),
        }
        for key, history in (("plain", plain), ("recall", recall)):
            history.add_messages([asked])
            contexts[key] = history.view().messages
            history.add_messages([AIMessage(ACK)])
        full.append(AIMessage(ACK))
        for key, context in contexts.items():
            answered[key] += _answered(context, answers)
            sent[key].append(int(counter.count_messages(context)))
        assert max(sent["recall"][-1], sent["plain"][-1]) <= budget
    return RetentionResult(
        name=scenario.name,
        turns=len(scenario.turns),
        budget_tokens=budget,
        questions=len(scenario.questions),
        full_answered=answered["full"],
        trim_answered=answered["trim"],
        plain_answered=answered["plain"],
        recall_answered=answered["recall"],
        full_tokens=statistics.fmean(sent["full"]),
        trim_tokens=statistics.fmean(sent["trim"]),
        plain_tokens=statistics.fmean(sent["plain"]),
        recall_tokens=statistics.fmean(sent["recall"]),
    )


# ------------------------------------------------------------------------- speed


@dataclass
class SpeedResult:
    turns: int
    recall: bool
    early_p50_ms: float
    late_p50_ms: float
    early_mean_ms: float
    late_mean_ms: float
    at_1000_mean_ms: float
    paired_early_p50_ms: float
    paired_late_p50_ms: float


def _turn_pairs(prose: list[str], turns: int, seed: int = 1) -> list[list[BaseMessage]]:
    rng = random.Random(seed)
    return [
        [
            HumanMessage(" ".join(rng.choice(prose) for _ in range(rng.randint(1, 3)))),
            AIMessage(rng.choice(prose)),
        ]
        for _ in range(turns)
    ]


def speed(
    pairs: list[list[BaseMessage]], turns: int, model: str, recall: bool, budget: int = 2000
) -> SpeedResult:
    """CPU time of one turn (add the user message, read the view, add the answer).

    First along one conversation of `turns` turns, then paired: 200 more turns of it
    (`pairs` must hold `turns + 200`), each after a turn 100-300 of a second, new
    conversation, so a change in the machine's speed during the run (another job on
    the other core) weighs on early and late turns alike.
    """

    def history() -> SummarizingChatMessageHistory:
        # each its own counter: neither conversation finds counts the other made
        return SummarizingChatMessageHistory(
            max_tokens=budget, token_counter=TokenCounter(model), recall=recall
        )

    clock = time.process_time

    def turn(memory: SummarizingChatMessageHistory, pair: list[BaseMessage]) -> float:
        user, answer = pair
        start = clock()
        memory.add_messages([user])
        view = memory.view()
        memory.add_messages([answer])
        elapsed = clock() - start
        assert view.tokens <= budget
        return elapsed

    long = history()
    per_turn = [turn(long, pair) for pair in pairs[:turns]]
    early = per_turn[100:300]
    late = per_turn[turns - 200 : turns]
    short = history()
    fresh = [[message.model_copy(deep=True) for message in pair] for pair in pairs[:300]]
    for pair in fresh[:100]:
        turn(short, pair)
    paired_early, paired_late = [], []
    for offset in range(200):
        paired_early.append(turn(short, fresh[100 + offset]))
        paired_late.append(turn(long, pairs[turns + offset]))
    return SpeedResult(
        turns=turns,
        recall=recall,
        early_p50_ms=statistics.median(early) * 1e3,
        late_p50_ms=statistics.median(late) * 1e3,
        early_mean_ms=statistics.fmean(early) * 1e3,
        late_mean_ms=statistics.fmean(late) * 1e3,
        at_1000_mean_ms=statistics.fmean(per_turn[1000:1200]) * 1e3 if turns >= 1200 else 0.0,
        paired_early_p50_ms=statistics.median(paired_early) * 1e3,
        paired_late_p50_ms=statistics.median(paired_late) * 1e3,
    )


def trim_at_1000(pairs: list[list[BaseMessage]], model: str, budget: int = 2000) -> float:
    """LangChain's built-in at 1,000 turns: trim the whole list every turn (ms)."""
    from langchain_openai import ChatOpenAI

    tiktoken_counter = ChatOpenAI(model=model, api_key="unused").get_num_tokens_from_messages
    messages = [m for pair in pairs[:1000] for m in pair]
    times = []
    for pair in pairs[1000:1020]:
        messages += pair
        start = time.process_time()
        trim_messages(
            messages,
            max_tokens=budget,
            token_counter=tiktoken_counter,
            strategy="last",
            start_on="human",
        )
        times.append(time.process_time() - start)
    return statistics.median(times) * 1e3


# -------------------------------------------------------------------- invariants


@dataclass
class InvariantResult:
    path: str
    views: int
    over_budget: int
    orphaned: int
    lost: int
    recalled: int


def orphans(messages: list[BaseMessage]) -> int:
    """Tool results sent without their call, and calls sent without their results."""
    count = 0
    for index, message in enumerate(messages):
        if isinstance(message, ToolMessage) and not any(
            isinstance(m, AIMessage) and message.tool_call_id in {c["id"] for c in m.tool_calls}
            for m in messages[:index]
        ):
            count += 1
        if isinstance(message, AIMessage) and message.tool_calls and index < len(messages) - 1:
            answered = {m.tool_call_id for m in messages[index:] if isinstance(m, ToolMessage)}
            count += len({c["id"] for c in message.tool_calls} - answered)
    return count


def tool_chat(prose: list[str], turns: int, seed: int = 5) -> list[list[BaseMessage]]:
    """Turns of a user message and the answer, every third one through a tool call."""
    rng = random.Random(seed)
    steps: list[list[BaseMessage]] = []
    for i in range(turns):
        user = HumanMessage(" ".join(rng.choice(prose) for _ in range(rng.randint(1, 3))))
        step: list[BaseMessage] = [user]
        if i % 3 == 0:
            call = {"name": "lookup", "args": {"q": f"item {i}"}, "id": f"call-{i}"}
            step += [
                AIMessage("", tool_calls=[call]),
                ToolMessage(rng.choice(prose), tool_call_id=f"call-{i}", name="lookup"),
            ]
        steps.append([*step, AIMessage(rng.choice(prose))])
    return steps


def history_invariants(
    name: str, state_store: Any, steps: list[list[BaseMessage]], counter: TokenCounter
) -> InvariantResult:
    budget = 600
    history = SummarizingChatMessageHistory(
        max_tokens=budget, token_counter=counter, state_store=state_store, session_id=name
    )
    result = InvariantResult(f"history, {name} state store", 0, 0, 0, 0, 0)
    added: list[BaseMessage] = []
    for step in steps:
        for message in step:  # each message arrives on its own, as in an agent loop
            history.add_messages([message])
            added.append(message)
            view = history.view()
            result.views += 1
            result.over_budget += int(counter.count_messages(view.messages)) > budget
            result.orphaned += orphans(view.messages)
            result.recalled += len(view.recalled)
    stored = history.full_messages
    result.lost = sum(1 for a, b in zip(added, stored, strict=False) if a.content != b.content)
    result.lost += abs(len(added) - len(stored))
    return result


def agent_invariants(
    name: str, checkpointer: Any, steps: list[list[BaseMessage]], counter: TokenCounter
) -> InvariantResult:
    from langchain.agents import create_agent

    from langchain_tokenopt.middleware.summarizing import SummaryRecallMiddleware
    from tests.support.agent_doubles import ScriptedChatModel
    from tests.support.agent_doubles import get_weather as lookup

    budget = 600
    script: list[AIMessage | str] = []
    for step in steps:
        for message in step[1:]:
            if isinstance(message, AIMessage):
                calls = [
                    {**c, "name": "get_weather", "args": {"city": "Oslo"}}
                    for c in message.tool_calls
                ]
                script.append(AIMessage(str(message.content), tool_calls=calls))
    model = ScriptedChatModel(messages=iter(script))
    middleware = SummaryRecallMiddleware(max_tokens=budget)
    agent = create_agent(model, [lookup], middleware=[middleware], checkpointer=checkpointer)
    config = {"configurable": {"thread_id": name}}
    state: dict[str, Any] = {}
    for step in steps:
        state = agent.invoke({"messages": [step[0]]}, config)
    result = InvariantResult(f"agent, {name} checkpointer", len(model.calls), 0, 0, 0, 0)
    for call in model.calls:
        result.over_budget += int(counter.count_messages(call["messages"])) > budget
        result.orphaned += orphans(call["messages"])
    users = [m.content for m in state["messages"] if isinstance(m, HumanMessage)]
    result.lost = abs(len(users) - len(steps)) + sum(
        1 for a, step in zip(users, steps, strict=False) if a != step[0].content
    )
    result.recalled = middleware.stats.recalled_messages
    return result


def invariants(prose: list[str], counter: TokenCounter) -> list[InvariantResult]:
    import sqlite3

    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.sqlite import SqliteSaver

    from langchain_tokenopt.stores import MemoryStore, SQLiteStore

    steps = tool_chat(prose, 150)
    folder = Path(tempfile.mkdtemp(prefix="bench-history-"))
    results = [
        history_invariants("memory", MemoryStore(), steps, counter),
        history_invariants("SQLite", SQLiteStore(str(folder / "state.db")), steps, counter),
    ]
    url, server = _redis()
    if url is not None:
        from langchain_tokenopt.stores import RedisStore

        try:
            results.append(history_invariants("Redis", RedisStore(url), steps, counter))
        finally:
            if server is not None:
                server.stop()
    else:
        print("   (Redis: no redis-server found; that row is not run)")
    results.append(agent_invariants("in-memory", InMemorySaver(), steps, counter))
    connection = sqlite3.connect(folder / "checkpoints.sqlite", check_same_thread=False)
    results.append(agent_invariants("SQLite", SqliteSaver(connection), steps, counter))
    connection.close()
    return results


def _redis() -> tuple[str | None, Any]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    from tests.support.redis_server import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        return None, None
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-"))).start()
    return server.url, server


# ---------------------------------------------------------------------- report


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [_row(header, widths), _row(["-" * w for w in widths], widths)]
    return "\n".join(lines + [_row(r, widths) for r in rows])


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def _retention_rows(items: list[RetentionResult]) -> list[list[str]]:
    def row(name: str, group: list[RetentionResult]) -> list[str]:
        full = sum(r.full_answered for r in group)
        trim = sum(r.trim_answered for r in group)
        plain = sum(r.plain_answered for r in group)
        ours = sum(r.recall_answered for r in group)
        return [
            name,
            str(sum(r.turns for r in group)),
            str(sum(r.questions for r in group)),
            f"{statistics.fmean(r.full_tokens for r in group):.0f}",
            f"{statistics.fmean(r.recall_tokens for r in group):.0f}",
            _pct(full, sum(r.questions for r in group)),
            _pct(trim, full),
            _pct(plain, full),
            _pct(ours, full),
            f"{ours / trim:.1f}x" if trim else "inf",
        ]

    return [*(row(r.name, [r]) for r in items), row("ALL", items)]


RETENTION_HEADER = [
    "conversation",
    "turns",
    "questions",
    "full tok/q",
    "ours tok/q",
    "full answers",
    "trim / full",
    "no recall / full",
    "ours / full",
    "ours / trim",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--model", default="gpt-4o")
    parser.add_argument(
        "--only",
        choices=["retention", "per-turn", "invariants"],
        help="run one section only (default: all three)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    prose = prose_sentences()
    counter = TokenCounter(args.model)

    if args.only in (None, "retention"):
        scenarios = bfcl_scenarios()
        chat = chat_sentences()
        dev = [retention(s, counter) for s in scenarios if s.name in DEV_SCENARIOS]
        dev += [retention(generated_conversation(seed, chat), counter) for seed in DEV_SEEDS]
        held = [retention(s, counter) for s in scenarios if s.name not in DEV_SCENARIOS]
        held += [retention(generated_conversation(seed, chat), counter) for seed in HELD_OUT_SEEDS]
        print(
            "\n1. Retention: each later question asked as the newest user turn, budget = 1/10 of "
            "the conversation; share of the questions the full history answers that each "
            "context answers (answer's words in it)"
        )
        print("\nDEV split (recall settings chosen on it)")
        print(_table(RETENTION_HEADER, _retention_rows(dev)))
        print("\nHELD-OUT split (never tuned on)")
        print(_table(RETENTION_HEADER, _retention_rows(held)))
        print("   goals: ours / full >= 80%, ours / trim >= 2x")

    if args.only in (None, "per-turn"):
        pairs = _turn_pairs(prose, max(args.turns, 1200) + 200)
        with_recall = speed(pairs, args.turns, args.model, recall=True)
        without = speed(pairs, args.turns, args.model, recall=False)
        trim_ms = trim_at_1000(pairs, args.model)
        print(
            f"\n2. Per-turn CPU time (add the user message, read the view, add the answer), "
            f"budget 2,000, {args.model}"
        )
        rows = []
        for result in (with_recall, without):
            label = "with recall" if result.recall else "without recall"
            rows.append(
                [
                    label,
                    f"{result.early_p50_ms:.3f} ms",
                    f"{result.late_p50_ms:.3f} ms",
                    f"{result.late_p50_ms / result.early_p50_ms:.2f}x",
                    f"{result.early_mean_ms:.3f} ms",
                    f"{result.late_mean_ms:.3f} ms",
                    f"{result.at_1000_mean_ms:.3f} ms",
                    f"{result.paired_early_p50_ms:.3f} ms",
                    f"{result.paired_late_p50_ms:.3f} ms",
                    f"{result.paired_late_p50_ms / result.paired_early_p50_ms:.2f}x",
                ]
            )
        print(
            _table(
                [
                    "",
                    "p50, turns 100-300",
                    f"p50, last 200 of {args.turns:,}",
                    "late / early",
                    "mean 100-300",
                    "mean, last 200",
                    "mean at 1,000",
                    "paired: p50 100-300",
                    f"p50 {args.turns:,}+",
                    "late / early",
                ],
                rows,
            )
        )
        print(f"   trim_messages + tiktoken at 1,000 turns: {trim_ms:.3f} ms per turn (p50)")
        print(
            "   paired: turns 100-300 of a new conversation, each followed by one of "
            f"turns {args.turns:,}-{args.turns + 200:,} of the long one"
        )
        print("   goals: late / early <= 1.5x, p50 at the last turns < 1 ms")

    if args.only in (None, "invariants"):
        print("\n3. Invariants (tool calls every third turn, budget 600)")
        print(
            _table(
                ["path", "views", "over budget", "orphaned tool msgs", "lost msgs", "recalled"],
                [
                    [
                        r.path,
                        str(r.views),
                        str(r.over_budget),
                        str(r.orphaned),
                        str(r.lost),
                        str(r.recalled),
                    ]
                    for r in invariants(prose, counter)
                ],
            )
        )
    print(f"\nTotal time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
