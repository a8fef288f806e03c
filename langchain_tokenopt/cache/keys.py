"""Store keys of the cache: a SHA-256 over the parts that make two requests the same."""

from __future__ import annotations

import hashlib

__all__ = ["digest"]


def digest(*parts: str) -> str:
    """Hex SHA-256 of `parts`, each followed by a separator so ("ab", "c") != ("a", "bc").

    Example:
        >>> digest("llm", "prompt") == digest("llm", "prompt") != digest("llmp", "rompt")
        True
    """
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogatepass"))
        hasher.update(b"\x1f")
    return hasher.hexdigest()
