"""Shared fixtures: MadMiner setup files and generator runs, made once per test session."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The tutorial's benchmarks (theta; card value = 16.52 * theta).
BENCHMARKS = {
    "sm": (0.0, 0.0),
    "w": (10.0, 0.0),
    "ww": (0.0, 10.0),
    "neg_w": (-10.0, 0.0),
    "neg_ww": (0.0, -10.0),
}

#: The SM cross section of the generator's process and cuts, measured by MadGraph 5 3.5.7 (docs/physics.md,
#: "Tested here": 1.0019e-3 pb; the built-in generator gave 1.0073e-3 pb on the same 4000 events per benchmark).
MADGRAPH_SM_PB = 1.0019e-3


def make_setup(
    path: Path,
    benchmarks: dict[str, tuple[float, float]] = BENCHMARKS,
    lha_ids: tuple[int, int] = (2, 5),
    transform: str = "16.52*theta",
    morphing: bool = True,
) -> Path:
    """Write a MadMiner setup file with MadMiner itself (the same calls as the setup notebook)."""
    from madminer import MadMiner

    np.random.seed(1234)  # set_morphing draws extra basis points at random
    mm = MadMiner()
    for name, lha_id in zip(("CWL2", "CPWL2"), lha_ids, strict=True):
        mm.add_parameter(
            lha_block="dim6",
            lha_id=lha_id,
            parameter_name=name,
            morphing_max_power=2,
            param_card_transform=transform,
            parameter_range=(-20.0, 20.0),
        )
    for name, (cw, cpw) in benchmarks.items():
        mm.add_benchmark({"CWL2": cw, "CPWL2": cpw}, name)
    if morphing:
        mm.set_morphing(include_existing_benchmarks=True, max_overall_power=2)
    mm.save(str(path))
    return path


@pytest.fixture(scope="session")
def setup_file(tmp_path_factory) -> Path:
    return make_setup(tmp_path_factory.mktemp("setup") / "setup.h5")


def run_generator(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the generator's command line as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "madminer_notebooks.generator", "--no-progress", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"generator failed ({proc.returncode}): {proc.stderr}")
    return proc


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def generate(tmp_path_factory, setup_file):
    """generate(benchmark, events, seed, **options) -> (path, summary); cached per argument set."""
    cache: dict = {}
    folder = tmp_path_factory.mktemp("events")

    def _generate(benchmark: str, events: int, seed: int, scale: str = "fixed:125", jobs: int = 1):
        key = (benchmark, events, seed, scale, jobs)
        if key not in cache:
            out = folder / f"{benchmark}-{events}-{seed}-{scale.replace(':', '')}-{jobs}.lhe.gz"
            proc = run_generator(
                "--setup", str(setup_file), "--benchmark", benchmark, "--events", str(events),
                "--seed", str(seed), "--scale", scale, "--jobs", str(jobs), "--output", str(out),
            )  # fmt: skip
            cache[key] = (out, last_json(proc.stdout))
        return cache[key]

    return _generate


@pytest.fixture(scope="session")
def workflow_env() -> Path:
    """The workflow environment's bin folder (yadage, reana-client), made by drivers/ensure-workflow-env."""
    workflow_bin = ROOT / ".venv-workflow" / "bin"
    if not (workflow_bin / "yadage-run").is_file():
        pytest.fail("the workflow environment is missing: run drivers/ensure-workflow-env (drivers/test does)")
    return workflow_bin


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: restore the default disposition.

    A shell that runs the suite in the background (``cmd &``) starts it with SIGINT ignored; Python then
    installs no KeyboardInterrupt handler and the child would never see the test's Ctrl-C.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(what: str, condition, timeout: float = 600.0, proc: subprocess.Popen | None = None):
    """Poll ``condition`` until it returns something true; fail naming ``what`` after ``timeout`` seconds
    (or as soon as ``proc`` has exited without it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the driver exited ({proc.returncode}) before {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"waited {timeout:.0f} s for {what}")


def png_pixels(path: Path) -> np.ndarray:
    """A PNG's pixels as (height, width, 3) floats in [0, 1]; fails on anything that is not a PNG."""
    import matplotlib.image

    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return matplotlib.image.imread(path)[..., :3]


