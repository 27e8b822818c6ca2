"""Every workflow step in a real container, as REANA runs them: the image built here (offline with podman:
a base image from Debian's packages, this machine's torch wheel), each step as UID 12345:0 on a read-only
image, and the combined workflow's results equal to the papermill driver's on the same parameters.

Marker ``container``: drivers/test installs podman (drivers/ensure-podman); the image build costs about five
minutes on two cores the first time (mostly waiting on Debian's mirror and PyPI: conftest starts it in the
background when the session's tests are collected), the workflow about as much again."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import background_image_build, image_build_command, mlflow_runs
from tiny import assert_sampling_failure_reported, damaged_physics, yadage

from madminer_notebooks.chain import evaluation_keys
from madminer_notebooks.params import load_params
from madminer_notebooks.workflow.image import check_image, container_engine, image_name
from madminer_notebooks.workflow.yadage import STEP_UID

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def engine() -> str:
    found = container_engine()
    if found is None:
        pytest.fail("no container engine answers (podman info / docker info failed): drivers/ensure-podman "
                    "installs podman as root; deselect these tests with -m 'not container'")  # fmt: skip
    return found


def build(engine: str) -> subprocess.CompletedProcess:
    return subprocess.run(image_build_command(engine), capture_output=True, text=True, timeout=3600)


def image_id(engine: str) -> str:
    return subprocess.run([engine, "image", "inspect", "--format", "{{.Id}}", image_name()],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def image(engine) -> str:
    """The image, built by the session's background build (conftest) or here."""
    started = background_image_build(engine)
    if started is None:
        proc = build(engine)
        started = proc.returncode, (proc.stdout + proc.stderr)[-4000:]
    assert started[0] == 0, started[1]
    return image_id(engine)


def workflow(params: Path, work_dir: Path, engine: str, *extra: str, env: dict | None = None):
    return yadage(params, work_dir, "--engine", engine, *extra, executor="docker", env=env, timeout=3600)


def test_the_image_runs_as_reana_runs_it_and_names_no_build_machine(engine, image):
    assert check_image(image_name(), engine) == []


@pytest.mark.parametrize(
    ("fault", "layer", "problem"),
    [
        ("HOME writable by its owner only", "USER 0\nRUN chmod 0700 /home/mmnb\nUSER 1000:0",
         "fails as UID:GID 12345:0 ({run}): touch: cannot touch '/home/mmnb/written-{run}': Permission denied"),
        ("the build machine's pip certificate left in", "ENV PIP_CERT=/etc/ssl/pip-ca.pem",
         "it names the build machine: .cert='/etc/ssl/pip-ca.pem', PIP_CERT=/etc/ssl/pip-ca.pem"),
    ],
)  # fmt: skip
def test_check_image_rejects_an_image_that_reana_could_not_run(engine, image, tmp_path, fault, layer, problem):
    """Our image with one fault that a careless build makes: check_image names it, for both ways it runs the
    image (as REANA does, and read-only)."""
    bad = "localhost/mmnb-bad-image:test"
    (tmp_path / "Containerfile").write_text(f"FROM {image_name()}\n{layer}\n")
    built = subprocess.run([engine, "build", "-t", bad, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    try:
        problems = check_image(bad, engine)
    finally:
        subprocess.run([engine, "rmi", "-f", bad], capture_output=True)
    assert problems == [f"{bad}: {problem.format(run=run)}" for run in ("reana", "read-only")]


def test_check_image_rejects_an_image_that_is_not_there(engine):
    assert check_image("localhost/mmnb-never-built:0.0.1", engine) == [
        "localhost/mmnb-never-built:0.0.1: not built here (drivers/build-image)"
    ]


def test_an_unchanged_rebuild_reuses_every_layer(engine, image):
    proc = build(engine)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert image_id(engine) == image


@pytest.fixture(scope="module")
def in_containers(engine, image, tiny_run, workflow_env, mlflow_server, tmp_path_factory):
    """The combined workflow in containers, its ML steps tracked on a server on this machine's loopback."""
    params, _, _, _ = tiny_run
    work_dir = tmp_path_factory.mktemp("containers") / "wf"
    proc = workflow(params, work_dir, engine, env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work_dir, proc


def test_the_workflow_in_containers_reproduces_the_papermill_driver(tiny_run, in_containers, engine):
    _, papermill_dir, _, _ = tiny_run
    work_dir, proc = in_containers
    ours = json.loads((work_dir / "summary.json").read_text())
    theirs = json.loads((papermill_dir / "summary.json").read_text())
    assert ours["cross_sections"] == theirs["cross_sections"]
    assert ours["limits"] == theirs["limits"]
    assert ours["fisher_information"] == theirs["fisher_information"]
    assert f"executor docker ({engine})" in proc.stderr
    # every step ran in a container as REANA runs it: the files it wrote are the step UID's, GID 0
    uid = os.getuid() or STEP_UID
    notebooks = list(work_dir.glob("*/*/notebooks/*.ipynb"))
    assert len(notebooks) >= 20
    assert {(p.stat().st_uid, p.stat().st_gid) for p in notebooks} == {(uid, 0)}


def test_containerised_steps_track_into_a_server_on_the_host(tiny_run, in_containers, mlflow_server):
    params = load_params(tiny_run[0])
    work_dir, _ = in_containers
    chain_id = (work_dir / "_mmnb" / "run_id").read_text().strip()
    found = {family: mlflow_runs(mlflow_server, family, chain_id) for family in ("training", "evaluation")}
    assert sorted(r.data.tags["mmnb.method"] for r in found["training"]) == sorted(params["training"]["methods"])
    assert all(r.info.status == "FINISHED" for runs in found.values() for r in runs)
    assert all(r.data.tags["mmnb.run_dir"].startswith(str(work_dir)) for r in found["training"])
    assert len(found["evaluation"]) == len(evaluation_keys(params))


def test_a_failing_container_step_names_stage_cell_and_error(tiny_run, image, engine, workflow_env, tmp_path):
    """The ML sub-workflow in containers, on a physics run folder whose combined file is damaged."""
    params, papermill_dir, _, _ = tiny_run
    physics = damaged_physics(papermill_dir, tmp_path)
    proc = workflow(params, tmp_path / "ml", engine, "--workflow", "ml", "--physics", str(physics))
    assert_sampling_failure_reported(proc, tmp_path / "ml")
