"""Cache entries as stored: langchain-core JSON (`langchain_core.load`), never pickle.

An entry is ``{"v": 1, "g": dumps(generations), "m": model, "i": input tokens,
"o": output tokens, "u": dollars in 1e-12 units or None, "c": created (epoch
seconds)}``. Reading one revives generations and messages only, checked before each
object is built, so a tampered or foreign store value cannot run code, and the
serialized generations are measured first (`core.boundedjson`: at most 128 levels
deep), so none can exhaust the stack: either is a `CorruptEntryError`, which the cache
treats as a miss.
"""

from __future__ import annotations

import marshal
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from langchain_core.load import dumps, loads
from langchain_core.load.load import default_init_validator
from langchain_core.outputs import Generation
from pydantic import BaseModel

from langchain_tokenopt.cache.savings import Saving
from langchain_tokenopt.core.boundedjson import JSONLimitError, check_json_text

__all__ = [
    "ENTRY_VERSION",
    "CorruptEntryError",
    "FrozenGenerations",
    "decode_generations",
    "entry_payload",
    "fresh_copies",
    "new_entry",
    "serialize",
]

ENTRY_VERSION = 1

# Classes a cache entry may contain: generations and messages, nothing that runs
# logic on construction. Checked before each object is built.
_ALLOWED_CLASS_NAMES = frozenset(
    {
        "Generation",
        "GenerationChunk",
        "ChatGeneration",
        "ChatGenerationChunk",
        "AIMessage",
        "AIMessageChunk",
        "HumanMessage",
        "HumanMessageChunk",
        "SystemMessage",
        "SystemMessageChunk",
        "ToolMessage",
        "ToolMessageChunk",
        "ChatMessage",
        "ChatMessageChunk",
        "FunctionMessage",
        "FunctionMessageChunk",
    }
)

# What `dumps` writes in place of a value it cannot serialize.
_NOT_SERIALIZABLE = '"type": "not_implemented"'


class CorruptEntryError(ValueError):
    """A stored value is not a readable TokenOptCache entry.

    Internal: every caller in the cache catches it and treats the entry as a miss.
    """


def serialize(generations: Sequence[Generation]) -> str | None:
    """`dumps(generations)`; None when a field is not JSON-serializable or the result
    could not be read back (nested too deep, too large)."""
    try:
        payload = dumps(list(generations))
        check_json_text(payload)
    except (JSONLimitError, RecursionError):
        return None
    return None if _NOT_SERIALIZABLE in payload else payload


def new_entry(payload: str, saving: Saving) -> dict[str, Any]:
    """The stored entry for a serialized response and what a hit on it saves."""
    return {
        "v": ENTRY_VERSION,
        "g": payload,
        "m": saving.model,
        "i": saving.input_tokens,
        "o": saving.output_tokens,
        "u": saving.usd_pico,
        "c": time.time(),
    }


def entry_payload(entry: Any) -> str | None:
    """The serialized generations of a stored entry; None if it is not one."""
    if not isinstance(entry, dict) or entry.get("v") != ENTRY_VERSION:
        return None
    payload = entry.get("g")
    return payload if isinstance(payload, str) else None


def _only_generations_and_messages(class_path: tuple[str, ...], kwargs: dict[str, Any]) -> None:
    """`init_validator` for `loads`: refuse every class but generations and messages.

    Its `ValueError` never leaves the package: `loads` raises it inside
    `decode_generations`, which turns it into `CorruptEntryError`, and the cache reads
    that as a miss (logged). Only langchain-core's `loads` sees the builtin.
    """
    if class_path[0] not in ("langchain", "langchain_core") or (
        class_path[-1] not in _ALLOWED_CLASS_NAMES
    ):
        raise ValueError(f"{'.'.join(class_path)} may not appear in a cache entry")
    default_init_validator(class_path, kwargs)


