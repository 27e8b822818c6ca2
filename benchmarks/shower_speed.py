"""Shower level: showered and reconstructed events per second per core, against Pythia 8 alone, in the
same run.

    .venv/bin/python benchmarks/shower_speed.py [--events 5000]

On one SM file of the builtin generator, each measurement in its own process on one core:

* ``pythia``: Pythia 8 reading the LHE file and showering, hadronising and decaying every event (``next()``
  in a loop, nothing read out): the peer, and the floor of what any shower-level analysis costs;
* ``reader``: the analysis notebook at shower level (``ShowerLHEReader`` with the quick parameters'
  observables and cuts, then ``save``): Pythia, the final-state particles read out, photon isolation,
  FastJet anti-kT, the detector model, the observables, the MadMiner file.

Both with and without multiple parton interactions (``analysis.shower.mpi``). The table gives events per
second, wall time and the peak resident memory of the process. Results go to
benchmarks/results/shower.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
import yaml
kind, path, setup, mpi, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "on", sys.argv[5]
start = time.perf_counter()
if kind == "pythia":
    import pythia8mc
    pythia = pythia8mc.Pythia("", False)
    for line in ("Beams:frameType = 4", f"Beams:LHEF = {path}", f"PartonLevel:MPI = {'on' if mpi else 'off'}",
                 "SpaceShower:dipoleRecoil = on", "Print:quiet = on", "SLHA:verbose = 0"):
        pythia.readString(line)
    pythia.init()
    start = time.perf_counter()
    events = 0
    while True:
        if pythia.next():
            events += 1
        elif pythia.infoPython().atEndOfFile():
            break
else:
    from madminer_notebooks import compat
    from madminer_notebooks.shower import ShowerLHEReader, ShowerSettings
    compat.apply()
    analysis = yaml.safe_load(open(sys.argv[6]))["analysis"]
    reader = ShowerLHEReader(setup, ShowerSettings(mpi=mpi), seed=1)
    reader.add_sample(path, sampled_from_benchmark="sm")
    for name, definition in analysis["observables"].items():
        reader.add_observable(name, definition, required=True)
    low, high = analysis["cuts"]["m_aa"]
    reader.add_cut(f"(a[0] + a[1]).m > {low}")
    reader.add_cut(f"(a[0] + a[1]).m < {high}")
    reader.add_cut(f"j[0].pt > {analysis['cuts']['pt_j1_min']}")
    start = time.perf_counter()
    compat.analyse_samples(reader, Path(path).name)
    reader.save(out)
    events = None
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "events": events,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(kind: str, path: Path, setup: Path, mpi: bool, work: Path, params: Path, n_events: int) -> dict:
    out = work / f"{kind}-{mpi}.h5"
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, kind, str(path), str(setup), "on" if mpi else "off", str(out), str(params)],
        capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["events_per_second"] = n_events / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    from conftest import make_setup, run_generator

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        setup = make_setup(work / "setup.h5")
        lhe = work / "sm.lhe.gz"
        run_generator("--setup", str(setup), "--benchmark", "sm", "--events", str(args.events), "--seed", "1",
                      "--output", str(lhe), "--no-progress")  # fmt: skip
        for mpi in (False, True):
            for kind in ("pythia", "reader"):
                r = measure(kind, lhe, setup, mpi, work, ROOT / "params" / "quick.yaml", args.events)
                rows.append({"what": kind, "mpi": mpi, **r})
                print(f"{kind:7s} MPI {'on ' if mpi else 'off'}: {r['events_per_second']:7.1f} ev/s, "
                      f"{r['seconds']:6.1f} s, {r['peak_mb']:5.0f} MB", flush=True)  # fmt: skip
    load = Path("/proc/loadavg").read_text().split()[:3]
    result = {"events": args.events, "machine": platform.machine(), "load_average": load, "rows": rows}
    out = ROOT / "benchmarks" / "results"
    (out / "shower.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"# Shower level: {args.events} SM events, one core each (load average at the end: {' '.join(load)})",
        "",
        "| what | MPI | events/s | wall (s) | peak memory (MB) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        what = "Pythia 8 alone" if r["what"] == "pythia" else "ShowerLHEReader (all of it)"
        lines.append(f"| {what} | {'on' if r['mpi'] else 'off'} | {r['events_per_second']:.0f} | "
                     f"{r['seconds']:.1f} | {r['peak_mb']:.0f} |")  # fmt: skip
    (out / "shower.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
