"""Optional MLflow tracking of sampling, training and evaluation.

Off unless the parameters say ``tracking: {enabled: true}`` or ``MLFLOW_TRACKING_URI`` is set. "On"
without a URI means a SQLite store in the run folder (``RUN/mlflow.db``, artifacts in ``RUN/mlartifacts``):
MLflow 3 refuses its old file store without an opt-in, and SQLite needs no server.

Every execution of a tracked stage is one MLflow run in the experiment of its stage family
(``PREFIX-sampling``, ``PREFIX-training``, ``PREFIX-evaluation``), named after the method and its key
settings, tagged with the chain's run id, the parameter hash and the git commit. The client API is used
with explicit run ids (no fluent "active run"), so parallel executions in other kernels, processes or
workflow steps never share state. Results are written to the run folder first and logged afterwards; an
unreachable server stops the execution before its work starts, with the URI in the message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import methods
from .params import params_hash
from .paths import RunPaths
from .repository import git_commit

log = logging.getLogger(__name__)

FAMILIES = ("sampling", "training", "evaluation")
DEFAULT_PREFIX = "madminer-notebooks"
RUN_ID_VARIABLE = "MMNB_RUN_ID"
SCAN_VARIABLE = "MMNB_SCAN_POINT"  # set by the driver for the executions of a scan point


class TrackingUnavailable(RuntimeError):
    """The tracking store does not answer; raised before an execution does its work."""


@dataclass(frozen=True)
class TrackingConfig:
    uri: str
    prefix: str
    artifact_root: str | None  # set for the run folder's own store; a server decides its own

    def experiment(self, family: str) -> str:
        return f"{self.prefix}-{family}"


def is_unset(value: str | None) -> bool:
    return value is None or value.strip().lower() in ("", "none", "null")


def config(params: dict, paths: RunPaths) -> TrackingConfig | None:
    """The tracking settings of a run, or None when tracking is off."""
    section = params.get("tracking") or {}
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if is_unset(env_uri) and not section.get("enabled"):
        return None
    prefix = section.get("experiment_prefix") or DEFAULT_PREFIX
    uri = env_uri if not is_unset(env_uri) else section.get("uri")
    if uri:
        return TrackingConfig(uri, prefix, None)
    return TrackingConfig(f"sqlite:///{paths.root / 'mlflow.db'}", prefix, (paths.root / "mlartifacts").as_uri())


def check(cfg: TrackingConfig, timeout: float = 10.0) -> None:
    """Raise :class:`TrackingUnavailable` unless the store answers (a server's ``/health``)."""
    if not cfg.uri.startswith(("http://", "https://")):
        return
    url = cfg.uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as err:
        problem = f"HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        problem = str(getattr(err, "reason", err))
    raise TrackingUnavailable(
        f"the MLflow tracking server {cfg.uri} does not answer ({problem}). Start it, or run without tracking: "
        "unset MLFLOW_TRACKING_URI and set tracking.enabled: false (results on disk are never affected)"
    )


def _client(cfg: TrackingConfig):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=cfg.uri)


def experiment_id(cfg: TrackingConfig, family: str, client=None) -> str:
    """Get or create the experiment of ``family``; safe when several processes race to create it."""
    from mlflow.exceptions import MlflowException

    client = client or _client(cfg)
    name = cfg.experiment(family)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        location = f"{cfg.artifact_root}/{family}" if cfg.artifact_root else None
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        found = client.get_experiment_by_name(name)  # another process created it in between
        if found is None:
            raise
        return found.experiment_id


def prepare(params: dict, paths: RunPaths) -> TrackingConfig | None:
    """Check the store and create the experiments of every family, before parallel executions start."""
    cfg = config(params, paths)
    if cfg is None:
        return None
    check(cfg)
    client = _client(cfg)
    for family in FAMILIES:
        experiment_id(cfg, family, client)
    log.info("MLflow tracking: %s (experiments %s-*)", cfg.uri, cfg.prefix)
    return cfg


