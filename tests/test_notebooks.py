"""Notebook hygiene: stripped outputs, kernel metadata, exactly one parameters cell that defines the
driver's parameters; every stage of the chain has its notebook."""

import ast
from pathlib import Path

import nbformat
import pytest

from madminer_notebooks.chain import NOTEBOOKS

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
STEP_PARAMETERS = {"generation": {"benchmark", "file_index"}, "analysis": {"benchmark", "file_index"},
                   "training": {"method"}, "evaluation": {"method"}}  # fmt: skip


def test_every_stage_has_a_notebook_and_nothing_else_is_there():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS.values())


@pytest.mark.parametrize(("stage", "name"), sorted(NOTEBOOKS.items()))
def test_notebook_hygiene(stage, name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3" and nb.metadata.kernelspec.language == "python"
    assert nb.metadata.language_info.name == "python"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs are not stripped"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
    assigned = {t.id for node in ast.parse(tagged[0].source).body for t in node.targets}
    assert assigned == {"params_file", "run_dir"} | STEP_PARAMETERS.get(stage, set())
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    for cell in code:
        assert "except:" not in cell.source and "except Exception" not in cell.source, f"{name} swallows errors"


def test_setup_notebook_runs_on_its_own_defaults(tmp_path):
    """As in JupyterLab: no injected parameters, relative defaults resolved from the notebooks folder."""
    import shutil

    import papermill

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "params").mkdir()
    shutil.copy(NOTEBOOK_DIR / "01_setup.ipynb", tmp_path / "notebooks")
    shutil.copy(root / "params" / "quick.yaml", tmp_path / "params")
    papermill.execute_notebook(
        str(tmp_path / "notebooks" / "01_setup.ipynb"),
        str(tmp_path / "out.ipynb"),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path / "notebooks"),
    )
    import h5py
    import numpy as np
    import yaml
    from conftest import assert_figure

    run = tmp_path / "runs" / "interactive"
    physics = yaml.safe_load((root / "params" / "quick.yaml").read_text())["physics"]
    with h5py.File(run / "data" / "setup.h5", "r") as f:  # the quick.yaml physics, as MadMiner saved it
        assert [n.decode() for n in f["parameters/names"][()]] == list(physics["parameters"])
        names = [n.decode() for n in f["benchmarks/names"][()]]
        values = f["benchmarks/values"][()]
        matrix = f["morphing/morphing_matrix"][()]
    assert names[: len(physics["benchmarks"])] == list(physics["benchmarks"])
    for name, theta in physics["benchmarks"].items():
        np.testing.assert_array_equal(values[names.index(name)], list(theta.values()))
    assert len(names) == 6 and matrix.shape == (6, 6) and np.linalg.cond(matrix) < 1e6  # a basis that morphs
    assert_figure(run / "plots" / "morphing_basis.png", (300, 1200), (300, 1200), min_colours=100)


#: The clean filter that drivers/ensure-env configures for .gitattributes (same options).
STRIP = ["-m", "nbstripout", "--keep-id", "--extra-keys", "metadata.language_info.version", "-t"]


def _strip(text: str) -> str:
    import subprocess
    import sys

    return subprocess.run([sys.executable, *STRIP], input=text, capture_output=True, text=True, check=True).stdout


def _as_saved_by_jupyterlab(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What JupyterLab writes after a person ran every cell: outputs, counts, the kernel's language_info."""
    import copy

    ran = copy.deepcopy(nb)
    for i, cell in enumerate(c for c in ran.cells if c.cell_type == "code"):
        cell.execution_count = i + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"line {i}\n"),
                        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]  # fmt: skip
        cell.metadata["scrolled"] = True
    ran.metadata.language_info["version"] = "3.11.7"
    return ran


@pytest.mark.parametrize("name", sorted(NOTEBOOKS.values()))
def test_a_notebook_run_in_jupyterlab_is_unchanged_for_git_and_for_the_driver(name):
    from madminer_notebooks.driver.manifest import notebook_sha256

    committed = (NOTEBOOK_DIR / name).read_text()
    assert _strip(committed) == committed, f"{name} is not in the form the git filter writes: strip it"
    ran = _as_saved_by_jupyterlab(nbformat.reads(committed, as_version=4))
    saved = nbformat.writes(ran) + "\n"
    assert saved != committed
    assert _strip(saved) == committed  # git status shows nothing, and no output reaches a commit

    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(saved)
        assert notebook_sha256(path) == notebook_sha256(NOTEBOOK_DIR / name)  # the driver redoes nothing
        ran.cells[-1].source += "\nprint('edited')"
        path.write_text(nbformat.writes(ran))
        assert notebook_sha256(path) != notebook_sha256(NOTEBOOK_DIR / name)  # an edit of the code does


def test_notebooks_name_the_kernel_the_environment_installs():
    from jupyter_client.kernelspec import KernelSpecManager

    installed = KernelSpecManager().get_kernel_spec("python3")
    for name in NOTEBOOKS.values():
        spec = nbformat.read(NOTEBOOK_DIR / name, as_version=4).metadata.kernelspec
        assert spec.display_name == installed.display_name, name


def test_notebook_logging_is_plain_stdout_once_without_madminers_harmless_notes(capsys):
    import logging

    from madminer_notebooks.notebook_output import log_to_notebook

    root = logging.getLogger()
    before = list(root.handlers)
    try:
        log_to_notebook()
        log_to_notebook()  # running the cell again does not double the lines
        madminer = logging.getLogger("madminer.utils.interfaces.hdf5")
        madminer.info("HDF5 file does not contain nuisance parameter information")
        madminer.info("Found 2 parameters")
        logging.getLogger("madminer.core").info("Resetting benchmarks and morphing")
        out, err = capsys.readouterr()
        assert err == ""
        assert out.count("Found 2 parameters") == 1 and "HDF5 file does not contain" not in out
        assert "Resetting" not in out
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
