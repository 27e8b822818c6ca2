"""Execute one stage notebook with papermill and record it in the manifest."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..chain import STAGE_SECTIONS, Execution
from ..params import params_hash
from ..paths import RunPaths
from ..repository import ROOT
from .errors import RunFailed
from .interrupt import STOP
from .kernels import KernelPool
from .manifest import Manifest, Record, file_sha256, notebook_sha256

log = logging.getLogger(__name__)


def notebook_dir() -> Path:
    """The stage notebooks: MMNB_NOTEBOOK_DIR, or the repository's (also in the image, which installs the
    project in place)."""
    return Path(os.environ.get("MMNB_NOTEBOOK_DIR") or ROOT / "notebooks")


class StageFailed(RunFailed):
    """A notebook raised, or did not write what it promised; the message names stage, cell and error."""


@dataclass(frozen=True)
class Outcome:
    name: str
    skipped: bool
    seconds: float


def _described(execution: Execution) -> str:
    return f"stage {execution.stage} ({execution.key})" if execution.key else f"stage {execution.stage}"


def _no_space(err: Exception) -> bool:
    """Whether a notebook's error is a full disk: ``OSError: [Errno 28]`` from Python, or HDF5's
    ``errno = 28`` in h5py's message."""
    text = f"{getattr(err, 'ename', '')}: {getattr(err, 'evalue', '')}"
    return "[Errno 28]" in text or "errno = 28" in text or "No space left on device" in text


def notebook_path(execution: Execution) -> Path:
    path = notebook_dir() / execution.notebook
    if not path.is_file():
        raise StageFailed(f"notebook {path} of stage {execution.stage} does not exist")
    return path


def hashes(execution: Execution, params: dict) -> tuple[str, str]:
    """What the manifest records of an execution besides its files: its notebook's hash (of the cells'
    sources, so a notebook that a user ran and saved with outputs in JupyterLab is still the same notebook)
    and its parameters' hash."""
    return (
        notebook_sha256(notebook_path(execution)),
        params_hash(params, STAGE_SECTIONS[execution.stage], execution.parameters),
    )


def up_to_date(execution: Execution, params: dict, paths: RunPaths, manifest: Manifest) -> bool:
    """Whether the manifest says that ``execution`` has nothing to do."""
    nb_sha, p_sha = hashes(execution, params)
    return manifest.up_to_date(execution.name, paths.root, nb_sha, p_sha, execution.inputs, execution.outputs)


def execute(
    execution: Execution,
    params: dict,
    params_file: Path,
    paths: RunPaths,
    manifest: Manifest,
    kernels: KernelPool,
    force: bool = False,
) -> Outcome:
    """Run ``execution`` unless it is up to date; raise :class:`StageFailed` with cell and error."""
    notebook = notebook_path(execution)
    nb_sha, p_sha = hashes(execution, params)
    if not force and manifest.up_to_date(
        execution.name, paths.root, nb_sha, p_sha, execution.inputs, execution.outputs
    ):
        return Outcome(execution.name, True, 0.0)

    import papermill  # a second's import, needed only when there is work
    from papermill.exceptions import PapermillExecutionError

    missing = [rel for rel in execution.inputs if not (paths.root / rel).is_file()]
    if missing:
        raise StageFailed(f"{execution.name}: missing inputs {', '.join(missing)} (run the earlier stages first)")
    manifest.forget(execution.name)  # from here on, the old record no longer describes the outputs

    final = paths.notebooks / f"{execution.name}.ipynb"
    running = paths.notebooks / f".{execution.name}.running.ipynb"
    failed = paths.notebooks / f"{execution.name}.failed.ipynb"
    failed.unlink(missing_ok=True)
    parameters = {"params_file": str(params_file), "run_dir": str(paths.root), **execution.parameters}
    start = time.perf_counter()
    kernel = kernels.take()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(running),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            kernel_manager_class=kernel.handover_class(),
            shutdown_kernel="immediate",  # the notebook is done; nothing to wait for
        )
    except PapermillExecutionError as err:
        if STOP.is_set():  # the cell died of the interruption: not a failure of the notebook
            running.unlink(missing_ok=True)
            raise KeyboardInterrupt from None
        os.replace(running, failed)
        evalue = str(err.evalue).strip().splitlines()
        full = "no space left on the run folder's device (free some space, then resume); " if _no_space(err) else ""
        raise StageFailed(
            f"{_described(execution)} failed in cell {err.exec_count} of {notebook.name}: {full}"
            f"{err.ename}: {evalue[-1] if evalue else ''} (executed notebook: {failed})"
        ) from None
    except BaseException:
        running.unlink(missing_ok=True)
        raise
    finally:
        kernels.release(kernel)
    seconds = time.perf_counter() - start
    if STOP.is_set():  # finished just as the run was interrupted: whether the outputs are whole is unknown
        running.unlink(missing_ok=True)
        raise KeyboardInterrupt

    absent = [rel for rel in execution.outputs if not (paths.root / rel).is_file()]
    if absent:
        os.replace(running, failed)
        raise StageFailed(f"{_described(execution)} finished but did not write {', '.join(absent)}")
    os.replace(running, final)
    record_done(execution, (nb_sha, p_sha), paths, manifest, round(seconds, 2))
    return Outcome(execution.name, False, seconds)


def record_done(
    execution: Execution,
    sha: tuple[str, str],
    paths: RunPaths,
    manifest: Manifest,
    seconds: float,
    origin: str = "driver",
) -> None:
    """Record ``execution`` as done: its notebook and parameter hashes (``sha``, from :func:`hashes`) and
    the hashes of its input and output files as they are now."""
    nb_sha, p_sha = sha
    manifest.record(
        execution.name,
        Record(
            notebook=nb_sha,
            params=p_sha,
            inputs={rel: file_sha256(paths.root / rel) for rel in execution.inputs},
            outputs={rel: file_sha256(paths.root / rel) for rel in execution.outputs},
            seconds=seconds,
            origin=origin,
        ),
    )
