"""Command line of the built-in generator (also what the generation notebook calls).

    python -m madminer_notebooks.generator --setup SETUP.h5 --benchmark NAME --events N --seed S \\
        [--scale fixed:125|dynamic3] [--jobs J] --output OUT.lhe.gz

Progress goes to stderr; the last line on stdout is one JSON object describing the run.
Errors are one line on stderr and exit status 2 (bad input) or 1 (failure); Ctrl-C exits with 130.
No output file exists unless the run completed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .benchmarks import SetupError
from .pdf import PDFGridError
from .phase_space import GenerationCuts
from .process import ScaleError
from .run import GenerationError, GenerationRequest, generate


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m madminer_notebooks.generator",
        description="Leading-order VBF H -> gamma gamma events in EWdim6 with weights at every benchmark "
        "of a MadMiner setup, written as a MadGraph-style LHE file.",
    )
    p.add_argument(
        "--setup", required=True, type=Path, help="MadMiner setup file (HDF5) with parameters and benchmarks"
    )
    p.add_argument("--benchmark", required=True, help="benchmark to sample from")
    p.add_argument("--events", required=True, type=int, help="number of unweighted events")
    p.add_argument("--seed", required=True, type=int, help="random seed (with --jobs, fixes the file byte for byte)")
    p.add_argument("--scale", default="fixed:125", help="'fixed:<GeV>' (default fixed:125) or 'dynamic3'")
    p.add_argument("--jobs", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--output", required=True, type=Path, help="output file, *.lhe.gz")
    p.add_argument("--ptj", type=float, default=20.0, help="generation cut: minimum quark pT in GeV (default 20)")
    p.add_argument("--etaj", type=float, default=5.0, help="generation cut: maximum quark |eta| (default 5)")
    p.add_argument("--drjj", type=float, default=0.4, help="generation cut: minimum Delta R(q, q) (default 0.4)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log the phases of the run")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        request = GenerationRequest(
            setup=args.setup,
            benchmark=args.benchmark,
            n_events=args.events,
            seed=args.seed,
            output=args.output,
            scale=args.scale,
            jobs=args.jobs,
            cuts=GenerationCuts(args.ptj, args.etaj, args.drjj),
        )
        result = generate(request, progress=not args.no_progress)
    except (GenerationError, SetupError, ScaleError, PDFGridError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no output file was written", file=sys.stderr)
        return 130
    print(json.dumps(result.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
