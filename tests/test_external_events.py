"""External event files (``generation.backend: external``): MadGraph-convention LHE files are checked,
imported and analysed exactly like generated ones; broken files fail with the file and event named."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from mg_style import to_madgraph_style
from tiny import drive, ran, write_params, yadage

from madminer_notebooks.chain import event_file_keys, executions, file_seed
from madminer_notebooks.external_events import EventFileError, check_event_file, import_event_file
from madminer_notebooks.params import ParamsError, load_params

SETUP_BENCHMARKS = ["sm", "w", "ww", "neg_w", "neg_ww", "morphing_basis_vector_5"]  # conftest.make_setup


@pytest.fixture(scope="module")
def mg_file(generate, tmp_path_factory):
    source, summary = generate("ww", 300, seed=21)
    return to_madgraph_style(source, tmp_path_factory.mktemp("mg") / "ww.lhe"), summary


def test_a_madgraph_style_file_passes_with_the_generated_cross_section(mg_file, setup_file):
    path, generated = mg_file
    checked = check_event_file(path, SETUP_BENCHMARKS, "ww")
    assert checked.events == 300
    assert checked.cross_section_pb == pytest.approx(generated["cross_section_pb"], rel=1e-9)
    assert checked.cross_section_error_pb == pytest.approx(generated["cross_section_error_pb"], rel=1e-9)
    assert checked.event_norm == "average"


def test_madminer_reads_the_madgraph_style_file_as_the_original(mg_file, generate, setup_file, tmp_path):
    """The converted file is what MadMiner's LHEReader accepts: same events, same weights per benchmark."""
    from madminer.lhe import LHEReader

    from madminer_notebooks import compat

    compat.apply()
    path, _ = mg_file
    original, _ = generate("ww", 300, seed=21)
    result = []
    for i, source in enumerate((original, path)):
        local = tmp_path / f"{i}{''.join(source.suffixes)}"
        shutil.copy(source, local)
        reader = LHEReader(str(setup_file))
        reader.add_sample(str(local), sampled_from_benchmark="ww")
        reader.add_observable("m_aa", "(a[0] + a[1]).m", required=True)
        reader.analyse_samples()
        result.append(reader)
    np.testing.assert_allclose(result[1].observations["m_aa"], result[0].observations["m_aa"], rtol=1e-12)
    for name in SETUP_BENCHMARKS:
        np.testing.assert_allclose(result[1].weights[name], result[0].weights[name], rtol=1e-9)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            {"drop_weight": (3, "neg_w")},
            r"event 3 \(line \d+\): no weight for benchmark 'neg_w' in <rwgt> \(found: sm, w",
        ),
        ({"damage_event": 5}, r"event 5 \(line \d+\): a particle line needs 13 columns .*got 11"),
        ({"truncate_in_event": 7}, r"event 7 \(line \d+\): the file ends inside the event"),
        ({"nevents": 250}, r"the run card says nevents = 250, the file has 300 events"),
    ],
)
def test_a_broken_file_names_the_file_and_the_event(generate, tmp_path, damage, message):
    source, _ = generate("ww", 300, seed=21)
    path = to_madgraph_style(source, tmp_path / "broken.lhe.gz", **damage)
    with pytest.raises(EventFileError, match=rf"^{tmp_path}/broken\.lhe\.gz: {message}"):
        check_event_file(path, SETUP_BENCHMARKS, "ww")


def test_a_header_without_a_benchmark_fails_before_reading_events(mg_file, tmp_path):
    path, _ = mg_file
    text = path.read_text().replace("<weight id='morphing_basis_vector_5'>", "<weight id='rwgt_6'>", 1)
    broken = tmp_path / "renamed.lhe"
    broken.write_text(text)
    with pytest.raises(EventFileError, match=r"<initrwgt> declares no weight .* morphing_basis_vector_5 .*rwgt_6"):
        check_event_file(broken, SETUP_BENCHMARKS, "ww")


def test_a_file_without_run_card_or_events_is_refused(mg_file, tmp_path):
    path, _ = mg_file
    text = path.read_text()
    no_card = tmp_path / "no_card.lhe"
    no_card.write_text(text.replace("<MGRunCard>", "<RunCard>").replace("</MGRunCard>", "</RunCard>"))
    with pytest.raises(EventFileError, match=r"no_card\.lhe: no <MGRunCard> in the header"):
        check_event_file(no_card, SETUP_BENCHMARKS, "ww")
    empty = tmp_path / "empty.lhe"
    empty.write_text(text[: text.index("<event>")] + "</LesHouchesEvents>\n")
    with pytest.raises(EventFileError, match=r"empty\.lhe: no events"):
        check_event_file(empty, SETUP_BENCHMARKS, "ww")
    with pytest.raises(EventFileError, match="not a benchmark of the setup"):
        check_event_file(path, SETUP_BENCHMARKS, "nowhere")


