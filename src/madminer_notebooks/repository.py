"""The repository this package runs from, and its commit: one place for what the drivers, the image build
and the run records need to know about the checkout.

The package is installed in place (an editable install here, ``pip install -e`` in the image as well), so
the repository's folders (``notebooks/``, ``workflow/``, ``params/``, ``drivers/``) sit two levels above
this file wherever the package runs.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def git_commit() -> str:
    """The project's commit: from git in a checkout, ``MMNB_GIT_COMMIT`` in the image, else 'unknown'."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return os.environ.get("MMNB_GIT_COMMIT", "unknown")
