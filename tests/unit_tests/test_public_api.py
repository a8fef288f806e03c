"""The package's public API: every exported name resolves, nothing else leaks."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import langchain_tokenopt


@pytest.mark.parametrize("name", sorted(set(langchain_tokenopt.__all__) - {"__version__"}))
def test_every_exported_name_resolves_to_its_module_definition(name: str) -> None:
    value = getattr(langchain_tokenopt, name)
    module = importlib.import_module(langchain_tokenopt._EXPORTS[name])
    assert value is getattr(module, name)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        langchain_tokenopt.no_such_thing  # noqa: B018


def test_importing_the_package_loads_no_component_or_optional_extra() -> None:
    code = (
        "import sys, langchain_tokenopt; "
        "print(sorted(m for m in sys.modules if m.startswith(('langchain_tokenopt.', "
        "'redis', 'pandas', 'matplotlib', 'sklearn', 'langchain.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_all_lists_exactly_the_lazy_exports() -> None:
    assert set(langchain_tokenopt.__all__) == {*langchain_tokenopt._EXPORTS, "__version__"}
