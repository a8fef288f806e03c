"""The hostile-input probe finds no traceback, untyped error, hang or silent loss."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).with_name("probe_hostile.py")
ROOT = Path(__file__).resolve().parents[2]


def test_the_probe_reports_zero_failures_across_the_api_and_every_command(
    tmp_path: Path,
) -> None:
    # in a scratch folder: hostile values include "x", a valid path for a store
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    run = subprocess.run(
        [sys.executable, str(PROBE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=900,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1]
    counts = {name: int(n) for n, name in re.findall(r"(\d+) (\w+)", summary)}
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for failure in ("untyped", "traceback", "hang", "loss", "accepted"):
        assert counts[failure] == 0, run.stdout[-3000:]
    # broad: thousands of API cases and every command's hostile files
    assert counts["cases"] > 4000 and counts["typed"] > 3000
