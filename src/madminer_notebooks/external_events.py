"""Existing LHE files as the chain's events (``generation.backend: external``).

A file made elsewhere (a MadGraph run with reweighting, a colleague's sample) enters the chain in the
generation stage: it is checked against what MadMiner's ``LHEReader`` needs and copied into the run folder
under the name a generated file would have, so every later stage runs unchanged. The checks exist because
MadMiner's own failures on such files are a bare ``KeyError: 'w'`` or ``AttributeError ... splitlines``
after minutes of reading; here every problem names the file, the event (its number and line) and what was
expected, and the whole file is checked before anything is written.

What is checked, in one streaming pass (the file is never held in memory):
- the header: a ``<MGRunCard>`` (MadMiner reads ``nevents`` and ``event_norm`` from it) and, when the file
  declares its weights in ``<initrwgt>``, a weight for every benchmark of the setup;
- every event: the ``NUP IDPRUP XWGTUP SCALUP AQEDUP AQCDUP`` line, exactly NUP particle lines of at least
  13 numeric columns, and a ``<rwgt>`` block with a finite ``<wgt id='NAME'>`` for every benchmark of the
  setup other than the sampling one (that one is XWGTUP);
- the count: with ``event_norm = average`` MadMiner divides every weight by ``nevents``, so the run card
  must state the real number of events.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from .atomic import atomic_file
from .lhe_file import WGT, EventFileRecord, LHEFormatError, RunCard, is_gzipped, open_text
from .params import EVENT_FILE_KEYS, PATH_KEYS, load_params

log = logging.getLogger(__name__)

_WEIGHT_DECL = re.compile(r"""<weight\s+id\s*=\s*(['"])(?P<id>[^'"]+)\1""")


class EventFileError(LHEFormatError):
    """An external event file cannot be used; the message names the file, the event and the problem."""


@dataclass(frozen=True)
class EventFileSummary(EventFileRecord):
    """What the generation stage records of an imported file: a generated file's record, and how it was
    normalised and where it came from."""

    event_norm: str
    source: str


def _numbered(f: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(f, start=1):
        yield number, line.strip()


def _header(path: Path, lines: Iterator[tuple[int, str]]) -> tuple[RunCard, list[str], list[float]]:
    """The run card (read as MadMiner reads it), declared weight ids and the process cross sections (value,
    error) of ``<init>``."""
    card_lines: list[str] = []
    declared: list[str] = []
    init: list[float] = []
    seen_root = in_card = in_init = False
    saw_card = False
    init_line = 0
    for number, line in lines:
        if not seen_root:
            if line.startswith("<LesHouchesEvents"):
                seen_root = True
            elif line and not line.startswith("<?xml") and not line.startswith("<!--"):
                raise EventFileError(f"{path}: line {number}: expected <LesHouchesEvents ...>, got {line[:60]!r}")
            continue
        if line.startswith("<MGRunCard"):
            in_card = saw_card = True
        elif line.startswith("</MGRunCard"):
            in_card = False
        elif in_card:
            card_lines.append(line.replace("<![CDATA[", "").replace("]]>", ""))
        elif m := _WEIGHT_DECL.match(line):
            declared.append(m["id"])
        elif re.match(r"<init[\s>]", line):  # not <initrwgt>
            in_init, init_line = True, number
        elif in_init:
            if line.startswith("</init"):
                break
            if line and not line.startswith(("#", "<")):  # MadGraph 3 writes a <generator> line here
                fields = line.split()
                if number > init_line + 1 and len(fields) >= 3:  # per-process lines: XSECUP XERRUP XMAXUP LPRUP
                    try:
                        init.extend((float(fields[0]), float(fields[1])))
                    except ValueError:
                        raise EventFileError(f"{path}: line {number}: malformed <init> process line {line!r}") from None
        elif line.startswith("<event"):
            raise EventFileError(f"{path}: line {number}: an event before the end of <init>")
    if not seen_root:
        raise EventFileError(f"{path}: not a Les Houches event file (no <LesHouchesEvents> element)")
    if not saw_card:
        raise EventFileError(
            f"{path}: no <MGRunCard> in the header (MadMiner reads nevents and event_norm from the MadGraph run card"
            " that MadGraph writes there)"
        )
    try:
        card = RunCard.from_lines(card_lines, path)
    except LHEFormatError as err:
        raise EventFileError(str(err)) from None
    return card, declared, init


def _float(path: Path, number: int, event: int, text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise EventFileError(f"{path}: event {event} (line {number}): {what} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise EventFileError(f"{path}: event {event} (line {number}): {what} is {text}")
    return value


def _events(path: Path, lines: Iterator[tuple[int, str]], needed: list[str]) -> Iterator[float]:
    """Check every event; yield its XWGTUP."""
    event = 0
    for number, line in lines:
        if not line.startswith("<event"):
            if line.startswith("</LesHouchesEvents"):
                return
            continue
        event += 1
        start = number
        block: list[tuple[int, str]] = []
        for inner in lines:
            if inner[1].startswith("</event"):
                break
            if inner[1].startswith("<event"):
                raise EventFileError(f"{path}: event {event} (line {start}): not closed before the next <event>")
            block.append(inner)
        else:
            raise EventFileError(f"{path}: event {event} (line {start}): the file ends inside the event (truncated?)")
        if not block:
            raise EventFileError(f"{path}: event {event} (line {start}): empty event")
        first_number, first = block[0]
        fields = first.split()
        if len(fields) < 6:
            raise EventFileError(
                f"{path}: event {event} (line {first_number}): expected 'NUP IDPRUP XWGTUP SCALUP AQEDUP AQCDUP', "
                f"got {first!r}"
            )
        try:
            nup = int(fields[0])
        except ValueError:
            raise EventFileError(
                f"{path}: event {event} (line {first_number}): NUP is not an integer: {fields[0]!r}"
            ) from None
        xwgtup = _float(path, first_number, event, fields[2], "XWGTUP")
        particles = block[1 : 1 + nup]
        if len(particles) < nup or any(not p[1] or p[1].startswith("<") for p in particles):
            found = sum(1 for p in particles if p[1] and not p[1].startswith("<"))
            raise EventFileError(
                f"{path}: event {event} (line {first_number}): NUP = {nup} particle lines announced, {found} found"
            )
        for p_number, p_line in particles:
            columns = p_line.split()
            if len(columns) < 13:
                raise EventFileError(
                    f"{path}: event {event} (line {p_number}): a particle line needs 13 columns "
                    f"(id status mothers colours px py pz E m lifetime spin), got {len(columns)}"
                )
            for text in columns[:13]:
                _float(path, p_number, event, text, "a particle column")
        weights = {m["id"]: (n, m["value"]) for n, text in block[1 + nup :] for m in WGT.finditer(text)}
        for name in needed:
            if name not in weights:
                have = ", ".join(weights) or "no <wgt> entries"
                raise EventFileError(
                    f"{path}: event {event} (line {start}): no weight for benchmark {name!r} in <rwgt> "
                    f"(found: {have}); MadGraph names them so with 'launch --rwgt_name={name}'"
                )
            _float(path, weights[name][0], event, weights[name][1], f"the weight of benchmark {name!r}")
        yield xwgtup
    raise EventFileError(f"{path}: the file ends without </LesHouchesEvents> after event {event} (truncated?)")


def check_event_file(path: str | Path, benchmarks: list[str], sampling_benchmark: str) -> EventFileSummary:
    """Check ``path`` against the setup's ``benchmarks``; raise :class:`EventFileError` on the first problem."""
    path = Path(path)
    if sampling_benchmark not in benchmarks:
        raise EventFileError(
            f"{path}: sampled at {sampling_benchmark!r}, which is not a benchmark of the setup "
            f"({', '.join(benchmarks)})"
        )
    needed = [b for b in benchmarks if b != sampling_benchmark]
    try:
        f = open_text(path)
    except OSError as err:
        raise EventFileError(f"{path}: cannot read ({err.strerror})") from None
    with f:
        lines = _numbered(f)
        try:
            run_card, declared, init = _header(path, lines)
            if declared:
                missing = [b for b in needed if b not in declared]
                if missing:
                    raise EventFileError(
                        f"{path}: the header's <initrwgt> declares no weight for the setup benchmark(s) "
                        f"{', '.join(missing)} (declared: {', '.join(declared)}); reweight to every benchmark of "
                        "the setup, including the morphing basis points, named after them"
                    )
            total = total_sq = 0.0
            n = 0
            for w in _events(path, lines, needed):
                n += 1
                total += w
                total_sq += w * w
        except (EOFError, gzip.BadGzipFile, OSError) as err:
            raise EventFileError(
                f"{path}: cannot be read to the end ({err}): it breaks off after event {n}, inside event {n + 1} "
                "or the closing tag (a truncated copy or download?)"
            ) from None
    if n == 0:
        raise EventFileError(f"{path}: no events")
    event_norm = run_card.event_norm or "sum"  # none stated: MadMiner takes the weights as they are
    if event_norm not in ("average", "sum"):
        raise EventFileError(f"{path}: run card event_norm = {event_norm!r}; MadMiner reads 'average' or 'sum'")
    if event_norm == "average":
        stated = run_card.nevents
        if stated != n:
            raise EventFileError(
                f"{path}: the run card says nevents = {stated if stated is None else f'{stated:g}'}, the file has "
                f"{n} events; with event_norm = average MadMiner divides every weight by nevents, so the cross "
                "section would be wrong"
            )
        sigma = total / n
        spread = math.sqrt(max(total_sq / n - sigma * sigma, 0.0) / n)
    else:
        sigma = total
        spread = math.sqrt(total_sq)  # Poisson-like error of a weighted sum
    error = math.sqrt(sum(e * e for e in init[1::2])) if init else spread
    return EventFileSummary(sampling_benchmark, n, sigma, error, event_norm, str(path))


def import_event_file(source: str | Path, target: str | Path) -> None:
    """Copy a checked file into the run folder as ``target`` (gzip, as generated files are), atomically."""
    source, target = Path(source), Path(target)
    with atomic_file(target) as tmp:
        if is_gzipped(source):
            shutil.copyfile(source, tmp)
        else:
            with source.open("rb") as src, gzip.open(tmp, "wb", compresslevel=4) as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
    log.info("imported %s as %s", source, target)


def stage_parameter_file(params_file: str | Path, folder: str | Path, name: str | None = None) -> Path:
    """Copy a parameter file into ``folder`` together with the event files it lists, so the copy is
    self-contained: a Yadage work folder's ``init/`` or the folder that REANA uploads.

    Relative paths in a parameter file are taken from its own folder, which a copy does not share. The
    external files go to ``folder/events/`` (hard links where the file system allows, else copies) and the
    copy names them there; MadGraph and Delphes installations are not copied, their paths become absolute.
    """
    params_file, folder = Path(params_file), Path(folder)
    resolved = load_params(params_file)  # validates, and checks that every listed file exists
    raw = yaml.safe_load(params_file.read_text())
    gen = raw["generation"]
    for dotted in PATH_KEYS:
        parent, _, key = dotted.partition(".")
        if gen.get(parent) and gen[parent].get(key):
            gen[parent][key] = resolved["generation"][parent][key]
    listed = zip(gen.get("events", []), resolved["generation"].get("events", []), strict=True)
    for i, (entry, source) in enumerate(listed):
        for key in EVENT_FILE_KEYS:
            if not source.get(key):
                continue
            original = Path(source[key])
            staged = folder / "events" / f"{i:03d}-{key}-{original.name}"
            staged.parent.mkdir(parents=True, exist_ok=True)
            if not (staged.exists() and os.path.samefile(staged, original)):
                tmp = staged.with_name(f".{staged.name}.tmp")
                tmp.unlink(missing_ok=True)
                try:
                    os.link(original, tmp)
                except OSError:
                    shutil.copyfile(original, tmp)
                os.replace(tmp, staged)
            entry[key] = f"events/{staged.name}"
    target = folder / (name or params_file.name)
    with atomic_file(target) as tmp:
        tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
    return target
