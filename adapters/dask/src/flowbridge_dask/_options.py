"""The constructor's options checked at once, so a bad profile fails before anything starts.

Option names are checked against the signatures of the classes they end up in
(LocalCluster and the Nanny/Worker it passes the rest to; a dask-jobqueue cluster
and its job class), so a typo is a ConfigError naming it and the closest real
name, not a TypeError from deep inside a half-started cluster.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

from flowbridge import ConfigError
from flowbridge.toolkit.checks import count

from ._clusters import JOBQUEUE, import_jobqueue

#: The backend's own keyword arguments (cluster options are everything else).
OWN = (
    "address",
    "scheduler_file",
    "client",
    "cluster",
    "jobqueue",
    "jobs",
    "adapt",
    "worker_resources",
    "resource_timeout",
    "connect_timeout",
    "keep_run_dir",
)
_INT_AT_LEAST_1 = {
    "local": ("n_workers", "threads_per_worker"),
    "jobqueue": ("cores", "processes"),
}
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "processes": ((bool,), "True or False"),
    "memory_limit": ((str, int, float, type(None)), 'a size such as "4GB", a number of bytes, "auto" or None'),
    "memory": ((str, int), 'a size such as "4GB" or a number of bytes'),
    "host": ((str,), 'an address such as "127.0.0.1"'),
    "interface": ((str,), 'a network interface name such as "lo" or "ib0"'),
    "dashboard_address": ((str, int, type(None)), 'an address such as "127.0.0.1:8787", a port, or None'),
    "walltime": ((str,), 'a time such as "00:30:00"'),
    "queue": ((str,), "a partition / queue name"),
    "job_name": ((str,), "a name"),
}


def _accepted(cls: type) -> set[str]:
    """Keyword names ``cls(...)`` takes, following ``**kwargs`` up the class's bases."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        names.update(n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    names.discard("self")
    return names


def framework_options(kind: str | None) -> set[str] | None:
    """What a cluster flowbridge builds accepts: LocalCluster (None) or a jobqueue kind; None if unknown."""
    if kind is None:
        from distributed import LocalCluster, Nanny, Worker

        # LocalCluster hands what it does not take to the Nanny, which hands the rest to the Worker.
        return _accepted(LocalCluster) | _accepted(Nanny) | _accepted(Worker)
    try:
        dask_jobqueue = import_jobqueue()
    except ImportError:
        return None  # start() says how to install it
    cls = getattr(dask_jobqueue, JOBQUEUE[kind])
    return _accepted(cls) | _accepted(cls.job_cls)


def close_match(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'n_workers'?"`` or nothing."""
    match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def check_cluster_options(kind: str | None, options: Mapping[str, Any]) -> None:
    """ConfigError for an option the cluster (and its workers) does not take, or of the wrong type."""
    accepted = framework_options(kind)
    what = "LocalCluster" if kind is None else JOBQUEUE[kind]
    if accepted is not None:
        for name in options:
            if name not in accepted:
                raise ConfigError(
                    f"DaskExecutionBackend: unknown option {name}={options[name]!r}"
                    f"{close_match(name, {*accepted, *OWN})} (neither flowbridge nor Dask's {what} and its "
                    f"workers take {name!r})"
                )
    for name in _INT_AT_LEAST_1["local" if kind is None else "jobqueue"]:
        if options.get(name) is not None:
            count("DaskExecutionBackend", name, options[name])
    for name, (types, hint) in _TYPES.items():
        if name in options and not (kind is not None and name == "processes"):
            if not isinstance(options[name], types):
                raise ConfigError(f"DaskExecutionBackend: {name}={options[name]!r} must be {hint}")


def check_timeout(name: str, value: Any, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or value <= 0:
        raise ConfigError(f"DaskExecutionBackend: {name}={value!r} must be a number of seconds > 0")
    return float(value)


def check_options(
    address: str | None,
    scheduler_file: str | None,
    client: Any,
    cluster: Any,
    jobqueue: str | None,
    jobs: int | None,
    adapt: Sequence[int] | None,
    worker_resources: Mapping[str, float] | None,
    cluster_options: Mapping[str, Any],
) -> tuple[str, str | None, tuple[int, int] | None]:
    """``(source, jobqueue kind, adapt)``: where the cluster comes from, normalised; TypeError/ValueError else."""
    given = [
        name
        for name, value in (
            ("address", address),
            ("scheduler_file", scheduler_file),
            ("client", client),
            ("cluster", cluster),
            ("jobqueue", jobqueue),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise TypeError(
            f"DaskExecutionBackend takes one of address=, scheduler_file=, client=, cluster=, jobqueue=; "
            f"got {', '.join(given)}"
        )
    source = given[0] if given else "local"
    if source not in ("local", "jobqueue"):
        sizing = [*cluster_options, *(["worker_resources"] if worker_resources else [])]
        sizing += [name for name, value in (("jobs", jobs), ("adapt", adapt)) if value is not None]
        if sizing:
            raise TypeError(
                f"{', '.join(sizing)} configure a cluster flowbridge builds; with {source}= the cluster "
                f"is yours: configure it where you create it"
            )
    for name in ("address", "scheduler_file"):
        value = {"address": address, "scheduler_file": scheduler_file}[name]
        if value is not None and not isinstance(value, str) and not hasattr(value, "__fspath__"):
            raise ConfigError(f"DaskExecutionBackend: {name}={value!r} must be a str")
    if client is not None and not hasattr(client, "submit"):
        raise TypeError(f"client= takes a distributed.Client, not {type(client).__name__}")
    for name, hint in (
        ("asynchronous", "flowbridge runs the cluster asynchronously"),
        ("resources", "use worker_resources="),
    ):
        if name in cluster_options:
            raise TypeError(f"{name}= is not a cluster option here: {hint}")
    if jobqueue is None:
        if jobs is not None or adapt is not None:
            raise TypeError("jobs= and adapt= size a dask-jobqueue cluster; pass jobqueue='slurm' (or pbs, lsf, ...)")
        if source == "local":
            check_cluster_options(None, cluster_options)
        return source, None, None
    kind = jobqueue.lower()
    if kind not in JOBQUEUE:
        raise ValueError(f"jobqueue={jobqueue!r} is not one of {', '.join(JOBQUEUE)}")
    check_cluster_options(kind, cluster_options)
    if jobs is not None and adapt is not None:
        raise TypeError("jobqueue= takes jobs=N or adapt=(min, max), not both")
    count("DaskExecutionBackend", "jobs", jobs, optional=True, error=ValueError)
    if adapt is None:
        return source, kind, None
    low, high = adapt if len(adapt) == 2 else (-1, -1)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high and high >= 1):
        raise ValueError(f"adapt={adapt!r} must be (minimum_jobs, maximum_jobs) with 0 <= min <= max and max >= 1")
    return source, kind, (low, high)
