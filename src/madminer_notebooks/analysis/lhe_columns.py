"""Les Houches event files as columns: chunks of events as numpy arrays, read with the semantics of
MadMiner's XML event parser (``madminer.utils.interfaces.lhe._parse_xml_event``).

Why not an XML parser: MadMiner walks every event through ``ElementTree`` and builds one Python object per
particle, which is most of its 2 ms per event. Here a chunk of the file (a few MB, so memory stays flat) is
cut into events with two regular expressions and all particle lines of the chunk are converted to numbers
at once by pandas' C tokenizer. What MadMiner would read differently is never guessed at: a chunk whose
events do not have the plain layout (``NUP`` header then exactly ``NUP`` particle lines of 13 numbers, no
comments) is read event by event with ``ElementTree`` exactly as MadMiner reads it.

What is taken from an event, as MadMiner takes it:
- the text of ``<event>`` before its first child element: the header line ``NUP IDPRUP XWGTUP SCALUP
  AQEDUP AQCDUP`` (XWGTUP is the weight of the sampling benchmark) and the particle lines, of which only
  status 1 is kept (id, four-momentum, spin);
- ``<wgt id='NAME'>`` values of the first ``<rwgt>`` child, which override XWGTUP when one is named like
  the sampling benchmark.
Weights are converted with Python's ``float`` (bit for bit what MadMiner gets); momenta with pandas'
high-precision converter (within one unit in the last place).
"""

from __future__ import annotations

import io
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..lhe_file import WGT_BYTES, LHEFormatError, open_binary, read_block

log = logging.getLogger(__name__)

#: columns of a particle line that are used: id, status, px, py, pz, E, spin
PARTICLE_COLUMNS = (0, 1, 6, 7, 8, 9, 12)

_EVENT_TEXT = re.compile(rb"<event\b[^>]*>([^<]*)")
_EVENT_END = re.compile(rb"</event\s*>")
_RWGT = re.compile(rb"<rwgt\b[^>]*>(.*?)</rwgt\s*>", re.S)
_RWGT_START = re.compile(rb"<rwgt[\s>]")
_CHUNK_BYTES = 8 << 20


@dataclass
class EventChunk:
    """Consecutive events of one file. Particle arrays are padded to the largest number of status-1
    particles in the chunk; ``present`` marks the real entries (in file order)."""

    first_event: int  # 1-based number of the first event in the file
    weights: dict[str, np.ndarray]  # weight name -> (n,), XWGTUP under the sampling benchmark's name first
    pdgid: np.ndarray  # (n, k) int
    px: np.ndarray  # (n, k)
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    spin: np.ndarray
    present: np.ndarray  # (n, k) bool
    globals: dict[str, np.ndarray] = field(default_factory=dict)  # n_particles, scale, alpha_qed, alpha_qcd

    @property
    def n(self) -> int:
        return len(self.present)

    @classmethod
    def from_arrays(cls, first_event: int, weights: dict, arrays: dict[str, np.ndarray], present: np.ndarray,
                    header: np.ndarray) -> EventChunk:  # fmt: skip
        """From padded (n, k) particle arrays and the (n, 4) header numbers NUP, SCALUP, AQEDUP, AQCDUP."""
        return cls(
            first_event=first_event,
            weights=weights,
            pdgid=arrays["pdgid"].astype(np.int64),
            **{name: arrays[name] for name in ("px", "py", "pz", "e", "spin")},
            present=present,
            globals={name: header[:, j] for j, name in enumerate(("n_particles", "scale", "alpha_qed", "alpha_qcd"))},
        )


