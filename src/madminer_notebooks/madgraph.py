"""The ``madgraph`` generation backend: what surrounds MadMiner's ``MadMiner.run`` in the generation notebook.

MadMiner drives MadGraph 5 (and its Pythia 8 interface) itself; this module does what MadMiner leaves to
the user, so that the notebook can show the MadMiner call and nothing else:

- find the installation (``generation.madgraph.mg_dir`` or ``$MG5_DIR``) and the cards (the package's
  cards of the tutorial process, or a folder of the user's), and fail *before* any work with a message that
  says what is missing and where it was looked for;
- give every event file its own process folder and a run card with its number of events and seed, so
  that event files are independent (one workflow step each, reproducible on their own);
- collect MadGraph's outputs (``Events/run_01/unweighted_events.lhe.gz``, the Pythia 8 HepMC file) under
  the names every later stage reads, run Delphes on the HepMC file when asked, and record the file's
  events and cross section like the other backends do.

Nothing here runs in CI (MadGraph is not installable from package registries); the settings checks do.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_file
from .external_events import EventFileError, check_event_file

log = logging.getLogger(__name__)

#: Cards of the tutorial process, shipped with the package.
DEFAULT_CARDS = Path(__file__).resolve().parent / "cards" / "vbf_h_aa"
CARD_NAMES = ("proc_card.dat", "run_card.dat", "param_card.dat", "pythia8_card.dat")


class MadGraphUnavailable(RuntimeError):
    """MadGraph, Delphes or a card is missing; the message says which and where it was looked for."""


@dataclass(frozen=True)
class Settings:
    mg_dir: Path
    cards: Path
    pythia: bool
    delphes_dir: Path | None
    delphes_card: Path | None
    python: str | None
    initial_command: str | None
    script_only: bool


@dataclass(frozen=True)
class Run:
    """The folders and cards of one event file's MadGraph run."""

    folder: Path
    process_dir: Path
    log_dir: Path
    temp_dir: Path
    proc_card: Path
    run_card: Path
    param_card: Path
    pythia8_card: Path | None


def settings(config: dict, environ: dict[str, str] | None = None) -> Settings:
    """Check ``generation.madgraph`` against the machine; raise :class:`MadGraphUnavailable` with what is missing."""
    env = os.environ if environ is None else environ
    given = config.get("mg_dir") or env.get("MG5_DIR")
    if not given:
        raise MadGraphUnavailable(
            "generation.madgraph.mg_dir is not set and MG5_DIR is not in the environment: the madgraph backend "
            "needs an MG5_aMC installation (a folder with bin/mg5_aMC)"
        )
    mg_dir = Path(given).expanduser().resolve()
    if not (mg_dir / "bin" / "mg5_aMC").is_file():
        source = "generation.madgraph.mg_dir" if config.get("mg_dir") else "MG5_DIR"
        raise MadGraphUnavailable(f"{source} = {mg_dir}: no bin/mg5_aMC there (is it an MG5_aMC folder?)")
    cards = Path(config.get("cards") or DEFAULT_CARDS)
    needed = [n for n in CARD_NAMES if n != "pythia8_card.dat" or config.get("pythia")]
    missing = [n for n in needed if not (cards / n).is_file()]
    if missing:
        raise MadGraphUnavailable(f"generation.madgraph.cards = {cards}: missing {', '.join(missing)}")
    delphes_dir = delphes_card = None
    if config.get("delphes"):
        if not config.get("pythia"):
            raise MadGraphUnavailable("generation.madgraph.delphes needs pythia: true (Delphes reads showered events)")
        delphes_dir = Path(config["delphes"]).expanduser().resolve()
        if not (delphes_dir / "DelphesHepMC2").is_file() and not (delphes_dir / "DelphesHepMC").is_file():
            raise MadGraphUnavailable(f"generation.madgraph.delphes = {delphes_dir}: no DelphesHepMC2 executable there")
        delphes_card = Path(config.get("delphes_card") or delphes_dir / "cards" / "delphes_card_ATLAS.tcl")
        if not delphes_card.is_file():
            raise MadGraphUnavailable(f"generation.madgraph.delphes_card: no such file {delphes_card}")
    python = config.get("python") or env.get("MG5_PYTHON")  # the MadGraph image sets MG5_PYTHON
    if python and not shutil.which(python):
        source = "generation.madgraph.python" if config.get("python") else "MG5_PYTHON"
        raise MadGraphUnavailable(f"{source} = {python}: not found (MadGraph's Python, with numpy for reweighting)")
    return Settings(mg_dir, cards, bool(config.get("pythia")), delphes_dir, delphes_card, python,
                    config.get("initial_command"), bool(config.get("script_only")))  # fmt: skip


