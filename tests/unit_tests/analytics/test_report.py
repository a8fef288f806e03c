"""UsageReport aggregates usage events, exports them and advises; efficiency per task."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda

from langchain_tokenopt.analytics.efficiency import analyze_token_efficiency
from langchain_tokenopt.analytics.events import UsageEvent
from langchain_tokenopt.analytics.report import UsageReport
from langchain_tokenopt.callbacks.tracker import UsageTracker
from tests.support.chat_models import CountingFakeChatModel, repeating, reply_with_usage

reply = reply_with_usage


def fake(message: AIMessage | None = None, **kwargs: Any) -> CountingFakeChatModel:
    return repeating(message or reply(), **kwargs)


# ---------------------------------------------------------------- report


def _events() -> list[UsageEvent]:
    import datetime as dt

    day1 = dt.datetime(2025, 3, 1, 23, 30, tzinfo=dt.timezone.utc)
    day2 = dt.datetime(2025, 3, 2, 10, 0, tzinfo=dt.timezone.utc)
    return [
        UsageEvent(
            run_id="1",
            agent="writer",
            model="gpt-4o",
            input_tokens=1000,
            output_tokens=100,
            cache_read_tokens=200,
            cost_usd=Decimal("0.003250"),
            started_at=day1,
        ),
        UsageEvent(
            run_id="2",
            agent="critic",
            model="gpt-4o-mini",
            input_tokens=500,
            output_tokens=50,
            reasoning_tokens=10,
            cost_usd=Decimal("0.000105"),
            started_at=day2,
        ),
        UsageEvent(
            run_id="3",
            agent="writer",
            model="gpt-4o",
            input_tokens=1000,
            output_tokens=100,
            cost_usd=Decimal(0),
            saved_cost_usd=Decimal("0.0035"),
            cache_hit=True,
            started_at=day2,
        ),
    ]


def test_report_to_dict_has_totals_by_agent_by_model_and_by_day() -> None:
    data = UsageReport(_events()).to_dict()
    assert set(data) >= {"totals", "by_agent", "by_model", "by_day"}
    totals = data["totals"]
    assert totals["input_tokens"] == 1500 and totals["output_tokens"] == 150
    assert totals["cache_read_tokens"] == 200 and totals["reasoning_tokens"] == 10
    assert totals["cost_usd"] == "0.003355" and totals["calls"] == 3
    assert totals["cache_hits"] == 1 and totals["saved_tokens"] == 1100
    assert totals["saved_cost_usd"] == "0.0035"
    assert data["by_agent"]["writer"]["calls"] == 2
    assert data["by_model"]["gpt-4o-mini"]["cost_usd"] == "0.000105"
    assert list(data["by_day"]) == ["2025-03-01", "2025-03-02"]
    json.dumps(data)  # JSON-ready


def test_by_day_follows_the_requested_timezone() -> None:
    report = UsageReport(_events(), timezone="America/New_York")
    # 23:30 UTC on March 1 and 10:00 UTC on March 2 are both March 1 or 2 in New York.
    assert list(report.by_day) == ["2025-03-01", "2025-03-02"]
    assert report.by_day["2025-03-01"].calls == 1
    tokyo = UsageReport(_events(), timezone="Asia/Tokyo")
    assert list(tokyo.by_day) == ["2025-03-02"]


def test_an_unknown_report_timezone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus_Mons"):
        UsageReport(_events(), timezone="Mars/Olympus_Mons")


def test_events_round_trip_through_jsonl(tmp_path: Path) -> None:
    tracker = UsageTracker()
    model = fake(reply(123, 45))
    model.invoke("a", config={"callbacks": [tracker], "metadata": {"agent": "x"}})
    with pytest.raises(RuntimeError):
        fake(fail_with="boom").invoke("b", config={"callbacks": [tracker]})
    report = tracker.report()
    path = tmp_path / "events.jsonl"
    assert report.to_jsonl(path) == 2
    loaded = UsageReport.from_jsonl(path)
    assert loaded.events == report.events
    assert loaded.to_dict() == report.to_dict()


def test_a_bad_jsonl_line_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = json.dumps(UsageEvent(run_id="1", agent="a", model="m").to_dict())
    path.write_text(good + "\n" + '{"run_id": "2", "agent": "a", "input_tokens": -5}\n')
    with pytest.raises(ValueError, match=r"line 2: .*input_tokens"):
        UsageReport.from_jsonl(path)


def test_render_table_shows_totals_per_model_agent_and_day() -> None:
    table = UsageReport(_events()).render_table()
    assert "gpt-4o-mini" in table and "critic" in table and "2025-03-02" in table
    total_line = next(line for line in table.splitlines() if line.startswith("total"))
    assert "1,500" in total_line and "0.003355" in total_line


def test_to_dataframe_has_one_row_per_event_with_float_dollars() -> None:
    frame = UsageReport(_events()).to_dataframe()
    assert len(frame) == 3
    assert frame.groupby("agent")["input_tokens"].sum().to_dict() == {
        "critic": 500,
        "writer": 2000,
    }
    assert frame["cost_usd"].sum() == pytest.approx(0.003355)


def test_plot_returns_a_figure_and_writes_a_png(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    path = tmp_path / "usage.png"
    figure = UsageReport(_events()).plot(path)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- suggestions


def _calls(agent: str, model: str, n: int, **fields: Any) -> list[UsageEvent]:
    return [
        UsageEvent(run_id=f"{agent}{model}{i}", agent=agent, model=model, **fields)
        for i in range(n)
    ]


def test_long_inputs_suggest_summarizing_history_with_the_average() -> None:
    events = _calls("chat", "gpt-4o-mini", 6, input_tokens=9000, output_tokens=300)
    (suggestion,) = UsageReport(events).suggestions()
    assert suggestion.kind == "summarize_history" and suggestion.scope == "chat"
    assert suggestion.figures["avg_input_tokens"] == 9000
    assert "9,000" in suggestion.message


def test_repeated_identical_prompts_suggest_a_cache_with_the_repeats() -> None:
    tracker = UsageTracker()
    model = fake(reply(50, 300), model="gpt-4o-mini")
    for question in ["a", "b", "a", "a", "c"]:
        model.invoke(question, config={"callbacks": [tracker]})
    suggestions = tracker.report().suggestions()
    (cache,) = [s for s in suggestions if s.kind == "cache"]
    assert cache.figures["repeated_calls"] == 2
    assert cache.figures["repeated_tokens"] == 700


def test_an_expensive_model_on_short_answers_suggests_a_router() -> None:
    tracker = UsageTracker()
    model = fake(reply(40, 5), model="gpt-4o")
    for i in range(6):
        model.invoke(f"question {i}", config={"callbacks": [tracker]})
    (route,) = [s for s in tracker.report().suggestions() if s.kind == "route"]
    assert route.scope == "gpt-4o"
    assert route.figures["median_output_tokens"] == 5
    assert route.figures["input_usd_per_mtok"] == Decimal("2.5")
    assert route.figures["short_calls"] == 6


def test_a_cheap_model_on_short_answers_is_not_sent_to_a_router() -> None:
    tracker = UsageTracker()
    model = fake(reply(40, 5), model="gpt-4o-mini")
    for i in range(6):
        model.invoke(f"question {i}", config={"callbacks": [tracker]})
    assert [s for s in tracker.report().suggestions() if s.kind == "route"] == []


def test_many_bound_tools_suggest_tool_retrieval() -> None:
    from langchain_core.tools import tool

    def make(i: int) -> Any:
        @tool(f"tool_{i}")
        def _t(x: str) -> str:
            """Does a thing."""
            return x

        return _t

    tracker = UsageTracker()

    class ToolChat(CountingFakeChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            from langchain_core.utils.function_calling import convert_to_openai_tool

            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    model = ToolChat(messages=itertools.repeat(reply(800, 300)), model="gpt-4o-mini")
    bound = model.bind_tools([make(i) for i in range(12)])
    for i in range(5):
        bound.invoke(f"q{i}", config={"callbacks": [tracker], "metadata": {"agent": "ops"}})
    (tools,) = [s for s in tracker.report().suggestions() if s.kind == "tool_retrieval"]
    assert tools.scope == "ops" and tools.figures["avg_tools_per_call"] == 12


def test_a_healthy_workload_gets_no_suggestions() -> None:
    tracker = UsageTracker()
    model = fake(reply(300, 200), model="gpt-4o-mini")
    for i in range(10):
        model.invoke(f"distinct question {i}", config={"callbacks": [tracker]})
    assert tracker.report().suggestions() == []


# ---------------------------------------------------------------- efficiency


def test_token_efficiency_groups_calls_into_tasks_by_top_level_run() -> None:
    tracker = UsageTracker()
    good = fake(reply(100, 20))
    bad = fake(fail_with="tool broke")

    def task(text: str) -> str:
        good.invoke(text)
        return str(good.invoke(text).content)

    def failing_task(text: str) -> str:
        good.invoke(text)
        return str(bad.invoke(text).content)

    config: Any = {"callbacks": [tracker], "metadata": {"task_type": "qa"}}
    RunnableLambda(task).invoke("q1", config=config)
    RunnableLambda(task).invoke("q2", config=config)
    with pytest.raises(RuntimeError):
        RunnableLambda(failing_task).invoke("q3", config=config)
    (qa,) = analyze_token_efficiency(tracker.events).values()
    assert (qa.task_type, qa.tasks, qa.successful_tasks) == ("qa", 3, 2)
    # 5 successful calls of 120 tokens spent, over 2 successful tasks.
    assert qa.total_tokens == 600 and qa.tokens_per_successful_task == 300
    assert qa.success_rate == pytest.approx(2 / 3)


def test_token_efficiency_uses_the_agent_when_no_task_type_is_given() -> None:
    events = _calls("writer", "gpt-4o", 2, input_tokens=10, output_tokens=0)
    assert list(analyze_token_efficiency(events)) == ["writer"]


def test_render_table_notes_estimated_and_unpriced_calls() -> None:
    events = [
        UsageEvent(run_id="1", agent="a", model="m", input_tokens=5, estimated=True),
        UsageEvent(run_id="2", agent="a", model="m", input_tokens=5, cost_usd=None),
        UsageEvent(run_id="3", agent="a", model="m", input_tokens=5, cost_usd=None),
    ]
    table = UsageReport(events).render_table()
    assert "note: 1 call estimated (no provider usage); 3 calls of unknown price" in table
