"""Warm Jupyter kernels for the driver.

Starting a kernel costs about 0.8 s, and importing MadMiner in it (which imports torch, scipy and
matplotlib) another 4 s: together as much as a small stage's own work, in each of the chain's executions.
The pool keeps kernels ready that have already imported :data:`WARM_IMPORTS`, one per concurrently running
execution: each notebook takes one and a replacement starts in the background while the notebook runs
(never more kernels in all than the executions planned, each warmed for its stage). The imports leave no name
in the kernel's namespace, so each notebook still starts from a clean one. Kernels listen on IPC sockets in
a private folder (no TCP port) and start in the notebooks' folder, so no process-wide ``chdir`` is needed.

The pool also counts the executions running at once and publishes each one's share of the cores for
:func:`madminer_notebooks.threads.follow` (see :mod:`madminer_notebooks.threads`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from jupyter_client.manager import AsyncKernelManager

from .. import threads
from .interrupt import STOP

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Set in the environment of every kernel the driver starts: a notebook's last cell then knows that the
#: driver, not a person, is running it (see :mod:`madminer_notebooks.driver.interactive`).
DRIVER_VARIABLE = "MMNB_DRIVER"


#: What a waiting kernel imports: what nearly every stage's first cell imports (``import madminer`` alone
#: imports torch, scipy, matplotlib and all of MadMiner). Not ``torch._dynamo``: only training needs it
#: (:data:`STAGE_EXTRAS`).
WARM_IMPORTS = (
    "numpy",
    "h5py",
    "matplotlib.pyplot",
    "torch",
    "madminer",
    "madminer_notebooks.compat",
    "madminer_notebooks.notebook",
    "madminer_notebooks.training",
)

#: Stages whose notebooks import neither MadMiner nor torch (they call ``begin(..., madminer=False)``), with
#: what their kernels import instead. A spare kernel warms up while the other executions run: importing
#: torch and MadMiner for a generation notebook, which never uses them, took about 5 s of a core from the
#: generator running beside it, for each of generation's executions (quick's generation stage: 24.7 s at
#: 203917f, 37.7 s with the full warm-up everywhere).
LIGHT_STAGES: dict[str, tuple[str, ...]] = {
    "generation": ("numpy", "matplotlib.pyplot", "madminer_notebooks.notebook", "madminer_notebooks.generator"),
}


#: What a stage's kernels import besides :data:`WARM_IMPORTS`. Training: torch's optimisers import
#: ``torch._dynamo`` when the first one is made (1.4 s here, 3.7 s measured on another machine), inside
#: the training cell of each of the stage's executions unless the kernel did it while it waited.
STAGE_EXTRAS: dict[str, tuple[str, ...]] = {
    "training": ("torch._dynamo",),
}


def warm_imports(stage: str | None) -> tuple[str, ...]:
    """What a kernel started for an execution of ``stage`` imports before the notebook gets it."""
    stage = stage or ""
    return LIGHT_STAGES.get(stage, WARM_IMPORTS + STAGE_EXTRAS.get(stage, ()))


def _warm_code(imports: tuple[str, ...]) -> str:
    """Code that imports ``imports`` in a new kernel and names nothing in the user's namespace. An import
    that fails here fails again in the notebook's own import cell, which shows the error."""
    return f"""def _mmnb_warm():
    import importlib
    for name in {imports!r}:
        try:
            importlib.import_module(name)
        except Exception:
            pass
_mmnb_warm()
del _mmnb_warm
"""


_WARM_TIMEOUT = 600  # seconds; a loaded machine imports slowly
_WATCH_SECONDS = 0.25  # how often a starting kernel checks that it is alive and still wanted


class StartAborted(RuntimeError):
    """A kernel's start was abandoned: the pool closed (a finished or interrupted run) while it started."""


