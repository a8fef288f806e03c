"""SummarizingChatMessageHistory over LangChain's SQLChatMessageHistory on SQLite."""

from __future__ import annotations

from pathlib import Path

from langchain_community import chat_message_histories as sql_histories
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.stores import SQLiteStore

COUNTER = TokenCounter("gpt-4o")
BUDGET = 250


def _history(db: Path, session_id: str = "alice") -> SummarizingChatMessageHistory:
    store = sql_histories.SQLChatMessageHistory(
        session_id=session_id, connection=f"sqlite:///{db / 'chat.db'}"
    )
    return SummarizingChatMessageHistory(
        store,
        max_tokens=BUDGET,
        state_store=SQLiteStore(db / "state.db"),
        token_counter=COUNTER,
    )


def _turns(n: int) -> list[list[BaseMessage]]:
    return [
        [HumanMessage(f"Shipment {i} of 12 crates leaves Hamburg on day {i}."), AIMessage("Ok.")]
        for i in range(n)
    ]


def test_every_message_is_persisted_and_the_view_stays_in_budget(tmp_path: Path) -> None:
    history = _history(tmp_path)
    history.add_messages([SystemMessage("You are a logistics assistant.")])
    added: list[BaseMessage] = [SystemMessage("You are a logistics assistant.")]
    for turn in _turns(30):
        history.add_messages(turn)
        added += turn
        assert COUNTER.count_messages(history.messages) <= BUDGET
    assert [m.content for m in history.full_messages] == [m.content for m in added]
    assert history.messages[0].content == "You are a logistics assistant."
    assert "Hamburg" in history.summary


def test_a_restarted_process_resumes_the_same_summary_and_view(tmp_path: Path) -> None:
    first = _history(tmp_path)
    for turn in _turns(25):
        first.add_messages(turn)
    view, summary, folded = first.messages, first.summary, first.folded_message_count
    assert folded > 0

    second = _history(tmp_path)  # a new process: new objects over the same files
    assert second.summary == summary
    assert second.folded_message_count == folded
    assert [m.content for m in second.messages] == [m.content for m in view]
    second.add_messages([HumanMessage("Shipment 99 is cancelled."), AIMessage("Noted.")])
    assert len(second.full_messages) == 52
    assert COUNTER.count_messages(second.messages) <= BUDGET


def test_sessions_do_not_share_messages_or_summaries(tmp_path: Path) -> None:
    alice, bob = _history(tmp_path, "alice"), _history(tmp_path, "bob")
    for turn in _turns(20):
        alice.add_messages(turn)
    bob.add_messages([HumanMessage("Hi, I am Bob.")])
    assert bob.summary == ""
    assert [m.content for m in bob.messages] == ["Hi, I am Bob."]
    assert alice.summary


async def test_async_use_over_sql(tmp_path: Path) -> None:
    history = _history(tmp_path)
    for turn in _turns(20):
        await history.aadd_messages(turn)
        assert COUNTER.count_messages(await history.aget_messages()) <= BUDGET
    assert len(history.full_messages) == 40
    await history.aclear()
    assert history.full_messages == []
    assert _history(tmp_path).summary == ""
