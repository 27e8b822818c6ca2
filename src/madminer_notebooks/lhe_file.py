"""Les Houches event files: how one is opened and what its header says, written once for every reader here.

Three readers build on this: the generator's array reader (plots and checks of generated files), the
validator of external files (``external_events``) and the columnar analysis reader (``analysis.lhe_columns``).
They must agree with each other and with MadMiner on three things, which are therefore defined here only:

- **compression** is told by the file's first two bytes (gzip's magic number), not by its name;
- **the run card** in ``<MGRunCard>`` is read line by line as MadMiner's ``LHEReader`` reads it
  (``value = key ! comment``; a line that does not split into exactly one value and one key is skipped),
  so the validator's ``nevents`` is the number MadMiner divides by;
- **weights** ``<wgt id='NAME'>value</wgt>``, with either quote and any attributes after the id.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"

#: ``<wgt id='NAME' ...>VALUE</wgt>``: group 2 (``id``) the name, group 3 (``value``) the text of the value.
WGT = re.compile(r"""<wgt\s+id\s*=\s*(['"])(?P<id>[^'"]*)\1[^>]*>(?P<value>[^<]*)</wgt\s*>""")
WGT_BYTES = re.compile(WGT.pattern.encode())


class LHEFormatError(ValueError):
    """An event file that MadMiner would misread or fail on; the message names the file and the place."""


def is_gzipped(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


class GzipStream:
    """A gzipped file's bytes through zlib directly, in 4 MB reads (Python's ``gzip`` module reads small pieces
    and took 0.66 s for the 135 MB of 10^5 events where zlib itself takes 0.46 s). Handles concatenated gzip
    members; zlib checks each member's CRC, and a stream that ends inside a member is an error."""

    def __init__(self, path: str | Path, block: int = 4 << 20):
        self._file = open(path, "rb")  # noqa: SIM115 (closed in close())
        self._block = block
        self._z = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._done = False

    def read(self, size: int) -> bytes:
        chunks, have = [self._pending], len(self._pending)
        while have < size and not self._done:
            if self._z.eof:  # a member ended: another may follow
                data = self._z.unused_data or self._file.read(self._block)
                if not data:
                    self._done = True
                    break
                self._z = zlib.decompressobj(wbits=31)
            else:
                data = self._file.read(self._block)
                if not data:
                    raise EOFError("compressed file ended before the end-of-stream marker was reached")
            piece = self._z.decompress(data)
            chunks.append(piece)
            have += len(piece)
        joined = b"".join(chunks)
        self._pending = joined[size:]
        return joined[:size]

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_binary(path: str | Path) -> GzipStream | IO[bytes]:
    """The file's bytes, decompressed if it is gzipped."""
    return GzipStream(path) if is_gzipped(path) else open(path, "rb")  # noqa: SIM115 (the caller closes it)


def open_text(path: str | Path) -> IO[str]:
    """The file's text, decompressed if it is gzipped (undecodable bytes replaced, for error messages)."""
    if is_gzipped(path):
        return gzip.open(path, "rt", errors="replace")
    return open(path, errors="replace")  # noqa: SIM115 (the caller closes it)


def run_card_entry(line: str) -> tuple[str, str] | None:
    """(key, value) of one run-card line as MadMiner reads it, or None for a line MadMiner skips."""
    parts = line.split("!")
    if len(parts) == 2:
        line = parts[0]
    fields = line.split("=")
    if len(fields) != 2:
        return None
    return fields[1].strip(), fields[0].strip()


@dataclass(frozen=True)
class RunCard:
    """What MadMiner reads from ``<MGRunCard>``: ``nevents`` and ``event_norm`` (None when not stated)."""

    nevents: float | None
    event_norm: str | None

    @property
    def norm_is_average(self) -> bool | None:
        """MadMiner divides the weights by ``nevents`` only for ``event_norm = average`` (spelled so)."""
        return None if self.event_norm is None else self.event_norm == "average"

    @classmethod
    def from_lines(cls, lines: list[str], path: str | Path) -> RunCard:
        entries = dict(entry for entry in map(run_card_entry, lines) if entry is not None)
        nevents = entries.get("nevents")
        try:
            return cls(None if nevents is None else float(nevents), entries.get("event_norm"))
        except ValueError:
            raise LHEFormatError(f"{path}: the run card's nevents = {nevents!r} is not a number") from None


@dataclass(frozen=True)
class EventFileRecord:
    """What the generation stage records of every event file (``RunPaths.generation_summary``), however the
    file was made: the plotting stage compares these cross sections with the combined one."""

    benchmark: str
    events: int
    cross_section_pb: float
    cross_section_error_pb: float

    def as_dict(self) -> dict:
        return asdict(self)


def read_block(f: GzipStream | IO[bytes], path: str | Path, size: int) -> bytes:
    """Up to ``size`` bytes of an opened file; a truncated or corrupt gzip stream is an LHEFormatError."""
    try:
        return f.read(size)
    except (EOFError, zlib.error) as err:
        raise LHEFormatError(f"{path}: the compressed file is truncated or corrupt ({err})") from err


def header_text(path: str | Path) -> bytes:
    """Everything before the first ``<event``."""
    out = bytearray()
    with open_binary(path) as f:
        while True:
            block = read_block(f, path, 1 << 20)
            if not block:
                break
            out += block
            i = out.find(b"<event")
            if i >= 0:
                return bytes(out[:i])
    return bytes(out)


def read_run_card(path: str | Path) -> RunCard:
    """The run card of the file's header; an error if it has none (MadMiner needs it)."""
    m = re.search(rb"<MGRunCard[^>]*>(.*?)</MGRunCard\s*>", header_text(path), re.S)
    if m is None:
        raise LHEFormatError(
            f"{path}: no <MGRunCard> in the header (MadMiner reads nevents and event_norm from the MadGraph run card)"
        )
    card = m.group(1).replace(b"<![CDATA[", b"").replace(b"]]>", b"").decode("utf-8", "replace")
    return RunCard.from_lines(card.splitlines(), path)
