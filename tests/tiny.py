"""The test suite's tiny parameter set (the quick one, smaller: the whole chain in about two minutes on two
cores) and how tests run the papermill driver on it."""

from __future__ import annotations

import re
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
    "sampling.n_train_local": 3000,
    "sampling.n_train_ratio": 3000,
    "sampling.n_test": 1000,
    "sampling.n_thetas": 20,
    "training.hidden": [16],
    "training.epochs": 4,
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
