"""``drivers/yadage``: run the Yadage workflows of ``workflow/`` locally with ``yadage-run``.

The specs are the ones REANA runs, unchanged. Their steps are ``docker-encapsulated``: with
``--executor docker`` each runs in the workflow image, as REANA runs it (podman's or Docker's CLI); with
``--executor local`` they run as local processes in the project environment through the packtivity
executor in :mod:`madminer_notebooks.workflow.packtivity_local`; ``auto`` takes the containers when an engine answers
and the image is built. yadage itself runs in the separate workflow environment (``.venv-workflow``).

Running the same command again on the same work folder resumes: every step re-executes, and its stage
skips the notebooks whose manifest says they are up to date, so finished steps cost only their start.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import yaml
from tqdm import tqdm

from .. import tracking
from ..atomic import atomic_file
from ..chain import executions, script_only, workflow_stages
from ..driver.errors import RunFailed, UsageError, exit_status
from ..driver.kernels import share_of_cores
from ..driver.preflight import preflight
from ..driver.step import PUBLICATION
from ..external_events import stage_parameter_file
from ..params import load_params
from ..paths import RunPaths
from ..repository import ROOT
from .image import container_engine, image_built, image_name

log = logging.getLogger("madminer_notebooks.driver.yadage")

SPECS = ROOT / "workflow"
WORKFLOWS = {  # the Yadage spec of each workflow and the stages it runs
    name: (f"{name}.yml", workflow_stages(name)) for name in ("combined", "physics", "ml")
}
PLUGIN = "madminer_notebooks.workflow.packtivity_local"


class WorkflowIncomplete(RunFailed):
    """yadage reported success but executions of the chain are missing."""


def check_scatters(folder: Path = SPECS) -> int:
    """Every scattered stage of every spec iterates over exactly one list.

    Yadage's ``zip`` truncates unequal lists to the shortest without a word, so two zipped lists that came
    out of different steps could silently drop work; a single list (computed by a step from the parameters,
    see :func:`madminer_notebooks.driver.step.scatter_lists`) cannot. Returns the number of scatters seen.
    """
    seen = 0
    for spec in sorted(folder.glob("*.yml")):
        for stage in (yaml.safe_load(spec.read_text()) or {}).get("stages", []):
            scheduler = stage.get("scheduler", {})
            if scheduler.get("scheduler_type") != "multistep-stage":
                continue
            seen += 1
            scattered = scheduler.get("scatter", {}).get("parameters", [])
            if len(scattered) != 1:
                raise UsageError(
                    f"{spec}: stage {stage['name']} scatters over {scattered}; use one list (yadage's zip "
                    "truncates lists of unequal length silently)"
                )
    return seen


def choose_executor(executor: str, engine: str | None) -> tuple[str, str | None]:
    """(executor, engine). ``auto`` takes the containers when an engine answers and the image is built, and
    says why not otherwise; ``docker`` without either is an error before anything starts (steps never pull:
    there is no registry of ours to pull from)."""
    if executor == "local":
        return "local", None
    found = container_engine(engine)
    if found is None:
        why = f"no container engine answers ({engine or 'podman or docker'} info failed)"
    elif not image_built(found):
        why = f"the image {image_name()} is not built here; run drivers/build-image"
    else:
        return "docker", found
    if executor == "docker":
        raise UsageError(f"--executor docker: {why}")
    log.info("steps run as local processes: %s", why)
    return "local", None


def engine_shim(engine: str, folder: Path) -> Path | None:
    """packtivity runs ``docker run ...``; with podman, a folder holding a ``docker`` that is podman, to put
    first on yadage's PATH. podman's own CLI, not its Docker-API service: through the service each running
    container kept the service busy at about one core (12 CPU-seconds for a 10 s step, measured), on a
    machine whose cores the steps need."""
    if engine == "docker":
        return None
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "docker"
    shim.write_text(f'#!/bin/sh\nexec {shutil.which(engine)} "$@"\n')
    shim.chmod(0o755)
    return folder


def _physics_inside(folders: list[str], init: Path) -> list[str]:
    """The physics folders given to ``--workflow ml``, made visible to the containers: a step's container
    sees only the work folder's step folders (``init`` among them), so each folder is linked into
    ``init/physics-N`` file by file (hard links: no copy on the same file system) and the steps get those
    paths. Redone at every start, so a resumed run sees the folders as they are now."""
    inside = []
    for n, folder in enumerate(folders):
        target = init / f"physics-{n}"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target, copy_function=_link_or_copy)
        inside.append(str(target))
    return inside


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed there
        shutil.copy2(src, dst)


def expected_steps(params: dict, stages: tuple[str, ...]) -> dict[str, list[str]]:
    """Per stage, the executions its workflow steps must have run."""
    return {stage: [ex.name for ex in executions(params, stage)] for stage in stages}


def _environment(executor: str, parallel: int, work_dir: Path, tracking_uri: str = "none",
                 engine: str | None = None) -> dict[str, str]:  # fmt: skip
    threads = str(share_of_cores(parallel))
    env = {**os.environ, "PYTHONWARNINGS": "ignore::UserWarning"}  # pkg_resources notices from yadage-schemas
    if executor == "local":
        config = work_dir / "_mmnb" / "packtivity.yml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump({"executor": {"docker-encapsulated": "mmnb-local"}}))
        env.update(
            PACKTIVITY_SYNCCONFIGFILE=str(config),
            PYTHONPATH=str(ROOT / "src"),  # the plugin module only; it imports nothing else of the project
            MMNB_LOCAL_VENV=str(ROOT / ".venv"),
            MMNB_LOCAL_THREADS=threads,
        )
    else:
        env["PACKTIVITY_DOCKER_CMD_MOD"] = " ".join(container_flags(threads, tracking_uri))
        env["PACKTIVITY_DOCKER_NOPULL"] = "1"  # a locally built image; REANA pulls from a registry
        shim = engine_shim(engine or "docker", work_dir / "_mmnb" / "engine")
        if shim is not None:
            env["PATH"] = f"{shim}{os.pathsep}{env.get('PATH', '')}"
    return env


#: The UID steps run as when the driver runs as root: REANA runs them as an arbitrary non-root UID, GID 0.
STEP_UID = 12345


def container_flags(threads: str, tracking_uri: str) -> list[str]:
    """How a step's container runs: as REANA runs it (a non-root UID, GID 0; the caller's own UID when that
    is not root, so the files it writes stay the caller's), on a read-only image with a private /tmp and
    HOME, its threads capped to its share of the cores. A tracking server on this machine's loopback is
    reachable only from the host's network namespace."""
    uid = os.getuid() or STEP_UID
    flags = [f"-u {uid}:0", "--read-only", "--tmpfs /tmp:rw,mode=1777", "--tmpfs /home/mmnb:rw,mode=1777",
             f"-e OMP_NUM_THREADS={threads}"]  # fmt: skip
    host = urllib.parse.urlsplit(tracking_uri).hostname if "://" in tracking_uri else None
    if host in ("127.0.0.1", "localhost", "::1"):
        flags.append("--network host")
    return flags


