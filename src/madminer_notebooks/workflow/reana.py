"""``drivers/reana``: validate the REANA workflow offline, submit it, follow it, fetch its results.

    drivers/reana validate [--params FILE] [--image NAME:TAG]
    drivers/reana submit   [--params FILE] [--image NAME:TAG] [--name NAME]
    drivers/reana status   [--name NAME] [--follow [--every SECONDS]]
    drivers/reana download [--name NAME] [--output DIR]

What goes to REANA is a copy of ``workflow/`` (``reana.yaml`` and the Yadage specs) with the parameter set
under ``params/``: the same specs and notebooks-in-an-image that ``drivers/yadage`` runs locally. The
parameter file is validated against the schema before anything is uploaded. ``--image`` (or ``MMNB_IMAGE``)
replaces the image of ``workflow/steps.yml`` in the copy, for an image pushed to a registry the cluster can
pull from. ``reana-client`` runs from the workflow environment (``.venv-workflow``).

The server commands check first that the server answers and accepts the token (``reana-client ping``).
Every failure ends in one ``error:`` line and exit status 1 (2 for bad input): an unreachable server, a
refused token, a server error while the inputs are uploaded (the half-made workflow is named, for
``reana-client delete``), a workflow that failed (``status`` gives the failed step and the last line of its
log), a server slower than ``MMNB_REANA_TIMEOUT`` seconds (default 300) per command. ``download`` fetches
exactly the ``outputs.files`` of ``workflow/reana.yaml`` to their paths under ``--output``, all or none.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from ..driver.errors import RunFailed, UsageError
from ..external_events import stage_parameter_file
from ..params import ParamsError, load_params
from ..repository import ROOT
from .yadage import SPECS, check_scatters

CLIENT = ROOT / ".venv-workflow" / "bin" / "reana-client"
DEFAULT_NAME = "madminer-notebooks"
SERVER_VARIABLES = ("REANA_SERVER_URL", "REANA_ACCESS_TOKEN")


def stage_submission(folder: Path, params_file: Path | None, image: str | None) -> Path:
    """Fill ``folder`` with what REANA receives; return the path of its ``reana.yaml``."""
    for spec in sorted(SPECS.glob("*.yml")) + [SPECS / "reana.yaml"]:
        shutil.copyfile(spec, folder / spec.name)
    shutil.copytree(ROOT / "params", folder / "params")
    reana = yaml.safe_load((folder / "reana.yaml").read_text())
    if params_file is not None:
        # the parameter file travels with the event files it lists (under params/events/)
        stage_parameter_file(params_file, folder / "params")
        reana["inputs"]["parameters"]["params_file"] = f"params/{params_file.name}"
    else:
        load_params(folder / reana["inputs"]["parameters"]["params_file"])
    (folder / "reana.yaml").write_text(yaml.safe_dump(reana, sort_keys=False))
    if image:
        name, sep, tag = image.rpartition(":")
        if not sep or not name or "/" in tag or tag == "latest":
            raise UsageError(f"--image {image!r}: expected NAME:TAG with a pinned tag (REANA rejects 'latest')")
        steps = folder / "steps.yml"
        text = steps.read_text()
        text, n_image = re.subn(r"(?m)^(\s+image: ).*$", lambda m: m.group(1) + name, text)
        text, n_tag = re.subn(r"(?m)^(\s+imagetag: ).*$", lambda m: m.group(1) + f"'{tag}'", text)
        if (n_image, n_tag) != (1, 1):
            raise UsageError(f"{SPECS / 'steps.yml'}: expected one image and one imagetag line to replace")
        steps.write_text(text)
    return folder / "reana.yaml"


class ServerError(RunFailed):
    """The REANA server (or reana-client talking to it) refused or failed; the message is one line."""


#: Seconds any one reana-client command may take before the driver gives up on a server that does not answer.
TIMEOUT_VARIABLE = "MMNB_REANA_TIMEOUT"
TERMINAL = ("finished", "failed", "stopped", "deleted")


def _timeout() -> float:
    value = os.environ.get(TIMEOUT_VARIABLE, "300")
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"{TIMEOUT_VARIABLE}={value!r}: expected a number of seconds") from None


def _client_message(done: subprocess.CompletedProcess) -> str:
    """reana-client's error, on one line: its ``==> ERROR:`` line with the lines that continue it."""
    lines = [line.strip() for line in f"{done.stdout}\n{done.stderr}".splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("==> ERROR:"):
            rest = [line.removeprefix("==> ERROR:")]
            for more in lines[i + 1 :]:
                if more.startswith("==>"):
                    break
                rest.append(more)
            return re.sub(r"\s+", " ", " ".join(dict.fromkeys(rest))).strip().rstrip(":")
    tail = [line for line in lines if line]
    return tail[-1] if tail else "no output"


def _run_client(args: list[str], cwd: Path, doing: str) -> subprocess.CompletedProcess:
    """Run ``reana-client ARGS`` with its output captured; a server that does not answer within the time
    limit raises :class:`ServerError`."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::UserWarning"}
    limit = _timeout()
    try:
        return subprocess.run(
            [str(CLIENT), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=limit,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ServerError(
            f"{doing}: the REANA server at {os.environ.get('REANA_SERVER_URL')} did not answer within {limit:g} s "
            f"(set {TIMEOUT_VARIABLE} to wait longer)"
        ) from None


def _client(args: list[str], cwd: Path, doing: str) -> str:
    """Run ``reana-client ARGS``; return its standard output, or raise :class:`ServerError` saying what
    failed while ``doing`` what, in one line."""
    done = _run_client(args, cwd, doing)
    if done.returncode:
        raise ServerError(f"{doing}: {_client_message(done)}")
    return done.stdout


def _connect() -> None:
    """``reana-client ping``: the server answers and accepts the token, or one line says which is wrong."""
    url = os.environ["REANA_SERVER_URL"]
    try:
        _client(["ping"], Path.cwd(), "ping")
    except ServerError as err:
        text = str(err)
        if "INVALID ACCESS TOKEN" in text:
            raise ServerError(f"the REANA server at {url} refused the access token; check REANA_ACCESS_TOKEN") from None
        if "INVALID SERVER" in text:
            raise ServerError(f"cannot reach a REANA server at {url}; check REANA_SERVER_URL and the network") from None
        raise


def submit(reana_yaml: Path, name: str, parameters: dict[str, str]) -> str:
    """``reana-client run``: create the workflow, upload the inputs ``reana.yaml`` lists, start it; return the
    workflow's name with its run number."""
    _connect()
    extra = [arg for key, value in parameters.items() for arg in ("--parameter", f"{key}={value}")]
    # validated just before, by the same reana-client (drivers/reana submit runs validate first)
    args = ["run", "--workflow", name, "--file", reana_yaml.name, "--skip-validation", *extra]
    done = _run_client(args, reana_yaml.parent, "submit")
    created = re.search(rf"(?m)^({re.escape(name)}\.\d+)$", done.stdout)
    if done.returncode:
        phase = re.findall(r"(?m)^==> (Creating a workflow|Uploading files|Starting workflow)\.\.\.", done.stdout)
        where = {
            "Creating a workflow": "creating the workflow",
            "Uploading files": "uploading the inputs",
            "Starting workflow": "starting the workflow",
        }.get(phase[-1] if phase else "", "submitting")
        left = (
            f"; workflow {created.group(1)} was created on the server but not started (remove it with "
            f"'reana-client delete -w {created.group(1)}')"
            if created
            else ""
        )
        raise ServerError(f"submit failed while {where}: {_client_message(done)}{left}")
    if not created:
        raise ServerError(f"submit: reana-client printed no workflow name:\n{done.stdout}")
    return created.group(1)


def workflow_status(name: str) -> dict:
    """The server's status of workflow ``name`` (``reana-client status --json``)."""
    rows = json.loads(_client(["status", "--workflow", name, "--json"], Path.cwd(), f"status of {name}"))
    return rows[0]


def failure_message(name: str) -> str:
    """Why workflow ``name`` failed: each failed job's name with the last line of its log (else the
    workflow's own log)."""
    logs = json.loads(_client(["logs", "--workflow", name, "--json"], Path.cwd(), f"logs of {name}"))
    reasons = []
    for job in (logs.get("job_logs") or {}).values():
        if job.get("status") == "failed":
            last = [line for line in (job.get("logs") or "").splitlines() if line.strip()]
            reasons.append(f"step {job.get('job_name')}: {last[-1].strip() if last else 'no log'}")
    if not reasons:
        last = [line for line in (logs.get("workflow_logs") or "").splitlines() if line.strip()]
        reasons.append(last[-1].strip() if last else "the server gave no log")
    return "; ".join(reasons)


def follow(name: str, keep_following: bool, every: float) -> int:
    """Print the workflow's status (each change of it, until it ends, with ``keep_following``); 0 when it
    finished or is still going, 1 with the failure's message when it failed or was stopped."""
    shown = None
    while True:
        row = workflow_status(name)
        line = f"{row['name']}.{row['run_number']}: {row['status']}" + (
            f" ({row['progress']} jobs)" if row.get("progress") else ""
        )
        if line != shown:
            print(line, flush=True)
            shown = line
        if row["status"] in ("failed", "stopped"):
            raise ServerError(f"workflow {row['name']}.{row['run_number']} {row['status']}: {failure_message(name)}")
        if row["status"] in TERMINAL or not keep_following:
            return 0
        time.sleep(every)


def download_outputs(name: str, output: Path) -> list[Path]:
    """Fetch exactly the outputs that ``reana.yaml`` lists into ``output``, at their paths in the workflow.

    All of them arrive in a hidden folder next to ``output`` first and are moved in only when every one
    has arrived: a failed download leaves ``output`` as it was.
    """
    outputs = yaml.safe_load((SPECS / "reana.yaml").read_text())["outputs"]["files"]
    row = workflow_status(name)
    if row["status"] != "finished":
        raise ServerError(
            f"workflow {row['name']}.{row['run_number']} is {row['status']}: its outputs exist only "
            "once it has finished ('drivers/reana status --follow' waits for that)"
        )
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".download", dir=output.parent))
    try:
        for rel in outputs:
            one = staging / ".one"
            one.mkdir()
            _client(
                ["download", "--workflow", name, "--output-directory", str(one), rel], Path.cwd(), f"download of {rel}"
            )
            got = [p for p in one.rglob("*") if p.is_file()]
            if len(got) != 1:
                raise ServerError(f"download of {rel}: expected one file, reana-client wrote {len(got)}")
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(got[0], staging / rel)
            shutil.rmtree(one)
        placed = []
        for rel in outputs:
            (output / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, output / rel)
            placed.append(output / rel)
        return placed
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _require_server() -> None:
    missing = [name for name in SERVER_VARIABLES if not os.environ.get(name)]
    if missing:
        raise UsageError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: this command talks to a "
            "REANA server. Set REANA_SERVER_URL (e.g. https://reana.cern.ch) and REANA_ACCESS_TOKEN (your token "
            "from the server's web page); 'drivers/reana validate' works without them"
        )


