"""The adapter contract: what an execution backend implements to plug into flowbridge.

An adapter is small on purpose::

    class MyBackend(Adapter):
        name = "mine"
        capabilities = frozenset({"functions", "executables"})
        supported_resources = frozenset({"cores"})

        async def start(self) -> None: ...
        def submit(self, task: TaskSpec) -> Handle: ...
        async def shutdown(self, *, cancel: bool = True) -> None: ...

``submit`` is called on the engine's event loop and must not block. It returns a
*handle*: an ``asyncio.Future`` of the engine's loop or a ``concurrent.futures.Future``,
resolved with the task's value (or a :class:`Remote` for a value left on the
workers), failed with the task's exception, and cancelled by ``handle.cancel()``.
Functions run through :func:`flowbridge.worker.call` on the worker and executables
through :func:`flowbridge.worker.run_command`, so every adapter shows the same
semantics. An adapter never shuts down what it did not create.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Union

from ._errors import UnsupportedResource
from ._resources import FIELDS, Resources

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CAPABILITIES", "Adapter", "Backend", "Handle", "Remote", "TaskSpec", "make_run_dir"]

ENV_RUN_DIR = "FLOWBRIDGE_RUN_DIR"


def make_run_dir(prefix: str) -> Path:
    """A fresh directory for one adapter's sandboxes and logs, never in the working directory.

    It lies under ``$FLOWBRIDGE_RUN_DIR`` when set, else under the system temp dir
    (``<tmp>/flowbridge-<user>/``). The adapter removes it at shutdown unless the
    user asked to keep it.
    """
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=run_root()))


def run_root() -> str:
    """``$FLOWBRIDGE_RUN_DIR``, else ``<tmp>/flowbridge-<user>``: where flowbridge's files go (made, 0700)."""
    import getpass
    import tempfile

    root = os.environ.get(ENV_RUN_DIR) or os.path.join(tempfile.gettempdir(), f"flowbridge-{getpass.getuser()}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    return root


#: Everything an adapter may declare in ``capabilities``.
CAPABILITIES = frozenset(
    {
        "functions",  # runs Python function tasks
        "executables",  # runs executable tasks (commands)
        "prompts",  # runs prompt tasks (a prompt str to an inference service)
        "async_functions",  # runs ``async def`` bodies on a loop kept per worker
        "cancel_running",  # can stop a task that has started
        "native_dependencies",  # accepts its own handles as arguments (see Adapter.native)
        "remote_results",  # may resolve handles with Remote: values stay on the workers
        "worker_lost",  # reports dead workers / jobs as WorkerLost
        # Derived from ``supported_resources``, never declared (resources are declared once):
        "resources.cores",
        "resources.gpus",
        "resources.threads",
        "resources.memory",
        "resources.walltime",
        "mpi",  # tasks with ranks > 1
    }
)
#: capability -> the resource field whose support it stands for
DERIVED = {**{f"resources.{f}": f for f in ("cores", "gpus", "threads", "memory", "walltime")}, "mpi": "ranks"}

Handle = Union["asyncio.Future[Any]", "concurrent.futures.Future[Any]"]


class TaskSpec:
    """One attempt of one task, as the engine hands it to an adapter.

    ``kind`` is ``"function"`` (run ``func(*args, **kwargs)``), ``"executable"``
    (run ``command``: a ``str`` through a shell, or a tuple of argv without one) or
    ``"prompt"`` (answer ``prompt``, a ``str``; only adapters declaring "prompts" get these).
    Dependencies are already replaced by their values, or by the adapter's own
    native handles when it declared ``native_dependencies``.
    """

    __slots__ = ("args", "attempt", "command", "func", "kind", "kwargs", "name", "prompt", "resources", "uid")

    def __init__(
        self,
        uid: str,
        name: str,
        kind: Literal["function", "executable", "prompt"],
        func: Callable[..., Any] | None = None,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        command: str | tuple[str, ...] | None = None,
        resources: Resources | None = None,
        attempt: int = 1,
        prompt: str | None = None,
    ) -> None:
        self.uid = uid
        self.name = name
        self.kind = kind
        self.func = func
        self.args = args
        self.kwargs = kwargs if kwargs is not None else {}
        self.command = command
        self.resources = resources
        self.attempt = attempt
        self.prompt = prompt

    def __repr__(self) -> str:
        return f"TaskSpec({self.uid!r}, {self.name!r}, {self.kind!r}, attempt={self.attempt})"


class Remote:
    """A task value left where it was computed, fetched only when something needs it.

    An adapter with the ``remote_results`` capability resolves a handle with
    ``Remote(fetch)``; the engine marks the task done at once and awaits
    ``fetch()`` only when the user (or a dependent on another adapter) asks for
    the value. Dependents on the same adapter get its native handle instead.
    """

    __slots__ = ("fetch",)

    def __init__(self, fetch: Callable[[], Awaitable[Any]]) -> None:
        self.fetch = fetch


class Backend(Protocol):
    """What the engine needs of a backend: the type it holds adapters as.

    :class:`Adapter` subclasses meet it and add the rest (``ensure_started``,
    ``check_resources``, ``native``, ``kill``), which the engine uses where present.
    """

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> frozenset[str]: ...

    async def start(self) -> None: ...

    def submit(self, task: TaskSpec) -> Handle: ...

    async def shutdown(self, *, cancel: bool = True) -> None: ...


class Adapter:
    """Base class for execution backends; validates the class attributes it declares.

    Subclasses set ``name``, ``capabilities`` and ``supported_resources`` and
    implement ``start``, ``submit`` and ``shutdown``. ``check_resources`` turns a
    request the adapter cannot honour into :class:`UnsupportedResource` at submit.
    """

    #: The registry name ("dask"); an instance given ``name=`` at construction carries its own.
    name: str
    capabilities: ClassVar[frozenset[str]] = frozenset()
    supported_resources: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is not None and (not isinstance(name, str) or not name.isidentifier()):
            raise TypeError(f"{cls.__qualname__}.name must be an identifier-like str, not {name!r}")
        unknown = set(cls.capabilities) - CAPABILITIES
        if unknown:
            raise TypeError(
                f"{cls.__qualname__}.capabilities has unknown entries {sorted(unknown)}; known: {sorted(CAPABILITIES)}"
            )
        bad = set(cls.supported_resources) - {*FIELDS, "extra"}
        if bad:
            raise TypeError(f"{cls.__qualname__}.supported_resources has unknown fields {sorted(bad)}")
        declared = sorted(DERIVED.keys() & set(cls.__dict__.get("capabilities", ())))
        if declared:
            raise TypeError(
                f"{cls.__qualname__}.capabilities declares {declared}: resources are declared once, in "
                f"supported_resources, and those capabilities follow from it; remove them"
            )
        own = {c for c in cls.capabilities if c not in DERIVED}
        cls.capabilities = frozenset(own | {cap for cap, field in DERIVED.items() if field in cls.supported_resources})

    # -- the contract ------------------------------------------------------------

    async def start(self) -> None:
        """Bring the backend up (or connect to one the user brought). Called once."""

    def submit(self, task: TaskSpec) -> Handle:  # pragma: no cover - abstract
        """Hand one task to the framework; return at once with its handle."""
        raise NotImplementedError

    async def shutdown(self, *, cancel: bool = True) -> None:
        """Release what this adapter created; leave alone what the user brought."""

    # -- optional hooks ------------------------------------------------------------

    def native(self, handle: Handle) -> Any:
        """The object that stands for this handle's value in a dependent's arguments.

        Only called when ``native_dependencies`` is declared; return ``None`` to
        make the engine wait for the value instead.
        """
        return None

    def kill(self) -> None:
        """Last resort, synchronous and quick: kill every process this adapter started.

        The engine calls it when ``shutdown`` overran its time budget (or the
        program is being torn down), then abandons the adapter with a WARNING.
        The base kills every process tagged with :attr:`owner_tag`
        (``FLOWBRIDGE_OWNER``, see :mod:`flowbridge.toolkit.procs`) on this host.
        Never touch what the user brought.
        """
        if self.owner_tag:
            from .toolkit import procs

            procs.reap({procs.OWNER_ENV: self.owner_tag})

    #: The ``FLOWBRIDGE_OWNER`` tag of the processes this adapter started (its run dir), or None.
    owner_tag: str | None = None

    # -- helpers for subclasses -----------------------------------------------------

    def _named(self, name: str | None) -> None:
        """Take the ``name=`` every adapter's constructor accepts: the route it serves in ``backend=[...]``."""
        if name is None:
            return
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"{type(self).__name__}(name={name!r}): name must be a non-empty str")
        self.name = name

    async def ensure_started(self) -> None:
        """Run ``start`` once, however many engines or awaits ask for it."""
        starting = self.__dict__.get("_fb_starting")
        if starting is None:
            starting = self.__dict__["_fb_starting"] = asyncio.ensure_future(self.start())
        await asyncio.shield(starting)

    def __await__(self) -> Generator[Any, None, Adapter]:
        """``await Backend(...)`` as the seeds write it: starts the backend, gives it back."""
        return self._awaited().__await__()

    async def _awaited(self) -> Adapter:
        await self.ensure_started()
        return self

    def check_resources(self, task: TaskSpec) -> None:
        """Raise UnsupportedResource for any field of the request this adapter cannot honour."""
        res = task.resources
        if res is None:
            return
        asked = set(res.requested())
        unsupported = sorted(asked - set(self.supported_resources))
        if "extra" in unsupported:  # name the keys: they are what the user wrote (task_description=, extra=)
            unsupported.remove("extra")
            unsupported += [f"{key!r} (extra)" for key in res.extra]
        if unsupported:
            from .toolkit.checks import cannot_honour

            supported = ", ".join(sorted(self.supported_resources)) or "none"
            raise cannot_honour(self.name, task, ", ".join(unsupported), f"it supports: {supported}")

    def require(self, capability: str, task: TaskSpec) -> None:
        """Raise a clear error when a task needs something this adapter lacks."""
        if capability not in self.capabilities:
            kinds = {"functions": "function tasks", "executables": "executable tasks"}
            raise UnsupportedResource(
                f"the {self.name!r} backend does not run {kinds.get(capability, capability)} "
                f"(task {task.name}, {task.uid}); route it to another backend with backend=..."
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
