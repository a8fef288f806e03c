"""`SummaryRecallMiddleware` keeps its summary state in agent state: a LangGraph
checkpointer (in memory or SQLite) saves it, so another agent object, a restarted
process and concurrent threads continue their own summaries; and it recalls older turns
relevant to the user's question."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import Field

from langchain_tokenopt.chat_history.planner import RECALL_HEADER
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.middleware.summarizing import (
    RECALLED_KEY,
    SUMMARY_KEY,
    SummaryRecallMiddleware,
)

COUNTER = TokenCounter("gpt-4o")
SYSTEM = "You are a concise assistant."
BUDGET = 300


class EchoModel(BaseChatModel):
    """Answers "Noted: <the user's words>"; records what each call was sent (thread-safe)."""

    calls: list[list[BaseMessage]] = Field(default_factory=list)
    lock: Any = Field(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        with self.lock:
            self.calls.append(list(messages))
        said = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
        reply = AIMessage(f"Noted: {str(said.content)[:40]}")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def summarizer(log: list[dict[str, Any]]) -> RunnableLambda[Any, str]:
    def summarize(request: dict[str, Any]) -> str:
        log.append(request)
        said = [str(m.content)[:30] for m in request["messages"]]
        previous = str(request["previous_summary"])
        return (previous + " | " + "; ".join(said)).strip(" |")[-300:]

    return RunnableLambda(summarize)


def agent_on(
    checkpointer: BaseCheckpointSaver[Any], log: list[dict[str, Any]], **kwargs: Any
) -> tuple[Any, EchoModel, SummaryRecallMiddleware]:
    model = EchoModel()
    middleware = SummaryRecallMiddleware(max_tokens=BUDGET, summary_model=summarizer(log), **kwargs)
    agent = create_agent(
        model, system_prompt=SYSTEM, middleware=[middleware], checkpointer=checkpointer
    )
    return agent, model, middleware


def talk(agent: Any, thread: str, lines: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for line in lines:
        result = agent.invoke(
            {"messages": [HumanMessage(line)]}, {"configurable": {"thread_id": thread}}
        )
    return result


def chat(topic: str, turns: int) -> list[str]:
    return [
        f"Turn {i} about {topic}: the {topic} plan needs step {i} done today." for i in range(turns)
    ]


def summary_of(call: list[BaseMessage]) -> str:
    return str(call[1].content) if isinstance(call[1], SystemMessage) else ""


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "checkpoints.sqlite"


def test_the_summary_state_is_in_the_checkpoint_and_every_call_fits() -> None:
    saver = InMemorySaver()
    agent, model, _ = agent_on(saver, [])
    talk(agent, "t1", chat("garden", 14))
    saved = agent.get_state({"configurable": {"thread_id": "t1"}}).values[SUMMARY_KEY]
    assert saved["covered"] > 0 and saved["folds"] >= 1 and saved["summary"]
    assert max(int(COUNTER.count_messages(c)) for c in model.calls) <= BUDGET
    assert summary_of(model.calls[-1]).endswith(saved["summary"])


def test_a_second_agent_on_the_same_checkpointer_continues_the_summary() -> None:
    saver = InMemorySaver()
    first_log: list[dict[str, Any]] = []
    first, first_model, _ = agent_on(saver, first_log)
    talk(first, "t1", chat("garden", 14))
    second_log: list[dict[str, Any]] = []
    second, second_model, _ = agent_on(saver, second_log)  # e.g. another worker process
    talk(second, "t1", ["One more thing about the garden plan."])
    assert summary_of(second_model.calls[0]) == summary_of(first_model.calls[-1]) != ""
    folded = {id(m) for r in second_log for m in r["messages"]}
    assert len(folded) <= 2  # at most the newest turn: no re-fold of the conversation


def test_a_restarted_process_resumes_the_summary_from_the_sqlite_checkpointer(
    sqlite_path: Path,
) -> None:
    log: list[dict[str, Any]] = []
    connection = sqlite3.connect(sqlite_path, check_same_thread=False)
    agent, model, _ = agent_on(SqliteSaver(connection), log)
    talk(agent, "t1", chat("garden", 14))
    before = summary_of(model.calls[-1])
    connection.close()
    del agent, model  # the process is gone: only the file is left

    restarted_log: list[dict[str, Any]] = []
    connection = sqlite3.connect(sqlite_path, check_same_thread=False)
    agent, model, _ = agent_on(SqliteSaver(connection), restarted_log)
    talk(agent, "t1", ["One more thing about the garden plan."])
    connection.close()
    assert before and summary_of(model.calls[0]) == before
    assert sum(len(r["messages"]) for r in restarted_log) <= 2


def test_concurrent_threads_keep_their_own_summaries() -> None:
    saver = InMemorySaver()
    agent, model, _ = agent_on(saver, [])
    topics = ["garden", "violin", "kayak", "tax"]

    def run(topic: str) -> None:
        talk(agent, topic, chat(topic, 12))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run, topics))
    for topic in topics:
        values = agent.get_state({"configurable": {"thread_id": topic}}).values
        others = [t for t in topics if t != topic]
        assert topic in values[SUMMARY_KEY]["summary"]
        assert not any(t in values[SUMMARY_KEY]["summary"] for t in others)
        assert all(topic in str(m.content) for m in values["messages"][1::2])
    for call in model.calls:
        assert int(COUNTER.count_messages(call)) <= BUDGET
        words = " ".join(str(m.content) for m in call[1:])
        assert sum(t in words for t in topics) == 1  # one conversation per call


def fact_then_filler(filler: int) -> list[str]:
    return [
        "Remember this: my locker code at the climbing gym is 4417.",
        *[f"Note {i}: the reading room {100 + i} opens at nine." for i in range(filler)],
    ]


def test_an_old_turn_relevant_to_the_question_is_recalled_and_its_id_saved() -> None:
    agent, model, middleware = agent_on(InMemorySaver(), [])
    talk(agent, "t1", fact_then_filler(20))
    result = talk(agent, "t1", ["What is my locker code at the climbing gym?"])
    sent = model.calls[-1]
    recalled = [m for m in sent if str(m.content).startswith(RECALL_HEADER)]
    assert len(recalled) == 1 and "4417" in str(recalled[0].content)
    assert sent.index(recalled[0]) == 2  # after the system prompt and the summary
    fact, echo = result["messages"][:2]  # the user's fact and the model's echo of it
    assert result[RECALLED_KEY] == [fact.id, echo.id]
    assert middleware.stats.recalled_messages >= 1
    assert int(COUNTER.count_messages(sent)) <= BUDGET


def test_recall_can_be_turned_off() -> None:
    agent, model, middleware = agent_on(InMemorySaver(), [], recall=False)
    talk(agent, "t1", fact_then_filler(20))
    result = talk(agent, "t1", ["What is my locker code at the climbing gym?"])
    assert not any("4417" in str(m.content) for m in model.calls[-1])
    assert result[RECALLED_KEY] == [] and middleware.stats.recalled_messages == 0
