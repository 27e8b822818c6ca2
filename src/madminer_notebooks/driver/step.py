"""What a workflow step adds to running one stage: gathering its inputs from upstream steps' folders and
publishing what it made.

In Yadage every step has its own work folder, and a step sees the folders of the steps it depends on.
A step runs the stage notebook exactly as the local driver does, in a run folder of the usual layout
(:class:`~madminer_notebooks.paths.RunPaths`): its inputs are linked there from the upstream folders
(``--inputs-from``), found by the run-relative paths that :mod:`madminer_notebooks.chain` declares, so
the notebooks cannot tell a workflow step from a local run. The step then writes ``published.yml`` for
Yadage's ``fromyaml-pub``: its run folder, its executed notebooks, and the scatter lists of the later
stages, computed from the parameters by the same code the local driver uses.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import yaml

from ..atomic import atomic_file
from ..chain import STAGES, Execution, evaluation_keys, event_file_keys
from ..paths import RunPaths

log = logging.getLogger(__name__)

PUBLICATION = "published.yml"


class MissingInput(ValueError):
    """An input of the step is in none of the upstream folders."""


def scatter_lists(params: dict) -> dict[str, list[str]]:
    """The keys that the workflow's scattered stages iterate over; one list per stage, never zipped with
    another (Yadage's ``zip`` truncates unequal lists silently)."""
    return {
        "generation_keys": [key for _, _, key in event_file_keys(params)],
        "analysis_keys": [key for _, _, key in event_file_keys(params)],
        "training_keys": list(params["training"]["methods"]),
        "evaluation_keys": evaluation_keys(params),
    }


def link_inputs(todo: list[Execution], paths: RunPaths, upstream: list[Path]) -> int:
    """Symlink every input of ``todo`` into the run folder from the upstream folder that holds it.

    Links point at the resolved file, so chains of steps never build chains of links. When several upstream
    folders hold the same path with different files, the last folder given wins (the ML workflow lists the
    physics results first and its own steps after them, so a model trained in the workflow beats one that
    a local run folder passed as physics input happens to hold), with a warning. Returns the number of
    links made.
    """
    folders = [Path(u).resolve() for u in upstream]
    for folder in folders:
        if not folder.is_dir():
            raise MissingInput(f"--inputs-from {folder}: no such folder")
    made = 0
    wanted = sorted({rel for ex in todo for rel in ex.inputs})
    for rel in wanted:
        target = paths.root / rel
        found = [(f / rel).resolve() for f in folders if (f / rel).is_file()]
        if target.is_file() and not target.is_symlink():
            continue  # a real file is this folder's own and is never replaced by a link
        if not found:
            names = ", ".join(ex.name for ex in todo if rel in ex.inputs)
            raise MissingInput(
                f"input {rel} of {names} is in none of the {len(folders)} upstream folders "
                f"({', '.join(str(f) for f in folders) or 'none given'})"
            )
        source = found[-1]
        if len(set(found)) > 1:
            log.warning("input %s is in several upstream folders; taking %s", rel, source)
        if target.is_symlink() and target.resolve() == source:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.link")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(source)
        os.replace(tmp, target)
        made += 1
    log.info("linked %d input file%s from %d upstream folder%s", made, "s" * (made != 1), len(folders),
             "s" * (len(folders) != 1))  # fmt: skip
    return made


def publish(params: dict, stage: str, todo: list[Execution], paths: RunPaths, name: str = PUBLICATION) -> Path:
    """Write what Yadage publishes for this step (read by ``fromyaml-pub``)."""
    record: dict = {
        "run_dir": str(paths.root),
        "notebooks": [str(paths.notebooks / f"{ex.name}.ipynb") for ex in todo],
        **scatter_lists(params),
    }
    if stage == STAGES[-1]:
        record["summary"] = str(paths.summary)
        record["report"] = str(paths.report / "index.html")
    out = paths.root / name
    with atomic_file(out) as tmp:
        tmp.write_text(yaml.safe_dump(record, sort_keys=False))
    return out
