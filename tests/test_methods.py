"""The methods table is the one place a method is defined: an entry added there (and nowhere else) reaches
the parameter schema, the chain's executions and files, the plot styles, the quality numbers and the
tracking run names."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import yaml

from madminer_notebooks import methods
from madminer_notebooks.chain import evaluation_keys, executions
from madminer_notebooks.inference.quality import method_quality
from madminer_notebooks.params import ParamsError, load_params, with_overrides
from madminer_notebooks.plotting import contour_panel
from madminer_notebooks.tracking import training_run_name

ROOT = Path(__file__).resolve().parents[1]

NDE = methods.Method("nde", "NDE", "tab:orange", methods.PARAMETERISED_RATIO, "ml", training_keys=("alpha",))
SCORE2 = methods.Method("score2", "second score", "tab:brown", methods.LOCAL_SCORE, "sally", fisher_key="score2")
HISTO1D = methods.Method("histo1d", "1D histogram", "tab:olive", methods.BASELINE, "histo")


def _params_file(tmp_path: Path, trained: list[str]) -> Path:
    params = with_overrides(load_params(ROOT / "params" / "quick.yaml"), {"training.methods": trained})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture
def extended(monkeypatch):
    """The table with three fictitious entries: a ratio estimator, a score estimator and a baseline."""
    for entry in (NDE, SCORE2, HISTO1D):
        monkeypatch.setitem(methods.METHODS, entry.name, entry)


def test_the_schema_takes_its_methods_from_the_table(tmp_path, extended):
    params = load_params(_params_file(tmp_path, ["sally", "nde", "score2"]))
    assert params["training"]["methods"] == ["sally", "nde", "score2"]
    with pytest.raises(ParamsError, match=r"training.methods: expected .*from sally, alice, alices, nde, score2"):
        load_params(_params_file(tmp_path, ["histo1d"]))  # a baseline is not trained


def test_without_the_entry_the_schema_refuses_the_method(tmp_path):
    with pytest.raises(ParamsError, match=r"training.methods: expected a non-empty list of methods from sally, "):
        load_params(_params_file(tmp_path, ["nde"]))


def test_the_chain_trains_evaluates_and_plots_a_new_method(tmp_path, extended):
    params = load_params(_params_file(tmp_path, ["sally", "nde", "score2"]))
    assert evaluation_keys(params) == ["sally", "nde", "score2", "rate", "histo", "histo1d"]

    training = {ex.key: ex for ex in executions(params, "training")}
    assert set(training) == {"sally", "nde", "score2"}
    nde = training["nde"].outputs
    assert "models/nde/estimator_theta_means.npy" in nde and "plots/loss_nde.png" in nde  # a ratio: theta scaling
    score2 = training["score2"].outputs  # an ensemble of training.ensemble members
    members = params["training"]["ensemble"]
    assert "models/score2/ensemble/ensemble.json" in score2
    assert f"models/score2/ensemble/estimator_{members - 1}_state_dict.pt" in score2
    assert "data/samples/x_train_local.npy" in training["score2"].inputs

    evaluation = {ex.key: ex for ex in executions(params, "evaluation")}
    assert "plots/closure_nde.png" in evaluation["nde"].outputs
    assert "models/nde/estimator_settings.json" in evaluation["nde"].inputs
    assert not any(f.startswith("models/") for f in evaluation["histo1d"].inputs)  # a baseline needs no model
    assert not any("closure" in f for f in evaluation["histo1d"].outputs)
    plotting = executions(params, "plotting")[0]
    assert {"data/limits/nde.json", "data/limits/histo1d.npz"} <= set(plotting.inputs)


def test_plots_quality_and_run_names_read_the_table(extended):
    fig, ax = plt.subplots()
    grid = np.array([(x, y) for y in np.linspace(-1, 1, 9) for x in np.linspace(-1, 1, 9)])
    contour_panel(ax, grid, 10 * (grid**2).sum(axis=1), "nde", ["a", "b"])
    line = ax.get_lines()[-1]
    assert line.get_label() == "NDE" and matplotlib.colors.same_color(line.get_color(), "tab:orange")
    plt.close(fig)

    interval = {"68": {"low": -0.5, "high": 0.5}, "95": {"low": -1.0, "high": 1.0}}
    result = {"intervals": {"a": interval, "b": interval}, "best_fit": {"a": 0.0, "b": 0.0}}
    fisher = {"parameters": ["a", "b"], "truth": np.eye(2) * 16, "score2": np.eye(2) * 4}
    quality = method_quality({"score2": result, "nde": result}, fisher, {"a": 0.0, "b": 0.0})
    assert quality["score2"]["fisher_det_relative_to_truth"] == pytest.approx(1 / 16)  # its fisher_key
    assert "fisher_det_relative_to_truth" not in quality["nde"]

    training = {"hidden": [50, 50], "learning_rate": 1e-3, "epochs": 8, "batch_size": 128, "alpha": 2.0}
    assert training_run_name("nde", training) == "nde h50x50 lr0.001 e8 b128 a2"
    assert training_run_name("sally", training) == "sally h50x50 lr0.001 e8 b128"
