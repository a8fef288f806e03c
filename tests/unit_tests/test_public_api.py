"""The package's public API: every exported name resolves, nothing else leaks."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import langchain_tokenopt

PUBLIC = sorted(set(langchain_tokenopt.__all__) - {"__version__"})
STUB = Path(langchain_tokenopt.__file__).with_suffix(".pyi")


def _stub_names() -> dict[str, str]:
    """Public name -> defining module, as the stub lists them."""
    names: dict[str, str] = {}
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                names[alias.name] = f"langchain_tokenopt.{node.module}"
    return names


@pytest.mark.parametrize("name", PUBLIC)
def test_every_exported_name_resolves_to_the_module_that_defines_it(name: str) -> None:
    value = getattr(langchain_tokenopt, name)
    assert getattr(value, "__module__", None) == _stub_names()[name]


def test_all_is_the_stub_list_plus_the_version() -> None:
    assert sorted(langchain_tokenopt.__all__) == sorted([*_stub_names(), "__version__"])
    assert langchain_tokenopt.__version__ == "0.1.0"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_class_documents_itself_with_an_example(name: str) -> None:
    value = getattr(langchain_tokenopt, name)
    if inspect.isclass(value) and not issubclass(value, Exception):
        assert ">>>" in (value.__doc__ or ""), f"{name} has no tested example"


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        langchain_tokenopt.no_such_thing  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_package_loads_no_component_or_optional_extra() -> None:
    code = (
        "import sys, langchain_tokenopt; "
        "print(sorted(m for m in sys.modules if m.startswith(('langchain_tokenopt.', "
        "'redis', 'pandas', 'matplotlib', 'sklearn', 'scipy', 'langchain.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_package_ships_its_types() -> None:
    package = Path(langchain_tokenopt.__file__).parent
    assert (package / "py.typed").is_file()
    assert STUB.is_file()
