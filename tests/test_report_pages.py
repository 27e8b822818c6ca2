"""The report's pages: every executed notebook converted, on several processes when there are enough, with
its cells on the page; a notebook that cannot be read fails the report instead of leaving a page out."""

from __future__ import annotations

import json

import nbformat
import pytest

from madminer_notebooks.driver import pages


def _notebooks(folder, n: int) -> list[tuple]:
    pairs = []
    for i in range(n):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(f"# stage {i}"), nbformat.v4.new_code_cell(f"print({i} * 7)")]
        nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{i * 7}\n")]
        path = folder / f"nb{i}.ipynb"
        nbformat.write(nb, path)
        pairs.append((path, folder / f"nb{i}.html"))
    return pairs


@pytest.mark.parametrize("n", [pages.POOL_FROM_PAGES - 1, pages.POOL_FROM_PAGES + 1])
def test_every_notebook_gets_its_own_page(tmp_path, n):
    """Below the pool's threshold in this process, above it on worker processes: the same pages."""
    pairs = _notebooks(tmp_path, n)
    pages.convert_pages(pairs)
    for i, (_, page) in enumerate(pairs):
        text = page.read_text()
        assert f"stage {i}" in text  # the markdown heading
        assert f"<pre>{i * 7}\n</pre>" in text  # the cell's output, on the page of its own notebook
    assert sorted(p.name for p in tmp_path.glob("*.html")) == sorted(page.name for _, page in pairs)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_an_unreadable_notebook_fails_the_conversion(tmp_path):
    pairs = _notebooks(tmp_path, pages.POOL_FROM_PAGES + 1)
    pairs[2][0].write_text(json.dumps({"cells": "not a notebook"}))
    with pytest.raises(RuntimeError, match="converting the executed notebooks to report pages failed: .+"):
        pages.convert_pages(pairs)
    assert not pairs[2][1].exists()
