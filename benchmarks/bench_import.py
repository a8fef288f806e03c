"""What importing the README's main example costs on top of `import langchain_openai`.

The import statements of the README's first Python block (the `create_agent` example)
are split into the upstream ones (langchain, langchain-openai, langgraph) and ours;
each set runs in a fresh interpreter, warm (the files were read and their bytecode
written before, as `pip install` does; `PYTHONDONTWRITEBYTECODE` is dropped for the
children so an environment that sets it does not time the compiler instead), repeated,
and the median CPU time (user + system of the child) and wall time are printed:

    uv run --no-sync python -m benchmarks.bench_import [--repeats 15]

Goal (issue 19): ours add under 0.3 s to the upstream imports, warm.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import resource
import statistics
import subprocess
import sys
import time

from benchmarks.common import ROOT

README = ROOT / "README.md"
HEAVY = ("numpy", "scipy", "sklearn", "pandas", "matplotlib", "genai_prices", "tqdm")


def readme_imports() -> tuple[list[str], list[str]]:
    """(upstream, ours): the import statements of the README's main example."""
    [main, *_] = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    upstream: list[str] = []
    ours: list[str] = []
    for node in ast.parse(main).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            line = ast.unparse(node)
            (ours if "langchain_tokenopt" in line else upstream).append(line)
    return upstream, ours


def _child_env() -> dict[str, str]:
    """The environment of a timed child: ours, but allowed to write and read bytecode."""
    env = os.environ.copy()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run(code: str) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of `python -c code`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_child_env())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    upstream, ours = readme_imports()
    cases = {
        "import langchain_openai": "import langchain_openai",
        "upstream imports of the example": "\n".join(upstream),
        "all imports of the example": "\n".join([*upstream, *ours]),
    }
    for code in cases.values():  # warm: every file read once before timing
        _run(code)
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    wall: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):  # interleaved, so load on the machine hits all alike
        for name, code in cases.items():
            c, w = _run(code)
            cpu[name].append(c)
            wall[name].append(w)
    print(f"median of {args.repeats} fresh interpreters, {sys.version.split()[0]}")
    print(f"{'':34} {'CPU s':>7} {'wall s':>7}")
    for name in cases:
        print(f"{name:34} {statistics.median(cpu[name]):7.3f} {statistics.median(wall[name]):7.3f}")
    added_cpu = statistics.median(
        a - b
        for a, b in zip(
            cpu["all imports of the example"], cpu["upstream imports of the example"], strict=True
        )
    )
    added_wall = statistics.median(
        a - b
        for a, b in zip(
            wall["all imports of the example"], wall["upstream imports of the example"], strict=True
        )
    )
    print(
        f"added by langchain_tokenopt: {added_cpu:.3f} s CPU, {added_wall:.3f} s wall"
        " (goal < 0.3 s)"
    )
    probe = "\n".join(
        [*upstream, *ours, "import sys", f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"]
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    )
    print(f"heavy modules loaded by the example's imports: {loaded.stdout.strip()}")


if __name__ == "__main__":
    main()
