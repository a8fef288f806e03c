"""langchain-tokenopt: spend fewer tokens, less money and less time in LangChain apps.

This module is the whole public API. Names are imported lazily, so importing the
package is cheap and optional extras (redis, langchain, pandas, matplotlib) are only
needed by the features that use them.

Example:
    >>> from langchain_tokenopt import TokenCounter
    >>> TokenCounter("gpt-4o").count_text("hello world")
    2
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_tokenopt.errors import (
        BudgetExceededError,
        MissingExtraError,
        StoreUnavailableError,
        TokenOptError,
        UnknownModelError,
    )
    from langchain_tokenopt.pricing import ModelPrice, PriceTable, price
    from langchain_tokenopt.stores import MemoryStore, RedisStore, SQLiteStore, Store
    from langchain_tokenopt.textindex import TextIndex
    from langchain_tokenopt.tokens import TokenCount, TokenCounter

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "BudgetExceededError": "langchain_tokenopt.errors",
    "MissingExtraError": "langchain_tokenopt.errors",
    "StoreUnavailableError": "langchain_tokenopt.errors",
    "TokenOptError": "langchain_tokenopt.errors",
    "UnknownModelError": "langchain_tokenopt.errors",
    # core
    "TokenCount": "langchain_tokenopt.tokens",
    "TokenCounter": "langchain_tokenopt.tokens",
    "ModelPrice": "langchain_tokenopt.pricing",
    "PriceTable": "langchain_tokenopt.pricing",
    "price": "langchain_tokenopt.pricing",
    "Store": "langchain_tokenopt.stores",
    "MemoryStore": "langchain_tokenopt.stores",
    "SQLiteStore": "langchain_tokenopt.stores",
    "RedisStore": "langchain_tokenopt.stores",
    "TextIndex": "langchain_tokenopt.textindex",
}

__all__ = ["__version__", *sorted(_EXPORTS)]  # noqa: PLE0604


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'langchain_tokenopt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
