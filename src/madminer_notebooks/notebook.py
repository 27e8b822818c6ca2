"""What every stage notebook does first, in one call, so that the notebooks show the MadMiner calls of their
stage rather than the same set-up lines eight times."""

from __future__ import annotations

from pathlib import Path

from . import threads
from .notebook_output import log_to_notebook
from .params import load_params
from .paths import RunPaths


def begin(params_file: str | Path, run_dir: str | Path, madminer: bool = True) -> tuple[dict, RunPaths]:
    """Log lines as plain text in the cell's output (not red stderr boxes, MadMiner's harmless notes hidden),
    take this execution's share of the cores (:mod:`.threads`),
    apply the narrow fixes for MadMiner 0.9.6 on numpy 2 (:mod:`.compat`; ``madminer=False`` for a stage
    that does not use MadMiner and should not pay for importing it), validate the parameter file against
    the schema (a bad file fails here, before any work), put the trainer ``training.trainer`` names behind
    the estimators' ``train`` (:mod:`.training`) and make the run folder.

    Returns the parameters and the run folder's :class:`RunPaths`."""
    log_to_notebook()
    threads.follow()  # under the driver: this execution's share of the cores
    if madminer:
        from . import compat

        compat.apply()
    params = load_params(params_file)
    if madminer:
        from . import training

        training.use(params["training"]["trainer"])
    paths = RunPaths(run_dir)
    paths.make_folders()
    return params, paths
