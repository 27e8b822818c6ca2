"""The workflow image: build it (``drivers/build-image``) and check it (``drivers/reana validate --environments``).

    drivers/build-image [--engine podman|docker] [--base IMAGE] [--torch-index URL] [--pip-index URL]
                        [--ca-bundle FILE] [--offline] [--push REGISTRY/NAME] [-- BUILD OPTIONS ...]

The image's name and tag are those of ``workflow/steps.yml`` (the one place they live). On a laptop with
Docker, no option is needed: the official Python base image, torch's CPU index and PyPI. ``--offline`` is
for a machine that reaches no container registry and no torch index (like the CI machine): the base image
is made from Debian's packages (``drivers/make-base-image``), the CPU torch wheel that pip finds on this
machine is served to the build as a one-package index on 127.0.0.1, and the build runs with host
networking. An image built that way is labelled ``mmnb.local-only=true`` and ``--push`` refuses it: its
base was made here. A CA bundle (``--ca-bundle``, or pip's ``global.cert`` when offline) reaches the build
as a secret, mounted for pip alone, never stored in a layer; :func:`check_image` verifies that.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import http.server
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from ..driver.errors import RunFailed, UsageError, exit_status
from ..repository import ROOT, git_commit

log = logging.getLogger(__name__)

LOCAL_BASE = "localhost/mmnb-base:bookworm"
LOCAL_ONLY_LABEL = "mmnb.local-only"
TORCH = "torch==2.13.0"
#: Where the offline build serves this machine's torch wheel (the same every time, for the layer cache).
TORCH_INDEX_PORT = 38417


def image_name(steps: Path = ROOT / "workflow" / "steps.yml") -> str:
    """NAME:TAG of the workflow image, from the step templates."""
    environment = (yaml.safe_load(steps.read_text()) or {}).get("environment") or {}
    if not environment.get("image") or not environment.get("imagetag"):
        raise UsageError(f"{steps}: environment.image and environment.imagetag are not both set")
    return f"{environment['image']}:{environment['imagetag']}"


def container_engine(choice: str | None = None) -> str | None:
    """The engine's command: ``choice``, else podman when installed, else docker; None when it does not
    answer (``info`` fails: no daemon, or no permission)."""
    found = choice or ("podman" if shutil.which("podman") else "docker")
    if shutil.which(found) is None:
        return None
    try:
        ok = subprocess.run([found, "info"], capture_output=True, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    return found if ok else None


def engine(choice: str | None = None) -> str:
    """:func:`container_engine`, or a clear error."""
    found = container_engine(choice)
    if found is None:
        raise UsageError(f"no container engine answers ({choice or 'podman or docker'} info failed): install "
                         "Docker or podman (drivers/ensure-podman)")  # fmt: skip
    return found


def image_built(cmd: str, name: str | None = None) -> bool:
    return subprocess.run([cmd, "image", "inspect", name or image_name()], capture_output=True).returncode == 0


#: Imported by every step before its notebooks: the stage driver and the notebook kernel; and, by the tracked
#: steps, the MLflow client (``tracking``: without bytecode, its import took twice as long in every tracked step).
STEP_MODULES = ("madminer_notebooks.driver.cli", "madminer_notebooks.driver.step", "papermill", "nbconvert",
                "ipykernel.kernelapp", "torch", "mlflow", "mlflow.entities", "mlflow.exceptions")  # fmt: skip


def import_step_modules(notebooks: Path = ROOT / "notebooks") -> list[str]:
    """Import what the workflow steps import: :data:`STEP_MODULES` and every import statement of the stage
    notebooks. Run in the image build, after the bytecode of the whole environment was deleted, it writes
    bytecode for exactly these modules; the image is read-only at run time, so a module without bytecode is
    compiled again at every step's start. Returns the statements run."""
    statements = [f"import {m}" for m in STEP_MODULES]
    for path in sorted(notebooks.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            tree = ast.parse("".join(cell["source"]), filename=str(path))
            # a cell's own import statements (one written over several lines included), not those inside a
            # branch: those import what only some configurations use (Delphes, the shower)
            statements += [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    statements = list(dict.fromkeys(statements))
    for statement in statements:
        exec(statement, {})  # noqa: S102 - the notebooks' own import lines
    return statements


def host_ca_bundle() -> str | None:
    """The CA bundle pip trusts on this machine (PIP_CERT, pip's configured ``cert``, or the system bundle):
    a machine behind a TLS-inspecting gateway needs it inside the build too."""
    if os.environ.get("PIP_CERT"):
        return os.environ["PIP_CERT"]
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    found = re.search(r"^\S*\.cert='([^']+)'", listing, re.M)
    if found:
        return found[1]
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    return str(system) if system.is_file() else None


def local_torch_wheel() -> Path:
    """The CPU torch wheel pip installs on this machine (its find-links folder or a local index)."""
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", folder, TORCH],
            capture_output=True, text=True,
        )  # fmt: skip
        wheels = list(Path(folder).glob("torch-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise UsageError(f"--offline: pip cannot get {TORCH} on this machine:\n{proc.stderr[-1500:]}")
        if "+cpu" not in wheels[0].name and "cpu" not in proc.stdout:
            log.warning("%s does not look like a CPU build", wheels[0].name)
        keep = Path(tempfile.mkdtemp(prefix="mmnb-torch-")) / wheels[0].name
        shutil.move(str(wheels[0]), keep)
        return keep


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # pip's requests are not worth a line each


@contextlib.contextmanager
def one_package_index(wheel: Path, port: int = 0) -> Iterator[str]:
    """Serve ``wheel`` as a PEP 503 index on 127.0.0.1 for the length of the build; yields its URL.

    On ``port`` when it is free (any free port when it is 0 or taken): the URL is a build argument, and a
    build argument that differs from the last build's invalidates every cached layer after it."""
    root = Path(tempfile.mkdtemp(prefix="mmnb-index-"))
    package = root / "simple" / "torch"
    package.mkdir(parents=True)
    os.symlink(wheel, package / wheel.name)
    (package / "index.html").write_text(f'<!doctype html><a href="{wheel.name}">{wheel.name}</a>\n')
    handler = functools.partial(_QuietHandler, directory=str(root))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        log.warning("port %d is taken: the torch index gets another, and the build reuses no cached layer", port)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/simple"
    finally:
        server.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def build(args: argparse.Namespace) -> int:
    cmd = engine(args.engine)
    name = image_name()
    base, torch_index, ca = args.base, args.torch_index, args.ca_bundle
    extra = list(args.build_options)
    if args.offline:
        base = base or LOCAL_BASE
        ca = ca or host_ca_bundle()
        extra += ["--network", "host"]
        if not image_built(cmd, base):
            if base != LOCAL_BASE:
                raise UsageError(f"--base {base}: no such image here")
            log.info("making the base image %s from Debian's packages", base)
            subprocess.run([str(ROOT / "drivers" / "make-base-image"), "--engine", cmd], check=True)
    local_only = bool(base) and base.startswith("localhost/")
    label = f"{LOCAL_ONLY_LABEL}={str(local_only).lower()}"
    command = [cmd, "build", "-f", str(ROOT / "workflow" / "docker" / "Dockerfile"), "-t", name,
               "--build-arg", f"GIT_COMMIT={git_commit()}", "--label", label]  # fmt: skip
    if base:
        command += ["--build-arg", f"BASE_IMAGE={base}"]
    if args.pip_index:
        command += ["--build-arg", f"PIP_INDEX={args.pip_index}"]
    if ca:
        if not Path(ca).is_file():
            raise UsageError(f"--ca-bundle {ca}: no such file")
        command += ["--secret", f"id=pip-ca,src={ca}"]
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.offline and not torch_index:
            torch_index = stack.enter_context(one_package_index(local_torch_wheel(), TORCH_INDEX_PORT))
        if torch_index:
            command += ["--build-arg", f"TORCH_INDEX={torch_index}"]
        log.info("%s", " ".join(command + extra + [str(ROOT)]))
        if subprocess.run(command + extra + [str(ROOT)]).returncode != 0:
            raise RunFailed(f"{cmd} build failed (its output above)")
    size = subprocess.run([cmd, "image", "inspect", name, "--format", "{{.Size}}"], capture_output=True, text=True)
    log.info("built %s in %.0f s (%.2f GB)%s", name, time.perf_counter() - start, int(size.stdout or 0) / 1e9,
             ", local-only (base made here)" if local_only else "")  # fmt: skip
    if args.push:
        if local_only:
            raise UsageError(f"--push: {name} is built on {base}, made on this machine; build on the official base")
        target = f"{args.push}:{name.rsplit(':', 1)[1]}"
        subprocess.run([cmd, "tag", name, target], check=True)
        subprocess.run([cmd, "push", target], check=True)
        log.info("pushed %s", target)
    return 0


def check_image(name: str, cmd: str, uid: str = "12345:0") -> list[str]:
    """What is wrong with ``name`` as a step image (empty: nothing): it exists here; as REANA runs it (an
    arbitrary UID with GID 0) it runs bash and the project and can write its HOME and a mounted work
    folder, and so it can read-only with a private /tmp and HOME (as ``drivers/yadage --executor docker``
    runs it); it carries no CA bundle, build secret or index address of the build machine."""
    if not image_built(cmd, name):
        return [f"{name}: not built here (drivers/build-image)"]
    problems = []
    probe = (
        "set -e; python -c 'import madminer_notebooks.driver.cli'; touch /work/written-$RUN \"$HOME/written-$RUN\";"
        " ls /run/secrets 2>/dev/null || true; python -m pip config list 2>/dev/null || true; env"
    )
    read_only = ["--read-only", "--tmpfs", "/tmp:rw,mode=1777", "--tmpfs", "/home/mmnb:rw,mode=1777"]
    with tempfile.TemporaryDirectory() as work:
        os.chmod(work, 0o777)
        for run, flags in (("reana", []), ("read-only", read_only)):
            proc = subprocess.run([cmd, "run", "--rm", "-u", uid, *flags, "-e", f"RUN={run}", "-v", f"{work}:/work",
                                   name, "bash", "-c", probe], capture_output=True, text=True, timeout=600)  # fmt: skip
            if proc.returncode != 0:
                problems.append(f"{name}: fails as UID:GID {uid} ({run}): {proc.stderr.strip()[-400:]}")
                continue
            if not (Path(work) / f"written-{run}").is_file():
                problems.append(f"{name}: cannot write its work folder as {uid} ({run})")
            leaks = re.findall(r"127\.0\.0\.1:\d+|PIP_CERT=\S+|pip-ca|\.cert=\S+|index-url=\S+", proc.stdout)
            if leaks:
                problems.append(f"{name}: it names the build machine: {', '.join(sorted(set(leaks)))}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drivers/build-image", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--engine", choices=("podman", "docker"), help="default: podman if installed, else docker")
    parser.add_argument("--base", help="base image (default: the official python:3.11 slim bookworm)")
    parser.add_argument("--torch-index", help="PEP 503 index with the CPU torch wheel")
    parser.add_argument("--pip-index", help="index of the other packages (default PyPI)")
    parser.add_argument("--ca-bundle", help="CA bundle pip needs during the build (a build secret, not stored)")
    parser.add_argument("--offline", action="store_true",
                        help="no registry: local base image, this machine's torch wheel, host network")  # fmt: skip
    parser.add_argument("--push", metavar="REGISTRY/NAME", help="tag and push after the build")
    parser.add_argument("build_options", nargs="*", help="after --: passed to the engine's build command")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    return exit_status(lambda: build(args), "layers")


if __name__ == "__main__":
    sys.exit(main())
