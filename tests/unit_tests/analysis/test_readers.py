"""Properties of the log readers: every shape reads the same requests, a bad record is
named by file, line and field or skipped and counted, and nothing is silently lost."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_tokenopt.analysis.readers import LogReader
from langchain_tokenopt.errors import InvalidRecordError

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
messages = st.lists(
    st.builds(
        lambda role, content: {"role": role, "content": content},
        st.sampled_from(["system", "user", "assistant"]),
        texts,
    ),
    min_size=1,
    max_size=5,
)
bodies = st.lists(
    st.builds(
        lambda model, msgs: {"model": model, "messages": msgs},
        st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-latest"]),
        messages,
    ),
    min_size=1,
    max_size=8,
)
bad_values = st.sampled_from(
    [
        ({"role": "robot", "content": "x"}, "messages[0].role"),
        ({"role": "user", "content": 5}, "messages[0].content"),
        ({"role": "tool", "content": "x"}, "messages[0].tool_call_id"),
        ({"role": "user", "content": [None]}, "messages[0].content[0]"),
        ("not a message", "messages[0]"),
    ]
)

_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _read(path: Path, **kwargs: Any) -> tuple[list[tuple[Any, ...]], LogReader]:
    reader = LogReader([str(path)], **kwargs)
    return [(r.model, r.messages, r.line) for r in reader], reader


@_SETTINGS
@given(records=bodies)
def test_json_lines_and_a_json_array_read_the_same_requests(records: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        lines = Path(folder) / "log.jsonl"
        lines.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
        array = Path(folder) / "log.json"
        array.write_text(json.dumps(records, indent=1), "utf-8")
        from_lines, reader = _read(lines)
        from_array, _ = _read(array)
    assert [(m, msgs) for m, msgs, _ in from_lines] == [(m, msgs) for m, msgs, _ in from_array]
    assert [line for *_, line in from_lines] == list(range(1, len(records) + 1))
    assert reader.stats.input_bytes == sum(len(json.dumps(r)) + 1 for r in records)


@_SETTINGS
@given(records=bodies, bad=bad_values, where=st.integers(min_value=0, max_value=8))
def test_a_bad_record_is_named_or_skipped_and_counted(
    records: list[dict[str, Any]], bad: tuple[Any, str], where: int
) -> None:
    value, field = bad
    position = min(where, len(records))
    broken = [*records[:position], {"model": "gpt-4o", "messages": [value]}, *records[position:]]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in broken), "utf-8")
        with pytest.raises(InvalidRecordError) as error:
            _read(path)
        assert str(error.value).startswith(f"{path}, line {position + 1}: field '{field}'")
        kept, reader = _read(path, skip_invalid=True)
    assert len(kept) == len(records)
    assert reader.stats.skipped == 1 and f"line {position + 1}" in reader.stats.examples[0]


def test_a_conversation_yields_one_request_per_assistant_message(tmp_path: Path) -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye"},
    ]
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({"messages": conversation}), "utf-8")
    requests = list(LogReader([str(path)], default_model="gpt-4o-mini"))
    assert [len(r.messages) for r in requests] == [2, 4]
    assert [r.reply for r in requests] == [conversation[2], conversation[4]]
    assert {r.model for r in requests} == {"gpt-4o-mini"}


def test_a_named_format_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(
        json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
    )
    assert len(list(LogReader([str(path)], format="requests"))) == 1
    reader = LogReader([str(path)], format="langsmith")
    with pytest.raises(InvalidRecordError, match="inputs"):
        list(reader)


@pytest.mark.parametrize("second_line", [False, True])
def test_json_nested_past_the_recursion_limit_is_a_named_record_error(
    tmp_path: Path, second_line: bool
) -> None:
    """A record nested 100,000 levels deep (json.loads raises RecursionError, not
    ValueError) is an InvalidRecordError naming the file and line, or skipped and counted."""
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    good = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    path = tmp_path / "deep.jsonl"
    path.write_text((good + "\n" + deep if second_line else deep) + "\n", encoding="utf-8")

    with pytest.raises(InvalidRecordError) as raised:
        list(LogReader([str(path)]))
    assert "deep" in str(raised.value) and str(path) in str(raised.value)
    assert f"line {2 if second_line else 1}:" in str(raised.value)

    if second_line:
        reader = LogReader([str(path)], skip_invalid=True)
        assert len(list(reader)) == 1
        assert reader.stats.skipped == 1
