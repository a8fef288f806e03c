"""Each notebook runs after installing the package and its stored outputs are current.

The notebooks are stored with their outputs; this re-executes each one in a fresh kernel
and compares (see `tests/support/notebooks.py`). Refresh with `scripts/notebooks --update`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.support.notebooks import NOTEBOOKS, execute, outputs_of, stderr_of


def test_every_notebook_is_checked() -> None:
    assert len(NOTEBOOKS) == 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_notebook_runs_and_its_stored_outputs_are_current(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "tests.support" not in text and "sys.path" not in text  # runs without a clone
    stored = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    assert any(cell for cell in outputs_of(stored)), "stored without outputs"
    fresh = execute(path)
    assert stderr_of(fresh) == []  # nothing on stderr that is not the point of a cell
    assert outputs_of(fresh) == outputs_of(stored), "stale: run scripts/notebooks --update"
