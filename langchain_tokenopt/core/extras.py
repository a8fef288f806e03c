"""Import optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from langchain_tokenopt.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or raise `MissingExtraError` naming `extra`.

    Example:
        >>> require("json", "viz").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(extra, module.split(".")[0]) from exc
