"""Statistical inference on MadMiner's expected likelihoods, kept apart by concern (as pyhf's ``infer``):

- :mod:`.asimov`: ``ConsistentAsymptoticLimits``, MadMiner's ``AsymptoticLimits`` with an Asimov data set
  consistent with its histogram model;
- :mod:`.intervals`: best fits and profiled intervals read quadratically between grid points;
- :mod:`.scan`: coarse-to-fine scans until the interval ends converge;
- :mod:`.quality`: the numbers that say whether a method's limits can be trusted.
"""
