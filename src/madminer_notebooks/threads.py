"""Each notebook execution uses the cores that are free now, not a share fixed when its kernel started.

The driver's kernel pool counts the executions that run at once and writes each one's share of the cores
(``cap // running``) to a small file whose path it puts in every kernel's environment (:data:`VARIABLE`).
A kernel reads it with :func:`follow` where it is about to compute for a while (``begin``, every training
epoch) and sets torch's and the BLAS libraries' thread counts to it: two
trainings side by side get one thread each, and the one left running alone gets both.

It has to be the computing thread that sets them: OpenMP keeps the thread count per calling thread, so a
watcher thread could not do it. Outside the driver (a plain Python session, a JupyterLab kernel started by
hand) there is no file and :func:`follow` leaves the libraries' defaults alone.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: The environment variable that names the share file.
VARIABLE = "MMNB_THREADS_FILE"

_current: int | None = None


def cap() -> int:
    """The threads all executions together may use: the caller's ``OMP_NUM_THREADS`` when it set one (a
    workflow step knows its share of a machine it shares with other steps), else every core."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return max(1, os.cpu_count() or 1)


def write_share(path: Path, threads: int) -> None:
    """Publish ``threads`` for the kernels (atomically: a reader sees the old number or the new one)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(str(max(1, threads)))
    os.replace(partial, path)


def share() -> int | None:
    """This execution's share of the cores now, or None outside the driver."""
    path = os.environ.get(VARIABLE)
    if not path:
        return None
    try:
        return max(1, int(Path(path).read_text()))
    except (OSError, ValueError):  # the driver has ended (its folder is gone): keep what was set
        return None


def follow() -> int | None:
    """Set torch's (when it is imported) and the BLAS libraries' thread counts to :func:`share`; returns it.
    Cheap when nothing changed (one small file read)."""
    global _current
    threads = share()
    if threads is None:
        return None
    torch = sys.modules.get("torch")  # imported after an earlier call, it starts with OMP_NUM_THREADS
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if threads != _current:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
        log.debug("using %d thread(s)", threads)
        _current = threads
    return threads