def _progress(work_dir: Path, total: int, since: float, done: threading.Event) -> None:
    """A bar of finished steps: each writes its publication file as its last act."""
    with tqdm(total=total, desc="workflow steps", unit="step", file=sys.stderr, disable=None) as bar:
        while not done.wait(1.0):
            n = sum(1 for p in work_dir.rglob(PUBLICATION) if p.stat().st_mtime >= since)
            bar.update(min(n, total) - bar.n)


def _failures(work_dir: Path, since: float) -> list[str]:
    """The ``error:`` lines that failed steps printed (stage, notebook cell, error)."""
    found = []
    for logfile in sorted(work_dir.glob("**/_packtivity/*.run.log")):
        if logfile.stat().st_mtime < since:
            continue
        for line in logfile.read_text(errors="replace").splitlines():
            message = step_output(line)
            if message.startswith("error: "):
                found.append(f"{logfile.parent.parent.relative_to(work_dir)}: {message.removeprefix('error: ')}")
    return found


def step_output(line: str) -> str:
    """What a step printed, from a line of packtivity's run log (``time | logger | level | message``): the
    docker backend logs each line of the container's output as the repr of its bytes, b'...'."""
    fields = line.split(" | ", 3)
    message = fields[3] if len(fields) == 4 else ""
    if message[:2] in ("b'", 'b"') and message[-1:] == message[1]:
        try:
            return ast.literal_eval(message).decode(errors="replace")
        except (SyntaxError, ValueError):
            return message
    return message