def decode_generations(entry: Any) -> list[Generation]:
    """The generations of a stored entry; `CorruptEntryError` if it is not one."""
    if not isinstance(entry, dict) or entry.get("v") != ENTRY_VERSION:
        raise CorruptEntryError("not a TokenOptCache entry")
    payload = entry_payload(entry)
    if payload is None:
        raise CorruptEntryError("entry has no serialized generations")
    try:
        check_json_text(payload)
    except JSONLimitError as exc:
        raise CorruptEntryError(f"serialized generations: {exc}") from None
    try:
        # "core" keeps langchain-core's cached allowlist of class paths (fast); the
        # validator narrows it to generations and messages before anything is built.
        value = loads(
            payload, allowed_objects="core", init_validator=_only_generations_and_messages
        )
    except Exception as exc:  # any failure to revive means the entry is unusable
        raise CorruptEntryError(f"cannot deserialize: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(g, Generation) for g in value):
        raise CorruptEntryError("entry does not hold a list of Generation")
    return value


def fresh_copies(generations: Sequence[Generation]) -> list[Generation]:
    """Deep copies that share nothing mutable with `generations` (see `FrozenGenerations`)."""
    return FrozenGenerations(generations).thaw()


class FrozenGenerations:
    """Generations kept to be copied fast: one fresh, independent copy per `thaw()`.

    A cache hit must not hand out objects a caller could mutate into the cache, and
    `model_copy(deep=True)` (`copy.deepcopy`) costs many times the rest of a memory
    hit. Here each model is planned once: immutable field values (str, numbers,
    None) are shared, a dict or list of such values is copied with its C `copy()`,
    anything nested deeper is frozen with `marshal` (C speed, builtin types only, in
    memory: nothing read from a store goes through it) and rebuilt per copy; each
    thaw builds the models as pydantic's own `__copy__` does (a new `__dict__`,
    fields set, extra and private values; docs/internals.md). When a value is not a
    builtin type (an object in `additional_kwargs`), or a first thaw does not compare
    equal to the original (pydantic's layout changed), `thaw` falls back to
    `model_copy(deep=True)`.

    Example:
        >>> from langchain_core.outputs import Generation
        >>> frozen = FrozenGenerations([Generation(text="hi", generation_info={"n": 1})])
        >>> first, second = frozen.thaw()[0], frozen.thaw()[0]
        >>> first.generation_info["n"] = 2
        >>> second.generation_info
        {'n': 1}
    """

    __slots__ = ("_frozen", "_pristine")

    def __init__(self, generations: Sequence[Generation]) -> None:
        self._pristine = [generation.model_copy(deep=True) for generation in generations]
        try:
            self._frozen: list[_FrozenModel] | None = [_freeze(g) for g in self._pristine]
            # A pydantic whose models hold more than the copied state fails here, once
            # per entry, instead of handing out incomplete copies.
            if [_thaw(frozen) for frozen in self._frozen] != self._pristine:
                self._frozen = None
        except (ValueError, TypeError, AttributeError):  # fall back to deep copies
            self._frozen = None

    def thaw(self) -> list[Generation]:
        """A fresh deep copy of the generations."""
        frozen = self._frozen
        if frozen is None:
            return [generation.model_copy(deep=True) for generation in self._pristine]
        if len(frozen) == 1:  # the usual response: no comprehension to set up
            return [_thaw(frozen[0])]
        return [_thaw(model) for model in frozen]


# Makes a fresh copy of one frozen value per call.
_Copier = Callable[[], Any]
# (class, `__dict__` with the shared values in place, (field, copier) of the other
# values, nested models by field, fields set, copier of extra, copier of private)
_FrozenModel = tuple[
    type[BaseModel],
    dict[str, Any],
    tuple[tuple[str, _Copier], ...],
    tuple[tuple[str, Any], ...],
    set[str],
    _Copier | None,
    _Copier | None,
]
# Values shared between copies: nothing can change them (str subclasses included,
# such as langchain-core's TextAccessor).
_IMMUTABLE = (str, int, float, bool, type(None))


def _copier(value: Any) -> _Copier:
    """What makes a fresh copy of `value` (a private object nobody else mutates);
    `ValueError` when it holds something other than builtin types."""
    kind = type(value)
    if kind is dict or kind is list:  # not a subclass: `copy()` keeps the type
        if not value:
            return kind  # a new empty one
        items = value.values() if kind is dict else value
        if all(isinstance(item, _IMMUTABLE) for item in items):
            copy: _Copier = value.copy
            return copy  # flat: a shallow copy shares only immutable values
    return partial(marshal.loads, marshal.dumps(value))


def _freeze(model: BaseModel) -> _FrozenModel:
    """`ValueError` when a value is not a builtin type; `AttributeError` for a layout
    other than pydantic 2's."""
    # Every field, in pydantic's order (`dumps` writes them in it); copied and nested
    # values replace their placeholder in a copy of this dict, which keeps the order.
    template: dict[str, Any] = {}
    copied: list[tuple[str, _Copier]] = []
    nested: list[tuple[str, Any]] = []
    for name, value in model.__dict__.items():
        if isinstance(value, _IMMUTABLE):
            template[name] = value
            continue
        template[name] = None
        if isinstance(value, BaseModel):  # ChatGeneration.message
            nested.append((name, _freeze(value)))
        else:
            copied.append((name, _copier(value)))
    extra = model.__pydantic_extra__
    private = model.__pydantic_private__
    return (
        type(model),
        template,
        tuple(copied),
        tuple(nested),
        _shared_fields_set(type(model), model.__pydantic_fields_set__),
        None if extra is None else _copier(extra),
        None if private is None else _copier(private),
    )


# One set per distinct (class, fields set), copied per thaw: entries of one kind of
# response share it, so a hit reads a set that other hits keep in the CPU cache.
_FIELDS_SETS: dict[tuple[type[BaseModel], frozenset[str]], set[str]] = {}


def _shared_fields_set(cls: type[BaseModel], fields_set: set[str]) -> set[str]:
    return _FIELDS_SETS.setdefault((cls, frozenset(fields_set)), set(fields_set))


_new_object = object.__new__
_set_slot = object.__setattr__


def _thaw(frozen: _FrozenModel) -> Any:
    cls, template, copied, nested, fields_set, extra, private = frozen
    values = template.copy()
    for name, copy in copied:
        values[name] = copy()
    for name, inner in nested:
        values[name] = _thaw(inner)
    model = _new_object(cls)
    # What pydantic's BaseModel.__copy__ sets, with values that share nothing.
    _set_slot(model, "__dict__", values)
    _set_slot(model, "__pydantic_fields_set__", fields_set.copy())
    _set_slot(model, "__pydantic_extra__", None if extra is None else extra())
    _set_slot(model, "__pydantic_private__", None if private is None else private())
    return model
