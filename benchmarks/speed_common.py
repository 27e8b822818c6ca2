"""What the side-by-side speed benchmarks (training, evaluation, sampling) share: their command line, their
set-up on a run folder, and how they write their results. Not a test: run each benchmark by hand."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "src"))


def command_line(doc: str, stage_done: str, repeats: int = 2, methods: bool = True) -> argparse.ArgumentParser:
    """The options every speed benchmark takes; ``stage_done``: the stage the run folder must have finished."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, required=True, help=f"a run folder whose {stage_done} stage is done")
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "quick.yaml", help="the run's parameter file")
    parser.add_argument("--repeats", type=int, default=repeats, help="alternating rounds of the paths compared")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the driver gives 1 per execution)")
    if methods:
        parser.add_argument("--methods", default="sally,alice,alices")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser


@dataclass
class Setup:
    """A benchmark's starting point: the machine's load before its own work, the run's parameters and paths."""

    load_average_at_start: float
    params: dict
    paths: object  # madminer_notebooks.paths.RunPaths


def prepare(args: argparse.Namespace) -> Setup:
    """Read the load first (the benchmark's own work raises it), then apply MadMiner's fixes, set torch's
    threads and load the run's parameters."""
    load = os.getloadavg()[0]
    import torch

    from madminer_notebooks import compat
    from madminer_notebooks.params import load_params
    from madminer_notebooks.paths import RunPaths

    compat.apply()
    torch.set_num_threads(args.threads)
    return Setup(load, load_params(args.params), RunPaths(args.run_dir))


def write(name: str, result: dict, markdown: list[str], args: argparse.Namespace) -> None:
    """``benchmarks/results/NAME.{json,md}``, unless ``--no-write``."""
    if args.no_write:
        return
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(markdown) + "\n")