def chain_run_id() -> str:
    """The id of the chain run this execution belongs to (set by the drivers; 'interactive' in Jupyter)."""
    value = os.environ.get(RUN_ID_VARIABLE)
    return "interactive" if is_unset(value) else value


class Tracker:
    """One MLflow run; every method logs immediately (nothing is buffered that a crash could lose)."""

    enabled = True

    def __init__(self, client, run_id: str):
        self.client = client
        self.run_id = run_id
        self.ended = False

    def end(self, status: str = "FINISHED") -> None:
        """Close the run (later logging to it still works: a plot made after the work, say)."""
        if not self.ended:
            self.client.set_terminated(self.run_id, status)
            self.ended = True

    def log_params(self, values: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in values.items()]
        for i in range(0, len(params), 100):  # the store's batch limit
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        for key, value in values.items():
            self.client.log_metric(self.run_id, key, float(value), step=step)

    def log_epochs(self, train: list[float], validation: list[float] | None) -> None:
        """Per-epoch losses as metric histories with step = epoch (1, 2, ...)."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric("train_loss", float(v), now, i + 1) for i, v in enumerate(train)]
        metrics += [Metric("val_loss", float(v), now, i + 1) for i, v in enumerate(validation or [])]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)


class NullTracker:
    """Tracking off: the same calls, doing nothing."""

    enabled = False
    run_id = None
    ended = False

    def end(self, status: str = "FINISHED") -> None:
        pass

    def log_params(self, values: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        pass

    def log_epochs(self, train: list[float], validation: list[float] | None) -> None:
        pass

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        pass

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        pass


def start_run(
    params: dict, paths: RunPaths, family: str, name: str, tags: Mapping[str, str] | None = None
) -> Tracker | NullTracker:
    """Start the MLflow run of one execution (a :class:`NullTracker` when tracking is off).

    The store is checked first, so an unreachable server fails the execution before its work. In a notebook
    the run is marked FAILED if a later cell raises; :meth:`Tracker.end` marks it FINISHED.
    """
    cfg = config(params, paths)
    if cfg is None:
        return NullTracker()
    check(cfg)
    client = _client(cfg)
    scan_point = os.environ.get(SCAN_VARIABLE)
    all_tags = {
        "mmnb.run_id": chain_run_id(),
        "mmnb.params_hash": params_hash(params, tuple(k for k in params if k not in ("tracking", "description"))),
        "mmnb.git_commit": git_commit(),
        "mmnb.stage": family,
        "mmnb.run_dir": str(paths.root),
        **({"mmnb.scan_point": scan_point} if not is_unset(scan_point) else {}),
        **(tags or {}),
    }
    run = client.create_run(experiment_id(cfg, family, client), run_name=name, tags=all_tags)
    tracker = Tracker(client, run.info.run_id)
    _fail_on_cell_error(tracker)
    log.info("MLflow run %r (%s) in experiment %s", name, run.info.run_id, cfg.experiment(family))
    return tracker


def _fail_on_cell_error(tracker: Tracker) -> None:
    """In IPython, a cell that raises after the run started marks it FAILED."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def after_cell(result) -> None:
        if not result.success and not tracker.ended:
            tracker.end("FAILED")

    shell.events.register("post_run_cell", after_cell)


@contextlib.contextmanager
def tracked_run(
    params: dict, paths: RunPaths, family: str, name: str, tags: Mapping[str, str] | None = None
) -> Iterator[Tracker | NullTracker]:
    """:func:`start_run` as a context: FINISHED when the block completes, FAILED when it raises."""
    tracker = start_run(params, paths, family, name, tags)
    try:
        yield tracker
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end()


def training_run_name(method: str, training: dict) -> str:
    """E.g. ``alices h50x50 lr0.001 e8 b128 a1``: the method and the settings people compare (with the
    method's own settings from the methods table, each as its first letter and value)."""
    hidden = "x".join(str(h) for h in training["hidden"])
    name = f"{method} h{hidden} lr{training['learning_rate']:g} e{training['epochs']} b{training['batch_size']}"
    return name + "".join(f" {key[0]}{training[key]:g}" for key in methods.method(method).training_keys)