def pad(counts: np.ndarray, columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Flat rows, ``counts[i]`` of them for event ``i`` in event order, into the padded (n, k) layout of an
    :class:`EventChunk` (row j of event i at [i, j], zeros beyond); also the mask of the real entries."""
    n = len(counts)
    k = int(counts.max()) if n else 0
    slot = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    event = np.repeat(np.arange(n), counts)
    out = {}
    for name, values in columns.items():
        a = np.zeros((n, k), dtype=values.dtype)
        a[event, slot] = values
        out[name] = a
    present = np.zeros((n, k), dtype=bool)
    present[event, slot] = True
    return out, present


def iter_chunks(path: Path, sampling_benchmark: str, chunk_bytes: int = _CHUNK_BYTES) -> Iterator[EventChunk]:
    """Yield the file's events in chunks of about ``chunk_bytes`` of text each."""
    path = Path(path)
    n_done = 0
    rest = b""
    with open_binary(path) as f:
        while True:
            block = read_block(f, path, chunk_bytes)
            buf = rest + block
            if not block:  # end of file: whatever is left must hold no (partial) event
                if b"<event" in buf:
                    raise LHEFormatError(f"{path}: the file ends inside event {n_done + 1} (no </event>)")
                if n_done == 0:
                    raise LHEFormatError(f"{path}: no <event> in the file")
                return
            cut = buf.rfind(b"</event")
            end = buf.find(b">", cut) if cut >= 0 else -1
            if cut < 0 or end < 0:
                rest = buf
                continue
            rest = buf[end + 1 :]
            chunk = parse_events(buf[: end + 1], path, sampling_benchmark, n_done + 1)
            n_done += chunk.n
            yield chunk


def parse_events(buf: bytes, path: Path, sampling_benchmark: str, first_event: int) -> EventChunk:
    """Events of ``buf`` (whole events only), fast when their layout is plain, else as MadMiner reads them."""
    matches = list(_EVENT_TEXT.finditer(buf))
    if len(matches) != buf.count(b"</event>"):
        return _parse_exact(buf, path, sampling_benchmark, first_event)
    chunk = _parse_plain(buf, matches, path, sampling_benchmark, first_event)
    return chunk if chunk is not None else _parse_exact(buf, path, sampling_benchmark, first_event)


def _parse_plain(
    buf: bytes, matches: list[re.Match], path: Path, sampling_benchmark: str, first_event: int
) -> EventChunk | None:
    """The fast path; None when the events are not laid out plainly (then the exact path decides)."""
    texts = [m.group(1) for m in matches]
    joined = b"".join(t if t.endswith(b"\n") else t + b"\n" for t in texts)
    if b"#" in joined:
        return None
    try:
        table = pd.read_csv(
            io.BytesIO(joined),
            sep=r"\s+",
            header=None,
            names=range(13),
            usecols=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12),  # not the mass and lifetime
            dtype=np.float64,
            engine="c",
        ).to_numpy()
    except (ValueError, pd.errors.ParserError):
        return None
    is_header = np.isnan(table[:, 6])
    header_rows = np.flatnonzero(is_header)
    n = len(texts)
    if len(header_rows) != n or header_rows[0] != 0 or np.isnan(table[header_rows, :6]).any():
        return None
    nup = table[header_rows, 0]
    rows_after = np.diff(np.append(header_rows, len(table))) - 1
    if not np.array_equal(nup, rows_after) or np.isnan(table[~is_header]).any():
        return None
    particles = table[~is_header]
    nup = nup.astype(np.int64)
    names = ("status", "pdgid", "px", "py", "pz", "e", "spin")
    cols, _ = pad(nup, {name: particles[:, c] for name, c in zip(names, (1, 0, 6, 7, 8, 9, 10), strict=True)})  # 10: 12
    present = cols.pop("status") == 1
    # weights exactly as Python's float reads them (as MadMiner does): XWGTUP from the header line
    xwgtup = np.array([float(t.split(None, 3)[2]) for t in texts])
    weights = {sampling_benchmark: xwgtup}
    weights.update(_rwgt_weights(buf, np.array([m.start() for m in matches]), path, first_event))
    return EventChunk.from_arrays(first_event, weights, cols, present, table[header_rows][:, [0, 3, 4, 5]])


def _rwgt_weights(buf: bytes, starts: np.ndarray, path: Path, first_event: int) -> dict[str, np.ndarray]:
    """The ``<wgt>`` values of each event's first ``<rwgt>``, by name; every event must name the same weights
    in the same order (MadMiner reads them by position after the first event)."""
    n = len(starts)
    block_starts = [m.start() for m in _RWGT_START.finditer(buf)]
    if not block_starts:
        return {}
    first_block = _RWGT.search(buf, block_starts[0])
    if first_block is None:
        raise LHEFormatError(f"{path}: event {first_event}: <rwgt> without </rwgt>")
    found = WGT_BYTES.findall(buf)
    names = [w[1] for w in WGT_BYTES.findall(first_block.group(1))]
    k = len(names)
    one_each = len(block_starts) == n and np.array_equal(
        np.searchsorted(starts, block_starts, side="right") - 1, np.arange(n)
    )
    if one_each and k and len(found) == n * k and [w[1] for w in found] == names * n:
        values = [w[2] for w in found]  # the common case: every event has one <rwgt> with the same weights
    else:
        values = _rwgt_by_event(buf, starts, path, first_event, names)
    try:
        table = np.array([float(v) for v in values]).reshape(n, k)
    except ValueError as err:
        raise LHEFormatError(f"{path}: a <wgt> value in events {first_event}..{first_event + n - 1}: {err}") from err
    return {name.decode(): table[:, j] for j, name in enumerate(names)}


