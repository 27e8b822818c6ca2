"""Every method's results of a run, put together: what the plotting stage owns and writes, and what the
summary, the report and a scan's comparison read.

The evaluation stage writes one file per method (``data/limits/METHOD.json``: best fit, intervals, closure
check, the Fisher information it computed). :func:`collect_results` reads them all, gathers the Fisher
information into one mapping, adds each method's quality numbers (widths relative to the histogram's, bias,
the share of the truth's information: :mod:`.inference.quality`) and writes ``data/intervals.json`` and
``data/fisher_information.json``.
"""

from __future__ import annotations

import json

from .atomic import atomic_file
from .chain import evaluation_keys
from .inference.quality import method_quality
from .paths import RunPaths


def collect_results(params: dict, paths: RunPaths) -> tuple[dict[str, dict], dict]:
    """(every method's limits with its quality numbers, the Fisher information of every approach), written
    to the run folder's ``intervals.json`` and ``fisher_information.json``."""
    names = list(params["physics"]["parameters"])
    limits = {m: json.loads(paths.limit_result(m).read_text()) for m in evaluation_keys(params)}
    fisher: dict = {"parameters": names}
    for result in limits.values():
        fisher.update(result.pop("fisher_information", {}))
    sm = dict.fromkeys(names, 0.0)
    for method, quality in method_quality(limits, fisher, sm).items():
        limits[method]["quality"] = quality
    with atomic_file(paths.intervals) as tmp:
        tmp.write_text(json.dumps(limits, indent=2))
    with atomic_file(paths.fisher) as tmp:
        tmp.write_text(json.dumps(fisher, indent=2))
    return limits, fisher