def require_generator(params: dict, stages: list[str]) -> None:
    """Check the madgraph backend's installation and cards before a driver starts any stage."""
    if "generation" in stages and params["generation"]["backend"] == "madgraph":
        settings(params["generation"]["madgraph"])


def _set_run_card_value(text: str, key: str, value: str) -> str:
    pattern = re.compile(rf"(?m)^(\s*)\S+(\s*=\s*{key}\b)")
    if not pattern.search(text):
        return text.rstrip("\n") + f"\n  {value} = {key}\n"
    return pattern.sub(lambda m: f"{m[1]}{value}{m[2]}", text, count=1)


def prepare(mg: Settings, folder: Path, events: int, seed: int) -> Run:
    """A fresh folder for one event file's run, with its run card (events, seed) beside the other cards.

    MadGraph's seed must be positive and below 2^31 - 1 (``iseed``); the chain's file seed is mapped there.
    A previous, unfinished attempt is removed: MadGraph refuses to write into an existing process folder.
    """
    if folder.exists():
        shutil.rmtree(folder)
    cards = folder / "cards"
    cards.mkdir(parents=True)
    for name in CARD_NAMES:
        if (mg.cards / name).is_file():
            shutil.copyfile(mg.cards / name, cards / name)
    run_card = cards / "run_card.dat"
    text = _set_run_card_value(run_card.read_text(), "nevents", str(events))
    text = _set_run_card_value(text, "iseed", str(seed % 2_147_483_646 + 1))
    run_card.write_text(text)
    for sub in ("logs", "tmp"):
        (folder / sub).mkdir()
    return Run(folder, folder / "process", folder / "logs", folder / "tmp", cards / "proc_card.dat", run_card,
               cards / "param_card.dat", cards / "pythia8_card.dat" if mg.pythia else None)  # fmt: skip


def record_script(run: Run, script: Path) -> None:
    """Script-only mode: check that MadMiner wrote the run script; say how to use it."""
    if not script.is_file():
        raise RuntimeError(f"MadMiner did not write {script}; see the logs in {run.log_dir}")
    log.info(
        "prepared %s: run it as '%s MG5_DIR %s %s' on a batch node, then list %s/Events/run_01/"
        "unweighted_events.lhe.gz under generation.events (backend external)",
        script, script, run.process_dir, run.log_dir, run.process_dir,
    )  # fmt: skip


def _run_folder(run: Run) -> Path:
    runs = sorted((run.process_dir / "Events").glob("run_*"))
    if not runs:
        raise RuntimeError(f"MadGraph wrote no run folder under {run.process_dir / 'Events'}; see {run.log_dir}")
    return runs[-1]


def collect(mg: Settings, run: Run, benchmark: str, benchmarks: list[str], events: Path, delphes: Path | None) -> dict:
    """Check MadGraph's events against the setup's ``benchmarks`` (every weight there, in every event), move
    the outputs to the chain's names, run Delphes if asked; return the file's summary."""
    from madminer.utils.interfaces.delphes import run_delphes  # MadMiner's import is slow: only when needed

    folder = _run_folder(run)
    lhe = folder / "unweighted_events.lhe.gz"
    if not lhe.is_file():
        raise RuntimeError(f"MadGraph wrote no {lhe}; see the logs in {run.log_dir}")
    try:
        checked = check_event_file(lhe, benchmarks, benchmark)
    except EventFileError as err:
        hint = ""
        if "found: no <wgt> entries" in str(err):  # seen with numpy 2's f2py: MadGraph then skips reweighting
            hint = (
                f"; MadGraph's reweighting did not run (see {run.log_dir}): it compiles its reweighting module "
                "with f2py, which needs a Python with numpy < 2 (generation.madgraph.python or MG5_PYTHON)"
            )
        raise RuntimeError(f"MadGraph's events are not usable: {err}{hint}") from None
    if delphes is not None:
        hepmc = sorted(folder.glob("*pythia8_events.hepmc*"))
        if not hepmc:
            raise RuntimeError(f"Pythia 8 wrote no HepMC file in {folder}; see the logs in {run.log_dir}")
        root = run_delphes(str(mg.delphes_dir), str(mg.delphes_card), str(hepmc[0]),
                           delphes_sample_filename=str(run.folder / "delphes.root"),
                           initial_command=mg.initial_command, log_file=str(run.log_dir / "delphes.log"))  # fmt: skip
        with atomic_file(delphes) as tmp:
            shutil.move(root, tmp)
    with atomic_file(events) as tmp:
        shutil.copyfile(lhe, tmp)
    summary = checked.as_dict()
    summary["source"] = "madgraph"
    return summary
