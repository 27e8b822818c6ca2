"""Cost of importing external LHE files, side by side with MadMiner reading the same file, in the same run.

    .venv/bin/python benchmarks/external_events.py [--events 50000]

The generation stage of ``backend: external`` checks a file completely (``check_event_file``) and copies it
into the run folder (``import_event_file``); the analysis stage then reads it with MadMiner's
``LHEReader``. This measures events per second, wall time and peak memory (resident set of the measured
process) of the check and of the import (gzip of a plain file), against MadMiner's own parse of the same
MadGraph-style file (``LHEReader.analyse_samples`` with one observable, with the project's compatibility
fixes): the check should cost a small fraction of the reading it protects. Results go to
benchmarks/results/external_events.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

MEASURE = r"""
import json, shutil, sys, time
from pathlib import Path
what, path, setup, work = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
benchmarks = ["sm", "w", "ww", "neg_w", "neg_ww", "morphing_basis_vector_5"]
start = time.perf_counter()
if what == "check":
    from madminer_notebooks.external_events import check_event_file
    n = check_event_file(path, benchmarks, "ww").events
elif what == "import":
    from madminer_notebooks.external_events import import_event_file
    import_event_file(path, work / "imported.lhe.gz")
    n = None
else:
    from madminer.lhe import LHEReader
    from madminer_notebooks import compat
    compat.apply()
    local = work / "madminer" / path.name  # MadMiner unzips next to the file
    local.parent.mkdir(exist_ok=True)
    shutil.copy(path, local)
    start = time.perf_counter()
    reader = LHEReader(setup)
    reader.add_sample(str(local), sampled_from_benchmark="ww")
    reader.add_observable("m_aa", "(a[0] + a[1]).m", required=True)
    reader.analyse_samples()
    n = len(reader.observations["m_aa"])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "events": n}))
"""


def measure(what: str, path: Path, setup: Path, work: Path) -> dict:
    """Seconds of the step itself (imports excluded), and the peak resident memory of its process."""
    from generator_speed import run_measured  # polls the process tree's resident set

    _, peak_mib, out = run_measured([sys.executable, "-c", MEASURE, what, str(path), str(setup), str(work)])
    return {**json.loads(out.strip().splitlines()[-1]), "peak_mib": peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    from conftest import make_setup
    from mg_style import to_madgraph_style

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        setup = make_setup(work / "setup.h5")
        generated = work / "generated.lhe.gz"
        subprocess.run([sys.executable, "-m", "madminer_notebooks.generator", "--no-progress", "--setup", str(setup),
                        "--benchmark", "ww", "--events", str(args.events), "--seed", "7", "--jobs", "2",
                        "--output", str(generated)], check=True, capture_output=True)  # fmt: skip
        plain = to_madgraph_style(generated, work / "mg.lhe")
        gz = work / "mg.lhe.gz"
        subprocess.run(["gzip", "-k", str(plain)], check=True)
        rows = {
            "check (plain .lhe)": measure("check", plain, setup, work),
            "check (.lhe.gz)": measure("check", gz, setup, work),
            "import (gzip a plain .lhe)": measure("import", plain, setup, work),
            "import (copy a .lhe.gz)": measure("import", gz, setup, work),
            "MadMiner LHEReader (.lhe.gz, with compat fixes)": measure("madminer", gz, setup, work),
        }
        size_mib = plain.stat().st_size / 2**20
    for row in rows.values():
        row["events_per_second"] = args.events / row["seconds"]
    result = {"events": args.events, "file_mib": round(size_mib, 1), "rows": rows}
    out = ROOT / "benchmarks" / "results"
    (out / "external_events.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"# Importing external LHE files ({args.events} events, {size_mib:.0f} MiB uncompressed, MadGraph style)",
        "",
        "| step | wall [s] | events/s | peak memory [MiB] |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {name} | {r['seconds']:.2f} | {r['events_per_second']:,.0f} | {r['peak_mib']:.0f} |"
              for name, r in rows.items()]  # fmt: skip
    (out / "external_events.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
