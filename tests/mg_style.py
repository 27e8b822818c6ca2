"""LHE files with MadGraph 5's conventions, made from the built-in generator's output (tests only).

MadGraph 2.9 wraps the run card in CDATA, adds a version block and a banner comment, writes an
``<mgrwt>`` block (scale and PDF information for its own reweighting) before ``<rwgt>`` and formats weights
as ``<wgt id='NAME'> +1.2345678e-03 </wgt>``. The converter reproduces those conventions, so the external
events path is tested on what MadGraph writes, and it can break files on purpose.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

BANNER = """<!--
#*********************************************************************
#                        MadGraph5_aMC@NLO                            *
#    (written for the madminer-notebooks tests in MadGraph's layout)   *
#*********************************************************************
-->
<MGVersion>
2.9.18
</MGVersion>
"""

MGRWT = """<mgrwt>
<rscale>  0 0.12500000E+03</rscale>
<asrwt>0</asrwt>
<pdfrwt beam="1">  1        2 0.11259982E+00 0.12500000E+03</pdfrwt>
<pdfrwt beam="2">  1        1 0.71760947E-01 0.12500000E+03</pdfrwt>
<totfact> 0.10000000E+01</totfact>
</mgrwt>
"""


def to_madgraph_style(
    source: Path,
    target: Path,
    *,
    drop_weight: tuple[int, str] | None = None,
    damage_event: int | None = None,
    truncate_in_event: int | None = None,
    nevents: int | None = None,
) -> Path:
    """Rewrite ``source`` with MadGraph's conventions into ``target`` (gzip if it ends in .gz).

    drop_weight=(event, name) removes one benchmark weight from one event (1-based); damage_event removes two
    columns from a particle line of that event; truncate_in_event cuts the file inside that event; nevents
    overrides the run card's event count.
    """
    with gzip.open(source, "rt") as f:
        text = f.read()
    head, sep, body = text.partition("<event>")
    head = re.sub(r"<generator[^\n]*\n", "", head)  # MadGraph writes its version block instead
    head = head.replace("<header>\n", "<header>\n" + BANNER, 1)
    head = re.sub(r"<MGRunCard>\n(.*?)</MGRunCard>", lambda m: f"<MGRunCard>\n<![CDATA[\n{m[1]}]]>\n</MGRunCard>",
                  head, flags=re.S)  # fmt: skip
    head = re.sub(r"<MGProcCard>\n(.*?)</MGProcCard>", lambda m: f"<MGProcCard>\n<![CDATA[\n{m[1]}]]>\n</MGProcCard>",
                  head, flags=re.S)  # fmt: skip
    if nevents is not None:
        head = re.sub(r"(?m)^\s*\d+ = nevents", f"  {nevents} = nevents", head)
    events = (sep + body).split("<event>")[1:]
    out = [head]
    for number, chunk in enumerate(events, start=1):
        chunk = chunk.replace("<rwgt>", MGRWT + "<rwgt>", 1)
        chunk = re.sub(r"<wgt id='([^']+)'>\s*([-+0-9.eE]+)\s*</wgt>",
                       lambda m: f"<wgt id='{m[1]}'> {float(m[2]):+.10e} </wgt>", chunk)  # fmt: skip
        if drop_weight and drop_weight[0] == number:
            chunk = re.sub(rf"<wgt id='{drop_weight[1]}'>[^<]*</wgt>\n", "", chunk)
        if damage_event == number:
            lines = chunk.split("\n")
            lines[3] = " ".join(lines[3].split()[:11])
            chunk = "\n".join(lines)
        if truncate_in_event == number:
            out.append("<event>" + chunk[: len(chunk) // 2])
            break
        out.append("<event>" + chunk)
    data = "".join(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".gz":
        with gzip.open(target, "wt") as f:
            f.write(data)
    else:
        target.write_text(data)
    return target
