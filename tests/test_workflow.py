"""The Yadage workflows and the REANA submission: specs valid, scatters safe, and the ML sub-workflow run
locally (steps as local processes, the way drivers/yadage runs it without a container engine) on the
papermill driver's physics, giving exactly the driver's results on the same parameters and seeds. (The
combined workflow, each step in a container: tests/test_containers.py; the physics sub-workflow locally, on
external files: tests/test_external_events.py.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import assert_run_plot
from tiny import assert_sampling_failure_reported, damaged_physics, write_params, yadage

from madminer_notebooks import __version__
from madminer_notebooks.chain import STAGES, evaluation_keys, event_file_keys, executions
from madminer_notebooks.driver.errors import UsageError
from madminer_notebooks.driver.step import MissingInput, link_inputs, scatter_lists
from madminer_notebooks.params import load_params
from madminer_notebooks.paths import RunPaths
from madminer_notebooks.workflow.yadage import SPECS, WORKFLOWS, check_scatters, step_output

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_BIN = ROOT / ".venv-workflow" / "bin"
SPEC_FILES = ("physics.yml", "ml.yml", "combined.yml")


# ---- specs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPEC_FILES)
def test_yadage_validate_accepts_every_spec(workflow_env, spec):
    proc = subprocess.run([str(workflow_env / "yadage-validate"), spec, "-t", str(SPECS)],
                          capture_output=True, text=True, cwd=SPECS)  # fmt: skip
    assert proc.returncode == 0 and "workflow validates against schema" in proc.stdout, proc.stdout + proc.stderr


def test_reana_client_validates_reana_yaml(workflow_env):
    proc = subprocess.run([str(workflow_env / "reana-client"), "validate", "--file", "reana.yaml"],
                          capture_output=True, text=True, cwd=SPECS)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == 4 and "WARNING" not in proc.stdout


def test_drivers_reana_validates_the_submitted_copy_and_checks_the_params(workflow_env, tmp_path):
    ok = subprocess.run([str(ROOT / "drivers" / "reana"), "validate", "--params", "params/tutorial.yaml",
                         "--image", "registry.example.org/me/madminer-notebooks:0.2.0"],
                        capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.count("SUCCESS") == 4, ok.stdout + ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(re.sub(r"epochs: \d+", "epochs: eight", (ROOT / "params" / "quick.yaml").read_text()))
    proc = subprocess.run([str(ROOT / "drivers" / "reana"), "validate", "--params", str(bad)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2 and "bad.yaml" in proc.stderr and "training.epochs" in proc.stderr, proc.stderr


def test_reana_server_commands_say_what_is_missing(workflow_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANA_")}
    for command in ("submit", "status", "download"):
        proc = subprocess.run([str(ROOT / "drivers" / "reana"), command], capture_output=True, text=True,
                              cwd=ROOT, env=env)  # fmt: skip
        assert proc.returncode == 2, (command, proc.stderr)
        assert "REANA_SERVER_URL and REANA_ACCESS_TOKEN are not set" in proc.stderr


def test_image_tag_is_set_once_and_follows_the_package_version():
    steps = yaml.safe_load((SPECS / "steps.yml").read_text())
    environments = [s["environment"] for k, s in steps.items() if isinstance(s, dict) and "process" in s]
    assert len(environments) == len(STAGES)
    assert all(e == steps["environment"] for e in environments)  # one YAML anchor, one place
    assert steps["environment"]["imagetag"] == __version__
    text = "\n".join(p.read_text() for p in SPECS.glob("*.yml"))
    assert len(re.findall(r"^\s+imagetag:", text, re.M)) == 1


def test_every_scatter_iterates_over_one_list():
    assert check_scatters() == 4  # generation and analysis (physics), training and evaluation (ml)


def test_a_zip_of_two_lists_is_refused(tmp_path):
    spec = tmp_path / "bad.yml"
    spec.write_text(yaml.safe_dump({"stages": [{"name": "analysis", "dependencies": ["init"], "scheduler": {
        "scheduler_type": "multistep-stage", "parameters": {"a": [1, 2], "b": [1]},
        "scatter": {"method": "zip", "parameters": ["a", "b"]}, "step": {}}}]}))  # fmt: skip
    with pytest.raises(UsageError, match=r"bad.yml: stage analysis scatters over \['a', 'b'\]"):
        check_scatters(tmp_path)


def test_scatter_lists_cover_every_execution():
    params = load_params(ROOT / "params" / "quick.yaml")
    lists = scatter_lists(params)
    for stage, key in (("generation", "generation_keys"), ("analysis", "analysis_keys"),
                       ("training", "training_keys"), ("evaluation", "evaluation_keys")):  # fmt: skip
        assert lists[key] == [ex.key for ex in executions(params, stage)]
    assert len(lists["generation_keys"]) == 5 and lists["evaluation_keys"] == evaluation_keys(params)


def test_docker_executor_without_an_engine_says_so(tmp_path):
    params = write_params(tmp_path)
    no_daemon = {"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    proc = yadage(params, tmp_path / "wf", "--engine", "docker", executor="docker", env=no_daemon, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "--executor docker: no container engine answers (docker info failed)" in proc.stderr, proc.stderr
    assert not (tmp_path / "wf").exists()


def test_step_errors_are_read_from_the_logs_of_both_backends():
    local = "2026-11-30 04:24:54,532 |    pack.sampling.run |   INFO | error: stage sampling failed in cell 4"
    docker = r"2026-11-30 04:24:54,532 |    pack.sampling.run |   INFO | b'error: it\'s \xc3\xa9 | x'"
    assert step_output(local) == "error: stage sampling failed in cell 4"
    assert step_output(docker) == "error: it's \u00e9 | x"  # the repr of the container's bytes, decoded
    assert step_output("no fields here") == ""


# ---- inputs of a step ---------------------------------------------------------------------------------------


def test_inputs_are_linked_from_the_folder_that_holds_them(tmp_path):
    params = load_params(ROOT / "params" / "quick.yaml")
    setup_dir, gen_dir = tmp_path / "setup", tmp_path / "generation_0"
    (setup_dir / "data").mkdir(parents=True)
    (setup_dir / "data" / "setup.h5").write_bytes(b"setup")
    key = event_file_keys(params)[0][2]
    (gen_dir / "data" / "events").mkdir(parents=True)
    (gen_dir / "data" / "events" / f"{key}.lhe.gz").write_bytes(b"events")
    (gen_dir / "data" / "setup.h5").symlink_to(setup_dir / "data" / "setup.h5")  # as a generation step leaves it

    paths = RunPaths(tmp_path / "analysis_0")
    todo = [ex for ex in executions(params, "analysis", paths.root) if ex.key == key]
    assert link_inputs(todo, paths, [setup_dir, gen_dir]) == 2
    assert (paths.root / "data" / "setup.h5").resolve() == (setup_dir / "data" / "setup.h5").resolve()
    assert (paths.root / "data" / "events" / f"{key}.lhe.gz").read_bytes() == b"events"
    assert link_inputs(todo, paths, [setup_dir, gen_dir]) == 0  # already in place

    other = [ex for ex in executions(params, "analysis", paths.root) if ex.key != key][:1]
    with pytest.raises(MissingInput, match=rf"input data/events/{other[0].key}.lhe.gz of analysis-{other[0].key}"):
        link_inputs(other, paths, [setup_dir, gen_dir])

    # the same path in several folders: the last one given wins (the workflow lists its own steps last)
    newer = tmp_path / "newer"
    (newer / "data").mkdir(parents=True)
    (newer / "data" / "setup.h5").write_bytes(b"another setup")
    other_paths = RunPaths(tmp_path / "analysis_1")
    link_inputs(todo, other_paths, [setup_dir, gen_dir, newer])
    assert (other_paths.root / "data" / "setup.h5").read_bytes() == b"another setup"


def test_stage_step_with_a_missing_input_fails_before_running(tmp_path):
    params = write_params(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "madminer_notebooks.driver", "stage", "--params", str(params), "--run-dir",
         str(tmp_path / "combine"), "--stage", "combine", "--inputs-from", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "stage combine: input data/analysed/sm-0.h5 of combine is in none of the 1 upstream folders" in proc.stderr
    assert not list((tmp_path / "combine" / "notebooks").glob("*.ipynb"))


# ---- the ML sub-workflow, run locally -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(workflow_env, tiny_run, tmp_path_factory):
    """The tiny parameters through the papermill driver (the session's run), and the ML sub-workflow of Yadage
    on that run's physics."""
    params, papermill_dir, _, _ = tiny_run
    work_dir = tmp_path_factory.mktemp("workflow") / "yadage"
    proc = yadage(params, work_dir, "--workflow", "ml", "--physics", str(papermill_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return params, papermill_dir, work_dir, proc


def test_the_ml_workflow_reproduces_the_papermill_driver(runs):
    params_path, papermill_dir, work_dir, proc = runs
    params = load_params(params_path)
    ours = json.loads((work_dir / "summary.json").read_text())
    theirs = json.loads((papermill_dir / "summary.json").read_text())
    assert ours["cross_sections"] == theirs["cross_sections"]
    assert ours["limits"] == theirs["limits"]
    assert ours["fisher_information"] == theirs["fisher_information"]
    assert set(ours["limits"]) == set(evaluation_keys(params))

    # one step per execution, in the step folders yadage made; the executed notebooks are published
    steps = {p.parent.parent.relative_to(work_dir).as_posix(): p.stem for p in work_dir.glob("*/notebooks/*.ipynb")}
    assert sorted(steps.values()) == sorted(ex.name for s in WORKFLOWS["ml"][1] for ex in executions(params, s))
    assert {k for k in steps if k.startswith("evaluation_")} == {
        f"evaluation_{i}" for i in range(len(evaluation_keys(params)))
    }
    published = yaml.safe_load((work_dir / "plotting" / "published.yml").read_text())
    assert Path(published["summary"]).is_file() and Path(published["report"]).is_file()
    for plot in ("limits.png", "p_values.png"):
        assert_run_plot(work_dir / "plotting" / "plots" / plot)
    # inputs are links into the upstream steps' folders (and the physics run's), not copies
    model = work_dir / "evaluation_0" / "models" / "sally" / "ensemble" / "estimator_0_state_dict.pt"
    assert model.is_symlink() and model.resolve().is_relative_to(work_dir / "training_0")
    combined = work_dir / "sampling" / "data" / "combined.h5"
    assert combined.is_symlink() and combined.resolve() == (papermill_dir / "data" / "combined.h5").resolve()
    assert "summary: " + str(work_dir / "summary.json") in proc.stderr


def test_rerunning_the_workflow_skips_every_notebook(runs):
    params_path, papermill_dir, work_dir, _ = runs
    summary = (work_dir / "summary.json").read_text()
    proc = yadage(params_path, work_dir, "--workflow", "ml", "--physics", str(papermill_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = "\n".join(p.read_text() for p in work_dir.glob("*/_packtivity/*.run.log"))
    names = [ex.name for s in WORKFLOWS["ml"][1] for ex in executions(load_params(params_path), s)]
    for name in names:
        assert re.search(rf"\s{re.escape(name)}\s+up to date, skipped", logs), name
    assert json.loads((work_dir / "summary.json").read_text())["limits"] == json.loads(summary)["limits"]


def test_a_failing_step_names_stage_cell_and_error(runs, tmp_path):
    """The ML sub-workflow on its own, on a physics run folder whose combined file is damaged."""
    params_path, papermill_dir, _, _ = runs
    physics = damaged_physics(papermill_dir, tmp_path)
    proc = yadage(params_path, tmp_path / "ml", "--workflow", "ml", "--physics", str(physics))
    assert_sampling_failure_reported(proc, tmp_path / "ml")
