"""The README's Python examples run as written, against the local OpenAI-compatible server.

`ChatOpenAI` in the README has no `base_url`: the openai SDK reads `OPENAI_BASE_URL`,
which points at the server, so every request is real HTTP and checked on the wire.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.globals import get_llm_cache, set_llm_cache

from tests.support.openai_server import FakeOpenAIServer

README = Path(__file__).resolve().parents[2] / "README.md"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def run(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


@pytest.fixture
def offline_openai(
    openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeOpenAIServer]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    previous = get_llm_cache()  # the README sets the global cache
    yield openai_server
    set_llm_cache(previous)


def test_the_readme_has_the_agent_first_and_the_chain_second() -> None:
    agent, chain = examples()
    assert "create_agent(" in agent and "checkpointer=InMemorySaver()" in agent
    assert "RunnableWithMessageHistory(" in chain


def test_the_main_example_runs_an_agent_with_every_part(
    offline_openai: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server = offline_openai
    server.enqueue(tool_calls=[{"name": "get_order_status", "arguments": {"order_id": "NW-48213"}}])
    server.enqueue("Your order NW-48213 is in transit.")
    agent_code, _ = examples()
    namespace = run(agent_code)

    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Your order NW-48213 is in transit."
    first, second = server.requests
    assert [t["function"]["name"] for t in first["tools"]][:1] == ["get_order_status"]
    assert len(first["tools"]) == 2 < len(namespace["agent"].nodes["tools"].bound.tools_by_name)
    assert first["model"] == second["model"] == "gpt-4o-mini"  # routed to the cheap tier
    assert second["messages"][-1]["role"] == "tool"

    report = namespace["tracker"].report()
    assert set(report.by_agent) == {"support_bot"}
    spent = report.by_agent["support_bot"].cost_usd
    assert spent > 0 and printed[1] == str(spent)
    budget = namespace["budget"]
    assert budget.remaining().cost_usd == Decimal(5) - spent
    assert (Path("llm-cache.sqlite3")).exists() and Path("budget.sqlite3").exists()

    # The same question in a new conversation: its first call is answered by the cache.
    server.enqueue("Your order NW-48213 is in transit.")
    again = namespace["agent"].invoke(
        {"messages": [("user", "Where is my order NW-48213?")]},
        {"configurable": {"thread_id": "bob"}, "callbacks": [namespace["tracker"]]},
    )
    assert again["messages"][-1].content == "Your order NW-48213 is in transit."
    assert server.request_count <= 3
    assert namespace["cache"].stats().hits >= 1
    assert namespace["cache"].stats().saved_usd > 0


def test_the_chain_example_keeps_history_and_names_the_chain(
    offline_openai: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    offline_openai.enqueue("LCEL composes runnables with |.")
    _, chain_code = examples()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RunnableWithMessageHistory's deprecation
        namespace = run(chain_code)
    assert namespace["n"] == namespace["counter"].count_messages(
        [("system", "Be brief."), ("human", "What is LCEL?")]
    )
    assert namespace["cost"] > 0
    history = namespace["histories"]["ada"]
    assert [m.type for m in history.messages] == ["human", "ai"]
    tokens = namespace["tracker"].report().by_agent["faq_chain"].input_tokens
    assert capsys.readouterr().out.strip() == f"LCEL composes runnables with |. {tokens}"
    assert offline_openai.last_request["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }
