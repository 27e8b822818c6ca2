"""The madgraph backend: its checks and run preparation everywhere; MadGraph and Delphes runs only where
they are installed (MG5_DIR, DELPHES_DIR)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny import write_params

from madminer_notebooks import madgraph
from madminer_notebooks.chain import detector_level, executions, script_only
from madminer_notebooks.params import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]
MG5_DIR = os.environ.get("MG5_DIR")
DELPHES_DIR = os.environ.get("DELPHES_DIR")
needs_madgraph = pytest.mark.skipif(
    not MG5_DIR or not (Path(MG5_DIR) / "bin" / "mg5_aMC").is_file(),
    reason="MadGraph 5 is not installed here (set MG5_DIR to an MG5_aMC folder with the EWdim6 model, and MG5_PYTHON "
    "to a Python with numpy, to run this)",
)
needs_delphes = pytest.mark.skipif(
    not DELPHES_DIR or not (Path(DELPHES_DIR) / "DelphesHepMC2").is_file(),
    reason="Delphes is not installed here (set DELPHES_DIR to a Delphes build folder to run this)",
)


def _config(**changes) -> dict:
    config = dict(load_params(ROOT / "params" / "madgraph.yaml")["generation"]["madgraph"])
    config.update(changes)
    return config


def _mg_folder(tmp_path: Path) -> Path:
    """A folder laid out like MG5_aMC, for the checks (nothing runs it)."""
    (tmp_path / "MG5" / "bin").mkdir(parents=True)
    (tmp_path / "MG5" / "bin" / "mg5_aMC").write_text("#!/bin/sh\n")
    return tmp_path / "MG5"


def test_missing_madgraph_says_where_it_looked(tmp_path):
    with pytest.raises(madgraph.MadGraphUnavailable, match="mg_dir is not set and MG5_DIR is not in the environment"):
        madgraph.settings(_config(), environ={})
    with pytest.raises(madgraph.MadGraphUnavailable, match=rf"MG5_DIR = {tmp_path}: no bin/mg5_aMC there"):
        madgraph.settings(_config(), environ={"MG5_DIR": str(tmp_path)})
    mg = madgraph.settings(_config(), environ={"MG5_DIR": str(_mg_folder(tmp_path))})
    assert mg.mg_dir == tmp_path / "MG5" and mg.cards == madgraph.DEFAULT_CARDS and mg.pythia


def test_missing_cards_and_delphes_are_named(tmp_path):
    mg_dir = str(_mg_folder(tmp_path))
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "proc_card.dat").write_text("generate p p > h\n")
    with pytest.raises(madgraph.MadGraphUnavailable, match=r"cards = .*cards: missing run_card\.dat, param_card\.dat"):
        madgraph.settings(_config(mg_dir=mg_dir, cards=str(tmp_path / "cards")))
    with pytest.raises(madgraph.MadGraphUnavailable, match=r"delphes = .*: no DelphesHepMC2 executable there"):
        madgraph.settings(_config(mg_dir=mg_dir, delphes=str(tmp_path)))
    with pytest.raises(madgraph.MadGraphUnavailable, match="needs pythia: true"):
        madgraph.settings(_config(mg_dir=mg_dir, pythia=False, delphes=str(tmp_path)))


def test_the_shipped_cards_describe_the_reference_process():
    cards = madgraph.DEFAULT_CARDS
    assert (
        "generate u d > u d h / a z QCD=0 QED=99 NP=2, h > a a QCD=0 QED=99 NP=0"
        in (cards / "proc_card.dat").read_text()
    )
    run_card = (cards / "run_card.dat").read_text()
    for value, key in [("6500.0", "ebeam1"), ("nn23lo1", "pdlabel"), ("average", "event_norm"), ("20.0", "ptj"),
                       ("5.0", "etaj"), ("0.4", "drjj"), ("False", "cut_decays"), ("125.0", "scale")]:  # fmt: skip
        assert f"{value} = {key}" in " ".join(run_card.split()), key
    param_card = (cards / "param_card.dat").read_text()
    for line in ("2 0.000000e+00 # CWL2", "5 0.000000e+00 # CPWL2", "25 1.250000e+02 # MH", "1 1.279000e+02 # aEWM1"):
        assert line in " ".join(param_card.split()), line


def test_madminer_writes_benchmark_cards_from_the_shipped_template(setup_file, tmp_path):
    """MadMiner's own card export finds CWL2 and CPWL2 in the template: card value = 16.52 * theta."""
    from madminer import MadMiner

    miner = MadMiner()
    miner.load(str(setup_file))
    (tmp_path / "process" / "madminer" / "cards").mkdir(parents=True)
    miner._export_cards(str(madgraph.DEFAULT_CARDS / "param_card.dat"), str(tmp_path / "process"),
                        sample_benchmark="w", param_card_filename=str(tmp_path / "param_card.dat"),
                        reweight_card_filename=str(tmp_path / "reweight_card.dat"))  # fmt: skip
    lines = [line.split("#")[0].split() for line in (tmp_path / "param_card.dat").read_text().splitlines()]
    assert ["2", str(16.52 * 10.0)] in lines and ["5", "0.0"] in lines
    reweight = (tmp_path / "reweight_card.dat").read_text()
    assert "launch --rwgt_name=ww" in reweight and "launch --rwgt_name=morphing_basis_vector_5" in reweight
    assert "set dim6 5 165.2" in " ".join(reweight.split())


