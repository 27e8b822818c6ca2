"""Speed and memory of the built-in generator, side by side with Pythia 8 in the same run.

    .venv/bin/python benchmarks/generator_speed.py [--events 200000] [--memory-events 100000 300000 1000000]

Reports unweighted events per second (with weights at the 6 benchmarks of the tutorial setup) on 1 and
2 cores, against Pythia 8 generating its SM VBF process (HiggsSM:ff2Hff(t:WW), H -> gamma gamma) at
hard-process level only, in 1 and 2 processes. Peak memory (resident set of the whole process tree)
is measured for several event counts to show it does not grow with them. Results go to
benchmarks/results/generator.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PYTHIA_WORKER = r"""
import sys, time, pythia8mc
n, seed = int(sys.argv[1]), int(sys.argv[2])
p = pythia8mc.Pythia("", False)
for s in ["Beams:eCM = 13000.", "HiggsSM:ff2Hff(t:WW) = on", "25:m0 = 125.", "25:onMode = off",
          "25:onIfMatch = 22 22", "PartonLevel:all = off", "HadronLevel:all = off", "Print:quiet = on",
          "Random:setSeed = on", f"Random:seed = {seed}"]:
    assert p.readString(s)
assert p.init()
for _ in range(n):
    p.next()
"""


def run_measured(cmd: list[str]) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, peak RSS of its process tree in MiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        time.sleep(0.02)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {err}")
    return wall, peak / 2**20, out


def ours(setup: Path, folder: Path, events: int, jobs: int) -> dict:
    out = folder / f"bench-{events}-{jobs}.lhe.gz"
    cmd = [sys.executable, "-m", "madminer_notebooks.generator", "--no-progress", "--setup", str(setup),
           "--benchmark", "sm", "--events", str(events), "--seed", "1", "--jobs", str(jobs),
           "--output", str(out)]  # fmt: skip
    wall, peak, stdout = run_measured(cmd)
    summary = json.loads(stdout.strip().splitlines()[-1])
    size = out.stat().st_size
    out.unlink()
    return {
        "generator": "madminer-notebooks (6 benchmark weights, LHE written)",
        "cores": jobs,
        "events": events,
        "wall_s": round(wall, 2),
        "events_per_s": round(events / wall, 1),
        "peak_rss_mib": round(peak, 1),
        "unweighting_efficiency": summary["unweighting_efficiency"],
        "file_mib": round(size / 2**20, 1),
    }


def pythia(events: int, processes: int) -> dict:
    start = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", PYTHIA_WORKER, str(events // processes), str(seed + 1)])
        for seed in range(processes)
    ]
    peaks = [0.0] * processes
    while any(p.poll() is None for p in procs):
        for i, p in enumerate(procs):
            with contextlib.suppress(psutil.Error):
                peaks[i] = max(peaks[i], psutil.Process(p.pid).memory_info().rss / 2**20)
        time.sleep(0.02)
    wall = time.perf_counter() - start
    if any(p.returncode for p in procs):
        raise RuntimeError("Pythia worker failed")
    return {
        "generator": "Pythia 8.317 ff2Hff(t:WW), hard process only, no file",
        "cores": processes,
        "events": events,
        "wall_s": round(wall, 2),
        "events_per_s": round(events / wall, 1),
        "peak_rss_mib": round(sum(peaks), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--memory-events", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    args = parser.parse_args()

    from conftest import make_setup

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        setup = make_setup(folder / "setup.h5")
        speed = []
        for cores in (1, 2):
            speed.append(ours(setup, folder, args.events, cores))
            speed.append(pythia(args.events, cores))
            print(json.dumps(speed[-2]), json.dumps(speed[-1]), sep="\n", flush=True)
        memory = []
        for n in args.memory_events:
            memory.append(ours(setup, folder, n, 1))
            print(json.dumps(memory[-1]), flush=True)

    results = {"python": sys.version.split()[0], "cpu_count": psutil.cpu_count(), "speed": speed, "memory": memory}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "generator.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "| generator | cores | events | wall [s] | events/s | peak RSS [MiB] |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['generator']} | {r['cores']} | {r['events']} | {r['wall_s']} | {r['events_per_s']:.0f} "
        f"| {r['peak_rss_mib']} |"
        for r in speed + memory
    ]
    (out / "generator.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
