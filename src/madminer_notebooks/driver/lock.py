"""One driver at a time per run folder, and what an interrupted one left behind.

Two drivers started on one run folder would both run every stage that is not yet recorded, writing the
same files at the same time; with parameters edited in between, the folder would mix two runs. So a
driver holds an exclusive lock on ``RUN/.mmnb.lock`` (``flock``) for as long as it runs, and a second one
refuses at once, naming the holder's PID and command. The kernel releases the lock when the holder's
process ends, however it ends (a ``kill -9`` included), so a lock is never stale; the file itself stays.

Taking the lock is also the check that the folder can be written at all (a read-only mount, a folder of
another user), before any stage starts. Once it is held, the hidden temporary files that an interrupted
run left (``atomic_file``/``atomic_folder`` temporaries, the executed notebook of a stage that never
finished) are removed: no other driver can be writing them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..atomic import TEMPORARY_MARK, is_temporary
from .errors import NO_SPACE, UsageError

log = logging.getLogger(__name__)

LOCK_NAME = ".mmnb.lock"


class RunFolderBusy(UsageError):
    """Another driver holds the run folder."""


def _unwritable(root: Path, err: OSError) -> UsageError:
    if err.errno in NO_SPACE:
        return UsageError(f"run folder {root}: no space left on its device; free some space (or choose another "
                          "--run-dir) and run the same command again")  # fmt: skip
    return UsageError(f"run folder {root} is not writable ({err.strerror}); choose another --run-dir")


@contextlib.contextmanager
def run_folder_lock(root: Path, command: str | None = None) -> Iterator[None]:
    """Hold ``root``'s lock for the block; :class:`RunFolderBusy` at once when another process holds it,
    :class:`UsageError` when the folder cannot be created or written."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o664)
    except OSError as err:
        raise _unwritable(root, err) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 1000, 0).decode(errors="replace").strip() or "a process that wrote nothing yet"
            raise RunFolderBusy(
                f"run folder {root} is in use by another driver ({holder}); wait for it to end or stop it, "
                "or choose another --run-dir"
            ) from None
        except OSError as err:  # a shared file system without locks (some NFS set-ups): run, unguarded
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            log.warning("run folder %s: its file system cannot lock files (%s); not guarded against a second "
                        "driver", root, err.strerror)  # fmt: skip
        try:
            os.ftruncate(fd, 0)
            who = command or _command_line()
            os.pwrite(fd, f"PID {os.getpid()}, since {time.strftime('%H:%M:%S')}: {who}\n".encode(), 0)
            _probe(root)
        except OSError as err:
            raise _unwritable(root, err) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _command_line() -> str:
    """This process's command, as typed: ``python -m madminer_notebooks.driver run ...`` rather than the
    path of the package's ``__main__.py``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    first = f"python -m {spec.name.removesuffix('.__main__')}" if spec is not None else sys.argv[0]
    return " ".join([first, *sys.argv[1:]])


def _probe(root: Path) -> None:
    """Create and remove a file in ``root`` (the lock file may be writable in a folder that is not)."""
    probe = root / f".mmnb-probe.{os.getpid()}{TEMPORARY_MARK}"
    probe.write_bytes(b"")
    probe.unlink()


def remove_stale(root: Path) -> list[Path]:
    """Remove what an interrupted run left under ``root``; call with the lock held. Returns the paths."""
    removed = []
    for folder, dirs, files in os.walk(root):
        for name in list(dirs):
            if is_temporary(name):
                shutil.rmtree(Path(folder) / name, ignore_errors=True)
                dirs.remove(name)
                removed.append(Path(folder) / name)
        for name in files:
            if is_temporary(name):
                (Path(folder) / name).unlink(missing_ok=True)
                removed.append(Path(folder) / name)
    if removed:
        shown = ", ".join(str(p.relative_to(root)) for p in removed[:5]) + (" ..." if len(removed) > 5 else "")
        log.info("removed %d temporaries left by an interrupted run: %s", len(removed), shown)
    return removed
