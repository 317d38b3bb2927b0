"""The constructor's options checked at once, so a bad profile fails before anything starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._clusters import JOBQUEUE


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
        return source, None, None
    kind = jobqueue.lower()
    if kind not in JOBQUEUE:
        raise ValueError(f"jobqueue={jobqueue!r} is not one of {', '.join(JOBQUEUE)}")
    if jobs is not None and adapt is not None:
        raise TypeError("jobqueue= takes jobs=N or adapt=(min, max), not both")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs={jobs!r} must be a positive int")
    if adapt is None:
        return source, kind, None
    low, high = adapt if len(adapt) == 2 else (-1, -1)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high and high >= 1):
        raise ValueError(f"adapt={adapt!r} must be (minimum_jobs, maximum_jobs) with 0 <= min <= max and max >= 1")
    return source, kind, (low, high)
