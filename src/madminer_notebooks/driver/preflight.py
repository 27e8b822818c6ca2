"""Checks that run before any stage: what would otherwise fail minutes later, deep inside MadMiner.

The parameter schema (:mod:`madminer_notebooks.params`) checks types, ranges and relations. What needs
the physics code is checked here: the MadGraph installation when the madgraph backend is asked for, and
every observable of ``analysis.observables``, compiled and evaluated on a synthetic event by the analysis
stage's own reader (a typo such as ``j[0].ptt`` or a syntax error names the file, the key and the
expression). The observable check imports MadMiner (several seconds), so it runs only when an analysis
is about to run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..madgraph import require_generator
from .errors import UsageError

log = logging.getLogger(__name__)


def check_observables(params: dict, params_file: Path) -> None:
    """Raise :class:`UsageError` naming the first observable that does not compile or evaluate."""
    from ..analysis.reader import AnalysisError, ColumnarLHEReader

    reader = ColumnarLHEReader.without_setup()
    try:
        for name, expression in params["analysis"]["observables"].items():
            reader.add_observable(name, expression, required=True)
        reader.check_expressions()
    except AnalysisError as err:
        reason = str(err).removeprefix("<synthetic event>: ")
        raise UsageError(f"{params_file}: analysis.observables: {reason}") from None


def preflight(params: dict, params_file: Path, stages: list[str], analysis_pending: bool = True) -> None:
    """Everything a driver checks before it starts the first notebook of ``stages``."""
    require_generator(params, stages)
    if "analysis" in stages and analysis_pending:
        check_observables(params, params_file)
