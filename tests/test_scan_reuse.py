"""A scan point takes over what it would repeat exactly from the run, and never writes through a link into the
run's files (the whole scan, tracked, is tests/test_tracking.py's)."""

from __future__ import annotations

from pathlib import Path

from tiny import write_params

from madminer_notebooks.chain import executions
from madminer_notebooks.driver.execute import hashes
from madminer_notebooks.driver.manifest import Manifest, Record, file_sha256
from madminer_notebooks.driver.scan import reuse_base_executions
from madminer_notebooks.params import load_params, with_overrides
from madminer_notebooks.paths import RunPaths


def _done(params: dict, stage: str, paths: RunPaths, content: str) -> None:
    """Files for the stage's inputs and outputs, and the record of a finished execution of them."""
    (ex,) = executions(params, stage, paths.root)
    for rel in (*ex.inputs, *ex.outputs):
        (paths.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (paths.root / rel).write_text(f"{content} {rel}")
    (paths.notebooks / f"{ex.name}.ipynb").parent.mkdir(parents=True, exist_ok=True)
    (paths.notebooks / f"{ex.name}.ipynb").write_text("{}")
    nb, p = hashes(ex, params)
    sha = {rel: file_sha256(paths.root / rel) for rel in (*ex.inputs, *ex.outputs)}
    record = Record(nb, p, {r: sha[r] for r in ex.inputs}, {r: sha[r] for r in ex.outputs}, 1.0)
    Manifest(paths.manifest).record(ex.name, record)


def test_a_point_takes_over_an_identical_execution_and_lets_go_of_it_when_its_settings_change(tmp_path):
    params = load_params(write_params(tmp_path))
    base, point = RunPaths(tmp_path / "run"), RunPaths(tmp_path / "run" / "scan" / "point-00")
    _done(params, "sampling", base, "the run's")
    (sampling,) = executions(params, "sampling", point.root)
    for rel in sampling.inputs:  # the physics, linked from the run as link_point_inputs does
        (point.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (point.root / rel).symlink_to((base.root / rel).resolve())

    assert reuse_base_executions(params, "sampling", point, base) == ["sampling"]
    for rel in sampling.outputs:
        assert (point.root / rel).is_symlink() and (point.root / rel).resolve() == (base.root / rel).resolve()
    assert (point.notebooks / "sampling.ipynb").resolve() == (base.notebooks / "sampling.ipynb").resolve()
    assert Manifest(point.manifest).records == Manifest(base.manifest).records
    assert reuse_base_executions(params, "sampling", point, base) == []  # up to date already: left alone

    other = with_overrides(params, {"sampling.n_thetas": params["sampling"]["n_thetas"] + 1})
    assert reuse_base_executions(other, "sampling", point, base) == []
    # the point must sample itself: no link is left where its notebook will write, the run's files untouched
    assert not any((point.root / rel).exists() or (point.root / rel).is_symlink() for rel in sampling.outputs)
    assert not (point.notebooks / "sampling.ipynb").is_symlink()
    assert all((base.root / rel).read_text() == f"the run's {rel}" for rel in sampling.outputs)


def test_a_point_whose_inputs_differ_from_the_runs_runs_itself(tmp_path):
    params = load_params(write_params(tmp_path))
    base, point = RunPaths(tmp_path / "run"), RunPaths(tmp_path / "point")
    _done(params, "sampling", base, "the run's")
    (sampling,) = executions(params, "sampling", point.root)
    for rel in sampling.inputs:  # another combined sample than the run's
        (point.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (point.root / rel).write_text("other events")
    assert reuse_base_executions(params, "sampling", point, base) == []
    assert not Path(point.manifest).exists() or "sampling" not in Manifest(point.manifest).records
