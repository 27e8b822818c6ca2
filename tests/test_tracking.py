"""MLflow tracking against a real tracking server (SQLite backend, 127.0.0.1, a free port, one worker),
from the local driver and from a hyperparameter scan; and what happens when the server is unreachable.
(Workflow steps tracking into a server on this machine: tests/test_containers.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_figure, free_port, mlflow_runs
from tiny import ran, write_params

from madminer_notebooks.chain import STAGES, evaluation_keys, executions, scan_stages
from madminer_notebooks.methods import style
from madminer_notebooks.params import load_params
from madminer_notebooks.paths import RunPaths
from madminer_notebooks.tracking import config, git_commit

ROOT = Path(__file__).resolve().parents[1]
SCAN_STAGES = scan_stages()


@pytest.fixture(scope="module")
def server(mlflow_server):
    return mlflow_server


def driver(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "madminer_notebooks.driver", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})  # fmt: skip


@pytest.fixture(scope="module")
def tracked(server, tiny_run, tmp_path_factory):
    """The tiny chain with its ML stages tracked on the server: a copy of the session's tiny run without the
    outputs of the tracked stages (sampling to plotting), resumed by the driver, which redoes exactly those."""
    tiny_params, tiny_dir, _, _ = tiny_run
    folder = tmp_path_factory.mktemp("tracked")
    params = write_params(folder)
    assert load_params(params) == load_params(tiny_params)
    run_dir = folder / "run"
    shutil.copytree(tiny_dir, run_dir)
    redo = [ex for stage in STAGES[STAGES.index("sampling") :] for ex in executions(load_params(params), stage)]
    for output in {output for ex in redo for output in ex.outputs}:
        (run_dir / output).unlink()
    env = {"MLFLOW_TRACKING_URI": server}
    proc = driver("run", "--params", str(params), "--run-dir", str(run_dir), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ran(proc) == {ex.name for ex in redo}, proc.stderr[-3000:]
    return params, run_dir, env


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_training_and_evaluation_runs_carry_params_epoch_histories_and_artifacts(server, tracked):
    params_path, run_dir, _ = tracked
    params = load_params(params_path)
    chain_id = json.loads((run_dir / "manifest.json").read_text())["run_id"]
    c = client(server)

    training = mlflow_runs(server, "training", chain_id)
    assert sorted(r.data.tags["mmnb.method"] for r in training) == sorted(params["training"]["methods"])
    t = params["training"]
    epochs = t["epochs"]
    shape = "x".join(str(n) for n in t["hidden"])  # the tiny settings, spelled as the run names spell them
    for run in training:
        method = run.data.tags["mmnb.method"]
        name = f"{method} h{shape} lr{t['learning_rate']} e{epochs}"
        assert run.info.status == "FINISHED" and run.info.run_name.startswith(name), run.info.run_name
        assert run.data.params["epochs"] == str(epochs) and run.data.params["method"] == method
        assert run.data.tags["mmnb.git_commit"] == git_commit() != "unknown"
        assert len(run.data.tags["mmnb.params_hash"]) == 64
        losses = json.loads((run_dir / "models" / method / "losses.json").read_text())
        for key, name in (("train", "train_loss"), ("validation", "val_loss")):
            history = sorted(c.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
            assert [m.step for m in history] == list(range(1, epochs + 1))  # one point per epoch
            assert np.allclose([m.value for m in history], losses[key], rtol=0, atol=1e-12)
        model = {a.path for a in c.list_artifacts(run.info.run_id, "model")}
        # SALLY is an ensemble: MadMiner saves ensemble/ensemble.json and one estimator_I_* set per member
        prefix = "model/ensemble/estimator_0_" if method == "sally" else "model/estimator_"
        folder = {a.path for a in c.list_artifacts(run.info.run_id, prefix.rsplit("/", 1)[0])}
        assert {prefix + "settings.json", prefix + "state_dict.pt"} <= folder and "model/losses.json" in model
        local = c.download_artifacts(run.info.run_id, prefix + "state_dict.pt", str(run_dir.parent))
        saved = (run_dir / "models" / method / (prefix.removeprefix("model/") + "state_dict.pt")).read_bytes()
        assert hashlib.sha256(Path(local).read_bytes()).digest() == hashlib.sha256(saved).digest()
        assert f"loss_{method}.png" in {a.path for a in c.list_artifacts(run.info.run_id)}

    evaluation = mlflow_runs(server, "evaluation", chain_id)
    assert sorted(r.data.tags["mmnb.method"] for r in evaluation) == sorted(evaluation_keys(params))
    summary = json.loads((run_dir / "summary.json").read_text())
    for run in evaluation:
        method = run.data.tags["mmnb.method"]
        expected = summary["limits"][method]
        for name, intervals in expected["intervals"].items():
            for cl in ("68", "95"):
                for end in ("low", "high"):
                    assert run.data.metrics[f"{name}.{cl}.{end}"] == pytest.approx(intervals[cl][end], abs=1e-12)
            assert run.data.metrics[f"best_fit.{name}"] == expected["best_fit"][name]
        assert f"limits/{method}.npz" in {a.path for a in c.list_artifacts(run.info.run_id, "limits")}

    assert summary["tracking"] == {"uri": server, "run_id": chain_id, "experiment_prefix": "madminer-notebooks"}
    (sampling,) = mlflow_runs(server, "sampling", chain_id)
    stats = json.loads((run_dir / "data" / "samples" / "sampling.json").read_text())
    assert sampling.data.metrics["train_ratio.n_effective_min"] == stats["train_ratio"]["n_effective_min"]
    assert sampling.data.params["train_local.n_samples"] == str(params["sampling"]["n_train_local"])


def test_a_scan_tracks_every_point_and_compares_them(server, tracked, tmp_path):
    params_path, run_dir, env = tracked
    base_epochs = load_params(params_path)["training"]["epochs"]
    scanned = write_params(tmp_path, {"scan": {"training.epochs": [base_epochs, 2]}})
    proc = driver("run", "--params", str(scanned), "--run-dir", str(run_dir), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scan = run_dir / "scan"
    rows = json.loads((scan / "comparison.json").read_text())
    assert [r["overrides"] for r in rows] == [{"training.epochs": base_epochs}, {"training.epochs": 2}]
    # the point with the run's own settings reproduces the run's results exactly; the other differs
    base = json.loads((run_dir / "data" / "intervals.json").read_text())
    assert rows[0]["results"] == base and rows[1]["results"]["sally"] != base["sally"]
    assert rows[1]["results"]["rate"] == base["rate"]  # the rate does not depend on training
    assert_figure(
        scan / "comparison.png", (300, 3000), (200, 2000), {style(m)["color"]: 30 for m in ("histo", "sally")}
    )
    # what a point repeats exactly is taken over from the run, not run again: everything at the run's own
    # settings, the sampling at the other (only training settings change there)
    records = json.loads((run_dir / "manifest.json").read_text())["executions"]
    point = [json.loads((scan / f"point-0{i}" / "manifest.json").read_text())["executions"] for i in (0, 1)]
    scanned = {ex.name for stage in SCAN_STAGES for ex in executions(load_params(params_path), stage)}
    assert {n: point[0][n] for n in scanned} == {n: records[n] for n in scanned}
    assert (scan / "point-00" / "models" / "sally").is_dir() and all(
        p.is_symlink() and p.resolve().is_relative_to(run_dir.resolve())
        for p in (scan / "point-00" / "models").rglob("*") if p.is_file()
    )  # fmt: skip
    assert point[1]["sampling"] == records["sampling"] and (scan / "point-01" / "data" / "samples").is_dir()
    assert all(p.is_symlink() for p in (scan / "point-01" / "data" / "samples").iterdir())
    assert point[1]["training-sally"]["params"] != records["training-sally"]["params"]
    assert not any(p.is_symlink() for p in (scan / "point-01" / "models").rglob("*"))
    table = (scan / "comparison.md").read_text().splitlines()
    assert len(table) == 2 + 2 * len(base)
    # the last column: 68% widths relative to the histogram's, as the point's own quality numbers say
    sally = [line for line in table if line.startswith("| point-01 |") and "| sally |" in line][0]
    relative = rows[1]["results"]["sally"]["quality"]["width_68_relative_to_histo"]
    assert sally.endswith(f"| {relative['CWL2']:.2f}, {relative['CPWL2']:.2f} |")
    assert all(line.endswith("| 1.00, 1.00 |") for line in table if "| histo |" in line)

    chain_id = json.loads((run_dir / "manifest.json").read_text())["run_id"]
    points = {}
    for run in mlflow_runs(server, "training", chain_id):
        points.setdefault(run.data.tags.get("mmnb.scan_point"), []).append(run.data.params["epochs"])
    assert sorted(points["training.epochs=2"]) == ["2", "2", "2"]
    assert f"training.epochs={base_epochs}" not in points  # that point trained nothing: the run's models
    (comparison,) = [r for r in mlflow_runs(server, "evaluation", chain_id) if r.info.run_name == "scan comparison"]
    arts = {a.path for a in client(server).list_artifacts(comparison.info.run_id, "scan")}
    assert arts == {"scan/comparison.json", "scan/comparison.md", "scan/comparison.png"}


def test_a_notebook_that_fails_after_its_run_started_marks_the_run_failed(server, tracked, tmp_path):
    _, run_dir, env = tracked
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("scan"))
    (copy / "data" / "samples" / "x_train_local.npy").write_bytes(b"damaged")
    params = write_params(tmp_path)
    proc = driver("stage", "--params", str(params), "--run-dir", str(copy), "--stage", "training", "--key", "sally",
                  "--force", env=env)  # fmt: skip
    assert proc.returncode == 1 and "stage training (sally) failed in cell" in proc.stderr, proc.stderr[-2000:]
    chain_id = json.loads((copy / "manifest.json").read_text())["run_id"]
    failed = [r for r in mlflow_runs(server, "training", chain_id) if r.data.tags["mmnb.run_dir"] == str(copy)]
    assert [r.info.status for r in failed] == ["FAILED"]


def test_an_unreachable_server_stops_the_run_before_training_and_keeps_results(tracked, tmp_path):
    params_path, run_dir, _ = tracked
    models = {p: p.read_bytes() for p in (run_dir / "models").rglob("*") if p.is_file()}
    changed = write_params(tmp_path, {"training.epochs": 3})
    dead = f"http://127.0.0.1:{free_port()}"
    proc = driver("run", "--params", str(changed), "--run-dir", str(run_dir), env={"MLFLOW_TRACKING_URI": dead})
    assert proc.returncode == 2
    assert f"the MLflow tracking server {dead} does not answer" in proc.stderr
    assert not ran(proc)  # stopped before any notebook ran, training included
    assert {p: p.read_bytes() for p in (run_dir / "models").rglob("*") if p.is_file()} == models
    assert not list((run_dir / "notebooks").glob("*.failed.ipynb"))


def test_tracking_is_off_unless_asked_for(tmp_path, monkeypatch):
    params = load_params(write_params(tmp_path))
    paths = RunPaths(tmp_path / "run")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert config(params, paths) is None
    on = {**params, "tracking": {"enabled": True}}
    assert config(on, paths).uri == f"sqlite:///{paths.root / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "none")
    assert config(params, paths) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert config(params, paths).uri == "http://127.0.0.1:5000"
