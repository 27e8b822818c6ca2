"""Ctrl-C for the driver: stop the running notebooks within seconds, and never record an interrupted one.

Two things made Ctrl-C slow before. ``timeout`` and shells send SIGINT to the driver *and* to its process
group, so a second KeyboardInterrupt could land inside the cleanup that was stopping the kernels, abandon
it, and leave the main thread waiting for the running notebooks to finish (minutes) -- which then were
recorded as done. And a process-directed signal may be delivered to any thread: the main thread, blocked
without a timeout, only ran the handler when the next notebook finished.

So: the main thread waits in short slices (:data:`POLL_SECONDS`), the first SIGINT sets :data:`STOP` and
raises KeyboardInterrupt once, later ones only log, the kernels are stopped by process group with a
bounded wait, and an execution that returns after :data:`STOP` is discarded, not recorded.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

log = logging.getLogger(__name__)

#: Set by the first SIGINT; executions that end after it are not recorded.
STOP = threading.Event()

#: How long the main thread blocks at a time, so that it runs a signal handler soon whichever thread the
#: signal was delivered to.
POLL_SECONDS = 0.25


def _handler(signum: int, frame: object) -> None:
    if STOP.is_set():
        log.warning("already stopping the running notebooks (a second Ctrl-C changes nothing)")
        return
    STOP.set()
    raise KeyboardInterrupt


@contextmanager
def stoppable(until_exit: bool = False) -> Iterator[None]:
    """Within: the first SIGINT sets :data:`STOP` and raises KeyboardInterrupt in the main thread; later
    ones are logged and ignored, so the cleanup they would interrupt runs to the end.

    ``until_exit`` (a driver's command line): once stopped, later SIGINTs stay ignored after the block too.
    A cleanup can end within the fraction of a second between the signal to the driver and the one to its
    process group; Python's own handler, restored then, would kill the exiting driver (status -2 instead of
    130). They are ignored with ``SIG_IGN``, not with a Python handler: when the interpreter shuts down it
    resets Python handlers to the default, so a signal landing during the exit itself would kill it too
    (seen in CI). In a Jupyter kernel (``until_exit`` false) the kernel's own handler comes back, for its Stop button.

    Outside the main thread (where Python cannot install handlers), and when SIGINT is ignored (a job that
    a shell started in the background, ``nohup``), this only clears :data:`STOP`.
    """
    STOP.clear()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN if until_exit and STOP.is_set() else previous)


def stop_children(grace: float = 3.0) -> None:
    """Stop every process this one started (notebook kernels and whatever they started): SIGTERM to all,
    then SIGKILL to those still there after ``grace`` seconds. Kernels run in sessions of their own, so
    a terminal's Ctrl-C (or a batch system's SIGINT to the driver alone) never reaches them directly."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=grace)
