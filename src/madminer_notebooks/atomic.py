"""Write-then-rename helpers: a file or folder with its final name is always complete.

A stage that is interrupted leaves at most a hidden temporary next to its output, never an output
that the driver's resume logic could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: What the names of temporaries end in: hidden (a leading dot) and marked with ``.tmp``, so that
#: :func:`is_temporary` tells them apart and a driver can remove what an interrupted run left.
TEMPORARY_MARK = ".tmp"


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of the project's temporaries: the files and folders of :func:`atomic_file`
    and :func:`atomic_folder` (and the generator's part files), a stage notebook while it runs
    (``.NAME.running.ipynb``), an input link being made (``.NAME.link``)."""
    return name.startswith(".") and (TEMPORARY_MARK in name or name.endswith((".running.ipynb", ".link")))


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same folder (same suffixes, which MadMiner looks at); rename it to
    ``path`` when the block completes, delete it when the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{TEMPORARY_MARK}{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # let the writer create it (h5py and MadMiner refuse some existing files)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Like :func:`atomic_file` for a folder of outputs (saved estimators, sample sets)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMPORARY_MARK, dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; later workflow steps may run under another user
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
