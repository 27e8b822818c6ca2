"""The last cell of every stage notebook: what a person running the tutorial in JupyterLab needs from the
driver.

A notebook run by a person does one execution of its stage (one event file, one method), and nothing
records it: the next stage would miss the other event files, and ``drivers/run`` on the same run folder
would redo the work. :func:`finish` closes both gaps. It records the execution in the run's manifest
exactly as the driver would (notebook identity, parameters, input and output hashes), then runs the
stage's other executions with papermill as the driver does, skipping what is done. Run by the driver or a
workflow step (their kernels carry :data:`~madminer_notebooks.driver.kernels.DRIVER_VARIABLE`), it does
nothing: the driver records its own executions.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..chain import Execution, executions
from ..params import load_params
from ..paths import RunPaths
from .execute import hashes, notebook_dir, record_done
from .interrupt import stoppable
from .kernels import DRIVER_VARIABLE, KernelPool
from .lock import run_folder_lock
from .manifest import Manifest

log = logging.getLogger(__name__)


def _notebook_folder(notebook: str) -> Path | None:
    """The folder of the notebook this kernel runs: JupyterLab starts a kernel in its notebook's folder."""
    here = Path.cwd()
    return here if (here / notebook).is_file() else None


def finish(stage: str, params_file: str, run_dir: str, key: str = "", run_others: bool = True) -> None:
    """Record this notebook's execution of ``stage`` (``key``: its event file or method) in the manifest of
    ``run_dir``, then run the stage's other executions (``run_others``). Does nothing under the driver."""
    if os.environ.get(DRIVER_VARIABLE):
        return
    params_path = Path(params_file).resolve()
    params = load_params(params_path)
    paths = RunPaths(run_dir)
    todo = executions(params, stage, paths.root)
    mine = [e for e in todo if e.key == key]
    if not mine:
        raise ValueError(f"stage {stage} has no execution {key!r} for {params_path}")
    this = mine[0]
    folder = _notebook_folder(this.notebook)
    if folder is not None:  # the driver reads the notebooks where this one is (a copy of the tutorial, say)
        os.environ["MMNB_NOTEBOOK_DIR"] = str(folder)
    missing = [rel for rel in this.inputs + this.outputs if not (paths.root / rel).is_file()]
    if missing:
        raise RuntimeError(f"{this.name}: not recorded, {', '.join(missing)} missing (did every cell run?)")
    # a driver running on this folder would race with what follows: refuse, naming it (driver/lock.py)
    with run_folder_lock(paths.root, f"the {this.notebook} notebook, run by hand"):
        _record_and_run_others(this, todo, params, params_path, paths, stage, run_others)


def _record_and_run_others(this: Execution, todo: list[Execution], params: dict, params_path: Path, paths: RunPaths,
                           stage: str, run_others: bool) -> None:  # fmt: skip
    manifest = Manifest(paths.manifest)
    record_done(this, hashes(this, params), paths, manifest, seconds=0.0, origin="interactive")
    log.info("recorded %s in %s: drivers/run on this run folder will not redo it", this.name, paths.manifest)
    others = [e for e in todo if e is not this]
    if not others or not run_others:
        return

    from .runner import prepare_tracking, run_stage  # the driver's own code path, nothing re-implemented

    parallel = params["run"]["parallel"]
    log.info("running the other %d execution(s) of %s with papermill, %d at a time", len(others), stage, parallel)
    prepare_tracking(params, paths, manifest, [stage])
    with stoppable():  # the kernel's Stop button (SIGINT) stops these notebooks too
        kernels = KernelPool(notebook_dir(), parallel, plan=[stage] * len(others))
        try:
            seconds = run_stage(stage, params, params_path, paths, manifest, parallel, kernels)
        finally:
            kernels.close()
    log.info("%s: all %d executions done (%.1f s for the others)", stage, len(todo), seconds)
