"""Warm Jupyter kernels for the driver.

Starting a kernel costs about 0.8 s, as much as a small stage's own work. The pool keeps started
kernels ready, one per concurrently running execution: each notebook takes one and a replacement
starts in the background while the notebook runs. Kernels listen on IPC sockets in a private folder
(no TCP port) and start in the notebooks' folder, so no process-wide ``chdir`` is needed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

log = logging.getLogger(__name__)

#: Set in the environment of every kernel the driver starts: a notebook's last cell then knows that the
#: driver, not a person, is running it (see :mod:`madminer_notebooks.driver.interactive`).
DRIVER_VARIABLE = "MMNB_DRIVER"


def share_of_cores(parallel: int) -> int:
    """Threads for each of ``parallel`` notebooks (or workflow steps) running at once on this machine."""
    return max(1, (os.cpu_count() or 1) // max(1, parallel))


def thread_env(parallel: int) -> dict[str, str]:
    """Environment of a kernel when ``parallel`` notebooks share the machine: each gets its share of the
    cores for torch/OpenMP/BLAS threads (without this, two trainings at once on 2 cores run ~3x slower).
    An ``OMP_NUM_THREADS`` set by the caller wins: a workflow step knows its share better (its siblings run
    in other processes, or other machines)."""
    threads = os.environ.get("OMP_NUM_THREADS") or str(share_of_cores(parallel))
    return {
        **os.environ,
        DRIVER_VARIABLE: "1",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
    }


class _Kernel:
    def __init__(self, cwd: Path, env: dict[str, str]):
        self.folder = tempfile.mkdtemp(prefix="mmnb-kernel-")
        self.manager = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=f"{self.folder}/k")
        asyncio.run(self.manager.start_kernel(cwd=str(cwd), env=env))

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
    def __init__(self, cwd: Path, size: int, prestart: bool = True):
        """``prestart=False`` starts nothing until a notebook asks (a run that may have nothing to do)."""
        self._cwd = cwd
        self._env = thread_env(size)
        self._starter = ThreadPoolExecutor(max_workers=max(1, size), thread_name_prefix="kernel-start")
        self._lock = threading.Lock()
        self._ready: list[Future[_Kernel]] = [
            self._starter.submit(_Kernel, cwd, self._env) for _ in range(max(1, size) if prestart else 0)
        ]
        self._closed = False

    def take(self) -> _Kernel:
        """A started kernel; a replacement starts in the background."""
        with self._lock:
            future = self._ready.pop(0) if self._ready else self._starter.submit(_Kernel, self._cwd, self._env)
            if not self._closed:
                self._ready.append(self._starter.submit(_Kernel, self._cwd, self._env))
        return future.result()

    def release(self, kernel: _Kernel) -> None:
        """Each notebook gets a fresh kernel (no hidden state): a used one is shut down."""
        self._starter.submit(kernel.stop)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            ready, self._ready = self._ready, []
        stops = []
        for future in ready:
            if future.exception() is not None:  # never used; the error would have surfaced in take()
                log.warning("a spare kernel failed to start: %s", future.exception())
                continue
            # in the pool's threads: the caller may be a Jupyter kernel, whose thread runs an event loop
            stops.append(self._starter.submit(future.result().stop))
        for stop in stops:
            stop.result()
        self._starter.shutdown(wait=True)
