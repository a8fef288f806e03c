"""Importing what the README's main example imports loads no heavy library.

numpy, scikit-learn, scipy, pandas, matplotlib, genai-prices and tqdm load on first
use (`benchmarks/bench_import.py` measures the time): a structural guard, not a timing.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "scipy", "sklearn", "pandas", "matplotlib", "genai_prices", "tqdm")


def readme_main_example_imports() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    main = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    return [
        ast.unparse(node)
        for node in ast.parse(main).body
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]


def loaded_after(statements: list[str]) -> list[str]:
    probe = "\n".join(
        [
            *statements,
            "import json, sys",
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_the_readme_main_example_imports_no_heavy_library() -> None:
    statements = readme_main_example_imports()
    assert any("langchain_tokenopt.middleware" in s for s in statements)
    assert any(s.startswith("from langchain_tokenopt import") for s in statements)
    assert loaded_after(statements) == []


def test_the_other_front_door_names_import_no_heavy_library() -> None:
    names = "SummarizingChatMessageHistory, TokenCounter, ToolRetriever, UsageTracker, price"
    assert loaded_after([f"from langchain_tokenopt import {names}"]) == []


def test_the_probe_sees_a_heavy_import() -> None:
    # the guards above would pass vacuously if the probe could not see imports
    assert "numpy" in loaded_after(["from langchain_tokenopt import TextIndex", "TextIndex()"])
