"""The fuzz corpus (tests/fuzz_corpus/<reader>/*.json): crafted hostile inputs, each
replayed by a test. An input is text, or {"parts": [[piece, times], ...]} for inputs
too large to keep literally (100,000 nested brackets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[1] / "fuzz_corpus"


def cases(reader: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, case) of every corpus file of `reader`, sorted by name."""
    return [
        (path.stem, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted((CORPUS / reader).glob("*.json"))
    ]


def text_of(case: dict[str, Any]) -> str:
    """The input text of a case."""
    value = case["input"]
    if isinstance(value, str):
        return value
    return "".join(piece * times for piece, times in value["parts"])
