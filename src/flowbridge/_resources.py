"""One neutral resource request per task; each adapter translates it or refuses it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_COUNT_FIELDS = ("cores", "gpus", "threads", "ranks")
FIELDS = (*_COUNT_FIELDS, "memory", "walltime")


def _parse_memory(value: int | str) -> int:
    """Bytes from an int (bytes) or a string such as ``"4GB"`` / ``"512MiB"``."""
    if isinstance(value, bool):
        raise ValueError("Resources(memory=...) takes bytes as an int or a string such as '4GB'")
    number: float
    if isinstance(value, int):
        number, unit = value, ""
    elif isinstance(value, str) and (m := _MEMORY_RE.match(value)):
        number, unit = float(m.group(1)), m.group(2).lower()
    else:
        raise ValueError(f"Resources(memory={value!r}) is not a size: use bytes as an int or a string such as '4GB'")
    if unit not in _MEMORY_UNITS:
        raise ValueError(f"Resources(memory={value!r}): unknown unit {unit!r}; use KB, MB, GB, TB or KiB, MiB, GiB")
    size = int(number * _MEMORY_UNITS[unit])
    if size <= 0:
        raise ValueError(f"Resources(memory={value!r}) must be positive")
    return size


def _parse_walltime(value: float | int | str) -> float:
    """Seconds from a number of seconds or an ``"[D-]HH:MM:SS"`` / ``"MM:SS"`` string."""
    if isinstance(value, bool):
        raise ValueError("Resources(walltime=...) takes seconds or 'HH:MM:SS'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and not value.strip().startswith("-"):
        days, _, clock = value.rpartition("-")
        try:
            parts = [float(p) for p in clock.split(":")]
            if not 1 <= len(parts) <= 3:
                raise ValueError
            seconds = 0.0
            for part in parts:
                seconds = seconds * 60 + part
            seconds += 86400 * int(days or 0)
        except ValueError:
            raise ValueError(f"Resources(walltime={value!r}) is not a duration: use seconds or 'HH:MM:SS'") from None
    else:
        raise ValueError(f"Resources(walltime={value!r}) is not a duration: use seconds or 'HH:MM:SS'")
    if seconds <= 0:
        raise ValueError(f"Resources(walltime={value!r}) must be positive")
    return seconds


class Resources:
    """What one task needs: ``Resources(cores=4, gpus=1, memory="8GB", walltime="01:00:00")``.

    ``cores`` per rank, ``threads`` per core, ``ranks`` (MPI processes), ``gpus`` per
    rank, ``memory`` (stored in bytes), ``walltime`` (stored in seconds) and ``extra``,
    options passed to one adapter as they are. Fields left as ``None`` ask for nothing.
    """

    __slots__ = (*FIELDS, "extra")

    cores: int | None
    gpus: int | None
    threads: int | None
    ranks: int | None
    memory: int | None
    walltime: float | None
    extra: Mapping[str, Any]

    def __init__(
        self,
        cores: int | None = None,
        gpus: int | None = None,
        threads: int | None = None,
        ranks: int | None = None,
        memory: int | str | None = None,
        walltime: float | str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        for name, value in zip(_COUNT_FIELDS, (cores, gpus, threads, ranks), strict=True):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(f"Resources({name}={value!r}) must be an int")
                least = 0 if name == "gpus" else 1
                if value < least:
                    raise ValueError(f"Resources({name}={value!r}) must be >= {least}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "memory", None if memory is None else _parse_memory(memory))
        object.__setattr__(self, "walltime", None if walltime is None else _parse_walltime(walltime))
        if extra is not None and not isinstance(extra, Mapping):
            raise TypeError(f"Resources(extra={extra!r}) must be a dict of adapter options")
        object.__setattr__(self, "extra", dict(extra or {}))

    @classmethod
    def coerce(cls, value: Resources | Mapping[str, Any] | None) -> Resources | None:
        """Accept a Resources, a plain dict of its fields (as profiles write it) or None."""
        if value is None or isinstance(value, Resources):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(cls.__slots__))
            if unknown:
                raise ValueError(
                    f"unknown resource field(s) {', '.join(unknown)}; "
                    f"known: {', '.join(cls.__slots__)} (put adapter options in extra={{...}})"
                )
            return cls(**value)
        raise TypeError(f"resources= takes flowbridge.Resources(...) or a dict, not {type(value).__name__}")

    def requested(self) -> dict[str, Any]:
        """The fields that ask for something, as a dict (``extra`` included when not empty)."""
        out = {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Resources is immutable; build a new one")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resources) and self.requested() == other.requested()

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) for f in FIELDS))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.requested().items())
        return f"Resources({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.requested(),))


def _rebuild(fields: dict[str, Any]) -> Resources:
    return Resources(**fields)