def share_of_cores(parallel: int) -> int:
    """Threads for each of ``parallel`` notebooks (or workflow steps) running at once on this machine."""
    return max(1, (os.cpu_count() or 1) // max(1, parallel))


def thread_env(share_file: Path) -> dict[str, str]:
    """Environment of a kernel: OpenMP/BLAS may use up to :func:`threads.cap` threads, and the share file
    says how many of them this execution uses now (without the sharing, two trainings at once on 2 cores
    run ~3x slower; without the file, the last one running alone would use one core of two)."""
    cap = str(threads.cap())
    return {
        **os.environ,
        DRIVER_VARIABLE: "1",
        threads.VARIABLE: str(share_file),
        "OMP_NUM_THREADS": cap,
        "MKL_NUM_THREADS": cap,
        "OPENBLAS_NUM_THREADS": cap,
    }


class _Kernel:
    def __init__(self, cwd: Path, env: dict[str, str], abort: threading.Event, imports: tuple[str, ...]):
        """Start a kernel and warm it up; ``abort`` (the pool's) abandons the start within a fraction of a
        second, as does the kernel's death (Ctrl-C stops every child process, starting kernels included:
        without the watch, the warm-up would wait :data:`_WARM_TIMEOUT` for a reply from a dead kernel)."""
        self.folder = tempfile.mkdtemp(prefix="mmnb-kernel-")
        self.manager = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=f"{self.folder}/k")
        try:
            asyncio.run(self._start(cwd, env, abort, imports))
        except BaseException:  # no kernel process or socket folder is left behind
            self.stop()
            raise

    async def _start(self, cwd: Path, env: dict[str, str], abort: threading.Event, imports: tuple[str, ...]) -> None:
        """Start the kernel, import ``imports`` in it and wait until it is idle again."""
        if abort.is_set():
            raise StartAborted("the kernel pool closed before this kernel started")
        await self.manager.start_kernel(cwd=str(cwd), env=env)
        client = self.manager.client()
        client.start_channels()
        try:
            await self._watched(client.wait_for_ready(timeout=_WARM_TIMEOUT), abort)
            reply = await self._watched(
                client.execute_interactive(
                    _warm_code(imports),
                    silent=True,
                    store_history=False,
                    timeout=_WARM_TIMEOUT,
                    output_hook=lambda msg: None,
                ),
                abort,
            )
            if reply["content"]["status"] != "ok":  # the code itself cannot fail; the kernel can
                raise RuntimeError(f"a new kernel failed its imports: {reply['content'].get('evalue')}")
        finally:
            client.stop_channels()

    async def _watched(self, work: Awaitable[T], abort: threading.Event) -> T:
        """``work``, given up as soon as the pool closes or the kernel process dies."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=_WATCH_SECONDS)
                if done:
                    return task.result()
                if abort.is_set():
                    raise StartAborted("the kernel pool closed while this kernel started")
                if not await self.manager.is_alive():
                    raise RuntimeError("a new kernel died while it imported (stopped from outside?)")
        finally:
            task.cancel()

    def handover_class(self) -> type[AsyncKernelManager]:
        """A kernel-manager class for nbclient whose construction returns this started manager.

        nbclient cleans up (stops its client's channels, shuts the kernel down) only a manager that it
        created itself from ``kernel_manager_class``; handing the started one over this way keeps that
        normal ownership, where passing ``km=`` would leave the client's channels open.
        """
        manager = self.manager

        class Prestarted(AsyncKernelManager):
            def __new__(cls, *args, **kwargs):
                return manager

        return Prestarted

    def stop(self) -> None:
        try:
            if self.manager.has_kernel:
                asyncio.run(self.manager.shutdown_kernel(now=True))
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class KernelPool:
    def __init__(self, cwd: Path, size: int, prestart: bool = True, plan: Sequence[str] | None = None):
        """``size`` executions run at once. ``plan`` (None: no limit) is the stage of each execution the pool
        will serve, in the order they come: no kernel is started, and no import run, for an execution that
        will not come, and each kernel imports what its stage's notebook needs (:func:`warm_imports`; an
        execution that takes another stage's kernel, when some are skipped, imports the rest itself).
        ``prestart=False`` starts nothing until a notebook asks (a run that may have nothing to do)."""
        self._cwd = cwd
        self._folder = Path(tempfile.mkdtemp(prefix="mmnb-pool-"))
        self._share_file = self._folder / "threads"
        self._env = thread_env(self._share_file)
        self._running = 0
        self._plan = None if plan is None else list(plan)  # the stages of the kernels still to start
        threads.write_share(self._share_file, threads.cap())
        self._starter = ThreadPoolExecutor(max_workers=max(1, size), thread_name_prefix="kernel-start")
        self._lock = threading.Lock()
        self._ready: list[Future[_Kernel]] = []
        self._closed = False
        self._abort = threading.Event()  # set by close(): kernels still starting give up
        with self._lock:
            for _ in range(max(1, size) if prestart else 0):
                self._start_spare()

    def _start_spare(self) -> None:
        """Start one more kernel in the background, unless the planned executions all have theirs."""
        if self._closed or self._plan == []:
            return
        stage = None if self._plan is None else self._plan.pop(0)
        self._ready.append(self._submit(stage))

    def _submit(self, stage: str | None) -> Future[_Kernel]:
        return self._starter.submit(_Kernel, self._cwd, self._env, self._abort, warm_imports(stage))

    def _publish_share(self) -> None:
        threads.write_share(self._share_file, threads.cap() // max(1, self._running))

    def take(self) -> _Kernel:
        """A started kernel (a replacement starts in the background); the execution counts as running."""
        with self._lock:
            # none ready: asked for more than expected (or after close); served anyway
            future = self._ready.pop(0) if self._ready else self._submit(None)
            self._start_spare()
            self._running += 1
            self._publish_share()
        try:
            return future.result()
        except BaseException:
            self._done_running()
            raise

    def _done_running(self) -> None:
        with self._lock:
            self._running -= 1
            self._publish_share()

    def release(self, kernel: _Kernel) -> None:
        """Each notebook gets a fresh kernel (no hidden state): a used one is shut down, and its execution's
        cores go to the ones still running."""
        self._done_running()
        self._starter.submit(kernel.stop)

    def close(self) -> None:
        """Stop the spare kernels; those still starting give up at once (after Ctrl-C, or a failed stage)."""
        with self._lock:
            self._closed = True
            ready, self._ready = self._ready, []
        self._abort.set()
        stops = []
        for future in ready:
            error = future.exception()
            if isinstance(error, StartAborted) or (error is not None and STOP.is_set()):
                continue  # given up, or stopped with the other children by Ctrl-C
            if error is not None:  # never used; the error would have surfaced in take()
                log.warning("a spare kernel failed to start: %s", error)
                continue
            # in the pool's threads: the caller may be a Jupyter kernel, whose thread runs an event loop
            stops.append(self._starter.submit(future.result().stop))
        for stop in stops:
            stop.result()
        self._starter.shutdown(wait=True)
        shutil.rmtree(self._folder, ignore_errors=True)
