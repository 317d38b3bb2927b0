"""Finding futures inside task arguments and putting values in their place."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_CONTAINERS = (list, tuple, dict, set, frozenset)
_FUTURES = (asyncio.Future, concurrent.futures.Future)


def find_futures(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Every future in args and kwargs, also inside lists, tuples, dicts and sets; no duplicates."""
    return find(_FUTURES, args, kwargs)


def find(kinds: type | tuple[type, ...], args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Any]:
    """Every instance of ``kinds`` in args and kwargs, also inside lists, tuples, dicts and sets; no duplicates."""
    found: list[Any] = []
    seen: set[int] = set()
    stack: list[Any] = [*args, *kwargs.values()] if kwargs else list(args)
    while stack:
        item = stack.pop()
        if isinstance(item, kinds):
            if id(item) not in seen:
                seen.add(id(item))
                found.append(item)
        elif isinstance(item, _CONTAINERS):
            stack.extend(item.values() if isinstance(item, dict) else item)
    return found


def substitute(value: Any, lookup: Callable[[Any], Any]) -> Any:
    """A copy of ``value`` with every future replaced by ``lookup(future)``."""
    if isinstance(value, _FUTURES):
        return lookup(value)
    t = type(value)
    if t is list:
        return [substitute(v, lookup) for v in value]
    if t is tuple:
        return tuple(substitute(v, lookup) for v in value)
    if t is dict:
        return {k: substitute(v, lookup) for k, v in value.items()}
    if t is set or t is frozenset:
        return t(substitute(v, lookup) for v in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return t(*(substitute(v, lookup) for v in value))
    if isinstance(value, _CONTAINERS):  # subclasses: keep the type when it allows it
        items = value.items() if isinstance(value, dict) else value
        try:
            if isinstance(value, dict):
                return t({k: substitute(v, lookup) for k, v in items})
            return t(substitute(v, lookup) for v in items)
        except TypeError:
            return value
    return value
