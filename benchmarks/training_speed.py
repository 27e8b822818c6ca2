"""Per-epoch training time of the columnar trainer (whole tensors) against MadMiner's own, side by side in
one process, on a run folder's samples (quick.yaml's by default: run the chain up to sampling first).

    .venv/bin/python benchmarks/training_speed.py --run-dir runs/quick [--epochs 4] [--threads 1]

For each method both trainers train the same estimator from the same seed, alternating (MadMiner's first,
then ours, then MadMiner's again ...), with the notebook's settings (``training.*`` of the run's params):
so the two see the same machine load. An epoch's time is that of N epochs less that of one, over N - 1.
Reported per method: seconds per epoch of each, their ratio, peak memory (the process's growth while
training) and whether the loss curves agree (they should, to the last bit: the batches are the same).
Writes ``benchmarks/results/training_speed.{json,md}``.
"""

from __future__ import annotations

import json
import resource
import statistics
import time

import numpy as np
import torch
from speed_common import command_line, prepare, write

from madminer_notebooks import training
from madminer_notebooks.methods import LOCAL_SCORE, METHODS
from madminer_notebooks.paths import SAMPLE_SETS, RunPaths


def train_once(method: str, params: dict, paths: RunPaths, trainer: str, epochs: int) -> tuple[float, np.ndarray]:
    """Seconds and validation losses of one training of ``method`` with ``trainer`` (data loading excluded:
    the estimator reads the .npy files before its trainer starts, the same for both)."""
    from madminer.ml import ParameterizedRatioEstimator, ScoreEstimator

    training.use(trainer)
    t = params["training"]
    spec = METHODS[method]
    sample = spec.training_sample
    torch.manual_seed(params["run"]["seed"])
    np.random.seed(params["run"]["seed"])
    common = dict(
        n_epochs=epochs,
        batch_size=t["batch_size"],
        initial_lr=t["learning_rate"],
        final_lr=t["final_learning_rate"],
        validation_split=t["validation_split"],
        early_stopping=True,
        scale_inputs=True,
        n_workers=0,
        verbose="none",
    )
    arrays = {k: np.load(paths.sample(k, sample)) for k in SAMPLE_SETS[sample]}
    if spec.kind == LOCAL_SCORE:
        estimator = ScoreEstimator(n_hidden=tuple(t["hidden"]), activation=t["activation"])
        start = time.perf_counter()
        _, val = estimator.train(method=method, x=arrays["x"], t_xz=arrays["t_xz"], **common)
    else:
        estimator = ParameterizedRatioEstimator(n_hidden=tuple(t["hidden"]), activation=t["activation"])
        extra = {key: t[key] for key in spec.training_keys}
        start = time.perf_counter()
        _, val = estimator.train(method=method, theta=arrays["theta0"], x=arrays["x"], y=arrays["y"],
                                 r_xz=arrays["r_xz"], t_xz=arrays["t_xz"], scale_parameters=True, **extra,
                                 **common)  # fmt: skip
    return time.perf_counter() - start, np.asarray(val)


def main() -> None:
    parser = command_line(__doc__, "sampling")
    parser.add_argument("--epochs", type=int, default=5, help="N, at least 2")
    args = parser.parse_args()
    setup = prepare(args)
    params, paths = setup.params, setup.paths
    rows = []
    for method in args.methods.split(","):
        seconds: dict[str, list[float]] = {"madminer": [], "columnar": []}
        curves: dict[str, np.ndarray] = {}
        for trainer in ("madminer", "columnar"):  # warm-up: the first Adam imports torch._dynamo (seconds)
            train_once(method, params, paths, trainer, 1)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(args.repeats):
            for trainer in ("madminer", "columnar"):
                # an epoch's time: that of N epochs less that of one, over N - 1 (what happens once per
                # training, reading and scaling the arrays, building the model, cancels)
                one, _ = train_once(method, params, paths, trainer, 1)
                many, val = train_once(method, params, paths, trainer, args.epochs)
                seconds[trainer].append((many - one) / (args.epochs - 1))
                curves[trainer] = val
        per_epoch = {k: statistics.median(v) for k, v in seconds.items()}
        row = {
            "method": method,
            "samples": params["sampling"][f"n_{METHODS[method].training_sample}"],
            "madminer_s_per_epoch": round(per_epoch["madminer"], 3),
            "columnar_s_per_epoch": round(per_epoch["columnar"], 3),
            "speedup": round(per_epoch["madminer"] / per_epoch["columnar"], 2),
            "identical_losses": bool(np.array_equal(curves["madminer"], curves["columnar"])),
            "peak_rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "benchmark": "training_speed",
        "run_dir": str(args.run_dir),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "threads": args.threads,
        "load_average_at_start": setup.load_average_at_start,
        "torch": torch.__version__,
        "rows": rows,
    }
    lines = [
        "# Training speed: MadMiner's trainer and the columnar one (benchmarks/training_speed.py)",
        "",
        f"Median seconds per epoch of {args.repeats} pairs of trainings (of {args.epochs} and 1 epochs: the "
        "difference over N - 1), alternating, "
        f"{args.threads} torch thread(s), one process; the samples of `{args.run_dir.name}`; load average at "
        f"start {setup.load_average_at_start:.2f}.",
        "",
        "| method | samples | MadMiner s/epoch | columnar s/epoch | speed-up | same losses |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {r['samples']} | {r['madminer_s_per_epoch']} | {r['columnar_s_per_epoch']} "
                     f"| {r['speedup']}x | {'yes' if r['identical_losses'] else 'no'} |")  # fmt: skip
    write("training_speed", result, lines, args)


if __name__ == "__main__":
    main()
