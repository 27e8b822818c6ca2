"""The README quotes measured numbers only from files that the benchmarks wrote: its limits, Fisher
information and timing tables are rendered from ``benchmarks/results/limits.json`` by ``benchmarks/limits.py``,
the image size from ``benchmarks/results/image.json`` by ``benchmarks/image_size.py``, and each must be exactly
that rendering (a number edited by hand, or a results file updated without the README, fails here)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _benchmark(name: str = "limits"):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_blocks(text: str) -> dict[str, str]:
    return {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"<!-- generated: (\w+) [^\n]*-->\n(.*?)<!-- end: \1 -->", text, re.S)
    }


@pytest.mark.parametrize("name", ["limits", "fisher", "timings"])
def test_the_readme_tables_are_the_benchmarks_results(name):
    results = json.loads((ROOT / "benchmarks" / "results" / "limits.json").read_text())
    expected = _benchmark().readme_tables(results)[name]
    blocks = generated_blocks((ROOT / "README.md").read_text())
    assert name in blocks, f"README.md has no block '<!-- generated: {name} ... -->'"
    assert blocks[name] == expected.strip(), f"README.md's {name} table is not benchmarks/results/limits.json's"
    assert re.search(r"\d", expected), "the rendered table holds no number"


def test_the_readme_image_size_is_the_benchmarks():
    result = json.loads((ROOT / "benchmarks" / "results" / "image.json").read_text())
    line = _benchmark("image_size").readme_line(result)
    assert generated_blocks((ROOT / "README.md").read_text()).get("image") == line
    assert result["bytes"] > 100e6  # an image with torch in it


def test_a_number_changed_by_hand_is_caught():
    results = json.loads((ROOT / "benchmarks" / "results" / "limits.json").read_text())
    readme = (ROOT / "README.md").read_text()
    table = _benchmark().readme_tables(results)["limits"]
    first_number = re.search(r"\d\.\d{3}", table).group(0)
    edited = readme.replace(first_number, f"{float(first_number) + 0.001:.3f}", 1)
    assert generated_blocks(edited)["limits"] != table.strip()
    # every configuration that split events into more files has its one-file twin in the results
    runs = results["runs"]
    assert {"quick", "quick-3-files"} <= set(runs)
