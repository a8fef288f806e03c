"""`tokenopt --version` prints the installed distribution's version."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from langchain_tokenopt.cli import main

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def test_version_prints_the_package_version_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--version"]) == 0
    [declared] = re.findall(r'^version = "(.+)"$', PYPROJECT.read_text(encoding="utf-8"), re.M)
    assert capsys.readouterr().out.strip() == f"tokenopt (langchain-tokenopt) {declared}"
    assert metadata.version("langchain-tokenopt") == declared


def test_version_works_from_the_installed_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "langchain_tokenopt.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.startswith("tokenopt (langchain-tokenopt) ")
    assert done.stderr == ""
