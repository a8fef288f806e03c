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
    memory: nothing read from a store goes through it) and rebuilt per copy. A copy
    is one call of a builder compiled once per model layout (class, field names,
    how each value is copied), as `dataclasses` compiles an `__init__`: it sets the
    state pydantic's own `__copy__` sets (a new `__dict__`, fields set, extra and
    private values; docs/internals.md) from the entry's values, which a
    `functools.partial` holds, so a hit reads few objects. When a value is not a
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

    __slots__ = ("_copiers", "_pristine")

    def __init__(self, generations: Sequence[Generation]) -> None:
        self._pristine = [generation.model_copy(deep=True) for generation in generations]
        try:
            self._copiers: list[_Copier] | None = [_freeze(g) for g in self._pristine]
            # A pydantic whose models hold more than the copied state fails here, once
            # per entry, instead of handing out incomplete copies.
            if [copy() for copy in self._copiers] != self._pristine:
                self._copiers = None
        except (ValueError, TypeError, AttributeError):  # fall back to deep copies
            self._copiers = None

    def thaw(self) -> list[Generation]:
        """A fresh deep copy of the generations."""
        copiers = self._copiers
        if copiers is None:
            return [generation.model_copy(deep=True) for generation in self._pristine]
        if len(copiers) == 1:  # the usual response: no comprehension to set up
            return [copiers[0]()]
        return [copy() for copy in copiers]


# Makes a fresh copy of one frozen value (or model) per call.
_Copier = Callable[[], Any]
# Sets one part of a model's state on a new instance (a slot descriptor's `__set__`).
_Setter = Callable[[Any, Any], None]
# Values shared between copies: nothing can change them (str subclasses included,
# such as langchain-core's TextAccessor).
_IMMUTABLE = (str, int, float, bool, type(None))
# How a builder gets each value of a copy: the expression it compiles, from the
# entry's value (a builder parameter, "{}" in the template) or from nothing.
_FROM_VALUE = {"shared": "{}", "copy": "{}.copy()", "call": "{}()"}
_FROM_NOTHING = {"none": "None", "empty dict": "{}", "empty list": "[]"}
_NO_VALUE = object()


def _plan(value: Any) -> tuple[str, Any]:
    """(how a copy gets `value`, what the builder is given for it, or _NO_VALUE);
    `ValueError` when it holds something other than builtin types."""
    if value is None:
        return "none", _NO_VALUE
    if isinstance(value, _IMMUTABLE):
        return "shared", value
    if isinstance(value, BaseModel):  # ChatGeneration.message
        return "call", _freeze(value)
    kind = type(value)
    if kind is dict or kind is list:  # not a subclass: `copy()` keeps the type
        if not value:
            return f"empty {kind.__name__}", _NO_VALUE
        items = value.values() if kind is dict else value
        if all(isinstance(item, _IMMUTABLE) for item in items):
            return "copy", value  # flat: a shallow copy shares only immutable values
    return "call", partial(marshal.loads, marshal.dumps(value))


def _freeze(model: BaseModel) -> _Copier:
    """What makes a fresh copy of `model` per call. `ValueError` when a value is not a
    builtin type; `AttributeError` for a layout other than pydantic 2's."""
    names = tuple(model.__dict__)
    extra = model.__pydantic_extra__
    private = model.__pydantic_private__
    plans = [_plan(value) for value in model.__dict__.values()]
    plans.append(("copy", _shared_fields_set(type(model), model.__pydantic_fields_set__)))
    plans += [_plan(extra), _plan(private)]
    build = _builder(type(model), names, tuple(kind for kind, _ in plans))
    return partial(build, *(value for _, value in plans if value is not _NO_VALUE))


# One set per distinct (class, fields set), copied per thaw: entries of one kind of
# response share it, so a hit reads a set that other hits keep in the CPU cache.
_FIELDS_SETS: dict[tuple[type[BaseModel], frozenset[str]], set[str]] = {}


def _shared_fields_set(cls: type[BaseModel], fields_set: set[str]) -> set[str]:
    return _FIELDS_SETS.setdefault((cls, frozenset(fields_set)), set(fields_set))


# Builders by (class, field names, kinds of the values); the allowed classes have few
# layouts, the bound only guards against a flood of odd ones (they are built anew).
_BUILDERS: dict[tuple[type[BaseModel], tuple[str, ...], tuple[str, ...]], Callable[..., Any]] = {}
_MAX_BUILDERS = 1024


def _builder(
    cls: type[BaseModel], names: tuple[str, ...], kinds: tuple[str, ...]
) -> Callable[..., Any]:
    """The function that builds a `cls` with fields `names` from the values of one
    entry: `kinds` says how it gets each field, then the fields set, extra and
    private values (`_FROM_VALUE`, `_FROM_NOTHING`). For an `AIMessage` it reads::

        def build(v0, v1, v2, v3, v4, v5):
            model = new(cls)
            set_dict(model, {'content': v0, 'additional_kwargs': {}, ...,
                             'response_metadata': v1.copy(), ...})
            set_fields_set(model, v4.copy())
            set_extra(model, {})
            set_private(model, None)
            return model

    Only the field names (as `repr` literals) come from the model; its values are
    arguments, never source.
    """
    key = (cls, names, kinds)
    known = _BUILDERS.get(key)
    if known is not None:
        return known
    if not all(type(name) is str for name in names):
        raise TypeError(f"{cls.__name__} has a field name that is not a str")
    params: list[str] = []
    expressions = []
    for kind in kinds:
        if kind in _FROM_NOTHING:
            expressions.append(_FROM_NOTHING[kind])
        else:
            params.append(f"v{len(params)}")
            expressions.append(_FROM_VALUE[kind].format(params[-1]))
    *fields, fields_set, extra, private = expressions
    items = ", ".join(f"{name!r}: {value}" for name, value in zip(names, fields, strict=True))
    source = (
        f"def build({', '.join(params)}):\n"
        "    model = new(cls)\n"
        f"    set_dict(model, {{{items}}})\n"
        f"    set_fields_set(model, {fields_set})\n"
        f"    set_extra(model, {extra})\n"
        f"    set_private(model, {private})\n"
        "    return model\n"
    )
    set_dict, set_fields_set, set_extra, set_private = _state_setters(cls)
    namespace: dict[str, Any] = {
        "new": object.__new__,
        "cls": cls,
        "set_dict": set_dict,
        "set_fields_set": set_fields_set,
        "set_extra": set_extra,
        "set_private": set_private,
    }
    exec(source, namespace)  # source made of the literals and names above
    build: Callable[..., Any] = namespace["build"]
    if len(_BUILDERS) < _MAX_BUILDERS:
        _BUILDERS[key] = build
    return build


# Where pydantic 2 keeps a model's state, in the order `__copy__` sets it.
_STATE_SLOTS = (
    "__dict__",
    "__pydantic_fields_set__",
    "__pydantic_extra__",
    "__pydantic_private__",
)


def _state_setters(cls: type[BaseModel]) -> tuple[_Setter, _Setter, _Setter, _Setter]:
    """The `__set__` of the descriptors holding `cls`'s state: what
    `object.__setattr__` calls, without looking the descriptor up on every copy.
    `AttributeError` when one is missing or cannot be set (another layout)."""
    found = [_descriptor(cls, name).__set__ for name in _STATE_SLOTS]
    return found[0], found[1], found[2], found[3]


def _descriptor(cls: type, name: str) -> Any:
    """The attribute `name` as the first class of `cls.__mro__` defining it holds it."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    raise AttributeError(f"{cls.__name__} has no {name} slot")
