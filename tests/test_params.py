"""Parameter files: the shipped ones validate; bad ones give one clear error per problem and run nothing."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from madminer_notebooks.params import ParamsError, load_params, with_overrides

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["quick", "tutorial", "large"])
def test_shipped_params_are_valid(name):
    params = load_params(ROOT / "params" / f"{name}.yaml")
    assert params["physics"]["benchmarks"]["sm"] == {"CWL2": 0.0, "CPWL2": 0.0}


def test_sizes_grow_from_quick_to_large():
    sizes = [
        load_params(ROOT / "params" / f"{n}.yaml")["generation"]["events_per_benchmark"]
        for n in ("quick", "tutorial", "large")
    ]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def _write(tmp_path, overrides=None, raw=None):
    params = load_params(ROOT / "params" / "quick.yaml")
    if overrides:
        params = with_overrides(params, overrides)
    path = tmp_path / "bad.yaml"
    path.write_text(raw if raw is not None else yaml.safe_dump(params))
    return path


BAD = [
    ({"training.epoch": 3}, "training.epoch: unknown key"),
    ({"training.epochs": "ten"}, "training.epochs: expected a positive integer, got 'ten'"),
    ({"training.epochs": -1}, "training.epochs: expected a positive integer, got -1"),
    ({"physics.benchmarks.w": {"CWL2": 1.0, "CPW": 2.0}}, "physics.benchmarks.w.CPW: unknown parameter"),
    ({"training.methods": []}, "training.methods: expected a non-empty list of methods"),
    ({"training.methods": ["sally", "carl"]}, "training.methods: expected a non-empty list of methods"),
    ({"evaluation.grid.CWL2": [3.0, -1.0]}, "evaluation.grid.CWL2: expected a range [low, high] with low < high"),
    ({"physics.parameters.CPWL2.range": [1.0, 1.0]}, "physics.parameters.CPWL2.range: expected a range"),
    ({"generation.sampling_benchmarks": ["sm", "bsm"]}, "generation.sampling_benchmarks: 'bsm' is not a benchmark"),
    ({"evaluation.hist_vars": ["pt_j1", "ht"]}, "evaluation.hist_vars: 'ht' is not in analysis.observables"),
    ({"sampling.prior.CWL2": ["gaussian", 0.0, -1.0]}, "sampling.prior.CWL2: expected ['flat', low, high]"),
    # the ratio estimators would never be trained where the limits are evaluated
    ({"sampling.prior.CPWL2": ["flat", 6.0, 9.0]},
     "sampling.prior.CPWL2: flat prior [6, 9] lies outside evaluation.grid.CPWL2 [-2.5, 2.5]"),
    ({"sampling.prior.CWL2": ["gaussian", -8.0, 2.0]},
     "sampling.prior.CWL2: gaussian prior [-10, -6] (mean +- width) lies outside evaluation.grid.CWL2"),
    # cuts that no event of the built-in generator passes
    ({"analysis.cuts.m_aa": [200.0, 210.0]},
     "analysis.cuts.m_aa: the window [200, 210] GeV does not contain the Higgs mass 125 GeV"),
    ({"analysis.cuts.pt_j1_min": 7000.0}, "analysis.cuts.pt_j1_min: 7000 GeV is beyond the largest jet pT"),
    # one parameter, or three: refused before any work, not deep inside the evaluation notebook
    ({"physics.parameters": {"CWL2": {"lha_block": "dim6", "lha_id": 2, "morphing_max_power": 2,
                                      "param_card_transform": "16.52*theta", "range": [-10.0, 10.0]}},
      "physics.benchmarks": {"sm": {"CWL2": 0.0}, "w": {"CWL2": 10.0}},
      "generation.sampling_benchmarks": ["sm", "w"], "evaluation.grid": {"CWL2": [-3.0, 3.0]},
      "sampling.prior": {"CWL2": ["flat", -3.0, 3.0]}},
     "physics.parameters: the chain's limits, closure checks and plots are written for exactly 2 parameters "
     "(a 2D grid and 2D contours); got 1: CWL2"),
    # a scan varies only what sampling, training and evaluation read, each value valid where it goes
    ({"scan": {"analysis.cuts": [{}]}}, "scan.analysis.cuts: not a scannable key (expected one of: sampling."),
    ({"scan": {"training.epoch": [3]}}, "scan.training.epoch: not a scannable key"),
    ({"scan": {"training.methods": [["sally"]]}},
     "scan.training.methods: the methods are compared in every scan point already; scan their settings instead"),
    ({"scan": {"training.epochs": [5, "ten"]}}, "scan.training.epochs[1]: expected a positive integer, got 'ten'"),
    ({"scan": {"training.epochs": []}}, "scan.training.epochs: expected a non-empty list of values, got []"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "message"), BAD)
def test_bad_values_name_file_key_and_expectation(tmp_path, overrides, message):
    path = _write(tmp_path, overrides)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_sm(tmp_path):
    params = load_params(ROOT / "params" / "quick.yaml")
    del params["physics"]["benchmarks"]["sm"]
    params["generation"]["sampling_benchmarks"] = ["w"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(info.value) == (
        f"{path}: physics.benchmarks.sm: missing (the chain needs the Standard Model point named 'sm')"
    )


def test_missing_section(tmp_path):
    params = load_params(ROOT / "params" / "quick.yaml")
    del params["sampling"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=f"^{re.escape(str(path))}: sampling: missing"):
        load_params(path)


def test_yaml_syntax_error(tmp_path):
    path = _write(tmp_path, raw="description: x\nrun: {seed: 1\n")
    with pytest.raises(ParamsError) as info:
        load_params(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 3, column 1: not valid YAML: expected ',' or '}}'")
    assert "\n" not in message and "unicode string" not in message


def test_empty_file(tmp_path):
    path = _write(tmp_path, raw="")
    with pytest.raises(ParamsError, match=r"bad\.yaml: the file is empty \(expected a mapping of sections: descr"):
        load_params(path)


def test_a_prior_off_the_grid_is_fine_without_ratio_methods(tmp_path):
    path = _write(tmp_path, {"sampling.prior.CPWL2": ["flat", 6.0, 9.0], "training.methods": ["sally"]})
    assert load_params(path)["sampling"]["prior"]["CPWL2"] == ["flat", 6.0, 9.0]


def test_driver_rejects_bad_params_before_running_anything(tmp_path):
    path = _write(tmp_path, {"training.methods": []})
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(path), "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "training.methods" in proc.stderr and str(path) in proc.stderr
    assert not run_dir.exists()


def test_every_problem_is_its_own_error_line(tmp_path):
    path = _write(tmp_path, {"training.epoch": 3, "evaluation.resolutoin": 4})
    run_dir = tmp_path / "r"
    proc = subprocess.run(
        [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(path), "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 2, proc.stderr
    assert all(line.startswith(f"error: {path}: ") for line in lines)


@pytest.mark.parametrize(
    ("observable", "message"),
    [
        ("j[0].ptt", "observable 'bad' = 'j[0].ptt': particles have no property 'ptt'"),
        ("j[0].pt +", "observable 'bad' = 'j[0].pt +': syntax error"),
        ("jet[0].pt", "observable 'bad' = 'jet[0].pt': unknown name 'jet'"),
    ],
)
def test_a_bad_observable_is_refused_before_any_stage(tmp_path, observable, message):
    """Not after setup and generation, deep inside MadMiner: before anything runs or is created."""
    path = _write(tmp_path, {"analysis.observables.bad": observable})
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(path), "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: {path}: analysis.observables: {message}"), proc.stderr
    assert not run_dir.exists()


def test_the_parameter_reference_is_generated_from_the_schema():
    """docs/parameters.md is what the schema says today, and every key of the schema is described."""
    from madminer_notebooks import params_reference

    assert params_reference.undocumented() == ([], [])
    page = (ROOT / "docs" / "parameters.md").read_text()
    assert page == params_reference.render(), (
        "docs/parameters.md is stale: python -m madminer_notebooks.params_reference docs/parameters.md"
    )
    assert "| `training.ensemble` | a positive integer or null | `5` |" in page  # a default from KEY_DEFAULTS
    assert "| `analysis.shower.jet_radius` | a number in (0, 1.5] | `0.6` |" in page  # from the detector's card
