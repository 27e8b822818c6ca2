"""The analysis stage's machinery: MadMiner's ``LHEReader`` API over columns of events.

``ColumnarLHEReader`` (the default of ``analysis.reader``) reads LHE files into the same MadMiner event
files as ``madminer.lhe.LHEReader``, about a hundred times faster; ``analysis.reader: madminer`` switches
back to MadMiner's own reader.
"""

from .reader import AnalysisError, ColumnarLHEReader

__all__ = ["AnalysisError", "ColumnarLHEReader"]
