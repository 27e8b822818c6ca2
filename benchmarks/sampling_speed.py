"""The sampling stage's work, MadMiner's own event loading against this project's, side by side in one process
on a run folder's combined file (quick.yaml's by default: run the chain up to combine first).

    .venv/bin/python benchmarks/sampling_speed.py --run-dir runs/quick [--repeats 2]

The work is the sampling notebook's three calls with the run's ``sampling.*`` settings and seed:
``sample_train_local`` (SALLY), ``sample_train_ratio`` (ALICE, ALICES: ``n_thetas`` points theta0 from the
prior) and ``sample_test``. Two paths:

- ``madminer``: MadMiner 0.9.6's ``_load_samples`` and ``DataAnalyzer.event_loader`` as they are (the whole
  event table read from the file, and the events of the closest benchmark cut out, for every pass: three
  passes per parameter point);
- ``kept``: compat fixes 6 and 8, what the chain runs (the table read once per file version, each pass's
  batches kept in memory).

The paths alternate (``--repeats`` rounds) so that they see the same machine load; the best time of each is
kept; the samples must be identical to the bit. Peak memory is measured in one more run of each path under
tracemalloc (numpy reports its arrays there), separately from the timed runs, which it would slow down.
Writes ``benchmarks/results/sampling_speed.{json,md}``.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from speed_common import command_line, prepare, write

PATHS = ("madminer", "kept")


@contextlib.contextmanager
def sampling_path(name: str) -> Iterator[None]:
    """MadMiner's event loading as the path ``name`` has it (compat applied: ``kept``)."""
    import madminer.utils.interfaces.hdf5 as hdf5
    from madminer.analysis.dataanalyzer import DataAnalyzer

    saved = (hdf5._load_samples, DataAnalyzer.__dict__["event_loader"])
    if name == "madminer":
        hdf5._load_samples = saved[0]._original
        DataAnalyzer.event_loader = saved[1]._original
    try:
        yield
    finally:
        hdf5._load_samples = saved[0]
        DataAnalyzer.event_loader = saved[1]
        saved[0]._tables.clear()  # every timed run starts from the file, as a notebook's kernel does
        saved[1]._passes.clear()


def sample(params: dict, combined: Path, folder: Path) -> dict[str, float]:
    """The sampling notebook's calls; seconds of each."""
    from madminer.sampling import SampleAugmenter, benchmark, random_morphing_points

    s = params["sampling"]
    names = list(params["physics"]["parameters"])
    np.random.seed(params["run"]["seed"])
    seconds = {}
    start = time.perf_counter()
    sampler = SampleAugmenter(str(combined))
    common = dict(folder=str(folder), test_split=s["test_split"], n_processes=1)
    sampler.sample_train_local(theta=benchmark("sm"), n_samples=s["n_train_local"], filename="train_local", **common)
    seconds["local"] = time.perf_counter() - start
    start = time.perf_counter()
    sampler.sample_train_ratio(theta0=random_morphing_points(s["n_thetas"], [tuple(s["prior"][n]) for n in names]),
                               theta1=benchmark("sm"), n_samples=s["n_train_ratio"], filename="train_ratio",
                               **common)  # fmt: skip
    seconds["ratio"] = time.perf_counter() - start
    start = time.perf_counter()
    sampler.sample_test(theta=benchmark("sm"), n_samples=s["n_test"], filename="test", **common)
    seconds["test"] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    return seconds


def main() -> None:
    args = command_line(__doc__, "combine", methods=False).parse_args()
    setup = prepare(args)
    params, combined = setup.params, setup.paths.combined
    times: dict[str, list[dict[str, float]]] = {p: [] for p in PATHS}
    samples: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for path in PATHS:
                folder = Path(tmp) / path
                folder.mkdir(exist_ok=True)
                with sampling_path(path):
                    times[path].append(sample(params, combined, folder))
                samples[path] = {f.name: np.load(f) for f in sorted(folder.iterdir())}
        peak_mb = {}
        for path in PATHS:
            tracemalloc.start()
            with sampling_path(path):
                sample(params, combined, Path(tmp) / path)
            peak_mb[path] = round(tracemalloc.get_traced_memory()[1] / 1024**2, 1)
            tracemalloc.stop()
    best = {p: min(times[p], key=lambda t: t["total"]) for p in PATHS}
    identical = sorted(samples["madminer"]) == sorted(samples["kept"]) and all(
        np.array_equal(samples["madminer"][k], samples["kept"][k]) for k in samples["madminer"]
    )
    s = params["sampling"]
    produced = s["n_train_local"] + s["n_train_ratio"] + s["n_test"]
    result = {
        "benchmark": "sampling_speed",
        "run_dir": str(args.run_dir),
        "repeats": args.repeats,
        "load_average_at_start": setup.load_average_at_start,
        "samples_drawn": produced,
        "n_thetas": s["n_thetas"],
        "seconds": {p: {k: round(v, 2) for k, v in best[p].items()} for p in PATHS},
        "samples_per_s": {p: round(produced / best[p]["total"]) for p in PATHS},
        "peak_traced_mb": peak_mb,
        "speedup": round(best["madminer"]["total"] / best["kept"]["total"], 2),
        "identical_samples": identical,
        "files_compared": len(samples["kept"]),
    }
    print(json.dumps(result), flush=True)
    lines = [
        "# Sampling speed: MadMiner's event loading and the kept passes (benchmarks/sampling_speed.py)",
        "",
        f"The sampling notebook's three calls on `{args.run_dir.name}`'s combined file ({s['n_train_local']} local, "
        f"{s['n_train_ratio']} ratio samples at {s['n_thetas']} theta0, {s['n_test']} test), one process, best "
        f"of {args.repeats} alternating rounds; load average at start {setup.load_average_at_start:.2f}. Peak "
        "memory: numpy's and Python's allocations (tracemalloc), in a separate run of each path.",
        "",
        "| path | sample_train_local s | sample_train_ratio s | sample_test s | total s | samples/s | peak MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in PATHS:
        t = result["seconds"][p]
        lines.append(f"| {p} | {t['local']} | {t['ratio']} | {t['test']} | {t['total']} "
                     f"| {result['samples_per_s'][p]} | {peak_mb[p]} |")  # fmt: skip
    lines += [
        "",
        f"Speed-up: **{result['speedup']}x**; the {result['files_compared']} sample files identical to the bit: "
        f"{'yes' if identical else 'NO'}.",
    ]
    write("sampling_speed", result, lines, args)


if __name__ == "__main__":
    main()
