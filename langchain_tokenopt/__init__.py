"""langchain-tokenopt: spend fewer tokens, less money and less time in LangChain apps.

This module is the whole public API; its names are listed once, in `__init__.pyi`.
They are imported lazily, so importing the package is cheap and optional extras
(redis, langchain, pandas, matplotlib) are only needed by the features that use them.

Example:
    >>> from langchain_tokenopt import TokenCounter
    >>> TokenCounter("gpt-4o").count_text("hello world")
    2
"""

import lazy_loader as _lazy

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
__all__ = [*__all__, "__version__"]
