"""The test suite's tiny parameter set (the quick one, smaller: the whole chain in about two minutes on two
cores) and how tests run the papermill driver and the Yadage workflows on it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from madminer_notebooks.params import load_params, with_overrides

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "run.parallel": 2,
    "generation.sampling_benchmarks": ["sm", "w", "ww"],
    "generation.events_per_benchmark": 2400,
    "generation.files_per_benchmark": 2,
    "sampling.n_train_local": 10000,
    "sampling.n_train_ratio": 3000,
    "sampling.n_test": 1000,
    "sampling.n_thetas": 20,
    # SALLY trained enough for its interval to be local (comparable with its Fisher information)
    "training.hidden": [50, 50],
    "training.epochs": 20,
    "training.ensemble": 2,
    # wide enough for the 95% CL regions of tiny samples (a region at the grid edge stops the evaluation);
    # step 0.5: the SM is a grid point
    "evaluation.grid": {"CWL2": [-3.5, 5.5], "CPWL2": [-4.5, 4.5]},
    "evaluation.resolution": 19,
    "evaluation.hist_bins": 4,
}


def write_params(folder: Path, extra: dict | None = None, name: str = "tiny.yaml") -> Path:
    params = with_overrides(load_params(ROOT / "params" / "quick.yaml"), {**TINY, **(extra or {})})
    path = folder / name
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def drive(params: Path, run_dir: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "madminer_notebooks.driver", "run",
         "--params", str(params), "--run-dir", str(run_dir), *extra],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def ran(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"^\S+\s+(\S+)\s+done in", proc.stderr, re.M))


def skipped(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"^\S+\s+(\S+)\s+up to date, skipped", proc.stderr, re.M))


def yadage(params: Path, work_dir: Path, *extra: str, executor: str = "local", env: dict | None = None,
           timeout: int = 900) -> subprocess.CompletedProcess:  # fmt: skip
    """drivers/yadage with the given executor (``docker``: add ``--engine``) and extra environment."""
    return subprocess.run(
        [sys.executable, "-m", "madminer_notebooks.workflow.yadage", "--params", str(params),
         "--work-dir", str(work_dir), "--executor", executor, *extra],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip


def damaged_physics(run_dir: Path, folder: Path) -> Path:
    """A copy of a run's physics results whose combined file is not HDF5: the ML workflow's first step fails."""
    physics = folder / "physics"
    shutil.copytree(run_dir / "data", physics / "data", ignore=shutil.ignore_patterns("samples", "limits"))
    (physics / "data" / "combined.h5").write_bytes(b"not an HDF5 file")
    return physics


def assert_sampling_failure_reported(proc: subprocess.CompletedProcess, ml_dir: Path) -> None:
    """The ML workflow on :func:`damaged_physics` failed, naming stage, notebook cell and error, kept the
    failed notebook and said how to resume."""
    assert proc.returncode == 1
    assert re.search(r"sampling: stage sampling failed in cell \d+ of 05_sampling.ipynb: OSError", proc.stderr), (
        proc.stderr[-3000:]
    )
    assert "run the same command again to resume" in proc.stderr
    assert list((ml_dir / "sampling" / "notebooks").glob("sampling.failed.ipynb"))
