"""Does SummarizingChatMessageHistory stay cheap per turn and remember more than trimming?

1. Per-turn cost: the mean time of one add (a user + an assistant message) plus one
   read, around turn 100 and around turn 10,000 of one conversation (flat cost), and
   against LangChain's `trim_messages` with a tiktoken counter
   (`ChatOpenAI.get_num_tokens_from_messages`) called every turn at 1,000 turns.
2. Savings and fact retention on real multi-turn conversations: the five memory
   scenarios of the Berkeley Function Calling Leaderboard (`bfcl-eval` wheel on PyPI,
   downloaded once into .bench-data/). Each scenario's prerequisite conversations are
   played in order as user turns (each answered by a one-word assistant turn), with a
   budget of a tenth of the full conversation. Reported: tokens sent per turn against
   the full history and against `trim_messages` at the same budget, and retention:
   the share of the scenario's later questions whose answer words (from
   possible_answer) are still in the context at the end, among those answerable from
   the full history. The heuristics were not tuned on these conversations.
3. The same on generated 400-turn conversations (sentences of real user prompts as
   filler, facts planted at random turns), with seeds not used while designing the
   heuristics, as a sanity check beyond BFCL.

Run: python benchmarks/bench_history.py [--turns 10000] [--model gpt-4o]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
import zipfile
from dataclasses import dataclass

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
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
    answers: list[list[str]]  # per question: accepted answer strings


def bfcl_scenarios() -> list[Scenario]:
    """The memory scenarios: conversations, and the answers to the later questions."""
    with zipfile.ZipFile(bfcl_wheel()) as archive:
        prefix = "bfcl_eval/data/memory_prereq_conversation/"
        files = sorted(n for n in archive.namelist() if n.startswith(prefix))
        answers = _json_lines(archive, "bfcl_eval/data/possible_answer/BFCL_v4_memory.json")
        questions = _json_lines(archive, "bfcl_eval/data/BFCL_v4_memory.json")
        scenario_of = {str(q["id"]): str(q["scenario"]) for q in questions}
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
            scenario_answers = [
                [str(a) for a in row["ground_truth"]]  # type: ignore[attr-defined]
                for row in answers
                if scenario_of.get(str(row["id"])) == scenario
            ]
            scenarios.append(Scenario(scenario, turns, scenario_answers))
    return scenarios


FIRST = str.split("Amara Bruno Chen Dmitri Elena Farid Greta Hiro Ines Jonas Kavya Lior Mateo")
LAST = str.split("Okafor Lindqvist Tanaka Moreau Haddad Novak Reyes Fischer Kowalski Ito")
CITIES = str.split("Lisbon Tromso Nagoya Valparaiso Tbilisi Winnipeg Cork Ljubljana Hobart")
THINGS = str.split("bicycle laptop violin kayak telescope sofa espresso grinder camera tent")
DAYS = str.split("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")


def generated_conversation(seed: int, filler: list[str], turns: int = 400) -> Scenario:
    """A long chat of user-prompt filler with facts planted at random turns."""
    rng = random.Random(seed)
    messages: list[str] = []
    answers: list[list[str]] = []
    for _ in range(turns):
        text = " ".join(rng.choice(filler) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.25:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            kind = rng.randrange(4)
            if kind == 0:
                city = rng.choice(CITIES)
                fact, answer = f"My cousin {name} just moved to {city}.", city
            elif kind == 1:
                price = rng.randint(20, 4000)
                fact, answer = f"I paid ${price} for the {rng.choice(THINGS)}.", str(price)
            elif kind == 2:
                day = rng.choice(DAYS)
                fact, answer = f"The dentist appointment moved to {day} at 4 PM.", day
            else:
                code = rng.randint(1000, 99999)
                fact, answer = f"My membership number is {code}, please keep it.", str(code)
            position = rng.randint(0, 1)
            text = f"{fact} {text}" if position == 0 else f"{text} {fact}"
            answers.append([answer])
        messages.append(text)
    return Scenario(f"generated (seed {seed})", messages, answers)


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
    full_per_turn: float
    trim_per_turn: float
    ours_per_turn: float
    answerable: int
    trim_kept: int
    ours_kept: int
    folds: int


def retention(scenario: Scenario, counter: TokenCounter) -> RetentionResult:
    """Play the conversation through trimming and through our history; compare."""
    full: list[BaseMessage] = []
    for text in scenario.turns:
        full += [HumanMessage(text), AIMessage(ACK)]
    budget = max(int(counter.count_messages(full)) // 10, 64)
    history = SummarizingChatMessageHistory(max_tokens=budget, token_counter=counter)
    sent_full, sent_trim, sent_ours = [], [], []
    so_far: list[BaseMessage] = []
    trimmed: list[BaseMessage] = []
    view: list[BaseMessage] = []
    for i in range(0, len(full), 2):
        turn = full[i : i + 2]
        so_far += turn
        history.add_messages(turn)
        view = history.messages
        trimmed = trim_messages(
            so_far, max_tokens=budget, token_counter=counter, strategy="last", start_on="human"
        )
        sent_full.append(counter.count_messages(so_far))
        sent_trim.append(counter.count_messages(trimmed))
        sent_ours.append(counter.count_messages(view))
        assert sent_ours[-1] <= budget
    full_text, trim_text, ours_text = _text(full), _text(trimmed), _text(view)
    answerable = [a for a in scenario.answers if any(_contains(full_text, x) for x in a)]
    return RetentionResult(
        name=scenario.name,
        turns=len(scenario.turns),
        budget_tokens=budget,
        full_per_turn=statistics.fmean(sent_full),
        trim_per_turn=statistics.fmean(sent_trim),
        ours_per_turn=statistics.fmean(sent_ours),
        answerable=len(answerable),
        trim_kept=sum(any(_contains(trim_text, x) for x in a) for a in answerable),
        ours_kept=sum(any(_contains(ours_text, x) for x in a) for a in answerable),
        folds=history._state.folds,
    )


# ------------------------------------------------------------------------- speed


@dataclass
class SpeedResult:
    turns: int
    early_ms: float
    late_ms: float
    ours_at_1000_ms: float
    trim_at_1000_ms: float


def _turn_pairs(prose: list[str], turns: int, seed: int = 1) -> list[list[BaseMessage]]:
    rng = random.Random(seed)
    return [
        [
            HumanMessage(" ".join(rng.choice(prose) for _ in range(rng.randint(1, 3)))),
            AIMessage(rng.choice(prose)),
        ]
        for _ in range(turns)
    ]


def speed(prose: list[str], turns: int, model: str, budget: int = 2000) -> SpeedResult:
    """Per-turn add + read time along one long conversation, and trim_messages at 1,000."""
    from langchain_openai import ChatOpenAI

    pairs = _turn_pairs(prose, max(turns, 1100))
    counter = TokenCounter(model)
    history = SummarizingChatMessageHistory(max_tokens=budget, token_counter=counter)
    clock = time.perf_counter
    per_turn = []
    for pair in pairs[:turns]:
        start = clock()
        history.add_messages(pair)
        history.messages  # noqa: B018
        per_turn.append(clock() - start)
    window = 200
    early = statistics.fmean(per_turn[100 : 100 + window])
    late = statistics.fmean(per_turn[turns - window : turns])
    ours_1000 = statistics.fmean(per_turn[1000 : 1000 + window]) if turns >= 1200 else late

    # LangChain's built-in at 1,000 turns: trim the whole list every turn.
    tiktoken_counter = ChatOpenAI(model=model, api_key="unused").get_num_tokens_from_messages
    messages = [m for pair in pairs[:1000] for m in pair]
    trim_times = []
    for pair in pairs[1000:1020]:
        messages += pair
        start = clock()
        trim_messages(
            messages,
            max_tokens=budget,
            token_counter=tiktoken_counter,
            strategy="last",
            start_on="human",
        )
        trim_times.append(clock() - start)
    return SpeedResult(
        turns=turns,
        early_ms=early * 1e3,
        late_ms=late * 1e3,
        ours_at_1000_ms=ours_1000 * 1e3,
        trim_at_1000_ms=statistics.fmean(trim_times) * 1e3,
    )


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--model", default="gpt-4o")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    prose = prose_sentences()
    counter = TokenCounter(args.model)

    s = speed(prose, args.turns, args.model)
    print(f"\n1. Per-turn cost (add a user+assistant pair, then read), budget 2,000 {args.model}")
    print(
        _table(
            ["measure", "value", "ratio", "goal"],
            [
                ["ours, mean at turns 100-300", f"{s.early_ms:.3f} ms", "", ""],
                [f"ours, mean at the last 200 of {s.turns:,}", f"{s.late_ms:.3f} ms", "", ""],
                ["flat cost: late / early", "", f"{s.late_ms / s.early_ms:.2f}x", "<= 1.5x"],
                ["ours at 1,000 turns", f"{s.ours_at_1000_ms:.3f} ms", "", ""],
                ["trim_messages + tiktoken at 1,000", f"{s.trim_at_1000_ms:.3f} ms", "", ""],
                [
                    "speed-up vs trim_messages",
                    "",
                    f"{s.trim_at_1000_ms / s.ours_at_1000_ms:.1f}x",
                    ">= 30x",
                ],
            ],
        )
    )

    results = [retention(sc, counter) for sc in bfcl_scenarios()]
    chat = chat_sentences()
    generated = [retention(generated_conversation(seed, chat), counter) for seed in (1, 2)]
    header = [
        "conversation",
        "turns",
        "budget",
        "full/turn",
        "trim/turn",
        "ours/turn",
        "ours vs full",
        "facts",
        "trim kept",
        "ours kept",
        "ratio",
    ]

    def rows(items: list[RetentionResult]) -> list[list[str]]:
        out = []
        for r in items:
            out.append(
                [
                    r.name,
                    str(r.turns),
                    str(r.budget_tokens),
                    f"{r.full_per_turn:.0f}",
                    f"{r.trim_per_turn:.0f}",
                    f"{r.ours_per_turn:.0f}",
                    f"{r.ours_per_turn / r.full_per_turn:.2f}x",
                    str(r.answerable),
                    _pct(r.trim_kept, r.answerable),
                    _pct(r.ours_kept, r.answerable),
                    f"{r.ours_kept / r.trim_kept:.1f}x" if r.trim_kept else "inf",
                ]
            )
        facts = sum(r.answerable for r in items)
        trim_kept = sum(r.trim_kept for r in items)
        ours_kept = sum(r.ours_kept for r in items)
        out.append(
            [
                "ALL",
                str(sum(r.turns for r in items)),
                "",
                f"{statistics.fmean(r.full_per_turn for r in items):.0f}",
                f"{statistics.fmean(r.trim_per_turn for r in items):.0f}",
                f"{statistics.fmean(r.ours_per_turn for r in items):.0f}",
                f"{sum(r.ours_per_turn for r in items) / sum(r.full_per_turn for r in items):.2f}x",
                str(facts),
                _pct(trim_kept, facts),
                _pct(ours_kept, facts),
                f"{ours_kept / trim_kept:.1f}x" if trim_kept else "inf",
            ]
        )
        return out

    print(
        "\n2. BFCL memory scenarios, budget = 1/10 of the full conversation, "
        "ExtractiveSummarizer (offline); tokens sent per turn; facts = answerable questions"
    )
    print(_table(header, rows(results)))
    print("   goal: retention (ours kept / trim kept) >= 1.5x")
    print("\n3. Generated long conversations (seeds not used while designing the heuristics)")
    print(_table(header, rows(generated)))
    print(f"\nTotal time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