def _tracking(params: dict, work_dir: Path, executor: str, workflow: str) -> tuple[str, str]:
    """The MLflow URI the ML steps get ('none': off) and the chain's run id (kept in the work folder).

    "On" without a URI means a SQLite store in the work folder; the experiments are created (and the store
    initialised) here, before parallel steps could race to do it.
    """
    id_file = work_dir / "_mmnb" / "run_id"
    if not id_file.is_file():
        id_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(id_file) as tmp:
            tmp.write_text(uuid.uuid4().hex[:12])
    run_id = id_file.read_text().strip()
    cfg = tracking.config(params, RunPaths(work_dir))
    if cfg is None or workflow == "physics":
        return "none", run_id
    if executor == "docker" and cfg.uri.startswith("sqlite:"):
        raise UsageError(
            f"tracking to {cfg.uri} cannot work from containers (they see only their steps' folders); "
            "give a server: MLFLOW_TRACKING_URI=http://HOST:PORT or tracking.uri"
        )
    tracking.prepare(params, RunPaths(work_dir))  # an unreachable store: exit 2 (errors.exit_status)
    return cfg.uri, run_id


def _final_folder(work_dir: Path, workflow: str) -> Path:
    return work_dir / ("ml/plotting" if workflow == "combined" else "plotting" if workflow == "ml" else "combine")