def test_import_compresses_plain_files_and_keeps_gzipped_ones(mg_file, generate, tmp_path):
    path, _ = mg_file
    import_event_file(path, tmp_path / "a.lhe.gz")
    with gzip.open(tmp_path / "a.lhe.gz", "rt") as f:
        assert f.read() == path.read_text()
    gz, _ = generate("ww", 300, seed=21)
    import_event_file(gz, tmp_path / "b.lhe.gz")
    assert (tmp_path / "b.lhe.gz").read_bytes() == gz.read_bytes()
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


# --- parameters ----------------------------------------------------------------------------------------


def _external_params(folder: Path, events: list[dict], name: str = "external.yaml", **extra) -> Path:
    params = yaml.safe_load(write_params(folder, extra or None, name="base.yaml").read_text())
    params["generation"] = {"backend": "external", "events": events}
    path = folder / name
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_params_resolve_event_paths_against_the_parameter_file(mg_file, tmp_path):
    path, _ = mg_file
    (tmp_path / "events").mkdir()
    shutil.copy(path, tmp_path / "events" / "ww.lhe")
    shutil.copy(path, tmp_path / "events" / "ww2.lhe")
    params_file = _external_params(tmp_path, [{"path": "events/ww.lhe", "benchmark": "ww"},
                                              {"path": "events/ww2.lhe", "benchmark": "ww"}])  # fmt: skip
    params = load_params(params_file)
    assert params["generation"]["events"][0]["path"] == str(tmp_path / "events" / "ww.lhe")
    assert event_file_keys(params) == [("ww", 0, "ww-0"), ("ww", 1, "ww-1")]
    generation = executions(params, "generation")
    # the user's file is an input (the manifest hashes it: a changed file is imported again)
    assert str(tmp_path / "events" / "ww2.lhe") in generation[1].inputs
    assert file_seed(params, "ww", 1) == params["run"]["seed"] * 1_000_003 + 1


def test_params_name_a_missing_file_and_an_unknown_benchmark(tmp_path):
    params_file = _external_params(tmp_path, [{"path": "nowhere.lhe.gz", "benchmark": "ww"}])
    with pytest.raises(ParamsError, match=rf"external\.yaml: generation\.events\[0\]\.path: no such file {tmp_path}"):
        load_params(params_file)
    params_file = _external_params(tmp_path, [{"path": "x.lhe", "benchmark": "zz"}])
    with pytest.raises(ParamsError, match=r"generation\.events\[0\]\.benchmark: 'zz' is not a benchmark"):
        load_params(params_file)
    params_file = _external_params(tmp_path, [{"file": "x.lhe", "benchmark": "sm"}])
    with pytest.raises(ParamsError, match=r"generation\.events\[0\]\.file: unknown key"):
        load_params(params_file)


def test_an_unknown_backend_lists_the_backends(tmp_path):
    params = yaml.safe_load(write_params(tmp_path).read_text())
    params["generation"]["backend"] = "sherpa"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"generation\.backend: expected one of 'builtin', 'madgraph', 'external'"):
        load_params(tmp_path / "bad.yaml")


# --- the chain ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory):
    """The session's tiny run (generated events), and the chain up to the combined sample on its event files
    rewritten in MadGraph's style. The stages after combine read only the combined sample and the setup, the
    same code whatever the backend: a combined sample identical to the generated run's means an identical
    chain from there on (the generated run's is checked in test_chain.py)."""
    tiny_params, builtin, _, _ = tiny_run
    folder = tmp_path_factory.mktemp("external")
    params = load_params(tiny_params)
    events = []
    for b, _, key in event_file_keys(params):  # alternately plain and gzipped, as users have them
        name = f"{key}.lhe" if len(events) % 2 == 0 else f"{key}.lhe.gz"
        to_madgraph_style(builtin / "data" / "events" / f"{key}.lhe.gz", folder / "mg" / name)
        events.append({"path": f"mg/{name}", "benchmark": b})
    external_params = _external_params(folder, events)
    external = folder / "run"
    proc = drive(external_params, external, "--stages", "setup..combine")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return params, builtin, external, external_params


