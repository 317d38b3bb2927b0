"""flowbridge Resources as Dask worker resources, and whether any worker offers them.

Dask places a task that asks for ``resources={"GPU": 1}`` only on a worker that
declared at least that much, and waits forever when none did. So every request is
checked against what the workers offer (``dask worker --resources "GPU=2"``, or
what flowbridge declared for a cluster it built) and refused with
UnsupportedResource instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

from flowbridge import Resources, UnsupportedResource
from flowbridge.toolkit.checks import cannot_honour

#: flowbridge field -> Dask worker resource name (the names Dask's docs use).
NAMES = {"cores": "CPU", "gpus": "GPU", "memory": "MEMORY"}
SUPPORTED = frozenset({*NAMES, "extra"})

Offer = Mapping[str, float]


def to_dask(res: Resources, task: str) -> dict[str, float]:
    """The Dask ``resources=`` of a request; ``extra`` entries pass through by name."""
    out: dict[str, float] = {}
    for field, name in NAMES.items():
        value = getattr(res, field)
        if value:  # gpus=0 asks for nothing
            out[name] = value
    for name, value in res.extra.items():
        if isinstance(value, bool) or not isinstance(value, Real) or value < 0:
            raise cannot_honour(
                "dask", task, f"extra {name}={value!r}", "Dask worker resources are amounts", "give a number >= 0"
            )
        if name in out:
            raise cannot_honour(
                "dask", task, f"extra {name!r}", f"it repeats a field this backend maps to {name}", "use the field"
            )
        if value:
            out[str(name)] = float(value)
    return out


def satisfiable(request: Mapping[str, float], offers: Iterable[Offer]) -> bool:
    """True when at least one worker declares every resource of the request in that amount."""
    return any(all(offer.get(name, 0) >= amount for name, amount in request.items()) for offer in offers)


def refusal(task: str, request: Mapping[str, float], offers: Sequence[Offer], where: str) -> UnsupportedResource:
    """The error for a request no worker can meet, saying what the workers do offer."""
    asked = ", ".join(f"{k}={_fmt(v)}" for k, v in request.items())
    seen = sorted({", ".join(f"{k}={_fmt(v)}" for k, v in sorted(o.items())) or "nothing" for o in offers})
    return cannot_honour(
        "dask",
        task,
        asked,
        f"no worker of {where} declares that much (workers offer: {'; '.join(seen) or 'no workers'})",
        f'start workers with `dask worker --resources "{",".join(f"{k}={_fmt(v)}" for k, v in request.items())}"`, '
        f"pass worker_resources= to a cluster flowbridge builds, or route the task elsewhere",
    )


def offers_of(identity: Mapping[str, Any]) -> list[dict[str, float]]:
    """Each worker's declared resources, from the scheduler's ``identity()``."""
    return [dict(w.get("resources") or {}) for w in identity.get("workers", {}).values()]


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
