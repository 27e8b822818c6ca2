"""madminer-notebooks: the MadMiner tutorial chain as parametrised notebooks, with a built-in
leading-order event generator for VBF H -> gamma gamma in the EWdim6 model."""

__version__ = "0.2.0"
