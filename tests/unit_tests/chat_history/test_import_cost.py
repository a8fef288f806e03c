"""Importing the chat history costs only what it needs: no scikit-learn, no scipy."""

from __future__ import annotations

import json
import subprocess
import sys

_HEAVY = ("sklearn", "scipy")


def _heavy_modules_after(statements: str) -> list[str]:
    """The scikit-learn / scipy packages a fresh interpreter holds after `statements`."""
    script = (
        f"import json, sys\n{statements}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({_HEAVY!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    heavy: list[str] = json.loads(out.strip().splitlines()[-1])
    return heavy


def test_importing_the_history_dedup_or_tool_retrieval_loads_no_scikit_learn_or_scipy() -> None:
    statements = "\n".join(
        [
            "import langchain_tokenopt.chat_history",
            "from langchain_tokenopt import SummarizingChatMessageHistory, TokenCounter",
            "import langchain_tokenopt.dedup",
            "import langchain_tokenopt.tool_retrieval",
            "import langchain_tokenopt.core.textindex",
        ]
    )
    assert _heavy_modules_after(statements) == []


def test_the_extractive_summarizer_loads_scikit_learn_when_it_summarizes() -> None:
    statements = (
        "from langchain_core.messages import HumanMessage\n"
        "from langchain_tokenopt.chat_history import ExtractiveSummarizer\n"
        "ExtractiveSummarizer().invoke([HumanMessage('My flight to Oslo leaves on May 3.')])"
    )
    assert "sklearn" in _heavy_modules_after(statements)