def _rwgt_by_event(buf: bytes, starts: np.ndarray, path: Path, first_event: int, names: list[bytes]) -> list[bytes]:
    """The values of each event's first ``<rwgt>`` block, checking that every event has one with ``names``."""
    blocks = list(_RWGT.finditer(buf))
    owner = np.searchsorted(starts, [b.start() for b in blocks], side="right") - 1
    _, first = np.unique(owner, return_index=True)
    if len(first) != len(starts):
        missing = sorted(set(range(len(starts))) - set(owner.tolist()))[0]
        raise LHEFormatError(f"{path}: event {first_event + missing} has no <rwgt> block while earlier events do")
    values: list[bytes] = []
    for i, j in enumerate(first):
        found = WGT_BYTES.findall(blocks[j].group(1))
        ids = [w[1] for w in found]
        if ids != names:
            raise LHEFormatError(
                f"{path}: event {first_event + i}: its weights {[x.decode() for x in ids]} differ from the first"
                f" event's {[x.decode() for x in names]} (MadMiner would assign them by position)"
            )
        values.extend(w[2] for w in found)
    return values


def _parse_exact(buf: bytes, path: Path, sampling_benchmark: str, first_event: int) -> EventChunk:
    """Event by event with ``ElementTree``, line by line as ``_parse_xml_event`` reads an event."""
    rows: list[list[tuple]] = []
    weights: list[dict[str, float]] = []
    globs: list[tuple[float, float, float, float]] = []
    starts = [m.start() for m in re.finditer(rb"<event\b", buf)]
    ends = [m.end() for m in _EVENT_END.finditer(buf)]
    for i, start in enumerate(starts):
        number = first_event + i
        if i >= len(ends) or ends[i] < start or (i + 1 < len(starts) and ends[i] > starts[i + 1]):
            raise LHEFormatError(f"{path}: event {number}: no matching </event>")
        try:
            event = ET.fromstring(buf[start : ends[i]])
        except ET.ParseError as err:
            raise LHEFormatError(f"{path}: event {number} is not well-formed XML ({err})") from None
        try:
            particles, w, g = _event_exact(event, sampling_benchmark)
        except (ValueError, IndexError, AssertionError) as err:
            raise LHEFormatError(f"{path}: event {number}: malformed event ({err or 'no header line'})") from None
        if weights and list(w) != list(weights[0]):
            raise LHEFormatError(
                f"{path}: event {number}: its weights {list(w)} differ from the first event's {list(weights[0])}"
            )
        rows.append(particles)
        weights.append(w)
        globs.append(g)
    n = len(rows)
    k = max((len(r) for r in rows), default=0)
    arrays = {name: np.zeros((n, k)) for name in ("pdgid", "px", "py", "pz", "e", "spin")}
    present = np.zeros((n, k), dtype=bool)
    for i, r in enumerate(rows):
        for j, (pdgid, px, py, pz, e, spin) in enumerate(r):
            for name, value in zip(("pdgid", "px", "py", "pz", "e", "spin"), (pdgid, px, py, pz, e, spin), strict=True):
                arrays[name][i, j] = value
            present[i, j] = True
    by_name = {name: np.array([w[name] for w in weights]) for name in (weights[0] if weights else {})}
    return EventChunk.from_arrays(first_event, by_name, arrays, present, np.array(globs, dtype=float).reshape(n, 4))


def _event_exact(event: ET.Element, sampling_benchmark: str) -> tuple[list[tuple], dict[str, float], tuple]:
    tag_line = None
    particles = []
    for line in (event.text or "").splitlines():
        elements = line.split()
        if len(elements) < 2:
            continue
        if tag_line is None:
            tag_line = elements
            continue
        if len(elements) < 10:
            continue
        status = int(elements[1])
        if elements[0] == "#aMCatNLO":
            elements = elements[1:]
        if status == 1:
            particles.append((int(elements[0]), *(float(elements[c]) for c in (6, 7, 8, 9)), float(elements[12])))
    assert tag_line is not None, "no header line"
    weights = {sampling_benchmark: float(tag_line[2])}
    g = (float(tag_line[0]), float(tag_line[3]), float(tag_line[4]), float(tag_line[5]))
    rwgt = event.find("rwgt")
    if rwgt is not None:
        for w in rwgt.findall("wgt"):
            weights[w.attrib["id"]] = float(w.text)
    return particles, weights, g
