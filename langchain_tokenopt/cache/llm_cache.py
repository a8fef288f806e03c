"""A LangChain LLM cache that knows what it saves, on memory, SQLite or Redis.

`TokenOptCache` is a langchain-core `BaseCache`: set it with `set_llm_cache(...)` or
`ChatOpenAI(cache=...)`. Beyond LangChain's built-in caches it adds TTL and an LRU size
bound on every backend, safe JSON serialization (`langchain_core.load`, never pickle),
an opt-in guarded semantic match, per-model statistics of the tokens and dollars that
hits saved (priced from each cached response's own `usage_metadata`), and a marker on
replayed messages so usage trackers record a hit as saved, not spent.

How langchain-core marks a cache hit (langchain-core 1.x,
`BaseChatModel._convert_cached_generations`): it replays the cached `AIMessage` with its
original `usage_metadata` plus `"total_cost": 0` and then fires `on_llm_end` as for a
real call, so callback-based trackers count every hit again as spent tokens. Messages
replayed by `TokenOptCache` also carry `response_metadata[CACHE_HIT_KEY] = True`
(`langchain_tokenopt.core.markers.CACHE_HIT_KEY`, "tokenopt_cache_hit"); semantic hits add
`response_metadata["tokenopt_cache_similarity"]`. Plain-text `Generation`s (non-chat
LLMs) have no message to mark and are returned unchanged.

Layout of the keys in the `Store` (``ns`` is the `namespace`):

- ``ns:cache:e:<sha256>``: one entry (its fields: `cache.serialization`); the hash
  covers the request as the model sees it (`cache.keys.normalize_request`), or
  `llm_string` and the prompt as they are with `key="exact"`.
- ``ns:cache:a:<sha256>``: last access time of an entry (only with `max_entries`).
- ``ns:cache:n``: shared entry counter (only with `max_entries`).
- ``ns:cache:q:<sha256>``: the semantic side key of an entry, ``{"p": partition,
  "t": text, "w": wording key}``, and ``ns:cache:w:<wording key>``: the entry that
  answers that wording (only with `semantic`).
- ``ns:cacheindex:version``: bumped on each semantic write and clear so other
  processes know to re-sync their TF-IDF index (only with `similarity_threshold`).
- ``ns:cachestats:...``: hit / miss / savings counters, kept apart so `clear()` drops
  the entries but not the history of what was saved (`reset_stats()` drops that).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from cachetools import LRUCache
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import BaseMessage
from langchain_core.outputs import Generation

from langchain_tokenopt.cache.keys import KeyMode, request_key
from langchain_tokenopt.cache.savings import UNKNOWN_MODEL, int_or_zero, saving_of
from langchain_tokenopt.cache.semantic import (
    SEMANTIC_REFRESH_SECONDS,
    SemanticIndex,
    parse_semantic_item,
    parse_wording_key,
    semantic_item,
    wording_key,
)
from langchain_tokenopt.cache.serialization import (
    CorruptEntryError,
    FrozenGenerations,
    decode_generations,
    entry_payload,
    new_entry,
    serialize,
)
from langchain_tokenopt.cache.stats import MODEL_FIELDS, CacheStats, build_stats
from langchain_tokenopt.core.boundedjson import loads_bounded
from langchain_tokenopt.core.logs import OutageLog, log_once
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.pricing import PriceTable
from langchain_tokenopt.core.validation import (
    MAX_DEPTH,
    MAX_TTL_SECONDS,
    check_depth,
    finite_number,
    instance_of,
    int_in_range,
    optional,
    positive_number,
    shown,
)
from langchain_tokenopt.errors import (
    ArgumentTypeError,
    CorruptStateError,
    InvalidArgumentError,
    StoreUnavailableError,
    UnstorableValueError,
)
from langchain_tokenopt.stores import MemoryStore, RedisStore, SQLiteStore, Store
from langchain_tokenopt.stores.base import Number, Write, aset_many, set_many

__all__ = ["CACHE_SIMILARITY_KEY", "TokenOptCache"]

logger = logging.getLogger(__name__)

#: `response_metadata` entry with the similarity score of a semantic cache hit.
CACHE_SIMILARITY_KEY = "tokenopt_cache_similarity"

# Decoded entries kept per process to skip deserialization on repeated hits.
_DECODED_ENTRIES = 4096
# Models whose counter keys a cache keeps (beyond it they are built per entry).
_MODEL_COUNTER_NAMES = 1024
# Store keys of recent (prompt, llm_string) pairs, bounded by the characters they
# hold: a repeated request skips parsing and normalizing its prompt.
_KEY_MEMO_CHARS = 4_000_000
_KEY_MODES = ("normalized", "exact")
# While the store is unavailable, at most one warning per cache this often.
_OUTAGE_WARNING_INTERVAL_SECONDS = 30.0

# Caches with counters not yet written to their store, flushed at interpreter exit.
_LIVE_CACHES: weakref.WeakSet[TokenOptCache] = weakref.WeakSet()


def _flush_live_caches() -> None:
    for cache in list(_LIVE_CACHES):
        try:
            cache.flush()
        except Exception:  # exit must not fail because a store went away
            logger.warning("Could not flush cache statistics at exit", exc_info=True)


atexit.register(_flush_live_caches)


class _Decoded:
    """A decoded entry: the text it came from, its fields, its generations (marked),
    the counters an exact hit adds to and when the entry expires (epoch seconds, None
    without a TTL or a creation time).

    Compared and hashed by identity: hits on one are counted under it and turned into
    counter amounts when the buffer is flushed.
    """

    __slots__ = ("counts", "entry", "expires", "frozen", "source", "thaw")

    def __init__(
        self,
        source: Any,
        entry: Any,
        frozen: FrozenGenerations,
        counts: tuple[tuple[str, int], ...],
        expires: float | None,
    ) -> None:
        self.source = source
        self.entry = entry
        self.frozen = frozen
        self.thaw = frozen.thaw  # a fresh copy of the (marked) generations per call
        self.counts = counts
        self.expires = expires


class TokenOptCache(BaseCache):
    """LangChain LLM cache with TTL, LRU bound, guarded semantic match and savings stats.

    Keys hash the request as the model sees it (`cache.keys`): a different model,
    temperature, bound tools, response format, stop sequence, earlier turn or tool
    result is a different entry, while message ids, response and usage metadata
    (a replayed answer's hit marker, LangChain's `total_cost: 0`) and transport
    settings (base URL, timeouts, retries, API key names) are not part of it, so a
    conversation replayed from the cache keeps hitting and a persistent cache
    survives a new endpoint. Values are `langchain_core.load` JSON; an
    entry that cannot be read (corrupt, foreign, or holding a class other than
    generations and messages) is a miss, is deleted and is logged. Every hit returns
    fresh objects (a per-process memo of decoded entries is deep-copied, which is
    cheaper than reviving the JSON again), with replayed messages marked by
    `CACHE_HIT_KEY` in `response_metadata`.

    A cache never takes the application down: when the store is unavailable
    (`StoreUnavailableError`: Redis stopped, unreachable or stalled) a lookup is a miss
    (counted as one, so the model is called), an update is skipped (that response is
    not cached), and hit/miss counters and access times stay buffered in this process
    and are written by the first flush that succeeds (counters that reached the store
    are not written again). A WARNING is logged at most once per 30 s per cache, with
    the number of failures left unlogged since the previous one, and an INFO when the
    store answers again. A stalled store still costs each call up to the store's own
    timeout (`RedisStore(socket_timeout_seconds=..., retries=...)`). One edge: a
    counter add that times out after Redis applied it is retried, so it may count
    twice (a refused or reset connection applied nothing). `stats()`, `clear()` and
    `reset_stats()` are explicit requests: they raise `StoreUnavailableError`.

    Args:
        store: where entries and counters live; `MemoryStore()` when None. Use
            `TokenOptCache.sqlite(path)` for one machine, `TokenOptCache.redis(url)`
            for many.
        ttl_seconds: entries expire this long after they are written (store TTL;
            Redis expires them natively).
        max_entries: LRU bound. Approximate by design, so the hot path stays O(1):
            each insert bumps a shared counter; when it passes the bound, one pass
            scans the access-time side keys, deletes the least recently used entries
            down to 90% of the bound (exactly the bound when it is below 10) and
            resets the counter to the live count. Access times reach the store at the
            next flush (see `flush_interval_seconds`), so recency has that
            resolution; processes evicting at the same moment may remove one extra
            batch; entries that expired by TTL are only uncounted at the next pass.
        semantic: opt-in semantic matching, the recommended setting. A miss is then
            answered by an entry with the same `llm_string`, the same conversation
            before the last human message, the same exactness features of that
            message (numbers, negations, quoted strings, code, identifiers, question
            words: `exactness_features`) and the same canonical words in the same
            order (`canonical_words`: case, punctuation, articles, "please", "can
            you", contractions, "how do I" / "how to", plurals and a few synonyms do
            not count; every other word does, capitalized or not). One store read,
            whatever the number of entries; no index in the process. Entries written
            without `semantic` are exact-only.
        similarity_threshold: for experts, in (0, 1]; implies `semantic`. When the
            canonical words differ, a TF-IDF index (`TextIndex`, on the message text)
            also finds the closest prompt of the same partition with a cosine of at
            least the threshold, accepted only if its words differ from the prompt's
            in frequent, unprotected words (`differences_allowed`). Lower thresholds
            answer more rewordings and risk more wrong answers: the trade-off at
            each threshold is in docs/benchmarks.md ("Semantic matching"). The index
            lives in each process: it is loaded from the store on first use and
            re-synced at most once a second when another process wrote (`refresh()`
            forces it).
        namespace: key prefix; caches with different namespaces share nothing.
        price_table: prices for the dollars saved (overrides, default for unknown
            models); genai-prices when None.
        flush_interval_seconds: hit/miss counters and access times are buffered in
            the process and written to the store (atomic `add`) at most this often,
            on `stats()`, on `flush()` and at interpreter exit. 0 writes through on
            every lookup. A `multiprocessing` child ends with `os._exit` (no atexit):
            call `cache.flush()` before it returns.
        raise_on_store_error: make `lookup` / `update` (and async twins) raise
            `StoreUnavailableError` instead of degrading to a miss / a skipped write,
            for applications that prefer to fail (statistics writes still only log).
        key: "normalized" (default) keys entries by what the model sees, as above;
            "exact" hashes LangChain's prompt and `llm_string` as they are (the
            key of earlier releases: their entries stay readable with it).

    Example:
        >>> from langchain_core.outputs import Generation
        >>> cache = TokenOptCache(ttl_seconds=3600, max_entries=10_000)
        >>> cache.update("prompt", "llm", [Generation(text="hi")])
        >>> cache.lookup("prompt", "llm")[0].text
        'hi'
        >>> cache.stats().hits
        1
        >>> semantic = TokenOptCache(semantic=True)
        >>> semantic.update("What's the capital of France?", "llm", [Generation(text="Paris")])
        >>> semantic.lookup("what is the capital of france", "llm")[0].text
        'Paris'
        >>> semantic.lookup("what is the capital of spain", "llm") is None
        True
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        ttl_seconds: float | None = None,
        max_entries: int | None = None,
        semantic: bool = False,
        similarity_threshold: float | None = None,
        namespace: str = "tokenopt",
        price_table: PriceTable | None = None,
        flush_interval_seconds: float = 1.0,
        raise_on_store_error: bool = False,
        key: KeyMode = "normalized",
    ) -> None:
        if store is not None:
            instance_of(store, "store", Store, "a Store (MemoryStore, SQLiteStore, RedisStore)")
        self.store: Store = store if store is not None else MemoryStore()
        self.ttl_seconds = optional(
            positive_number, ttl_seconds, "ttl_seconds", maximum=MAX_TTL_SECONDS
        )
        optional(int_in_range, max_entries, "max_entries", minimum=1)
        similarity = optional(
            finite_number,
            similarity_threshold,
            "similarity_threshold",
            above=0,
            maximum=1,
            hint="e.g. 0.9, or None for exact matches only",
        )
        instance_of(semantic, "semantic", bool, "True or False")
        instance_of(namespace, "namespace", str, "a non-empty string")
        if not namespace:
            raise InvalidArgumentError("namespace must be a non-empty string, got ''")
        if price_table is not None:
            instance_of(price_table, "price_table", PriceTable, "a PriceTable or None")
        self.flush_interval_seconds = finite_number(
            flush_interval_seconds, "flush_interval_seconds", minimum=0
        )
        self.max_entries = max_entries
        self.similarity_threshold = similarity
        self.semantic = semantic or similarity is not None
        self.namespace = namespace
        self.price_table = price_table
        self.raise_on_store_error = bool(raise_on_store_error)
        instance_of(key, "key", str, "'normalized' or 'exact'")
        if key not in _KEY_MODES:
            raise InvalidArgumentError(f"key must be 'normalized' or 'exact', got {shown(key)}")
        self.key: KeyMode = key

        self._entries_ns = f"{namespace}:cache"
        self._stats_ns = f"{namespace}:cachestats"
        self._entry_prefix = f"{self._entries_ns}:e:"
        self._access_prefix = f"{self._entries_ns}:a:"
        self._semantic_prefix = f"{self._entries_ns}:q:"
        self._wording_prefix = f"{self._entries_ns}:w:"
        self._count_key = f"{self._entries_ns}:n"
        # Outside the entries namespace so that clear() can bump it instead of
        # resetting it, which tells other processes to re-sync.
        self._semantic_version_key = f"{namespace}:cacheindex:version"
        self._model_prefix = f"{self._stats_ns}:m:"

        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        # Exact hits not yet added to `_pending`, by decoded entry (one dict update
        # per hit; the counter amounts are summed when the buffer is taken).
        self._hits: dict[_Decoded, int] = {}
        self._touches: dict[str, tuple[float, float | None]] = {}
        self._hits_counter = f"{self._stats_ns}:hits"
        self._counter_names: dict[str, tuple[str, str, str, str, str]] = {}
        self._last_flush = time.monotonic()
        self._outage = OutageLog(
            logger, "TokenOptCache store", interval_seconds=_OUTAGE_WARNING_INTERVAL_SECONDS
        )
        self._semantic = SemanticIndex() if self.similarity_threshold is not None else None
        # Recently decoded entries: a copy is far cheaper than reviving
        # langchain_core.load JSON, and comparing the text they were read from makes
        # a stale copy impossible to serve.
        # A `MemoryStore` keeps them itself, with its entries (`get_decoded`).
        self._decoded: LRUCache[str, _Decoded] = LRUCache(_DECODED_ENTRIES)
        self._memory = self.store if type(self.store) is MemoryStore else None
        # Redis hits compare the stored text with the memo's: an unchanged entry is not
        # decoded again (`_decoded_text`).
        self._redis = self.store if type(self.store) is RedisStore else None
        # One bound method, so that `get_decoded` recognises it by identity.
        self._decode_memory_text = self._decode_text
        # (prompt, llm_string) -> (key, the entry's store key); emptied when it holds
        # _KEY_MEMO_CHARS.
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}
        self._keys_chars = 0
        _LIVE_CACHES.add(self)

    # -- constructors -------------------------------------------------------

    @classmethod
    def sqlite(cls, path: str, **kwargs: Any) -> TokenOptCache:
        """A cache in the SQLite file `path` (WAL; shared by processes on one machine).

        Example:
            >>> cache = TokenOptCache.sqlite(":memory:", ttl_seconds=86_400)
        """
        return cls(SQLiteStore(path), **kwargs)

    @classmethod
    def redis(
        cls, url: str, *, store_options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> TokenOptCache:
        """A cache in Redis at `url` (needs the `redis` extra); native TTL expiry.

        `store_options` go to `RedisStore` (e.g. `socket_timeout_seconds`, `retries`:
        how long a call waits on a stalled Redis before the cache treats it as a miss).

        Example::

            cache = TokenOptCache.redis(
                "redis://localhost:6379/0", store_options={"socket_timeout_seconds": 0.2}
            )
        """
        from langchain_tokenopt.stores import RedisStore

        return cls(RedisStore(url, **dict(store_options or {})), **kwargs)

    # -- keys and entries ---------------------------------------------------

    def _hash(self, prompt: str, llm_string: str) -> str:
        """The store key of a request (see `cache.keys`), memoized per pair."""
        pair = (prompt, llm_string)
        known = self._keys.get(pair)  # one dict read: atomic under the GIL
        if known is not None:
            return known[0]
        key = request_key(prompt, llm_string, self.key)
        size = len(prompt) + len(llm_string)
        if size <= _KEY_MEMO_CHARS // 16:  # a huge prompt would flush the memo
            with self._lock:
                if self._keys_chars + size > _KEY_MEMO_CHARS:
                    self._keys.clear()  # cheaper than LRU upkeep on every hit
                    self._keys_chars = 0
                self._keys[pair] = (key, self._entry_prefix + key)
                self._keys_chars += size
        return key

    def _remaining_ttl(self, entry: Mapping[str, Any]) -> float | None:
        if self.ttl_seconds is None:
            return None
        created = entry.get("c")
        if not isinstance(created, (int, float)):
            return self.ttl_seconds
        return created + self.ttl_seconds - time.time()

    def _encode(self, llm_string: str, return_val: RETURN_VAL_TYPE) -> dict[str, Any] | None:
        generations = list(return_val)
        try:
            check_depth(generations, "the response")
        except InvalidArgumentError:  # the caller still gets its answer, uncached
            logger.warning("Not caching a response nested more than %d levels deep.", MAX_DEPTH)
            return None
        payload = serialize(generations)
        if payload is None:
            logger.warning(
                "Not caching a response that langchain_core.load cannot serialize or "
                "read back (a generation or message field is not JSON-serializable, "
                "nests deeper than 128 levels, or the whole is over 32 MiB)."
            )
            return None
        return new_entry(payload, saving_of(generations, llm_string, self.price_table))

    def _generations(self, key: str, entry: Any) -> list[Generation]:
        """Fresh generations of a stored entry; `CorruptEntryError` if unreadable."""
        payload = entry_payload(entry)
        if payload is not None:
            with self._lock:
                remembered = self._decoded.get(key)
            if remembered is not None and remembered.source == payload:
                return remembered.frozen.thaw()
        return self._remember(key, payload, entry).frozen.thaw()

    def _new_decoded(self, source: Any, entry: Any, frozen: FrozenGenerations) -> _Decoded:
        expires = None
        created = entry.get("c")
        if self.ttl_seconds is not None and isinstance(created, (int, float)):
            expires = created + self.ttl_seconds
        return _Decoded(source, entry, frozen, self._hit_counts(entry), expires)

    def _remember(self, key: str, source: Any, entry: Any) -> _Decoded:
        """Decode `entry` and keep it, keyed by `key` and checked against `source` (the
        text it was read from: a changed entry is never served from the memo)."""
        generations = self._mark(decode_generations(entry), None)
        decoded = self._new_decoded(source, entry, FrozenGenerations(generations))
        if isinstance(source, str):
            with self._lock:
                self._decoded[key] = decoded
        return decoded

    def _decoded_entry(self, key: str, entry: Any) -> _Decoded:
        """`entry`, read from the store at `key`, decoded (from the memo if unchanged)."""
        payload = entry_payload(entry)
        with self._lock:
            remembered = self._decoded.get(key)
        if remembered is not None and remembered.source == payload:
            if remembered.entry == entry:
                return remembered
            decoded = self._new_decoded(payload, entry, remembered.frozen)
            with self._lock:
                self._decoded[key] = decoded
            return decoded
        return self._remember(key, payload, entry)

    def _decoded_text(self, key: str, text: str) -> _Decoded:
        """An entry's stored text decoded, from the memo while the text is unchanged."""
        with self._lock:
            remembered = self._decoded.get(key)
        if remembered is not None and remembered.source == text:
            return remembered
        decoded = self._decode_text(text)
        with self._lock:
            self._decoded[key] = decoded
        return decoded

    def _decode_text(self, text: str) -> _Decoded:
        """A `MemoryStore` entry's text decoded (`MemoryStore.get_decoded` keeps it with
        the entry, so an entry written, expired or evicted is never served again)."""
        try:
            entry = loads_bounded(text)
        except ValueError as exc:
            raise CorruptEntryError(f"stored text is not JSON: {exc}") from None
        generations = self._mark(decode_generations(entry), None)
        return self._new_decoded(text, entry, FrozenGenerations(generations))

    def _exact_entry(self, key: str) -> _Decoded | None:
        """The decoded entry stored at `key`; None if missing, or unreadable (deleted)."""
        try:
            if self._memory is not None:  # not a subclass that may add behaviour
                return self._memory.get_decoded(self._entry_prefix + key, self._decode_memory_text)
            if self._redis is not None:  # one GET, no decoding of an unchanged entry
                text = self._redis.get_text(self._entry_prefix + key)
                return None if text is None else self._decoded_text(key, text)
            entry = self._get_entry(key)
            return None if entry is None else self._decoded_entry(key, entry)
        except (CorruptEntryError, CorruptStateError) as exc:
            self._corrupt(key, exc)
            self._delete_keys(key)
            return None

    async def _aexact_entry(self, key: str) -> _Decoded | None:
        """Async `_exact_entry` (a `MemoryStore` answers inline)."""
        if self._memory is not None:
            return self._exact_entry(key)
        try:
            if self._redis is not None:
                text = await self._redis.aget_text(self._entry_prefix + key)
                return None if text is None else self._decoded_text(key, text)
            entry = await self._aget_entry(key)
            return None if entry is None else self._decoded_entry(key, entry)
        except (CorruptEntryError, CorruptStateError) as exc:
            self._corrupt(key, exc)
            await self._adelete_keys(key)
            return None

    @staticmethod
    def _mark(generations: list[Generation], score: float | None) -> list[Generation]:
        """Mark freshly deserialized messages as replayed from this cache."""
        for generation in generations:
            message = getattr(generation, "message", None)
            if isinstance(message, BaseMessage):
                message.response_metadata[CACHE_HIT_KEY] = True
                if score is not None:
                    message.response_metadata[CACHE_SIMILARITY_KEY] = round(score, 4)
        return generations

    def _corrupt(self, key: str, error: Exception) -> None:
        logger.warning("Dropping unreadable cache entry %s: %s", key, error)
        if self._semantic is not None:
            self._semantic.forget(key)

    def _get_entry(self, key: str) -> Any:
        """The stored entry at `key`; None if missing or unreadable (then deleted, logged)."""
        try:
            return self.store.get(self._entry_prefix + key)
        except CorruptStateError as exc:
            self._corrupt(key, exc)
            self._delete_keys(key)
            return None

    async def _aget_entry(self, key: str) -> Any:
        """Async `_get_entry`."""
        try:
            return await self.store.aget(self._entry_prefix + key)
        except CorruptStateError as exc:
            self._corrupt(key, exc)
            await self._adelete_keys(key)
            return None

    # -- the cache's own counters: an unreadable one restarts from zero ----------

    def _unreadable_counter(self, key: str, error: Exception) -> None:
        log_once(
            logger,
            f"cache-counter:{id(self.store)}:{key}",
            logging.WARNING,
            "Cache counter %s cannot be read (%s); it restarts from zero.",
            key,
            error,
        )

    def _add(self, key: str, amount: Number) -> Number | None:
        """`store.add`; a counter that cannot be read (or holds a non-number) is reset."""
        try:
            return self.store.add(key, amount)
        except (CorruptStateError, TypeError) as exc:
            self._unreadable_counter(key, exc)
            self.store.delete(key)
            return self.store.add(key, amount)

    async def _aadd(self, key: str, amount: Number) -> Number | None:
        """Async `_add`."""
        try:
            return await self.store.aadd(key, amount)
        except (CorruptStateError, TypeError) as exc:
            self._unreadable_counter(key, exc)
            await self.store.adelete(key)
            return await self.store.aadd(key, amount)

    def _read_counter(self, key: str) -> Any:
        """A counter's value for `stats`; None (read as 0) if it cannot be read."""
        try:
            return self.store.get(key)
        except CorruptStateError as exc:
            self._unreadable_counter(key, exc)
            return None

    async def _aread_counter(self, key: str) -> Any:
        """Async `_read_counter`."""
        try:
            return await self.store.aget(key)
        except CorruptStateError as exc:
            self._unreadable_counter(key, exc)
            return None

    # -- store outages --------------------------------------------------------

    def _store_failed(self, action: str, error: StoreUnavailableError) -> None:
        """Note a store outage; warn unless this cache warned less than 30 s ago."""
        with self._lock:
            self._outage.failed(
                f"TokenOptCache could not {action} ({error}); lookups are misses, responses "
                "are not cached and statistics stay buffered until the store is back."
            )

    def _store_answered(self) -> None:
        """End an outage, if one was going on, with an INFO saying how long it lasted."""
        if not self._outage.failures:  # the common case: no lock
            return
        with self._lock:
            self._outage.answered()

    # -- counters -----------------------------------------------------------

    def _count(self, key: str, amount: int) -> None:
        self._pending[key] = self._pending.get(key, 0) + amount

    def _hit_counts(self, entry: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
        """The counters one exact hit on `entry` adds to (computed once per entry)."""
        model = entry.get("m")
        model = model if isinstance(model, str) and model else UNKNOWN_MODEL
        hits, tokens_in, tokens_out, usd_name, unpriced = self._model_counters(model)
        usd = entry.get("u")
        dollars = (
            (usd_name, usd) if isinstance(usd, int) and not isinstance(usd, bool) else (unpriced, 1)
        )
        return (
            (self._hits_counter, 1),
            (hits, 1),
            (tokens_in, int_or_zero(entry.get("i"))),
            (tokens_out, int_or_zero(entry.get("o"))),
            dollars,
        )

    def _model_counters(self, model: str) -> tuple[str, str, str, str, str]:
        """The counter keys of `model`: hits, in, out, usd, unpriced. The same string
        objects for every entry of a model (up to `_MODEL_COUNTER_NAMES` models), so
        a flush sums the hits of many entries with identity-equal keys."""
        known = self._counter_names.get(model)
        if known is not None:
            return known
        prefix = f"{self._model_prefix}{model}:"
        hits, tokens_in, tokens_out, usd, unpriced = (
            prefix + name for name in ("hits", "in", "out", "usd", "unpriced")
        )
        names = (hits, tokens_in, tokens_out, usd, unpriced)
        if len(self._counter_names) < _MODEL_COUNTER_NAMES:
            names = self._counter_names.setdefault(model, names)
        return names

    def _record_hit(
        self,
        key: str,
        entry: Mapping[str, Any],
        semantic: bool,
        counts: tuple[tuple[str, int], ...] | None = None,
    ) -> None:
        if counts is None:
            counts = self._hit_counts(entry)
        pending = self._pending
        with self._lock:
            for name, amount in counts:
                pending[name] = pending.get(name, 0) + amount
            if semantic:
                self._count(f"{self._stats_ns}:semantic_hits", 1)
            if self.max_entries is not None:
                ttl = self._remaining_ttl(entry)
                expires = None if ttl is None else time.time() + ttl
                self._touches[key] = (time.time(), expires)

    def _record_exact_hit(self, key: str, decoded: _Decoded) -> None:
        """`_record_hit` for an exact hit: one counter per decoded entry until a flush."""
        with self._lock:
            hits = self._hits
            hits[decoded] = hits.get(decoded, 0) + 1
            if self.max_entries is not None:
                now = time.time()
                expires = decoded.expires
                if expires is None and self.ttl_seconds is not None:  # no creation time
                    expires = now + self.ttl_seconds
                self._touches[key] = (now, expires)

    def _record_miss(self) -> None:
        with self._lock:
            self._count(f"{self._stats_ns}:misses", 1)

    def _take_pending(self, force: bool) -> tuple[dict[str, int], dict[str, Any]] | None:
        with self._lock:
            if not self._pending and not self._touches and not self._hits:
                return None
            now = time.monotonic()
            if not force and now - self._last_flush < self.flush_interval_seconds:
                return None
            pending, touches = self._pending, self._touches
            for decoded, hits in self._hits.items():
                for name, amount in decoded.counts:
                    pending[name] = pending.get(name, 0) + amount * hits
            self._hits = {}
            self._pending, self._touches = {}, {}
            self._last_flush = now
            return pending, touches

    def _restore_pending(
        self,
        pending: Mapping[str, int],
        touches: Mapping[str, tuple[float, float | None]],
    ) -> None:
        """Put back what a failed flush did not write, for the next flush."""
        with self._lock:
            for key, amount in pending.items():
                self._count(key, amount)
            for key, touch in touches.items():
                self._touches.setdefault(key, touch)  # a newer access wins

    def _touch_writes(self, touches: Mapping[str, tuple[float, float | None]]) -> list[Write]:
        """(access key, access time, remaining ttl) of the touches whose entry is live."""
        writes: list[Write] = []
        now = time.time()
        for key, (accessed, expires) in touches.items():
            ttl = None if expires is None else expires - now
            if ttl is None or ttl > 0:
                writes.append((self._access_prefix + key, accessed, ttl))
        return writes

    def flush(self) -> None:
        """Write buffered counters and access times to the store now.

        Never raises for an unavailable store: what was not written stays buffered.
        """
        self._flush(force=True)

    async def aflush(self) -> None:
        """Async `flush`."""
        await self._aflush(force=True)

    def _flush(self, *, force: bool) -> None:
        """Write what is buffered: always with `force`, else only when it is due."""
        if not force and time.monotonic() - self._last_flush < self.flush_interval_seconds:
            return  # not due (read without the lock: `_take_pending` decides under it)
        taken = self._take_pending(force=force)
        if taken is not None:
            self._write_pending(*taken)

    async def _aflush(self, *, force: bool) -> None:
        if not force and time.monotonic() - self._last_flush < self.flush_interval_seconds:
            return
        taken = self._take_pending(force=force)
        if taken is not None:
            await self._awrite_pending(*taken)

    def _flush_failed(
        self,
        error: Exception,
        pending: dict[str, int],
        touches: dict[str, tuple[float, float | None]],
        written: tuple[set[str], set[str]],
    ) -> None:
        """Keep the counters and access times a flush did not write; log the failure.

        `written` holds the counter keys and the touched entry keys that reached the
        store: those are not kept, so a retry never writes them twice.
        """
        counters, touched = written
        self._restore_pending(
            {k: v for k, v in pending.items() if k not in counters},
            {k: v for k, v in touches.items() if k not in touched},
        )
        if isinstance(error, StoreUnavailableError):
            self._store_failed("write its statistics", error)
        else:
            logger.warning("Could not write cache statistics; keeping them", exc_info=error)

    def _write_pending(
        self, pending: dict[str, int], touches: dict[str, tuple[float, float | None]]
    ) -> None:
        counters: set[str] = set()
        touched: set[str] = set()
        try:
            for key, amount in pending.items():
                if amount:
                    self._add(key, amount)
                counters.add(key)
            writes = self._touch_writes(touches)
            set_many(self.store, writes)  # one round trip on Redis, one transaction on SQLite
            touched.update(touches)
        except Exception as exc:  # a flush must never fail the call that triggered it
            self._flush_failed(exc, pending, touches, (counters, touched))
            return
        self._store_answered()

    async def _awrite_pending(
        self, pending: dict[str, int], touches: dict[str, tuple[float, float | None]]
    ) -> None:
        counters: set[str] = set()
        touched: set[str] = set()
        try:
            for key, amount in pending.items():
                if amount:
                    await self._aadd(key, amount)
                counters.add(key)
            await aset_many(self.store, self._touch_writes(touches))
            touched.update(touches)
        except Exception as exc:  # a flush must never fail the call that triggered it
            self._flush_failed(exc, pending, touches, (counters, touched))
            return
        self._store_answered()

    # -- LRU ----------------------------------------------------------------

    def _eviction_plan(self, access_times: list[tuple[float, str]]) -> tuple[list[str], int]:
        """Keys to evict (oldest access first) and the live count that remains."""
        assert self.max_entries is not None
        live = len(access_times)
        if live <= self.max_entries:
            return [], live
        target = self.max_entries - self.max_entries // 10
        access_times.sort()
        victims = [key for _, key in access_times[: live - target]]
        return victims, live - len(victims)

    def _scan_access_times(self) -> list[tuple[float, str]]:
        start = len(self._access_prefix)
        return [
            (float(value), key[start:])
            for key, value in self.store.scan(self._access_prefix)
            if isinstance(value, (int, float))
        ]

    async def _ascan_access_times(self) -> list[tuple[float, str]]:
        start = len(self._access_prefix)
        return [
            (float(value), key[start:])
            async for key, value in self.store.ascan(self._access_prefix)
            if isinstance(value, (int, float))
        ]

    def _evict(self) -> None:
        self.flush()
        victims, live = self._eviction_plan(self._scan_access_times())
        for key in victims:
            self._delete_keys(key)
        self.store.set(self._count_key, live)
        if victims:
            logger.debug("Evicted %d least recently used cache entries", len(victims))

    async def _aevict(self) -> None:
        await self.aflush()
        victims, live = self._eviction_plan(await self._ascan_access_times())
        for key in victims:
            await self._adelete_keys(key)
        await self.store.aset(self._count_key, live)
        if victims:
            logger.debug("Evicted %d least recently used cache entries", len(victims))

    def _delete_keys(self, key: str) -> None:
        self.store.delete(self._entry_prefix + key)
        if self.max_entries is not None:
            self.store.delete(self._access_prefix + key)
        if self.semantic:
            side = self._semantic_prefix + key
            wording = parse_wording_key(self._read_side_key(side))
            if wording is not None and self._read_pointer(self._wording_prefix + wording) == key:
                self.store.delete(self._wording_prefix + wording)
            self.store.delete(side)
        if self._semantic is not None:
            self._semantic.forget(key)

    async def _adelete_keys(self, key: str) -> None:
        await self.store.adelete(self._entry_prefix + key)
        if self.max_entries is not None:
            await self.store.adelete(self._access_prefix + key)
        if self.semantic:
            side = self._semantic_prefix + key
            wording = parse_wording_key(await self._aread_side_key(side))
            pointer = None if wording is None else self._wording_prefix + wording
            if pointer is not None and await self._aread_pointer(pointer) == key:
                await self.store.adelete(pointer)
            await self.store.adelete(side)
        if self._semantic is not None:
            self._semantic.forget(key)

    def _read_side_key(self, side: str) -> Any:
        """A semantic side key's value; None if unreadable (it is deleted next anyway)."""
        try:
            return self.store.get(side)
        except CorruptStateError:
            return None

    async def _aread_side_key(self, side: str) -> Any:
        """Async `_read_side_key`."""
        try:
            return await self.store.aget(side)
        except CorruptStateError:
            return None

    # -- semantic side index -------------------------------------------------

    def _semantic_due(self, force: bool) -> bool:
        semantic = self._semantic
        if semantic is None:
            return False
        now = time.monotonic()
        if not force and now - semantic.last_check < SEMANTIC_REFRESH_SECONDS:
            return False
        semantic.last_check = now
        return True

    def _load_semantic(self, version: Any, items: dict[str, tuple[str, str]]) -> None:
        assert self._semantic is not None
        self._semantic.replace_all(items)
        self._semantic.seen_version = version

    def refresh(self, *, force: bool = True) -> None:
        """Sync this process's semantic index with the store (entries of other processes)."""
        if not self._semantic_due(force):
            return
        assert self._semantic is not None
        try:
            version = self.store.get(self._semantic_version_key)
        except CorruptStateError as exc:
            self._unreadable_counter(self._semantic_version_key, exc)
            self.store.delete(self._semantic_version_key)
            version = object()  # differs from every version seen: re-sync
        if version == self._semantic.seen_version:
            return
        start = len(self._semantic_prefix)
        items = {}
        for key, value in self.store.scan(self._semantic_prefix):
            item = parse_semantic_item(value)
            if item is not None:
                items[key[start:]] = item
        self._load_semantic(version, items)

    async def arefresh(self, *, force: bool = True) -> None:
        """Async `refresh`."""
        if not self._semantic_due(force):
            return
        assert self._semantic is not None
        try:
            version = await self.store.aget(self._semantic_version_key)
        except CorruptStateError as exc:
            self._unreadable_counter(self._semantic_version_key, exc)
            await self.store.adelete(self._semantic_version_key)
            version = object()  # differs from every version seen: re-sync
        if version == self._semantic.seen_version:
            return
        start = len(self._semantic_prefix)
        items = {}
        async for key, value in self.store.ascan(self._semantic_prefix):
            item = parse_semantic_item(value)
            if item is not None:
                items[key[start:]] = item
        self._load_semantic(version, items)

    def _note_semantic_write(self, key: str, item: tuple[str, str], version: Any) -> None:
        assert self._semantic is not None
        self._semantic.add(key, *item)
        seen = self._semantic.seen_version
        # Nobody else wrote since our last sync: our own write needs no re-scan.
        if isinstance(seen, int) and version == seen + 1:
            self._semantic.seen_version = version

    # -- BaseCache ----------------------------------------------------------

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The cached generations for (prompt, llm_string), marked as a hit, or None.

        None also when the store is unavailable (logged; see the class docstring).
        """
        if self._memory is not None:
            hit = self._memory_hit(prompt, llm_string)
            if hit is not None:
                return hit
        _check_prompt(prompt, llm_string)
        try:
            found = self._find(prompt, llm_string)
        except StoreUnavailableError as exc:
            if self.raise_on_store_error:
                raise
            self._store_failed("look up a cached response", exc)
            self._record_miss()
            return None  # no flush: the store just failed
        self._store_answered()
        if found is None:
            self._record_miss()
        self._flush(force=False)  # only when the buffer is due
        return found

    def _memory_hit(self, prompt: Any, llm_string: Any) -> list[Generation] | None:
        """`lookup` of a repeated request on a `MemoryStore` in a few steps: the key
        from the memo, the decoded entry the store keeps with it, a copy, a hit
        counted, a flush when due. None sends every other case (a new request, a
        miss, an entry to decode or that cannot be read) through the full path."""
        if type(prompt) is not str or type(llm_string) is not str:
            return None  # `_check_prompt` on the full path says what is wrong
        keys = self._keys.get((prompt, llm_string))
        if keys is None:
            return None
        assert self._memory is not None
        try:
            decoded = self._memory.get_decoded(keys[1], self._decode_memory_text)
        except CorruptEntryError:
            return None  # the full path reads it again, logs it and deletes it
        if decoded is None:
            return None
        found = decoded.thaw()  # already marked as a hit
        self._record_exact_hit(keys[0], decoded)
        if time.monotonic() - self._last_flush >= self.flush_interval_seconds:
            self._flush(force=False)
        return found

    def _find(self, prompt: str, llm_string: str) -> list[Generation] | None:
        """`lookup` without the miss count and the flush; hits are recorded."""
        key = self._hash(prompt, llm_string)
        decoded = self._exact_entry(key)
        found: list[Generation] | None = None
        if decoded is not None:
            found = decoded.thaw()  # already marked as a hit
            self._record_exact_hit(key, decoded)
        if found is None and self.semantic:
            found = self._semantic_lookup(prompt, llm_string)
        return found

    def _semantic_lookup(self, prompt: str, llm_string: str) -> list[Generation] | None:
        item = semantic_item(prompt, llm_string, key=self.key)
        if item is None:
            return None
        wording = self._wording_prefix + wording_key(*item)
        key = self._read_pointer(wording)
        if key is not None:
            entry = self._get_entry(key)
            if entry is None:  # expired, evicted or unreadable: the pointer goes too
                self.store.delete(wording)
            else:
                found = self._semantic_hit(key, entry, 1.0)
                if found is not None:
                    return found
                self._delete_keys(key)
        if self._semantic is None or self.similarity_threshold is None:
            return None
        self.refresh(force=False)
        partition, text = item
        for key, score in self._semantic.candidates(partition, text, self.similarity_threshold):
            entry = self._get_entry(key)
            if entry is None:  # expired or evicted elsewhere (or unreadable, now deleted)
                self._semantic.forget(key)
                continue
            found = self._semantic_hit(key, entry, score)
            if found is not None:
                return found
            self._delete_keys(key)
        return None

    def _semantic_hit(self, key: str, entry: Any, score: float) -> list[Generation] | None:
        """The marked generations of a semantic match (a hit is recorded), or None if the
        entry is unreadable (logged; the caller deletes it)."""
        try:
            generations = self._mark(self._generations(key, entry), score)
        except CorruptEntryError as exc:
            self._corrupt(key, exc)
            return None
        self._record_hit(key, entry, semantic=True)
        return generations

    def _read_pointer(self, wording: str) -> str | None:
        """The entry key a wording pointer names; None if absent or unreadable (deleted)."""
        try:
            key = self.store.get(wording)
        except CorruptStateError as exc:
            logger.warning("Dropping unreadable semantic pointer %s: %s", wording, exc)
            self.store.delete(wording)
            return None
        return key if isinstance(key, str) else None

    async def _aread_pointer(self, wording: str) -> str | None:
        """Async `_read_pointer`."""
        try:
            key = await self.store.aget(wording)
        except CorruptStateError as exc:
            logger.warning("Dropping unreadable semantic pointer %s: %s", wording, exc)
            await self.store.adelete(wording)
            return None
        return key if isinstance(key, str) else None

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Async `lookup` through the store's async methods."""
        _check_prompt(prompt, llm_string)
        try:
            found = await self._afind(prompt, llm_string)
        except StoreUnavailableError as exc:
            if self.raise_on_store_error:
                raise
            self._store_failed("look up a cached response", exc)
            self._record_miss()
            return None
        self._store_answered()
        if found is None:
            self._record_miss()
        await self._aflush(force=False)  # only when the buffer is due
        return found

    async def _afind(self, prompt: str, llm_string: str) -> list[Generation] | None:
        """Async `_find`."""
        key = self._hash(prompt, llm_string)
        decoded = await self._aexact_entry(key)
        found: list[Generation] | None = None
        if decoded is not None:
            found = decoded.thaw()  # already marked as a hit
            self._record_exact_hit(key, decoded)
        if found is None and self.semantic:
            found = await self._asemantic_lookup(prompt, llm_string)
        return found

    async def _asemantic_lookup(self, prompt: str, llm_string: str) -> list[Generation] | None:
        item = semantic_item(prompt, llm_string, key=self.key)
        if item is None:
            return None
        wording = self._wording_prefix + wording_key(*item)
        key = await self._aread_pointer(wording)
        if key is not None:
            entry = await self._aget_entry(key)
            if entry is None:
                await self.store.adelete(wording)
            else:
                found = self._semantic_hit(key, entry, 1.0)
                if found is not None:
                    return found
                await self._adelete_keys(key)
        if self._semantic is None or self.similarity_threshold is None:
            return None
        await self.arefresh(force=False)
        partition, text = item
        for key, score in self._semantic.candidates(partition, text, self.similarity_threshold):
            entry = await self._aget_entry(key)
            if entry is None:
                self._semantic.forget(key)
                continue
            found = self._semantic_hit(key, entry, score)
            if found is not None:
                return found
            await self._adelete_keys(key)
        return None

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store `return_val` for (prompt, llm_string), with TTL, LRU and semantic upkeep.

        Skipped (and logged) when the store is unavailable; see the class docstring.
        """
        _check_prompt(prompt, llm_string)
        _check_generations(return_val)
        entry = self._encode(llm_string, return_val)
        if entry is None:
            return
        try:
            self._put(prompt, llm_string, entry)
        except UnstorableValueError as exc:
            logger.warning("Not caching a response the store refuses: %s", exc)
            return
        except StoreUnavailableError as exc:
            if self.raise_on_store_error:
                raise
            self._store_failed("store a response", exc)
            return
        self._store_answered()
        self._flush(force=False)  # only when the buffer is due

    def _put(self, prompt: str, llm_string: str, entry: dict[str, Any]) -> None:
        """Write an encoded entry with its side keys; evict when over `max_entries`."""
        key = self._hash(prompt, llm_string)
        ttl = self.ttl_seconds
        if self.max_entries is not None:
            # Access time first: an entry never exists without one, so eviction sees it.
            self.store.set(self._access_prefix + key, entry["c"], ttl_seconds=ttl)
        self.store.set(self._entry_prefix + key, entry, ttl_seconds=ttl)
        item = semantic_item(prompt, llm_string, key=self.key) if self.semantic else None
        if item is not None:
            wording = wording_key(*item)
            self.store.set(
                self._semantic_prefix + key,
                {"p": item[0], "t": item[1], "w": wording},
                ttl_seconds=ttl,
            )
            self.store.set(self._wording_prefix + wording, key, ttl_seconds=ttl)
            if self._semantic is not None:
                version = self._add(self._semantic_version_key, 1)
                self._note_semantic_write(key, item, version)
        if self.max_entries is not None:
            count = self._add(self._count_key, 1)
            if count is not None and count > self.max_entries:
                self._evict()

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Async `update` through the store's async methods."""
        _check_prompt(prompt, llm_string)
        _check_generations(return_val)
        entry = self._encode(llm_string, return_val)
        if entry is None:
            return
        try:
            await self._aput(prompt, llm_string, entry)
        except UnstorableValueError as exc:
            logger.warning("Not caching a response the store refuses: %s", exc)
            return
        except StoreUnavailableError as exc:
            if self.raise_on_store_error:
                raise
            self._store_failed("store a response", exc)
            return
        self._store_answered()
        await self._aflush(force=False)  # only when the buffer is due

    async def _aput(self, prompt: str, llm_string: str, entry: dict[str, Any]) -> None:
        """Async `_put`."""
        key = self._hash(prompt, llm_string)
        ttl = self.ttl_seconds
        if self.max_entries is not None:
            await self.store.aset(self._access_prefix + key, entry["c"], ttl_seconds=ttl)
        await self.store.aset(self._entry_prefix + key, entry, ttl_seconds=ttl)
        item = semantic_item(prompt, llm_string, key=self.key) if self.semantic else None
        if item is not None:
            wording = wording_key(*item)
            await self.store.aset(
                self._semantic_prefix + key,
                {"p": item[0], "t": item[1], "w": wording},
                ttl_seconds=ttl,
            )
            await self.store.aset(self._wording_prefix + wording, key, ttl_seconds=ttl)
            if self._semantic is not None:
                version = await self._aadd(self._semantic_version_key, 1)
                self._note_semantic_write(key, item, version)
        if self.max_entries is not None:
            count = await self._aadd(self._count_key, 1)
            if count is not None and count > self.max_entries:
                await self._aevict()

    def clear(self, **kwargs: Any) -> None:
        """Delete every entry of this namespace (statistics stay; see `reset_stats`)."""
        with self._lock:
            self._touches.clear()
            self._decoded.clear()
        self.store.clear(self._entries_ns)
        if self._semantic is not None:
            self._semantic.reset()
            self._add(self._semantic_version_key, 1)

    async def aclear(self, **kwargs: Any) -> None:
        """Async `clear`."""
        with self._lock:
            self._touches.clear()
            self._decoded.clear()
        await self.store.aclear(self._entries_ns)
        if self._semantic is not None:
            self._semantic.reset()
            await self._aadd(self._semantic_version_key, 1)

    # -- statistics -----------------------------------------------------------

    def reset_stats(self) -> None:
        """Forget hits, misses and savings (for every process sharing the store)."""
        with self._lock:
            self._pending.clear()
            self._hits.clear()
        self.store.clear(self._stats_ns)

    def _split_model_key(self, key: str) -> tuple[str, str] | None:
        model, _, name = key[len(self._model_prefix) :].rpartition(":")
        return (model, name) if model and name in MODEL_FIELDS else None

    def stats(self) -> CacheStats:
        """Hits, misses, hit rate, live entries and savings, per model.

        Flushes this process's buffered counters first. Counting live entries scans
        the namespace, so this costs O(entries): call it for reports, not per request.
        """
        self.flush()
        totals = {
            name: self._read_counter(f"{self._stats_ns}:{name}")
            for name in ("hits", "misses", "semantic_hits")
        }
        models: dict[str, dict[str, Any]] = {}
        for key, value in self.store.scan(self._model_prefix):
            split = self._split_model_key(key)
            if split is not None:
                models.setdefault(split[0], {})[split[1]] = value
        entries = sum(1 for _ in self.store.scan(self._entry_prefix))
        return build_stats(totals, models, entries)

    async def astats(self) -> CacheStats:
        """Async `stats`."""
        await self.aflush()
        totals = {
            name: await self._aread_counter(f"{self._stats_ns}:{name}")
            for name in ("hits", "misses", "semantic_hits")
        }
        models: dict[str, dict[str, Any]] = {}
        async for key, value in self.store.ascan(self._model_prefix):
            split = self._split_model_key(key)
            if split is not None:
                models.setdefault(split[0], {})[split[1]] = value
        entries = 0
        async for _ in self.store.ascan(self._entry_prefix):
            entries += 1
        return build_stats(totals, models, entries)


def _check_prompt(prompt: Any, llm_string: Any) -> None:
    """The (prompt, llm_string) pair of `lookup` and `update` must be two strings."""
    if type(prompt) is str and type(llm_string) is str:  # the hot path: no calls
        return
    instance_of(prompt, "prompt", str, "a str (the prompt LangChain serialized)")
    instance_of(llm_string, "llm_string", str, "a str (the model's serialized settings)")


def _check_generations(return_val: Any) -> None:
    """What `update` stores must be a list of `Generation`s, as a model returns."""
    if not isinstance(return_val, (list, tuple)) or not all(
        isinstance(generation, Generation) for generation in return_val
    ):
        raise ArgumentTypeError(
            f"return_val must be a list of Generation objects, got {type(return_val).__name__}"
        )
