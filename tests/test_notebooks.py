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
    run = tmp_path / "runs" / "interactive"
    assert (run / "data" / "setup.h5").stat().st_size > 0
    assert (run / "plots" / "morphing_basis.png").stat().st_size > 0
