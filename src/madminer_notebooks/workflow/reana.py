"""``drivers/reana``: validate the REANA workflow offline, submit it, follow it, fetch its results.

    drivers/reana validate [--params FILE] [--image NAME:TAG]
    drivers/reana submit   [--params FILE] [--image NAME:TAG] [--name NAME]
    drivers/reana status   [--name NAME]
    drivers/reana download [--name NAME] [--output DIR]

What goes to REANA is a copy of ``workflow/`` (``reana.yaml`` and the Yadage specs) with the parameter set
under ``params/``: the same specs and notebooks-in-an-image that ``drivers/yadage`` runs locally. The
parameter file is validated against the schema before anything is uploaded. ``--image`` (or ``MMNB_IMAGE``)
replaces the image of ``workflow/steps.yml`` in the copy, for an image pushed to a registry the cluster can
pull from. ``reana-client`` runs from the workflow environment (``.venv-workflow``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import yaml

from ..driver.errors import UsageError
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


def _client(args: list[str], cwd: Path) -> int:
    env = {**os.environ, "PYTHONWARNINGS": "ignore::UserWarning"}
    code = subprocess.run([str(CLIENT), *args], cwd=cwd, env=env).returncode
    if code and args[0] != "validate":
        print(f"error: reana-client {args[0]} failed (exit {code}) with the server at "
              f"{os.environ.get('REANA_SERVER_URL')}; check the address, the token and the workflow name",
              file=sys.stderr)  # fmt: skip
    return code


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
        print(f"{name}: built here, runs as UID 12345 with GID 0 (read-only too), names no build machine",
              file=sys.stderr)  # fmt: skip
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drivers/reana", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("validate", "submit"):
        p = sub.add_parser(name)
        p.add_argument("--params", type=Path, help="parameter set to run (default: the one in workflow/reana.yaml)")
        p.add_argument("--image", default=os.environ.get("MMNB_IMAGE"), help="NAME:TAG of the image in a registry")
        if name == "validate":
            p.add_argument("--environments", action="store_true",
                           help="also check the image: built here, runs as an arbitrary UID with GID 0, no build "
                                "machine's CA or index inside (needs Docker or podman)")  # fmt: skip
        if name == "submit":
            p.add_argument("--name", default=DEFAULT_NAME, help=f"REANA workflow name (default {DEFAULT_NAME})")
            p.add_argument(
                "--tracking-uri",
                default=os.environ.get("MLFLOW_TRACKING_URI"),
                help="MLflow server the cluster's jobs can reach (default: MLFLOW_TRACKING_URI; none: off)",
            )
    status = sub.add_parser("status")
    status.add_argument("--name", default=DEFAULT_NAME)
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
                code = _client(["validate", "--file", reana_yaml.name], Path(tmp))
                if code == 0 and args.command == "validate" and args.environments:
                    code = _check_environment(args.image)
                if code or args.command == "validate":
                    return code
                run_id = uuid.uuid4().hex[:12]
                extra = ["--parameter", f"run_id={run_id}"]
                if args.tracking_uri:
                    extra += ["--parameter", f"tracking_uri={args.tracking_uri}"]
                print(f"chain run id {run_id} (the mmnb.run_id tag of its MLflow runs)", file=sys.stderr)
                return _client(["run", "--workflow", args.name, "--file", reana_yaml.name, *extra], Path(tmp))
        _require_server()
        if args.command == "status":
            code = _client(["status", "--workflow", args.name], Path.cwd())
        else:
            args.output.mkdir(parents=True, exist_ok=True)
            code = _client(["download", "--workflow", args.name, "--output-directory", str(args.output)], Path.cwd())
        return code
    except (ParamsError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
