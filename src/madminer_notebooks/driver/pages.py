"""Executed notebooks as HTML pages for the report, converted on every core.

nbconvert takes about half a second per notebook on one core: the 22 pages of a fresh quick run took 11 s
at the end of the run, one after the other. With several to convert, each core gets a worker process,
``python -m madminer_notebooks.driver.pages NOTEBOOK PAGE ...``, which imports only this module, nbformat and
nbconvert (a plain child process: ``multiprocessing``'s would import the parent's main module again).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from ..atomic import atomic_file

#: Fewer pages than this are converted in the driver's own process: a worker's start and imports (about a
#: second) would cost more than the pages it takes over.
POOL_FROM_PAGES = 4


def convert(pairs: list[tuple[Path, Path]]) -> None:
    """Each ``(notebook, page)``: the executed notebook as an HTML page (written atomically)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    exporter.log.setLevel(logging.ERROR)  # one 'alternative text is missing' warning per figure otherwise
    for notebook, page in pairs:
        body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
        with atomic_file(page) as tmp:
            tmp.write_text(body)


def convert_pages(pairs: list[tuple[Path, Path]]) -> None:
    """:func:`convert`, the pages shared out over worker processes, one per core, when there are enough."""
    if not pairs:  # a resumed run with nothing new: not even nbconvert's import (about a second)
        return
    workers = min(len(pairs), os.cpu_count() or 1)
    if workers <= 1 or len(pairs) < POOL_FROM_PAGES:
        convert(pairs)
        return
    procs = []
    for share in (pairs[i::workers] for i in range(workers)):
        args = [str(p) for pair in share for p in pair]
        procs.append(subprocess.Popen([sys.executable, "-m", __name__, *args], stderr=subprocess.PIPE, text=True))
    failures = [err for proc in procs if (err := proc.communicate()[1]) is not None and proc.returncode != 0]
    if failures:
        last = failures[0].strip().splitlines()[-1] if failures[0].strip() else "no message"
        raise RuntimeError(f"converting the executed notebooks to report pages failed: {last}")


if __name__ == "__main__":
    paths = [Path(a) for a in sys.argv[1:]]
    convert(list(zip(paths[::2], paths[1::2], strict=True)))
