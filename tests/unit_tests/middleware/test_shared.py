"""What every middleware module promises, and that the shared test double behaves."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from langchain_core.messages import AIMessage

from tests.support.agent_doubles import call_tool, get_weather, scripted

ROOT = Path(__file__).resolve().parents[3]


# ------------------------------------------------------------------------ tests


def test_scripted_model_records_what_each_call_was_sent() -> None:
    model = scripted([call_tool("get_weather", city="Oslo"), "done"])
    bound = model.bind_tools([get_weather])
    first = bound.invoke("weather?")
    assert isinstance(first, AIMessage)
    assert first.tool_calls[0]["name"] == "get_weather"
    assert model.calls[0]["tools"] == ["get_weather"]
    assert model.invoke("again").content == "done"
    assert model.calls[1]["tools"] == []


def test_importing_middleware_without_langchain_names_the_extra() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["langchain"] = None  # as if the langchain package were not installed
        sys.modules["langchain.agents"] = None
        sys.modules["langchain.agents.middleware"] = None
        from langchain_tokenopt.errors import MissingExtraError
        try:
            import langchain_tokenopt.middleware
        except MissingExtraError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "pip install 'langchain-tokenopt[langchain]'" in done.stdout