def run(args: argparse.Namespace) -> int:
    params_file = Path(args.params).resolve()
    params = load_params(params_file)
    spec, stages = WORKFLOWS[args.workflow]
    check_scatters()
    if script_only(params):
        raise UsageError(
            f"{params_file}: generation.madgraph.script_only prepares MadGraph scripts for a batch system and stops; "
            "run it with drivers/run, then list the produced files under generation.events (backend external)"
        )
    preflight(params, params_file, stages)
    if args.workflow == "ml" and not args.physics:
        raise UsageError("--workflow ml needs --physics DIR (a run folder with setup.h5, event summaries, combined.h5)")
    physics = [str(Path(d).resolve()) for d in args.physics or []]
    for folder in physics:
        if not (Path(folder) / "data" / "combined.h5").is_file():
            raise UsageError(f"--physics {folder}: no data/combined.h5 there (run the physics stages first)")
    executor, engine = choose_executor(args.executor, args.engine)
    parallel = args.parallel or params["run"]["parallel"]

    work_dir = Path(args.work_dir).resolve()
    if executor == "docker":  # the steps' UID shares only GID 0 with this process: folders group-writable
        os.umask(0o002)
    if args.fresh and work_dir.exists():
        if not (work_dir / "_yadage").is_dir():
            raise UsageError(f"--fresh: {work_dir} is not a yadage work folder; refusing to delete it")
        shutil.rmtree(work_dir)
    init = work_dir / "init"
    init.mkdir(parents=True, exist_ok=True)
    stage_parameter_file(params_file, init, "params.yaml")  # with the event files it lists, if any

    tracking_uri, run_id = _tracking(params, work_dir, executor, args.workflow)
    command = [
        str(ROOT / ".venv-workflow" / "bin" / "yadage-run"),
        str(work_dir),
        spec,
        "--toplevel", str(SPECS),
        "--parameter", "params_file=params.yaml",
        "--backend", f"multiproc:{parallel}",
        "--accept-metadir",  # resume in the same folder
        # yadage inspects its graph every 0.02 s by default, which keeps most of a core busy; steps take seconds
        "--updateinterval", "0.5",
    ]  # fmt: skip
    if args.workflow != "physics":
        command += ["--parameter", f"tracking_uri={tracking_uri}", "--parameter", f"run_id={run_id}"]
    if physics and executor == "docker":
        physics = _physics_inside(physics, init)
    if physics:
        command += ["--parameter", f"physics={yaml.safe_dump(physics, default_flow_style=True).strip()}"]
    if executor == "local":
        command += ["--plugins", PLUGIN]
    wanted = expected_steps(params, stages)
    total = sum(map(len, wanted.values()))
    log.info("yadage: %s workflow, %d steps, executor %s, %d at once, work folder %s", args.workflow, total,
             executor + (f" ({engine})" if engine else ""), parallel, work_dir)  # fmt: skip
    logfile = work_dir / "yadage.log"
    start = time.time()
    done = threading.Event()
    bar = threading.Thread(target=_progress, args=(work_dir, total, start, done), daemon=True)
    with open(logfile, "w") as out:
        env = _environment(executor, parallel, work_dir, tracking_uri, engine)
        proc = subprocess.Popen(command, cwd=work_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        bar.start()
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
        finally:
            done.set()
            bar.join()
    wall = time.time() - start
    if code != 0:
        failures = _failures(work_dir, start)
        detail = "\n".join(failures) if failures else f"no step reported an error; see {logfile}"
        print(f"error: the workflow failed after {wall:.0f} s:\n{detail}\nlog: {logfile}", file=sys.stderr)
        print("finished steps are kept; run the same command again to resume", file=sys.stderr)
        return 1
    _check_complete(work_dir, wanted)
    final = _final_folder(work_dir, args.workflow)
    if (final / "summary.json").is_file():
        with atomic_file(work_dir / "summary.json") as tmp:
            shutil.copyfile(final / "summary.json", tmp)
        log.info("summary: %s", work_dir / "summary.json")
        log.info("report:  %s", final / "report" / "index.html")
    else:
        log.info("results: %s", final)
    log.info("done in %.1f s", wall)
    return 0


def _check_complete(work_dir: Path, wanted: dict[str, list[str]]) -> None:
    """Every execution the chain defines ran in some step: a scatter that lost items cannot pass."""
    executed = {p.stem for p in work_dir.glob("**/notebooks/*.ipynb") if not p.name.startswith(".")}
    for stage, names in wanted.items():
        missing = [n for n in names if n not in executed]
        if missing:
            raise WorkflowIncomplete(
                f"the workflow finished without running {len(missing)} of the {len(names)} executions of stage "
                f"{stage}: {', '.join(missing)}"
            )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", required=True, help="parameter file (params/*.yaml)")
    parser.add_argument("--work-dir", required=True, help="yadage work folder (one sub-folder per step)")
    parser.add_argument("--workflow", choices=sorted(WORKFLOWS), default="combined")
    parser.add_argument("--physics", nargs="+", metavar="DIR", help="--workflow ml: folders with the physics results")
    parser.add_argument("--executor", choices=("auto", "local", "docker"), default="auto",
                        help="where docker-encapsulated steps run (auto: in containers when an engine answers "
                             "and the image is built)")  # fmt: skip
    parser.add_argument("--engine", choices=("podman", "docker"),
                        help="engine of the containers (default: podman if installed, else docker)")  # fmt: skip
    parser.add_argument("--parallel", type=int, help="steps at once (default: run.parallel of the params)")
    parser.add_argument("--fresh", action="store_true", help="delete the work folder first instead of resuming")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drivers/yadage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    return exit_status(lambda: run(args), "steps")


if __name__ == "__main__":
    sys.exit(main())
