"""The README and docs/ quote measured numbers only from files that the benchmarks wrote: the limits, Fisher
information and timing tables are rendered from ``benchmarks/results/limits.json`` by ``benchmarks/limits.py``,
the image size from ``benchmarks/results/image.json`` by ``benchmarks/image_size.py``, and every copy must be
exactly that rendering (a number edited by hand, or a results file updated without the page, fails here)."""

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


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def generated_blocks(text: str) -> dict[str, str]:
    return {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"<!-- generated: (\w+) [^\n]*-->\n(.*?)<!-- end: \1 -->", text, re.S)
    }


def copies(name: str) -> dict[str, str]:
    """Every page's copy of the block ``name``."""
    found = {page.name: generated_blocks(page.read_text()).get(name) for page in PAGES}
    return {page: block for page, block in found.items() if block is not None}


@pytest.mark.parametrize("name", ["headline", "limits", "fisher", "timings"])
def test_the_readme_tables_are_the_benchmarks_results(name):
    results = json.loads((ROOT / "benchmarks" / "results" / "limits.json").read_text())
    expected = _benchmark().readme_tables(results)[name]
    blocks = copies(name)
    assert blocks, f"no page has a block '<!-- generated: {name} ... -->'"
    for page, block in blocks.items():
        assert block == expected.strip(), f"{page}'s {name} table is not benchmarks/results/limits.json's"
    assert re.search(r"\d", expected), "the rendered table holds no number"


def test_the_readme_image_size_is_the_benchmarks():
    result = json.loads((ROOT / "benchmarks" / "results" / "image.json").read_text())
    line = _benchmark("image_size").readme_line(result)
    assert copies("image") and set(copies("image").values()) == {line}
    assert result["bytes"] > 100e6  # an image with torch in it


def test_a_number_changed_by_hand_is_caught():
    results = json.loads((ROOT / "benchmarks" / "results" / "limits.json").read_text())
    readme = (ROOT / "docs" / "statistics.md").read_text()
    table = _benchmark().readme_tables(results)["limits"]
    first_number = re.search(r"\d\.\d{3}", table).group(0)
    edited = readme.replace(first_number, f"{float(first_number) + 0.001:.3f}", 1)
    assert generated_blocks(edited)["limits"] != table.strip()
    # every configuration that split events into more files has its one-file twin in the results
    runs = results["runs"]
    assert {"quick", "quick-3-files"} <= set(runs)


QUOTED = re.compile(r"<!-- from: (benchmarks/results/[\w.]+) [^\n]*-->\n(.*?)<!-- end: from -->", re.S)
MEASURED_COLUMNS = ("wall", "events/s", "seconds", "memory", "RSS")


def test_tables_quoted_from_benchmark_results_are_copies_of_them():
    """A table marked as quoted from ``benchmarks/results/NAME.md`` is that file's table, character for
    character, and a table of timings or memory that is neither quoted so nor generated is an error."""
    quoted = 0
    for page in PAGES:
        text = page.read_text()
        for m in QUOTED.finditer(text):
            assert m.group(2).strip() in (ROOT / m.group(1)).read_text(), f"{page.name}: differs from {m.group(1)}"
            quoted += 1
        rest = QUOTED.sub("", re.sub(r"<!-- generated: (\w+) .*?<!-- end: \1 -->", "", text, flags=re.S))
        headers = [line for line in rest.splitlines() if line.startswith("|") and "---" not in line]
        hand = [h for h in headers if any(c in h for c in MEASURED_COLUMNS)]
        assert not hand, f"{page.name}: a table of measurements written by hand: {hand[0]}"
    assert quoted >= 6
