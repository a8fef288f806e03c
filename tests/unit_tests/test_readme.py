"""The README's Python tour runs as written (no request is sent: calls are commented)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.globals import get_llm_cache, set_llm_cache

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_tour_runs_and_builds_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [tour] = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    namespace: dict[str, object] = {}
    previous = get_llm_cache()
    try:
        exec(compile(tour, str(README), "exec"), namespace)
        assert get_llm_cache() is namespace["cache"]
    finally:
        set_llm_cache(previous)
    assert namespace["n"] == namespace["counter"].count_messages(  # type: ignore[attr-defined]
        [("system", "Be brief."), ("human", "What is LCEL?")]
    )
    router: Any = namespace["router"]
    assert router.route("What is the capital of France?").tier == "gpt-4o-mini"
    assert router.route("Say hello in Spanish").tier == "gpt-4o-mini"
    assert router.route("Prove that the sum of the first n odd numbers is n^2").tier == "gpt-4o"
    assert (tmp_path / "llm-cache.sqlite3").exists()
    assert (tmp_path / "budget.sqlite3").exists()