def _check_environment(image: str | None) -> int:
    """reana-client's own ``--environments`` needs a Docker daemon; this checks the same things with Docker
    or podman (:func:`madminer_notebooks.workflow.image.check_image`)."""
    from .image import check_image, engine, image_name

    name = image or image_name()
    problems = check_image(name, engine())
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(
            f"{name}: built here, runs as UID 12345 with GID 0 (read-only too), names no build machine", file=sys.stderr
        )
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="drivers/reana", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("validate", "submit"):
        p = sub.add_parser(name)
        p.add_argument("--params", type=Path, help="parameter set to run (default: the one in workflow/reana.yaml)")
        p.add_argument("--image", default=os.environ.get("MMNB_IMAGE"), help="NAME:TAG of the image in a registry")
        if name == "validate":
            p.add_argument(
                "--environments",
                action="store_true",
                help="also check the image: built here, runs as an arbitrary UID with GID 0, no build "
                "machine's CA or index inside (needs Docker or podman)",
            )
        if name == "submit":
            p.add_argument("--name", default=DEFAULT_NAME, help=f"REANA workflow name (default {DEFAULT_NAME})")
            p.add_argument(
                "--tracking-uri",
                default=os.environ.get("MLFLOW_TRACKING_URI"),
                help="MLflow server the cluster's jobs can reach (default: MLFLOW_TRACKING_URI; none: off)",
            )
    status = sub.add_parser("status")
    status.add_argument("--name", default=DEFAULT_NAME, help="workflow name (its latest run) or NAME.RUN_NUMBER")
    status.add_argument("--follow", action="store_true", help="wait until it has finished or failed")
    status.add_argument("--every", type=float, default=30.0, help="seconds between polls with --follow (default 30)")
    download = sub.add_parser("download")
    download.add_argument("--name", default=DEFAULT_NAME)
    download.add_argument("--output", type=Path, default=Path("runs/reana"), help="folder for the outputs")
    args = parser.parse_args(argv)
    try:
        if args.command in ("validate", "submit"):
            check_scatters()
            if args.command == "submit":
                _require_server()
            with tempfile.TemporaryDirectory(prefix="mmnb-reana-") as tmp:
                reana_yaml = stage_submission(Path(tmp), args.params, args.image)
                code = subprocess.run(
                    [str(CLIENT), "validate", "--file", reana_yaml.name],
                    cwd=tmp,
                    stdout=sys.stderr if args.command == "submit" else None,  # submit's stdout: the workflow name
                    env={**os.environ, "PYTHONWARNINGS": "ignore::UserWarning"},
                ).returncode
                if code == 0 and args.command == "validate" and args.environments:
                    code = _check_environment(args.image)
                if code or args.command == "validate":
                    return code
                run_id = uuid.uuid4().hex[:12]
                parameters = {"run_id": run_id}
                if args.tracking_uri:
                    parameters["tracking_uri"] = args.tracking_uri
                name = submit(reana_yaml, args.name, parameters)
                print(
                    f"submitted {name}; chain run id {run_id} (the mmnb.run_id tag of its MLflow runs); follow it "
                    f"with 'drivers/reana status --name {name} --follow'",
                    file=sys.stderr,
                )
                print(name)
                return 0
        _require_server()
        _connect()
        if args.command == "status":
            return follow(args.name, args.follow, args.every)
        placed = download_outputs(args.name, args.output)
        for path in placed:
            print(path)
        print(f"downloaded {len(placed)} output files of {args.name} into {args.output}", file=sys.stderr)
        return 0
    except (ParamsError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