def test_external_files_import_as_the_generated_ones(runs):
    """Every file imported with the generated file's events and cross section, and the setup unchanged."""
    params, builtin, external, _ = runs
    for _, _, key in event_file_keys(params):
        ours = json.loads((external / "data" / "events" / f"{key}.json").read_text())
        theirs = json.loads((builtin / "data" / "events" / f"{key}.json").read_text())
        assert ours["events"] == theirs["events"]
        assert ours["cross_section_pb"] == pytest.approx(theirs["cross_section_pb"], rel=1e-9)
    with h5py.File(builtin / "data" / "setup.h5") as a, h5py.File(external / "data" / "setup.h5") as b:
        names: list[str] = []
        a.visit(lambda name: names.append(name) if isinstance(a[name], h5py.Dataset) else None)
        assert "morphing/morphing_matrix" in names
        for name in names:
            np.testing.assert_array_equal(b[name][()], a[name][()], err_msg=name)


def test_external_files_give_the_generated_runs_analysis(runs):
    """Same events, same smearing seeds (files listed in the builtin order): identical combined samples."""
    _, builtin, external, _ = runs
    with h5py.File(builtin / "data" / "combined.h5") as a, h5py.File(external / "data" / "combined.h5") as b:
        np.testing.assert_allclose(b["samples/observations"][()], a["samples/observations"][()], rtol=1e-12)
        np.testing.assert_allclose(b["samples/weights"][()], a["samples/weights"][()], rtol=1e-9)


def test_a_changed_external_file_is_imported_again(runs, tmp_path):
    params, _, external, external_params = runs
    proc = drive(external_params, external, "--stages", "generation..analysis")
    assert proc.returncode == 0
    assert not ran(proc)  # nothing changed: every execution skipped
    source = Path(load_params(external_params)["generation"]["events"][0]["path"])
    saved = source.read_bytes()
    try:
        source.write_bytes(saved.replace(b"<MGRunCard>", b"<RunCard>", 1).replace(b"</MGRunCard>", b"</RunCard>", 1))
        proc = drive(external_params, external, "--stages", "generation")
        assert proc.returncode == 1
        assert f"{source}: no <MGRunCard> in the header" in proc.stderr
    finally:
        source.write_bytes(saved)


def test_the_physics_workflow_imports_external_files_too(runs, workflow_env):
    """The same parameters through the Yadage physics workflow: the same combined sample as the driver."""
    _, _, external, external_params = runs
    work_dir = external.parent / "yadage"
    proc = yadage(external_params, work_dir, "--workflow", "physics")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (
        h5py.File(external / "data" / "combined.h5") as a,
        h5py.File(work_dir / "combine" / "data" / "combined.h5") as b,
    ):
        np.testing.assert_array_equal(b["samples/observations"][()], a["samples/observations"][()])
        np.testing.assert_array_equal(b["samples/weights"][()], a["samples/weights"][()])


def test_staged_parameter_files_carry_their_event_files(mg_file, tmp_path):
    """What a Yadage work folder and a REANA upload receive: a parameter file whose event files sit beside it."""
    from madminer_notebooks.workflow.reana import stage_submission

    path, _ = mg_file
    (tmp_path / "mine" / "events").mkdir(parents=True)
    shutil.copy(path, tmp_path / "mine" / "events" / "ww.lhe")
    params_file = _external_params(tmp_path / "mine", [{"path": "events/ww.lhe", "benchmark": "ww"}])
    upload = tmp_path / "upload"
    upload.mkdir()
    reana_yaml = stage_submission(upload, params_file, None)
    assert yaml.safe_load(reana_yaml.read_text())["inputs"]["parameters"]["params_file"] == "params/external.yaml"
    staged = load_params(upload / "params" / "external.yaml")  # resolves against the staged copy's folder
    source = Path(staged["generation"]["events"][0]["path"])
    assert source.parent == upload / "params" / "events"
    assert source.read_bytes() == path.read_bytes()


REAL_MADGRAPH = Path(__file__).parent / "data" / "madgraph" / "w.lhe.gz"  # see tests/data/README.md


