"""Where every file of a run lives. The notebooks and the driver both use this, so the two can never
disagree about a path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root).resolve())

    # folders
    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    # files
    @property
    def setup(self) -> Path:
        return self.data / "setup.h5"

    def events(self, key: str) -> Path:
        return self.data / "events" / f"{key}.lhe.gz"

    def delphes(self, key: str) -> Path:
        """Detector-level events (Delphes ROOT file) of an event file, when the chain simulates a detector."""
        return self.data / "events" / f"{key}.delphes.root"

    def madgraph(self, key: str) -> Path:
        """MadGraph's process folder and logs for one event file (backend ``madgraph``)."""
        return self.data / "madgraph" / key

    def madgraph_script(self, key: str) -> Path:
        """The run script MadMiner prepares in script-only mode (for a cluster)."""
        return self.madgraph(key) / "process" / "madminer" / "run.sh"

    def generation_summary(self, key: str) -> Path:
        return self.data / "events" / f"{key}.json"

    def analysed(self, key: str) -> Path:
        return self.data / "analysed" / f"{key}.h5"

    @property
    def combined(self) -> Path:
        return self.data / "combined.h5"

    @property
    def samples(self) -> Path:
        return self.data / "samples"

    def model(self, method: str) -> Path:
        """Folder with the saved estimator (``estimator_*`` files) and its loss history."""
        return self.models / method

    def limits(self, name: str) -> Path:
        """q on the coarse grid and on the last refinement grid (for maps and contours)."""
        return self.data / "limits" / f"{name}.npz"

    def limit_result(self, name: str) -> Path:
        """Best fit, intervals, their convergence, closure checks and Fisher information of one method."""
        return self.data / "limits" / f"{name}.json"

    @property
    def fisher(self) -> Path:
        """The Fisher information of every approach, gathered by the plotting stage."""
        return self.data / "fisher_information.json"

    @property
    def intervals(self) -> Path:
        return self.data / "intervals.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def make_folders(self) -> None:
        for folder in (self.data / "events", self.data / "analysed", self.samples, self.data / "limits",
                       self.models, self.plots, self.notebooks):  # fmt: skip
            folder.mkdir(parents=True, exist_ok=True)

    def relative(self, path: Path) -> str:
        """``path`` relative to the run folder, without following links (a workflow step's inputs are
        links into other steps' folders)."""
        return os.path.relpath(os.path.abspath(path), self.root)
