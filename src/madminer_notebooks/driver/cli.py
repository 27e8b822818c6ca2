"""Command line of the driver.

    python -m madminer_notebooks.driver run   --params FILE --run-dir DIR [--stages FROM..TO] [--fresh] [--parallel N]
    python -m madminer_notebooks.driver stage --params FILE --run-dir DIR --stage NAME [--key KEY] [--force]
                                              [--inputs-from DIR ...] [--publish FILE]

``run`` executes the chain in order (scattered stages once per benchmark / file / method, several at once),
skips executions that are up to date, and ends with ``summary.json`` and ``report/index.html``.
``stage`` runs the executions of one stage (or one of them, ``--key``): what a workflow step calls, with
its inputs linked from the upstream steps' folders (``--inputs-from``) and its outputs listed for Yadage
(``--publish``); see :mod:`madminer_notebooks.driver.step`. The last stage also writes the summary.
Exit status: 0 done, 1 a stage failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..chain import STAGES
from .errors import exit_status
from .interrupt import stoppable
from .runner import run_chain, run_step

log = logging.getLogger("madminer_notebooks.driver")


def _command(args: argparse.Namespace) -> int:
    if args.command == "run":
        return run_chain(Path(args.params), Path(args.run_dir), args.stages, args.fresh, args.parallel)
    return run_step(Path(args.params), Path(args.run_dir), args.stage, args.key, args.force, args.parallel,
                    args.inputs_from, args.publish)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="drivers/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the chain")
    run.add_argument("--params", required=True, help="parameter file (params/*.yaml)")
    run.add_argument("--run-dir", required=True, help="folder for this run's data, models, plots and notebooks")
    run.add_argument("--stages", help=f"FROM..TO, one stage, FROM.. or ..TO (stages: {', '.join(STAGES)})")
    run.add_argument("--fresh", action="store_true", help="delete the run folder first instead of resuming")
    run.add_argument("--parallel", type=int, help="notebook executions at once (default: run.parallel of the params)")
    stage = sub.add_parser("stage", help="run one stage (or one execution of it)")
    stage.add_argument("--params", required=True)
    stage.add_argument("--run-dir", required=True)
    stage.add_argument("--stage", required=True)
    stage.add_argument("--key", help="one execution of a scattered stage (e.g. sm-0, alice)")
    stage.add_argument("--force", action="store_true", help="run even if up to date")
    stage.add_argument("--parallel", type=int, help="executions at once (default 1)")
    stage.add_argument("--inputs-from", nargs="*", metavar="DIR",
                       help="upstream run folders (workflow steps): link this stage's inputs from them")  # fmt: skip
    stage.add_argument("--publish", metavar="FILE", help="write the step's outputs for Yadage (relative to --run-dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("papermill", "traitlets", "nbconvert"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with stoppable(until_exit=True):
        return exit_status(lambda: _command(args), "executions")
