"""LHE file -> MadMiner event file: the columnar reader against MadMiner's LHEReader, in the same run.

    .venv/bin/python benchmarks/analysis_speed.py [--events 100000] [--large 1000000] [--madminer-events N]

Both readers do what the analysis notebook does with params/quick.yaml: the tutorial's smearing, six
observables, three cuts, ``analyse_samples`` and ``save`` (MadMiner's ``LHEReader`` with the project's
compatibility fixes, i.e. already 5-8x faster than stock MadMiner). Each runs in its own process; the table
gives events per second of the analysis itself (imports excluded), wall time and the peak resident memory of
the process. The generator that wrote the file is measured in the same run (one core), so that "faster than
the generator" is a comparison, not a quoted number. ``--large`` repeats the columnar read on a file of that
many events to show that memory stays flat. Results go to benchmarks/results/analysis.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

MEASURE = r"""
import json, shutil, sys, time
from pathlib import Path
import numpy as np
import yaml
reader_name, path, setup, work = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
from madminer.lhe import LHEReader
from madminer_notebooks import compat
from madminer_notebooks.analysis import ColumnarLHEReader
compat.apply()
analysis = yaml.safe_load(open(sys.argv[5]))["analysis"]
local = work / reader_name / path.name  # MadMiner unzips next to the file
local.parent.mkdir(exist_ok=True)
shutil.copy(path, local)
start = time.perf_counter()
reader = (ColumnarLHEReader if reader_name == "columnar" else LHEReader)(setup)
reader.add_sample(str(local), sampled_from_benchmark="sm")
for s in analysis["smearing"].values():
    reader.set_smearing(pdgids=s["pdgids"], energy_resolution_abs=s["energy_resolution_abs"],
                        energy_resolution_rel=s["energy_resolution_rel"], pt_resolution_abs=None,
                        pt_resolution_rel=None, eta_resolution_abs=s["eta_resolution_abs"], eta_resolution_rel=0.0,
                        phi_resolution_abs=s["phi_resolution_abs"], phi_resolution_rel=0.0)
for name, definition in analysis["observables"].items():
    reader.add_observable(name, definition, required=True)
low, high = analysis["cuts"]["m_aa"]
reader.add_cut(f"(a[0] + a[1]).m > {low}")
reader.add_cut(f"(a[0] + a[1]).m < {high}")
reader.add_cut(f"j[0].pt > {analysis['cuts']['pt_j1_min']}")
np.random.seed(1)
reader.analyse_samples()
reader.save(str(work / f"{reader_name}.h5"))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "passed": len(reader.observations["m_aa"])}))
"""


def generate(setup: Path, events: int, out: Path) -> dict:
    """The built-in generator on one core, measured like the readers."""
    from generator_speed import run_measured

    cmd = [sys.executable, "-m", "madminer_notebooks.generator", "--no-progress", "--setup", str(setup),
           "--benchmark", "sm", "--events", str(events), "--seed", "3", "--jobs", "1",
           "--output", str(out)]  # fmt: skip
    _, peak, stdout = run_measured(cmd)
    info = json.loads(stdout.strip().splitlines()[-1])
    return {"what": "built-in generator, 1 core (writes the file)", "events": events, "seconds": info["seconds"],
            "events_per_second": events / info["seconds"], "peak_mib": peak}  # fmt: skip


def read(reader: str, path: Path, setup: Path, work: Path, events: int) -> dict:
    from generator_speed import run_measured

    params = ROOT / "params" / "quick.yaml"
    _, peak, stdout = run_measured(
        [sys.executable, "-c", MEASURE, reader, str(path), str(setup), str(work), str(params)]
    )
    out = json.loads(stdout.strip().splitlines()[-1])
    label = "ColumnarLHEReader" if reader == "columnar" else "MadMiner LHEReader (+ project fixes)"
    return {"what": label, "events": events, "seconds": out["seconds"], "events_per_second": events / out["seconds"],
            "peak_mib": peak, "passed_cuts": out["passed"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000, help="columnar only; 0 to skip")
    parser.add_argument("--madminer-events", type=int, default=None, help="default: the same file as the columnar")
    args = parser.parse_args()
    from conftest import make_setup

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        setup = make_setup(work / "setup.h5")
        main_file = work / "sm.lhe.gz"
        rows.append(generate(setup, args.events, main_file))
        rows.append(read("columnar", main_file, setup, work, args.events))
        mm_file, mm_events = main_file, args.events
        if args.madminer_events and args.madminer_events != args.events:
            mm_file, mm_events = work / "sm-small.lhe.gz", args.madminer_events
            generate(setup, mm_events, mm_file)
        rows.append(read("madminer", mm_file, setup, work, mm_events))
        if args.large:
            large = work / "large.lhe.gz"
            rows.append(generate(setup, args.large, large))
            rows.append(read("columnar", large, setup, work, args.large))
    columnar, madminer = rows[1], rows[2]
    speedup = columnar["events_per_second"] / madminer["events_per_second"]
    results = {"machine": platform.processor() or platform.machine(), "rows": rows, "speedup": speedup}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "analysis.json").write_text(json.dumps(results, indent=2))
    lines = ["| step | events | wall [s] | events/s | peak RSS [MiB] |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [
        f"| {r['what']} | {r['events']} | {r['seconds']:.2f} | {r['events_per_second']:.0f} | {r['peak_mib']:.0f} |"
        for r in rows
    ]
    lines.append(f"\nColumnar / MadMiner: {speedup:.0f}x events per second.")
    (out / "analysis.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
