"""How the stage notebooks print: log lines and progress bars as plain text, MadMiner's harmless notes hidden.

Jupyter renders everything written to stderr in a red box, so a notebook that logs with Python's default
handler looks as if every INFO line were an error. In a notebook, log lines and progress bars therefore go
to stdout; on the command line (the generator's CLI, the drivers) they stay on stderr, where stdout is
kept for results.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

#: MadMiner's INFO notes that say nothing a user of this chain needs: its HDF5 loader lists every optional
#: section that a file lacks (systematics, finite-difference benchmarks, ...) and ``MadMiner.load`` says it
#: resets the benchmarks it then reads back.
HARMLESS = (
    re.compile(r"HDF5 file does not contain .* information"),
    re.compile(r"Resetting benchmarks and morphing"),
)

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (JupyterLab, or papermill through the driver)."""
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None else None  # type: ignore[attr-defined]
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_stream() -> TextIO:
    """Where progress bars write: stdout in a notebook (no red box), stderr elsewhere."""
    return sys.stdout if in_notebook() else sys.stderr


class _QuietHarmless(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(pattern.search(message) for pattern in HARMLESS)


def log_to_notebook(level: int = logging.INFO) -> None:
    """Log lines of every library as plain text in the cell's output, MadMiner's :data:`HARMLESS` notes
    hidden. Idempotent: running the cell again does not double the lines."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_mmnb", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler._mmnb = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    handler.addFilter(_QuietHarmless())
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("matplotlib", "PIL", "fontTools", "papermill", "traitlets", "nbconvert"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
