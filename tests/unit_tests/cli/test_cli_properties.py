"""Property-based tests of the command line on arbitrary input (issue 20): every run
exits with 0 or 2, prints no traceback, and answers within a time limit."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_tokenopt.cli.app import main
from tests.support.bounded import within

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "type",
                    "messages",
                    "tools",
                    "tool_calls",
                    "run_id",
                    "agent",
                    "cost_usd",
                    "cache_hit",
                    "started_at",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=16,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", "robot"])},
        optional={"content": json_values, "tool_calls": json_values, "tool_call_id": json_values},
    ),
    max_size=4,
)
inputs = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    messages.map(json.dumps),
    st.lists(json_values.map(json.dumps), max_size=4).map("\n".join),
    st.binary(max_size=64),
)


def _write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8", errors="surrogatepass")
    return path


def run(argv: list[str]) -> tuple[int, str]:
    """(exit code, stderr) of `tokenopt argv`, failing on a hang."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = within(lambda: main(argv), 60)
    return code, err.getvalue()


@pytest.mark.parametrize("command", ["count", "analyze", "report"])
@given(data=inputs)
def test_any_input_file_exits_0_or_2_without_a_traceback(command: str, data: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder) / "input.json", data)
        code, err = run([command, str(path)])
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"tokenopt {command}:")


@given(data=inputs)
def test_report_with_skip_invalid_never_refuses_a_readable_file(data: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder) / "events.jsonl", data)
        code, err = run(["report", str(path), "--skip-invalid"])
        readable = True
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            readable = False
    assert "Traceback" not in err
    assert code == (0 if readable else 2), err
