"""The workflow image's build tooling without an engine: the image name, the one-package index that feeds
the offline build this machine's torch wheel, and how the docker executor starts a step's container."""

from __future__ import annotations

import json
import os
import urllib.request
from unittest import mock

from conftest import free_port

from madminer_notebooks.workflow.image import STEP_MODULES, image_name, import_step_modules, one_package_index
from madminer_notebooks.workflow.yadage import STEP_UID, container_flags


def test_image_name_comes_from_the_step_templates(tmp_path):
    steps = tmp_path / "steps.yml"
    steps.write_text("environment:\n  image: reg.example/mmnb\n  imagetag: '1.2.3'\n")
    assert image_name(steps) == "reg.example/mmnb:1.2.3"
    assert image_name().startswith("madminer-notebooks/madminer-notebooks:")


def test_the_one_package_index_serves_the_wheel_as_pip_expects(tmp_path):
    wheel = tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")
    with one_package_index(wheel) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/torch/", timeout=10) as r:
            page = r.read().decode()
        assert f'href="{wheel.name}"' in page
        quoted = wheel.name.replace("+", "%2B")
        with urllib.request.urlopen(f"{url}/torch/{quoted}", timeout=10) as r:
            assert r.read() == b"not really a wheel"


def test_steps_run_as_reana_runs_them():
    with mock.patch.object(os, "getuid", return_value=0):
        flags = container_flags("2", "none")
    assert flags[0] == f"-u {STEP_UID}:0" and STEP_UID != 0  # root's driver: an arbitrary UID, GID 0
    assert "--read-only" in flags and "-e OMP_NUM_THREADS=2" in flags
    assert not any("--network" in f for f in flags)
    with mock.patch.object(os, "getuid", return_value=1000):
        assert container_flags("1", "http://127.0.0.1:5000")[0] == "-u 1000:0"
    assert "--network host" in container_flags("1", "http://127.0.0.1:5000")  # a server on this machine
    assert "--network host" not in container_flags("1", "https://mlflow.example.org")


def test_the_one_package_index_keeps_its_port_when_free_and_finds_another_when_taken(tmp_path):
    wheel = tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"x")
    port = free_port()
    with one_package_index(wheel, port) as url:
        assert url == f"http://127.0.0.1:{port}/simple"  # the same build argument as last time: cache kept
        with one_package_index(wheel, port) as other:
            assert other != url and other.startswith("http://127.0.0.1:")


def test_the_build_imports_each_notebook_import_statement_whole(tmp_path):
    """The image build writes bytecode for what the stage notebooks import: an import written over several
    lines (as ruff formats a long one) is one statement, and imports inside a branch are left out."""
    cells = [
        {"cell_type": "markdown", "source": ["import nothing from prose\n"]},
        {"cell_type": "code", "source": ["from os.path import (\n", "    basename,\n", "    join,\n", ")\n",
                                         "import json\n", "if False:\n", "    import no_such_module\n"]},
    ]  # fmt: skip
    (tmp_path / "01_x.ipynb").write_text(json.dumps({"cells": cells}))
    statements = import_step_modules(tmp_path)
    assert statements[len(STEP_MODULES) :] == ["from os.path import basename, join", "import json"]
