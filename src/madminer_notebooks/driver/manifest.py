"""The run manifest: what each finished execution read and wrote, by content hash.

An execution is up to date when its notebook (its cells' sources: :func:`notebook_sha256`), its parameters
and its input files hash as recorded and its outputs are present with the recorded hashes. Anything else
reruns it, and because inputs are hashed by content, a rerun that reproduces identical outputs does not
cascade downstream.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_file


def file_sha256(path: Path, _cache: dict = {}) -> str:  # noqa: B006 - process-wide cache by (path, mtime, size)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _cache:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _cache[key] = digest.hexdigest()
    return _cache[key]


def notebook_sha256(path: Path) -> str:
    """The identity of a notebook for resuming: its cells' types, tags and sources, nothing else.

    Outputs, execution counts and metadata change whenever someone runs the notebook in JupyterLab and
    saves it; none of them changes what the notebook does, so none of them may make the driver redo work.
    """
    try:
        cells = json.loads(path.read_text())["cells"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: not a readable notebook ({err})") from None
    digest = hashlib.sha256()
    for cell in cells:
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        tags = sorted(cell.get("metadata", {}).get("tags", []))
        digest.update(json.dumps([cell.get("cell_type"), tags, text]).encode())
    return digest.hexdigest()


@dataclass
class Record:
    notebook: str
    params: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    seconds: float
    origin: str = "driver"  # "interactive": recorded by a notebook run in JupyterLab (not timed)


def files_as_recorded(root: Path, files: dict[str, str]) -> bool:
    """Whether every file (relative path -> recorded hash) is in ``root`` with its recorded hash."""
    return all((root / rel).is_file() and file_sha256(root / rel) == sha for rel, sha in files.items())


class CorruptManifest(ValueError):
    """The run folder's manifest cannot be read: nothing can be trusted to be done."""


def _read(path: Path) -> dict:
    """The manifest's contents, or :class:`CorruptManifest` naming the file, the problem and what to do (it is
    only ever replaced whole, so a damaged one was damaged from outside: a full disk in another program, an
    edit by hand, a copy cut short)."""
    advice = "delete it to redo every stage, or run again with --fresh to empty the run folder"
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CorruptManifest(f"{path} is not a readable run manifest ({err}); {advice}") from None
    if not isinstance(data, dict) or not isinstance(data.get("executions"), dict):
        raise CorruptManifest(f"{path} is not a run manifest (no 'executions' mapping); {advice}")
    return data


class Manifest:
    """Thread-safe store of :class:`Record` per execution name, saved atomically after each change."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.records: dict[str, dict] = {}
        self.run_id = uuid.uuid4().hex[:12]  # names this chain run in the tracker; kept across resumes
        if path.exists():
            data = _read(path)
            self.records = data["executions"]
            self.run_id = data.get("run_id", self.run_id)

    def up_to_date(
        self,
        name: str,
        root: Path,
        notebook_sha: str,
        params_sha: str,
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
    ) -> bool:
        rec = self.records.get(name)
        if rec is None or rec["notebook"] != notebook_sha or rec["params"] != params_sha:
            return False
        if sorted(rec["inputs"]) != sorted(inputs) or sorted(rec["outputs"]) != sorted(outputs):
            return False  # the chain declares different files now (a newer version of the project)
        return files_as_recorded(root, rec["inputs"]) and files_as_recorded(root, rec["outputs"])

    def record(self, name: str, rec: Record) -> None:
        with self._lock:
            self.records[name] = rec.__dict__.copy()
            self._save()

    def forget(self, name: str) -> None:
        with self._lock:
            if self.records.pop(name, None) is not None:
                self._save()

    def _save(self) -> None:
        with atomic_file(self.path) as tmp:
            tmp.write_text(json.dumps({"run_id": self.run_id, "executions": self.records}, indent=1, sort_keys=True))
        os.chmod(self.path, 0o644)
