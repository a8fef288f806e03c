"""Execute the notebooks, store their outputs, and tell when stored outputs are stale.

The notebooks are stored with their outputs (numbers and charts, for readers browsing
the repository). `python -m tests.support.notebooks --update` (`scripts/notebooks
--update`) re-executes them in place; `tests/integration_tests/test_notebooks.py`
re-executes each one and compares its outputs with the stored ones: text exactly,
after `normalized` masks what changes from run to run (timings, dates, ports, ids,
temporary paths), and charts by their presence.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT_SECONDS = 900

_VOLATILE = [
    # ISO dates and times (budget windows, report days)
    (
        re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?)?"),
        "<date>",
    ),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b(batch|file|msgbatch|chatcmpl|call)_[A-Za-z0-9]+"), r"\1_<id>"),
    (re.compile(r"/tmp/[^\s'\"]+"), "<tmp>"),
    (re.compile(r"0x[0-9a-f]+"), "<address>"),
    # durations: "12.3 ms", "0.4 s", "85 us", "1.2 seconds"
    (re.compile(r"\d+(\.\d+)?\s?(ms|us|µs|s|seconds)\b"), "<duration>"),
]


def normalized(text: str) -> str:
    """`text` with what differs between two runs of the same notebook masked."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def outputs_of(notebook: Any) -> list[list[str]]:
    """Per code cell, its outputs: normalized text, or the mime type of a picture."""
    cells: list[list[str]] = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        shown: list[str] = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                shown.append(f"{output.name}: {normalized(output.text)}")
            elif output.output_type in ("execute_result", "display_data"):
                data = output.get("data", {})
                pictures = [kind for kind in data if kind.startswith("image/")]
                if pictures:
                    shown.extend(pictures)
                elif "text/plain" in data:
                    shown.append(normalized(data["text/plain"]))
            elif output.output_type == "error":
                shown.append(f"error: {output.ename}")
        cells.append(shown)
    return cells


def execute(path: Path) -> Any:
    """The notebook at `path`, executed in a fresh kernel from its own folder."""
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


def stderr_of(notebook: Any) -> list[str]:
    """Everything the notebook wrote to stderr, cell by cell."""
    return [
        output.text
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and output.name == "stderr"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the notebooks; store or check outputs.")
    parser.add_argument("--update", action="store_true", help="store the new outputs")
    parser.add_argument("notebooks", nargs="*", type=Path, default=NOTEBOOKS)
    args = parser.parse_args(argv)
    stale = []
    for path in args.notebooks:
        print(f"executing {path.name} ...", flush=True)
        fresh = execute(path)
        if args.update:
            nbformat.write(fresh, path)  # type: ignore[no-untyped-call]
        elif outputs_of(fresh) != outputs_of(nbformat.read(path, as_version=4)):  # type: ignore[no-untyped-call]
            stale.append(path.name)
    if stale:
        print(f"stale outputs: {', '.join(stale)}; run scripts/notebooks --update", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