def test_prepare_gives_each_file_its_events_and_seed(tmp_path):
    mg = madgraph.settings(_config(), environ={"MG5_DIR": str(_mg_folder(tmp_path))})
    run = madgraph.prepare(mg, tmp_path / "run", events=1234, seed=3_000_009)
    card = " ".join(run.run_card.read_text().split())
    assert "1234 = nevents" in card and "3000010 = iseed" in card
    assert run.pythia8_card is not None and run.pythia8_card.is_file()
    template = " ".join((madgraph.DEFAULT_CARDS / "run_card.dat").read_text().split())
    assert "10000 = nevents" in template and "1 = iseed" in template  # the template is untouched
    (run.process_dir / "Events").mkdir(parents=True)
    again = madgraph.prepare(mg, tmp_path / "run", events=10, seed=1)
    assert not again.process_dir.exists()  # an unfinished attempt is cleared: MadGraph refuses existing folders


def test_params_for_madgraph_validate_and_shape_the_chain(tmp_path):
    params = load_params(ROOT / "params" / "madgraph.yaml")
    assert not detector_level(params) and not script_only(params)
    generation = executions(params, "generation")
    assert [e.name for e in generation][:2] == ["generation-sm-0", "generation-sm-1"]
    assert generation[0].outputs == ("data/events/sm-0.lhe.gz", "data/events/sm-0.json")
    raw = yaml.safe_load((ROOT / "params" / "madgraph.yaml").read_text())
    raw["generation"]["madgraph"].update(delphes="delphes", script_only=True)
    (tmp_path / "mg.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "mg.yaml")
    assert params["generation"]["madgraph"]["delphes"] == str(tmp_path / "delphes")  # relative to the file
    assert executions(params, "generation")[0].outputs == ("data/madgraph/sm-0/process/madminer/run.sh",)
    raw["generation"]["madgraph"]["pythia"] = False
    (tmp_path / "mg.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"generation\.madgraph\.delphes: needs generation\.madgraph\.pythia: true"):
        load_params(tmp_path / "mg.yaml")


def test_the_driver_refuses_to_start_without_madgraph(tmp_path):
    params = write_params(tmp_path)
    raw = yaml.safe_load(params.read_text())
    raw["generation"] = yaml.safe_load((ROOT / "params" / "madgraph.yaml").read_text())["generation"]
    params.write_text(yaml.safe_dump(raw))
    env = {k: v for k, v in os.environ.items() if k != "MG5_DIR"}
    command = [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(params), "--run-dir",
               str(tmp_path / "run")]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "MG5_DIR is not in the environment" in proc.stderr
    assert not (tmp_path / "run" / "data" / "setup.h5").exists()  # nothing started


@needs_madgraph
def test_madgraph_generation_matches_the_builtin_generator(tmp_path):
    """With MadGraph installed: one small file per backend; cross sections agree at the per-cent level."""
    import json

    base = write_params(tmp_path, {"generation.sampling_benchmarks": ["sm"], "generation.files_per_benchmark": 1,
                                   "generation.events_per_benchmark": 2000})  # fmt: skip
    raw = yaml.safe_load(base.read_text())
    raw["generation"] = {**raw["generation"], "backend": "madgraph"}
    for key in ("scale", "jobs", "cuts"):
        raw["generation"].pop(key)
    # python null: MG5_PYTHON, a Python with numpy for MadGraph's reweighting module (it compiles it with f2py)
    raw["generation"]["madgraph"] = {**_config(), "pythia": bool(DELPHES_DIR), "delphes": DELPHES_DIR}
    (tmp_path / "mg.yaml").write_text(yaml.safe_dump(raw))
    results = {}
    for name, params in (("builtin", base), ("madgraph", tmp_path / "mg.yaml")):
        proc = subprocess.run([sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(params),
                               "--run-dir", str(tmp_path / name), "--stages", "setup..analysis"],
                              capture_output=True, text=True, timeout=3600)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = json.loads((tmp_path / name / "data" / "events" / "sm-0.json").read_text())
    assert results["madgraph"]["cross_section_pb"] == pytest.approx(results["builtin"]["cross_section_pb"], rel=0.03)
    # MadGraph writes scratch files (py.py, ME5_debug, ...) into its working directory: not into the repository's
    assert not [p.name for p in (ROOT / "notebooks").iterdir() if p.suffix != ".ipynb" and not p.name.startswith(".")]


@needs_madgraph
@needs_delphes
def test_detector_level_analysis_reads_delphes_output(tmp_path):
    """With MadGraph, Pythia 8 and Delphes: the analysis stage reads the Delphes file through DelphesReader."""
    test_madgraph_generation_matches_the_builtin_generator(tmp_path)
    import h5py
    import numpy as np
    import uproot

    with uproot.open(tmp_path / "madgraph" / "data" / "events" / "sm-0.delphes.root") as root_file:
        delphes_events = root_file["Delphes"].num_entries
    with h5py.File(tmp_path / "madgraph" / "data" / "analysed" / "sm-0.h5", "r") as f:
        names = [n.decode() for n in f["observables/names"][()]]
        observations = f["samples/observations"][()]
        weights = f["samples/weights"][()]
    # the events that pass the cuts, each with every observable and a weight per benchmark
    assert 0 < len(observations) <= delphes_events and observations.shape[1] == len(names)
    assert np.isfinite(observations).all() and weights.shape[0] == len(observations) and (weights[:, 0] > 0).all()
    pt_j1 = observations[:, names.index("pt_j1")]
    assert ((pt_j1 > 20.0) & (pt_j1 < 6500.0)).all()
