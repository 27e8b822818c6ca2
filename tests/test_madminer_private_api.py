"""The private parts of MadMiner 0.9.6 that the project overrides, patches or calls, pinned by signature: a
MadMiner release that renames or reshapes one of them fails here, by name, instead of deep inside a notebook
or, worse, silently computing something else.

Public API (``AsymptoticLimits.expected_limits``, ``Ensemble``, ...) is MadMiner's promise; these are not.
Where each is used: ``inference/limits.py`` (``ConsistentAsymptoticLimits``: ``asimov``, ``sallino``,
``calibration``), ``inference/columnar_fisher.py``,
``analysis/reader.py`` (``ColumnarLHEReader``), ``training.py`` (the columnar trainers) and ``compat.py``
(the numbered fixes). The signatures are read in a fresh interpreter, before ``compat.apply`` wraps anything.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

#: qualified name -> its signature in MadMiner 0.9.6 and what in the project relies on it
PINNED: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).parent / "data" / "madminer_private_api.json").read_text()
)

_READ = """
import importlib, inspect, json, sys
out = {}
for name in json.loads(sys.argv[1]):
    parts = name.split(".")
    for i in range(len(parts), 0, -1):  # the longest importable module prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ImportError:
            continue
    try:
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        out[name] = str(inspect.signature(obj))
    except AttributeError as err:
        out[name] = f"missing: {err}"
print(json.dumps(out))
"""


def test_madminer_private_names_have_the_signatures_the_project_was_written_for():
    proc = subprocess.run([sys.executable, "-c", _READ, json.dumps(list(PINNED))], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout)
    changed = {name: (found[name], pin["used_by"]) for name, pin in PINNED.items() if found[name] != pin["signature"]}
    assert not changed, f"MadMiner's private API changed under the project: {changed}"


def test_every_madminer_method_the_project_overrides_is_pinned():
    """A new override of a MadMiner method must be added to :data:`PINNED` (then a change of it is caught)."""
    from madminer.utils.ml.trainer import Trainer

    from madminer_notebooks.analysis.reader import ColumnarLHEReader
    from madminer_notebooks.inference.columnar_fisher import ColumnarFisherInformation
    from madminer_notebooks.inference.limits import ConsistentAsymptoticLimits
    from madminer_notebooks.training import Columnar

    overridden = set()
    for ours, theirs in ((ConsistentAsymptoticLimits, None), (ColumnarFisherInformation, None),
                         (ColumnarLHEReader, None), (Columnar, Trainer)):  # fmt: skip
        mine = [c for c in inspect.getmro(ours) if c.__module__.startswith("madminer_notebooks")]
        base = theirs or next(c for c in inspect.getmro(ours) if c.__module__.startswith("madminer."))
        for name in {name for c in mine for name in vars(c)}:
            owner = next((b for b in inspect.getmro(base) if name in vars(b)), None)
            if owner is not None and not name.startswith("__"):
                overridden.add(f"{owner.__module__}.{owner.__qualname__}.{name}")
    assert len(overridden) >= 20
    assert overridden <= set(PINNED), sorted(overridden - set(PINNED))
