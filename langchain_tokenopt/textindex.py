"""One TF-IDF similarity index for the whole package (scikit-learn).

CONTRACT STUB (to be implemented by the foundation work). Used by the semantic cache,
message de-duplication, tool retrieval and the extractive summarizer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable


class TextIndex:
    """Incremental TF-IDF index with top-k cosine queries.

    Args:
        char_ngrams: also index character n-grams (char_wb, 3-5) for fuzzy matching.
        word_ngram_range: word n-gram range, default (1, 2).
        lowercase: fold case before indexing.
        stop_words: None or "english".
        sublinear_tf: use 1 + log(tf).

    Keys are any hashable the caller chooses; adding an existing key replaces it.
    """

    def __init__(
        self,
        *,
        char_ngrams: bool = False,
        word_ngram_range: tuple[int, int] = (1, 2),
        lowercase: bool = True,
        stop_words: str | None = None,
        sublinear_tf: bool = True,
    ) -> None:
        raise NotImplementedError

    def add(self, key: Hashable, text: str) -> None:
        """Index `text` under `key` (replacing any previous text of `key`)."""
        raise NotImplementedError

    def add_many(self, items: Iterable[tuple[Hashable, str]]) -> None:
        """Index many texts at once (faster than repeated `add`)."""
        raise NotImplementedError

    def remove(self, key: Hashable) -> bool:
        """Forget `key`; True if it was indexed."""
        raise NotImplementedError

    def query(
        self,
        text: str,
        k: int = 5,
        *,
        min_score: float = 0.0,
        where: Callable[[Hashable], bool] | None = None,
    ) -> list[tuple[Hashable, float]]:
        """The `k` most similar keys with cosine scores in [0, 1], best first.

        `where` keeps only keys for which it returns True; scores below
        `min_score` are dropped.
        """
        raise NotImplementedError

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts under this index's weighting."""
        raise NotImplementedError

    def text(self, key: Hashable) -> str | None:
        """The indexed text of `key`, or None."""
        raise NotImplementedError

    def keys(self) -> list[Hashable]:
        """Every indexed key."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __contains__(self, key: object) -> bool:
        raise NotImplementedError