def pixels_of(image: np.ndarray, colour: str, tolerance: float = 0.1) -> int:
    """How many pixels of ``image`` have the matplotlib colour ``colour`` (within ``tolerance`` per channel)."""
    import matplotlib.colors

    rgb = np.array(matplotlib.colors.to_rgb(colour))
    return int(np.sum(np.all(np.abs(image - rgb) < tolerance, axis=-1)))


def assert_figure(path: Path, width: tuple[int, int], height: tuple[int, int], colours: dict[str, int] | None = None,
                  min_colours: int = 0) -> np.ndarray:  # fmt: skip
    """``path`` is a drawn figure: a PNG of the expected size, with at least N pixels of each line colour
    in ``colours`` and at least ``min_colours`` distinct colours (a colour map), not a blank canvas."""
    image = png_pixels(path)
    h, w = image.shape[:2]
    assert width[0] <= w <= width[1] and height[0] <= h <= height[1], f"{path.name}: {w}x{h} pixels"
    assert np.mean(np.all(image > 0.97, axis=-1)) < 0.97, f"{path.name} is blank"
    for colour, least in (colours or {}).items():
        assert pixels_of(image, colour) >= least, f"{path.name}: fewer than {least} pixels of {colour}"
    distinct = len(np.unique((image * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert distinct >= min_colours, f"{path.name}: {distinct} distinct colours"
    return image


def assert_run_plot(path: Path) -> None:
    """One of a run's headline plots, checked by what it draws (:func:`assert_figure`): the limits in every
    method's colour (its contours and legend line: a few hundred pixels on the tiny and quick runs, about 1,500
    on quick), the p-value maps as colour maps, the others as drawings of more than a few colours."""
    from madminer_notebooks.methods import METHODS

    checks = {
        "limits.png": {"colours": {m.color: 150 for m in METHODS.values()}},
        "p_values.png": {"min_colours": 300},
        "cross_sections.png": {"min_colours": 100},
        "morphing_basis.png": {"min_colours": 100},
        "distributions.png": {"min_colours": 300},
    }
    assert_figure(path, (300, 4000), (250, 5000), **checks[path.name])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(command: list[str], ready_url: str, log_file: Path, timeout: float = 300.0, env: dict | None = None):
    """Start a server (MLflow, JupyterLab) in a process group of its own; yield once ``ready_url`` answers 200.

    The whole group (the server and its workers) is stopped on every way out: the end of the tests, a
    server that never became ready, a test that failed or was interrupted. The readiness wait is long
    because on a loaded machine MLflow alone took over two minutes to start.
    """
    import signal
    import time
    import urllib.request

    with open(log_file, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(ready_url, timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready in {timeout} s"
                    raise RuntimeError(f"{command[0]} {state}:\n{log_file.read_text()[-3000:]}")
                time.sleep(0.5)
            yield proc
        finally:
            for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    # the leader is gone; members of its group may not be
                    os.killpg(proc.pid, 0)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    pass


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny parameters through the papermill driver, once per session: (params file, run folder, the
    driver's process, seconds). Read-only for its users: the reference the workflow runs must reproduce
    (a test that reruns, deletes or changes things works on a copy)."""
    from tiny import drive, write_params

    folder = tmp_path_factory.mktemp("tiny")
    params = write_params(folder)
    start = time.perf_counter()
    proc = drive(params, folder / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return params, folder / "run", proc, time.perf_counter() - start


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """``mlflow server`` (SQLite store, one worker) on 127.0.0.1, its whole process group stopped on every
    way out; yields its URL."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [str(ROOT / ".venv" / "bin" / "mlflow"), "server", "--backend-store-uri",
               f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", (folder / "artifacts").as_uri(),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serving(command, url + "/health", folder / "server.log"):
        yield url


def mlflow_runs(uri: str, family: str, run_id: str | None = None) -> list:
    """The runs of the project's experiment ``family`` (training, evaluation, ...) on a tracking server,
    those of one chain (its ``mmnb.run_id``) when given."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(f"madminer-notebooks-{family}")
    assert experiment is not None, family
    query = f"tags.`mmnb.run_id` = '{run_id}'" if run_id else ""
    return client.search_runs([experiment.experiment_id], filter_string=query, max_results=1000)


@pytest.fixture(scope="session")
def combined(setup_file, generate, tmp_path_factory):
    """A combined MadMiner file of 5 x 3000 generated events at the five benchmarks, two observables."""
    from madminer.sampling import combine_and_shuffle

    from madminer_notebooks import compat
    from madminer_notebooks.analysis import ColumnarLHEReader

    compat.apply()
    folder = tmp_path_factory.mktemp("asimov")
    files = []
    for i, benchmark in enumerate(("sm", "w", "neg_w", "ww", "neg_ww")):
        lhe, _ = generate(benchmark, 3000, 100 + i)
        reader = ColumnarLHEReader(str(setup_file))
        reader.add_sample(str(lhe), sampled_from_benchmark=benchmark)
        reader.set_smearing(pdgids=[1, 2, 3, 4, 5, 21, -1, -2, -3, -4, -5], energy_resolution_abs=0.0,
                            energy_resolution_rel=0.1, pt_resolution_abs=None, pt_resolution_rel=None,
                            eta_resolution_abs=0.1, eta_resolution_rel=0.0, phi_resolution_abs=0.1,
                            phi_resolution_rel=0.0)  # fmt: skip
        reader.add_observable("pt_j1", "j[0].pt", required=True)
        reader.add_observable("dphi_jj", "j[0].deltaphi(j[1]) * (1. if j[0].eta > j[1].eta else -1.)", required=True)
        reader.add_cut("(a[0] + a[1]).m > 120.")
        reader.add_cut("(a[0] + a[1]).m < 130.")
        np.random.seed(i)
        reader.analyse_samples()
        reader.save(str(folder / f"{benchmark}.h5"))
        files.append(str(folder / f"{benchmark}.h5"))
    np.random.seed(0)
    combine_and_shuffle(files, str(folder / "combined.h5"))
    return folder / "combined.h5"


#: The workflow image's build, started in the background as soon as the collected tests include container
#: tests: most of its five minutes wait on Debian's mirror and PyPI, so it overlaps the tests before them.
_IMAGE_BUILD: dict = {}


def image_build_command(engine: str) -> list[str]:
    """``drivers/build-image`` as the container tests build the image (offline with podman)."""
    return [str(ROOT / "drivers" / "build-image"), "--engine", engine, *(["--offline"] if engine == "podman" else [])]


def pytest_collection_modifyitems(session, config, items) -> None:
    if not any(item.get_closest_marker("container") for item in items) or config.option.collectonly:
        return
    from madminer_notebooks.workflow.image import container_engine

    engine = container_engine()
    if engine is None:
        return  # the container tests say so themselves
    log = Path(config.rootpath) / "test-artifacts" / "image-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        command = image_build_command(engine)
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _IMAGE_BUILD.update(engine=engine, proc=proc, log=log)


def pytest_sessionfinish(session, exitstatus) -> None:
    proc = _IMAGE_BUILD.get("proc")
    if proc is not None and proc.poll() is None:  # the session ended before the container tests
        os.killpg(proc.pid, 15)
        proc.wait(timeout=120)


def background_image_build(engine: str, timeout: float = 3600) -> tuple[int, str] | None:
    """The background build's exit status and the end of its log, once it has ended; None when none was
    started for ``engine``."""
    proc = _IMAGE_BUILD.get("proc")
    if proc is None or _IMAGE_BUILD["engine"] != engine:
        return None
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 15)
        raise AssertionError(f"the workflow image's build did not end within {timeout:.0f} s") from None
    return proc.returncode, _IMAGE_BUILD["log"].read_text()[-4000:]
