"""``drivers/reana submit | status | download`` through the real reana-client against a REANA stand-in that
serves REANA's own OpenAPI document (``tests/reana_standin.py``): what reaches the server, what comes back,
and the one line a user reads when something fails."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from reana_standin import ReanaStandIn, output_content

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "drivers" / "reana"
TOKEN = "stand-in-token-4821"
IMAGE = ("registry.example.org/physicist/madminer-notebooks", "7.1.3")
OUTPUTS = yaml.safe_load((ROOT / "workflow" / "reana.yaml").read_text())["outputs"]["files"]


@pytest.fixture
def server(workflow_env):
    standin = ReanaStandIn(TOKEN)
    standin.serve()
    yield standin
    standin.close()


def reana(server: ReanaStandIn | None, *args: str, token: str = TOKEN, url: str | None = None, cwd: Path = ROOT,
          **env: str) -> subprocess.CompletedProcess:  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("REANA_", "MLFLOW_", "MMNB_"))}
    environment |= {"REANA_SERVER_URL": url or server.url, "REANA_ACCESS_TOKEN": token, **env}
    return subprocess.run([str(DRIVER), *args], capture_output=True, text=True, cwd=cwd, env=environment,
                          stdin=subprocess.DEVNULL, timeout=600)  # fmt: skip


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def nodes_with(specification: dict, *keys: str) -> list[dict]:
    """Every mapping in a resolved Yadage specification that has all of ``keys``."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if all(key in node for key in keys):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(specification)
    return found


def steps_of(specification: dict) -> list[dict]:
    """The steps: what runs, and in which image."""
    return nodes_with(specification, "process", "environment")


def schedulers_of(specification: dict, kind: str = "step") -> list[dict]:
    """The stages' schedulers: ``parameters`` with the ``step`` (or the sub-``workflow``) they go to."""
    return nodes_with(specification, kind, "parameters")


def test_submit_uploads_the_spec_inputs_with_the_image_and_starts_it(server):
    proc = reana(server, "submit", "--image", ":".join(IMAGE), "--name", "vbf", "--tracking-uri",
                 "http://mlflow.example.org:5000")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "vbf.1" and not error_lines(proc)
    (workflow,) = server.workflows.values()
    assert workflow.full_name == "vbf.1" and server.requests.count("start_workflow") == 1
    # exactly the inputs the spec lists: the Yadage specs, the parameter sets (the directory, whole), and reana.yaml,
    # which reana-client always sends
    spec = workflow.specification
    assert spec["inputs"]["directories"] == ["params"]
    assert spec["inputs"]["files"] == ["combined.yml", "physics.yml", "ml.yml", "steps.yml"]
    expected = {f"params/{name}" for name in files_under(ROOT / "params")} | {"reana.yaml", *spec["inputs"]["files"]}
    assert sorted(workflow.uploaded) == sorted(expected)
    for rel in expected - {"reana.yaml", "steps.yml"}:  # steps.yml carries the image given
        source = ROOT / rel if rel.startswith("params/") else ROOT / "workflow" / rel
        assert workflow.files[rel] == source.read_bytes(), rel
    assert yaml.safe_load(workflow.files["reana.yaml"])["outputs"]["files"] == OUTPUTS
    # the engine's view: the workflow loaded from the workspace at start, every step naming the image given
    assert workflow.engine_failure is None and workflow.loaded is not None
    steps = steps_of(workflow.loaded)
    assert len(steps) == 8
    assert {(s["environment"]["image"], str(s["environment"]["imagetag"])) for s in steps} == {IMAGE}
    # the tracking URI is a start parameter, and the steps that log to MLflow take it from the workflow's input
    assert workflow.input_parameters["tracking_uri"] == "http://mlflow.example.org:5000"
    assert len(workflow.input_parameters["run_id"]) == 12
    tracked = [s for s in steps if "MLFLOW_TRACKING_URI='{tracking_uri}'" in s["process"]["cmd"]]
    assert len(tracked) == 4
    uses = [s for s in schedulers_of(workflow.loaded) if "{tracking_uri}" in s["step"]["process"]["cmd"]]
    assert len(uses) == 4  # each of them gets it from the workflow's init step
    assert all(s["parameters"]["tracking_uri"] == {"step": "init", "output": "tracking_uri"} for s in uses)
    subworkflows = [s for s in schedulers_of(workflow.loaded, "workflow")
                    if any("{tracking_uri}" in t["process"]["cmd"] for t in steps_of(s["workflow"]))]  # fmt: skip
    assert len(subworkflows) == 1  # the ML sub-workflow, which gets it from the top
    assert subworkflows[0]["parameters"]["tracking_uri"] == {"step": "init", "output": "tracking_uri"}
    assert spec["inputs"]["parameters"]["params_file"] == "params/quick.yaml"