def test_a_real_madgraph_file_passes_and_reads_in_madminer(setup_file, tmp_path):
    from madminer.lhe import LHEReader

    from madminer_notebooks import compat

    checked = check_event_file(REAL_MADGRAPH, SETUP_BENCHMARKS, "w")
    assert checked.events == 150
    assert checked.cross_section_pb == pytest.approx(0.018079, rel=1e-12)  # every XWGTUP, averaged
    assert checked.cross_section_error_pb == 0.0003146  # MadGraph's <init> error
    compat.apply()
    local = tmp_path / "w.lhe.gz"
    shutil.copy(REAL_MADGRAPH, local)
    reader = LHEReader(str(setup_file))  # same benchmark names as the file's weights
    reader.add_sample(str(local), sampled_from_benchmark="w")
    reader.add_observable("m_aa", "(a[0] + a[1]).m", required=True)
    reader.analyse_samples()
    assert len(reader.observations["m_aa"]) == 150
    assert np.sum(reader.weights["w"]) == pytest.approx(0.018079, rel=1e-6)  # event_norm average: sigma / N each
    assert all(np.all(np.isfinite(w)) and np.all(w > 0) for w in reader.weights.values())


def test_a_real_madgraph_file_missing_a_weight_names_the_event(tmp_path):
    with gzip.open(REAL_MADGRAPH, "rt") as f:
        text = f.read()
    second = text.index("<event>", text.index("<event>") + 1)
    weight = text.index("<wgt id='neg_w'>", second)
    broken = tmp_path / "w.lhe"
    broken.write_text(text[:weight] + text[text.index("\n", weight) + 1 :])
    line = text[:second].count("\n") + 1
    with pytest.raises(EventFileError, match=rf"w\.lhe: event 2 \(line {line}\): no weight for benchmark 'neg_w'"):
        check_event_file(broken, SETUP_BENCHMARKS, "w")


def test_a_cut_off_gzip_file_names_the_last_whole_event(generate, tmp_path):
    source, _ = generate("ww", 300, seed=21)
    whole = to_madgraph_style(source, tmp_path / "whole.lhe.gz")
    data = whole.read_bytes()
    cut = tmp_path / "cut.lhe.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        EventFileError, match=r"cut\.lhe\.gz: cannot be read to the end .*breaks off after event (\d+)"
    ) as info:
        check_event_file(cut, SETUP_BENCHMARKS, "ww")
    last = int(re.search(r"after event (\d+)", str(info.value))[1])
    assert 50 < last < 250  # half the compressed bytes hold about half of the 300 events


def test_the_validator_reads_the_run_card_as_madminer_and_the_reader_do(mg_file, tmp_path):
    """One run-card parser (``lhe_file``): a nevents line that MadMiner skips (two '!' on it) is missing for
    the import check too, instead of the check accepting a file whose weights MadMiner would not divide."""
    from madminer_notebooks.lhe_file import read_run_card

    path, _ = mg_file
    text = path.read_text()
    line = re.search(r"(?m)^.*= nevents.*$", text).group(0)
    assert read_run_card(path).nevents == 300
    skipped = tmp_path / "skipped.lhe"
    skipped.write_text(text.replace(line, line.split("!")[0] + "! number of events ! unweighted", 1))
    assert read_run_card(skipped).nevents is None  # what MadMiner and the columnar reader read
    with pytest.raises(EventFileError, match=r"skipped\.lhe: the run card says nevents = None, the file has 300"):
        check_event_file(skipped, SETUP_BENCHMARKS, "ww")


def test_every_reader_knows_gzip_by_its_bytes_and_both_quotes(generate, tmp_path):
    """A gzipped file without ``.gz`` and weights with double-quoted ids read the same in the generator's
    array reader (which went by the name and single quotes only) as the original."""
    from madminer_notebooks.generator.lhe import read_lhe_arrays
    from madminer_notebooks.lhe_file import read_run_card

    source, _ = generate("ww", 300, seed=21)
    original = read_lhe_arrays(str(source))
    renamed = tmp_path / "events.lhe"
    text = re.sub(rb"<wgt id='([^']*)'>", rb'<wgt id="\1">', gzip.decompress(source.read_bytes()))
    renamed.write_bytes(gzip.compress(text))
    assert b'<wgt id="sm">' in gzip.decompress(renamed.read_bytes())
    copy = read_lhe_arrays(str(renamed))
    assert set(copy.weights) == set(original.weights) == set(SETUP_BENCHMARKS) - {"ww"}  # ww: XWGTUP
    for name in original.weights:
        np.testing.assert_array_equal(copy.weights[name], original.weights[name])
    assert read_run_card(renamed) == read_run_card(source)
    assert check_event_file(renamed, SETUP_BENCHMARKS, "ww").events == 300
