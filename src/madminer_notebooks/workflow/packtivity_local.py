"""A packtivity executor that runs ``docker-encapsulated`` workflow steps as local processes.

REANA accepts only ``docker-encapsulated`` steps, so the Yadage specs say so; on a machine without a
Docker engine, ``drivers/yadage`` loads this module (``yadage-run --plugins`` with its name) and selects it
with a packtivity sync-config file (``executor: {docker-encapsulated: mmnb-local}``). The spec stays exactly
what REANA runs; only where the command executes changes.

The step command is what the image would run. Here it runs under ``bash`` in the step's work folder, with
the project environment (``MMNB_LOCAL_VENV``) first on ``PATH`` in place of the image's interpreter, and
``MMNB_LOCAL_THREADS`` torch/BLAS threads (each step's share of the cores, as the local driver gives each
kernel). Output goes to packtivity's per-step log files, as with containers, and a failing step raises with
the last ``error:`` line of its output, which names the stage, the notebook cell and the error.

This module is imported by the workflow environment's Python (yadage, packtivity), not the project's.
"""

from __future__ import annotations

import os
import subprocess

from packtivity import logutils
from packtivity.handlers.execution_handlers import command_argv, executor

NAME = "mmnb-local"


def _environment() -> dict[str, str]:
    venv = os.environ.get("MMNB_LOCAL_VENV")
    if not venv or not os.path.isfile(os.path.join(venv, "bin", "python")):
        raise RuntimeError(f"MMNB_LOCAL_VENV={venv!r} is not a virtual environment; drivers/yadage sets it")
    env = dict(os.environ)
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = venv
    threads = os.environ.get("MMNB_LOCAL_THREADS")
    if threads:
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    # the workflow environment's own settings must not leak into the project's interpreter
    for name in ("PYTHONPATH", "PACKTIVITY_SYNCCONFIGFILE", "PYTHONHOME"):
        env.pop(name, None)
    return env


@executor("docker-encapsulated", NAME)
def run_locally(config, environment, state, job, metadata):
    """Run the step's command as ``docker run`` would, minus the container: same command, same paths."""
    with logutils.setup_logging_topic(config, metadata, state, "step", return_logger=True) as log:
        if "command" not in job:
            raise RuntimeError(f"step {metadata['name']}: only command steps can run locally, got {sorted(job)}")
        argv = ["bash", "-c", command_argv(environment, job, log)[0][-1]]
        workdir = state.readwrite[0]
        os.makedirs(workdir, exist_ok=True)
        image = f"{environment['image']}:{environment['imagetag']}"
        log.info("running locally in place of image %s: %s", image, job["command"])
        last_error = ""
        with logutils.setup_logging_topic(config, metadata, state, "run", return_logger=True) as runlog:
            proc = subprocess.Popen(
                argv, cwd=workdir, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                runlog.info(line)
                if line.startswith("error:"):
                    last_error = line
            code = proc.wait()
        if code:
            message = f"step {metadata['name']} exited with status {code}: {last_error or 'see its run log'}"
            log.error(message)
            raise RuntimeError(message)