def test_status_follows_to_finished_and_download_fetches_exactly_the_outputs(server, tmp_path):
    server.polls_to_finish = 4  # status requests: reana-client run's, the early download's, then two of --follow
    assert reana(server, "submit", "--name", "vbf").returncode == 0
    early = reana(server, "download", "--name", "vbf", "--output", str(tmp_path / "early"))
    assert early.returncode == 1 and not (tmp_path / "early").exists()
    assert error_lines(early) == ["error: workflow vbf.1 is running: its outputs exist only once it has finished "
                                  "('drivers/reana status --follow' waits for that)"]  # fmt: skip
    status = reana(server, "status", "--name", "vbf", "--follow", "--every", "0.2")
    assert status.returncode == 0, status.stderr
    states = [line.split(": ")[1].split(" ")[0] for line in status.stdout.splitlines()]
    assert states[0] == "running" and states[-1] == "finished", status.stdout
    assert status.stdout.splitlines()[-1] == "vbf.1: finished (2/2 jobs)"
    out = tmp_path / "results"
    (out / "ml").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    got = reana(server, "download", "--name", "vbf", "--output", str(out))
    assert got.returncode == 0, got.stderr
    assert files_under(out) == set(OUTPUTS) | {"notes.txt"}
    for rel in OUTPUTS:
        assert (out / rel).read_bytes() == output_content("vbf.1", rel)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no staging folder left behind


def test_a_failed_workflow_is_one_error_line_with_the_step_and_its_message(server):
    server.fail_run = "ValueError: the ALICES loss is nan after epoch 3"
    assert reana(server, "submit", "--name", "vbf").returncode == 0
    server.polls_to_finish = 3
    proc = reana(server, "status", "--name", "vbf", "--follow", "--every", "0.2")
    assert proc.returncode == 1
    assert error_lines(proc) == ["error: workflow vbf.1 failed: step ml.training.0: ValueError: the ALICES loss "
                                 "is nan after epoch 3"]  # fmt: skip
    assert proc.stdout.splitlines()[-1].startswith("vbf.1: failed")


@pytest.mark.parametrize("case", ["wrong token", "unreachable server"])
@pytest.mark.parametrize("command", ["submit", "status", "download"])
def test_a_refused_token_or_no_server_is_one_error_line(server, tmp_path, case, command):
    args = [command, "--output", str(tmp_path / "out")] if command == "download" else [command]
    if case == "wrong token":
        proc = reana(server, *args, token="not-the-token")
        expected = f"error: the REANA server at {server.url} refused the access token; check REANA_ACCESS_TOKEN"
    else:
        closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
        proc = reana(server, *args, url=closed)
        expected = f"error: cannot reach a REANA server at {closed}; check REANA_SERVER_URL and the network"
    assert proc.returncode == 1
    assert error_lines(proc) == [expected], proc.stderr
    assert not server.workflows and not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_a_server_error_mid_upload_names_the_half_made_workflow(server):
    server.fail_upload = 3
    proc = reana(server, "submit", "--name", "vbf")
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = error_lines(proc)
    assert line.startswith("error: submit failed while uploading the inputs: Something went wrong while uploading ")
    assert "Internal server error while saving" in line and "(injected)" in line
    assert line.endswith("workflow vbf.1 was created on the server but not started (remove it with "
                         "'reana-client delete -w vbf.1')")  # fmt: skip
    (workflow,) = server.workflows.values()
    # reana-client goes on with the other files after the failed one, then stops before starting the workflow
    expected = len(files_under(ROOT / "params")) + 5
    assert workflow.status == "created" and len(workflow.uploaded) == expected - 1
    assert "start_workflow" not in server.requests


def test_a_server_error_at_start_names_the_workflow_left_unstarted(server):
    server.fail_operations = {"start_workflow"}
    proc = reana(server, "submit", "--name", "vbf")
    assert proc.returncode == 1 and proc.stdout == ""
    assert error_lines(proc) == [
        "error: submit failed while starting the workflow: Cannot start workflow vbf.1: Internal server error "
        "(injected into start_workflow); "
        "workflow vbf.1 was created on the server but not started (remove it with 'reana-client delete -w vbf.1')"
    ]
    (workflow,) = server.workflows.values()
    assert workflow.status == "created" and len(workflow.uploaded) == len(files_under(ROOT / "params")) + 5


def test_a_download_that_fails_midway_leaves_the_output_folder_untouched(server, tmp_path):
    assert reana(server, "submit", "--name", "vbf").returncode == 0
    assert reana(server, "status", "--name", "vbf", "--follow", "--every", "0.2").returncode == 0
    (workflow,) = server.workflows.values()
    del workflow.files[OUTPUTS[2]]  # the third output is gone from the workspace
    out = tmp_path / "results"
    proc = reana(server, "download", "--name", "vbf", "--output", str(out))
    assert proc.returncode == 1
    assert error_lines(proc) == [f"error: download of {OUTPUTS[2]}: File {OUTPUTS[2]} could not be downloaded: "
                                 f"Error 404 Not Found {OUTPUTS[2]} does not exist."]  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # neither the two that arrived nor the staging folder


def test_a_server_slower_than_the_limit_is_one_error_line(server):
    server.delay = 4.0
    proc = reana(server, "status", "--name", "vbf", MMNB_REANA_TIMEOUT="2")
    assert proc.returncode == 1
    assert error_lines(proc) == [f"error: ping: the REANA server at {server.url} did not answer within 2 s "
                                 "(set MMNB_REANA_TIMEOUT to wait longer)"]  # fmt: skip
    server.delay = 0.5  # slow but within the limit: everything works
    assert reana(server, "submit", "--name", "vbf").returncode == 0
    assert server.workflows and next(iter(server.workflows.values())).status in ("queued", "running")
