"""Token-aware text splitting that never exceeds the model's token limit.

LangChain's `TokenTextSplitter` cuts anywhere (mid-sentence, even mid-character) and
the recursive character splitter measures tokens per piece, so joined chunks can
overshoot. `TokenAwareTextSplitter` cuts at paragraph and sentence ends, counts each
emitted chunk exactly with the model's tokenizer, and only cuts on token boundaries
when a single sentence is longer than the limit.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from langchain_text_splitters import TextSplitter

from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import int_in_range, shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["TokenAwareTextSplitter"]

logger = logging.getLogger(__name__)

# A unit ends after sentence-final punctuation (plus closing quotes or brackets) and
# the whitespace that follows it, or after a blank line. The whitespace stays with the
# unit before it, so concatenating the units gives back the text exactly. Common
# abbreviations and single-letter initials ("Mr.", "J. Watson") do not end a sentence.
# The first character class is a cheap filter; the lookbehinds only run after it.
_UNIT_END = re.compile(
    r"[\n.!?…](?:(?<=\n)[ \t]*\n\s*"
    r"|(?<=[.!?…])(?<!\bMr.)(?<!\bMrs.)(?<!\bMs.)(?<!\bDr.)(?<!\bSt.)(?<!\bJr.)"
    r"(?<!\bSr.)(?<!\bvs.)(?<!\bMt.)(?<!\be\.g.)(?<!\bi\.e.)(?<!\betc.)(?<!\b[A-Z].)"
    r"[.!?…]*[\"'”’»)\]]*\s+)"
)
# Finer cuts for a sentence longer than the limit, most to least desirable: after a
# line break, after a clause mark, after any whitespace. A piece that is still too
# long is cut on token boundaries.
_FINER_ENDS = (
    re.compile(r"\n\s*"),
    re.compile(r"[,;:—–)\]][\"'”’]*\s+"),
    re.compile(r"\s+"),
)


def _split_after(pattern: re.Pattern[str], text: str) -> list[str]:
    """Pieces of `text` that each end right after a match of `pattern`."""
    pieces: list[str] = []
    start = 0
    for match in pattern.finditer(text):
        end = match.end()
        if end > start:
            pieces.append(text[start:end])
            start = end
    if start < len(text):
        pieces.append(text[start:])
    return pieces


class TokenAwareTextSplitter(TextSplitter):
    """Split text at paragraph and sentence ends into chunks of at most `chunk_size` tokens.

    Guarantees:
      * No chunk is longer than `chunk_size` tokens, counted exactly on the joined
        chunk with the model's tokenizer (not as a sum of per-sentence counts).
      * Chunks end at a paragraph or sentence end whenever one fits; a sentence longer
        than the limit is cut at a line break, clause mark or word boundary, and a
        single word longer than the limit on token boundaries that never split a
        multi-byte character.
      * Whitespace is kept, attached to the end of the chunk before it, so with
        `chunk_overlap=0` `"".join(splitter.split_text(text)) == text`.
      * `chunk_overlap` is made of whole trailing sentences (or pieces) of the previous
        chunk that together fit in `chunk_overlap` tokens.

    Args:
        chunk_size: most tokens in a chunk.
        chunk_overlap: most tokens repeated from the end of the previous chunk.
        model: model whose tokenizer counts, e.g. "gpt-4o".
        encoding: tiktoken encoding name; wins over `model`.
        **kwargs: passed to `TextSplitter` (e.g. `add_start_index=True`).

    Example:
        >>> from langchain_tokenopt.text_splitters import TokenAwareTextSplitter
        >>> splitter = TokenAwareTextSplitter(chunk_size=8, model="gpt-4o")
        >>> splitter.split_text("One sentence here. Another one follows. And a third.")
        ['One sentence here. ', 'Another one follows. And a third.']
    """

    def __init__(
        self,
        chunk_size: int = 512,
        chunk_overlap: int = 0,
        model: str = "gpt-4o",
        *,
        encoding: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("strip_whitespace", False):
            raise InvalidArgumentError(
                "TokenAwareTextSplitter keeps whitespace so that chunks join back into "
                "the input; strip the chunks yourself if you need to."
            )
        if "length_function" in kwargs:
            raise InvalidArgumentError(
                "TokenAwareTextSplitter always counts tokens with the model's tokenizer; "
                "choose it with model= or encoding= instead of length_function."
            )
        int_in_range(chunk_size, "chunk_size", minimum=1, hint="a number of tokens, e.g. 512")
        int_in_range(
            chunk_overlap,
            "chunk_overlap",
            minimum=0,
            maximum=chunk_size - 1,
            hint="fewer tokens than chunk_size",
        )
        self._counter = TokenCounter(model, encoding=encoding)
        # Our own copies: TextSplitter keeps its limits only in private attributes.
        self._max_chunk_tokens = chunk_size
        self._overlap_tokens = chunk_overlap
        super().__init__(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            length_function=self._count,
            strip_whitespace=False,
            **kwargs,
        )

    @property
    def token_counter(self) -> TokenCounter:
        """The counter that measures chunks."""
        return self._counter

    def _count(self, text: str) -> int:
        return int(self._counter.count_text(text))

    def split_text(self, text: str) -> list[str]:
        """Split `text` into chunks of at most `chunk_size` tokens."""
        if not isinstance(text, str):
            raise ArgumentTypeError(f"split_text expects a str, got {type(text).__name__}")
        if not text:
            return []
        units: list[str] = []
        counts: list[int] = []
        paragraph_ends: list[bool] = []
        for sentence in _split_after(_UNIT_END, text):
            self._add_unit(sentence, units, counts, paragraph_ends)
        return self._pack(units, counts, paragraph_ends)

    # -- units ------------------------------------------------------------------

    def _add_unit(
        self,
        sentence: str,
        units: list[str],
        counts: list[int],
        paragraph_ends: list[bool],
        level: int = 0,
    ) -> None:
        """Append `sentence` as one unit, or as finer pieces when it is over the limit."""
        tokens = self._count(sentence)
        if tokens <= self._max_chunk_tokens:
            units.append(sentence)
            counts.append(tokens)
            paragraph_ends.append(level == 0 and sentence.count("\n") >= 2)
            return
        for next_level in range(level, len(_FINER_ENDS)):
            pieces = _split_after(_FINER_ENDS[next_level], sentence)
            if len(pieces) > 1:
                for piece in pieces:
                    self._add_unit(piece, units, counts, paragraph_ends, next_level + 1)
                return
        for piece in self._split_on_tokens(sentence):
            units.append(piece)
            counts.append(self._count(piece))
            paragraph_ends.append(False)

    def _split_on_tokens(self, text: str) -> list[str]:
        """Cut `text` into pieces of at most `chunk_size` tokens at character boundaries.

        A cut is kept only where the decoded piece is exactly the next stretch of the
        original text, so a multi-byte character is never split; the piece is also
        re-counted on its own, since re-encoding a cut piece can take more tokens.
        """
        limit = self._max_chunk_tokens
        tokens = self._counter.encode(text)
        pieces: list[str] = []
        position = 0
        start = 0
        while start < len(tokens):
            end = min(start + limit, len(tokens))
            piece = ""
            while end > start:
                piece = self._counter.decode(tokens[start:end])
                if text.startswith(piece, position) and self._count(piece) <= limit:
                    break
                end -= 1
            if end == start:
                raise InvalidArgumentError(
                    f"chunk_size={limit} tokens cannot hold the character at offset "
                    f"{position} ({shown(text[position])}); use a larger chunk_size."
                )
            pieces.append(piece)
            position += len(piece)
            start = end
        return pieces

    # -- packing ----------------------------------------------------------------

    def _pack(self, units: list[str], counts: list[int], paragraph_ends: list[bool]) -> list[str]:
        """Greedily pack units into chunks of at most `chunk_size` tokens.

        Joining two units can merge or split a token at the seam, so a chunk's size is
        bounded by its last exact count plus the counts of the units added since, each
        join worth between -1 and +1 token. While the upper bound fits, units are added
        without counting; near the limit the chunk gallops to the last unit the lower
        bound allows and the joined text is counted exactly, stepping back until it fits.
        """
        limit = self._max_chunk_tokens
        chunks: list[str] = []
        count = len(units)
        start = 0  # first unit of the open chunk (overlap units come first)
        end = 0  # one past its last unit
        emitted_end = 0  # one past the last unit of the previous chunk
        exact_tokens = 0  # exact count of units[start:exact_end]
        exact_end = 0
        added = 0  # sum of counts[exact_end:end]
        while end < count or end > emitted_end:
            if end < count:
                if end == start:
                    exact_tokens, exact_end, added = counts[end], end + 1, 0
                    end += 1
                    continue
                upper = exact_tokens + added + counts[end] + (end + 1 - exact_end)
                if upper <= limit:
                    added += counts[end]
                    end += 1
                    continue
                fitted = self._gallop(units, counts, start, end, exact_tokens, exact_end, added)
                if fitted is not None:
                    exact_tokens, end = fitted
                    exact_end, added = end, 0
                    continue
                if end <= emitted_end:  # only overlap so far: drop it to make progress
                    start = end
                    continue
                cut = self._paragraph_cut(counts, paragraph_ends, max(start, emitted_end), end)
                if cut != end:
                    end = cut
            known = exact_end == end
            chunk, start, end = self._fit(units, start, end, emitted_end, known)
            chunks.append(chunk)
            emitted_end = end
            start = self._overlap_start(units, counts, start, end)
            # overlap units are not counted together yet: all of them count as "added"
            exact_tokens, exact_end, added = 0, start, sum(counts[start:end])
        return chunks

    def _gallop(
        self,
        units: list[str],
        counts: list[int],
        start: int,
        end: int,
        exact_tokens: int,
        exact_end: int,
        added: int,
    ) -> tuple[int, int] | None:
        """Exact tokens and new end of the longest extension of the chunk that fits.

        None when not even `units[end]` can be added.
        """
        limit = self._max_chunk_tokens
        lower = exact_tokens + added - (end - exact_end)
        stop = end
        while stop < len(units) and lower + counts[stop] - 1 <= limit:
            lower += counts[stop] - 1
            stop += 1
        while stop > end:
            tokens = self._count("".join(units[start:stop]))
            if tokens <= limit:
                return tokens, stop
            stop -= 1
        return None

    def _paragraph_cut(
        self, counts: list[int], paragraph_ends: list[bool], lowest: int, end: int
    ) -> int:
        """Where to end the chunk: its last paragraph end if 3/4 of the limit stays filled.

        The cut is after some unit in `units[lowest:end]`, or `end` itself.
        """
        enough = self._max_chunk_tokens * 3 // 4
        kept = sum(counts[lowest:end]) + (end - lowest - 1)
        for cut in range(end - 1, lowest, -1):
            kept -= counts[cut] + 1
            if kept < enough:
                break
            if paragraph_ends[cut - 1]:
                return cut
        return end

    def _fit(
        self, units: list[str], start: int, end: int, emitted_end: int, known: bool
    ) -> tuple[str, int, int]:
        """The chunk `units[start:end]`, shrunk until its exact count fits the limit.

        Overlap units are dropped first, then trailing units are given back to the
        next chunk. A single unit always fits: units are counted exactly when made.
        """
        while True:
            chunk = "".join(units[start:end])
            if known or end - start == 1:
                return chunk, start, end
            tokens = self._count(chunk)
            if tokens <= self._max_chunk_tokens:
                return chunk, start, end
            logger.debug("chunk of %d tokens is over the limit; shrinking it", tokens)
            known = False
            if start < emitted_end:
                start += 1
            else:
                end -= 1

    def _overlap_start(self, units: list[str], counts: list[int], start: int, end: int) -> int:
        """First unit of the next chunk: trailing units of this one that fit the overlap."""
        overlap = self._overlap_tokens
        if overlap == 0 or end >= len(counts):
            return end
        first = end
        size = 0
        while first - 1 > start:
            extra = counts[first - 1] + (1 if size else 0)
            if size + extra > overlap:
                break
            size += extra
            first -= 1
        # the overlap and the next unit must fit together, or the chunk makes no progress
        while first < end and size + counts[end] + 1 > self._max_chunk_tokens:
            size -= counts[first] + 1
            first += 1
        while first < end and self._count("".join(units[first:end])) > overlap:
            first += 1
        return first
